"""Events described in TOML files (``necreg load-event``): validation and create-or-update."""

from __future__ import annotations

import re
import tomllib
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from .fees import FeeError, price_definitions, sync_prices
from .formats import LINE_CONTROLS, has_control_characters, nfc, time_zone, toml_moment
from .models import EVENT_MAX_LENGTHS, MAX_GUESTS_LIMIT, ROLES, Event, utcnow
from .money import MoneyError, currency_known, parse_amount, to_minor
from .payments import PaymentTerms
from .program import ProgramError, sync_program
from .program import definitions as program_definitions
from .questions import QuestionError, definitions, sync_questions
from .registration import lock_event, promote_waitlisted

SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
#: Longest CME/CE statement printed on certificates, in characters.
CME_STATEMENT_MAX = 2000

_KNOWN_KEYS = {
    "slug", "name", "tagline", "starts_on", "ends_on", "venue", "hosts", "current",
    "sessions", "faculty", "capacity", "registration_opens_at", "registration_closes_at",
    "description", "capacity_by_role", "testimonials", "questions",
    "virtual", "virtual_capacity", "join_url", "max_guests", "infants_count", "consent_version",
    "currency", "prices", "refund_until", "program", "cme_statement", "certificates_from",
    "support_budget", "timezone", "highlights_url",
}  # fmt: skip


class EventFileError(ValueError):
    """The event description is not valid; the message names the field and the problem."""


def read_event_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise EventFileError(f"{path}: no such file") from None
    except tomllib.TOMLDecodeError as exc:
        raise EventFileError(f"{path}: not valid TOML: {exc}") from None


def _count(data: dict[str, Any], key: str, default: int | None) -> int | None:
    value = data.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise EventFileError(f"{key} must be a whole number of 0 or more, not {value!r}")
    return value


def _flag(data: dict[str, Any], key: str) -> bool:
    value = data.get(key, False)
    if not isinstance(value, bool):
        raise EventFileError(f"{key} must be true or false")
    return value


def _timestamp(data: dict[str, Any], key: str) -> datetime | None:
    try:
        return toml_moment(data.get(key))
    except ValueError:
        raise EventFileError(f"{key} must be a date-time such as 2025-03-01T00:00:00Z") from None


def _money(data: dict[str, Any], key: str, currency: str) -> int | None:
    """An amount of the event's currency written as a decimal string, in minor units."""
    value = data.get(key)
    if value is None:
        return None
    if not currency_known(currency):
        raise EventFileError(f"{key} needs the event's currency")
    try:
        return to_minor(parse_amount(value, currency), currency)
    except MoneyError as exc:
        raise EventFileError(f"{key}: {exc}") from None


def _text(key: str, value: str, allowed: str = "") -> str:
    """``value`` trimmed, in NFC; EventFileError if it holds a control or format character
    (but those ``allowed``, e.g. the line breaks of a description)."""
    if has_control_characters(value, allowed):
        raise EventFileError(f"{key} holds a control or invisible character; please retype it")
    return nfc(value.strip())


def _check_web_address(key: str, value: str) -> None:
    if value and not value.startswith(("https://", "http://")):
        raise EventFileError(f"{key} must be a web address starting with https://")


def validate(data: dict[str, Any], *, default_timezone: str = "UTC") -> dict[str, Any]:
    """Check an event description and return the values for the Event columns; an event
    that names no ``timezone`` is in ``default_timezone`` (the setting DISPLAY_TIMEZONE)."""
    unknown = sorted(set(data) - _KNOWN_KEYS)
    if unknown:
        raise EventFileError(f"unknown key(s): {', '.join(unknown)}")
    slug = data.get("slug")
    if not isinstance(slug, str) or not SLUG_RE.match(slug):
        raise EventFileError("slug must be lower-case letters, digits and dashes, e.g. nec-2025")
    values: dict[str, Any] = {"slug": slug}
    for key, limit in EVENT_MAX_LENGTHS.items():
        value = data.get(key, "")
        if not isinstance(value, str) or len(value) > limit:
            raise EventFileError(f"{key} must be text of at most {limit} characters")
        values[key] = _text(key, value)
    if not values["name"]:
        raise EventFileError("name is required")
    for key in ("starts_on", "ends_on"):
        value = data.get(key)
        if not isinstance(value, date) or isinstance(value, datetime):
            raise EventFileError(f"{key} must be a date such as 2025-09-07")
        values[key] = value
    if values["ends_on"] < values["starts_on"]:
        raise EventFileError("ends_on is before starts_on")
    hosts = data.get("hosts", [])
    if not isinstance(hosts, list) or not all(isinstance(h, str) and h.strip() for h in hosts):
        raise EventFileError("hosts must be a list of names")
    values["hosts"] = [_text("hosts", h) for h in hosts]
    values["is_current"] = _flag(data, "current")
    values["virtual"] = _flag(data, "virtual")
    values["virtual_capacity"] = _count(data, "virtual_capacity", None)
    if values["virtual_capacity"] is not None and not values["virtual"]:
        raise EventFileError("virtual_capacity needs virtual = true")
    for key in ("join_url", "highlights_url"):
        _check_web_address(key, values[key])
    values["timezone"] = values["timezone"] or default_timezone
    if time_zone(values["timezone"]) is None:
        raise EventFileError(
            f"timezone {values['timezone']!r} is not a time zone; use a name such as"
            " America/Chicago"
        )
    values["max_guests"] = _count(data, "max_guests", 0)
    if values["max_guests"] > MAX_GUESTS_LIMIT:
        raise EventFileError(f"max_guests may be at most {MAX_GUESTS_LIMIT}")
    values["infants_count"] = _flag(data, "infants_count")
    currency = data.get("currency", "")
    if not isinstance(currency, str) or (currency and not currency_known(currency)):
        raise EventFileError("currency must be an ISO 4217 code such as USD")
    values["currency"] = currency
    values["refund_until"] = _timestamp(data, "refund_until")
    values["support_budget"] = _money(data, "support_budget", currency)
    values["certificates_from"] = _timestamp(data, "certificates_from")
    statement = data.get("cme_statement", "")
    if not isinstance(statement, str) or len(statement) > CME_STATEMENT_MAX:
        raise EventFileError(
            f"cme_statement must be text of at most {CME_STATEMENT_MAX} characters"
        )
    values["cme_statement"] = _text("cme_statement", statement, LINE_CONTROLS)
    values["sessions"] = _count(data, "sessions", 0)
    values["faculty"] = _count(data, "faculty", 0)
    values["capacity"] = _count(data, "capacity", None)
    values["registration_opens_at"] = _timestamp(data, "registration_opens_at")
    values["registration_closes_at"] = _timestamp(data, "registration_closes_at")
    opens, closes = values["registration_opens_at"], values["registration_closes_at"]
    if opens and closes and closes <= opens:
        raise EventFileError("registration_closes_at must be after registration_opens_at")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise EventFileError("description must be text (Markdown)")
    values["description"] = _text("description", description, LINE_CONTROLS)
    caps = data.get("capacity_by_role", {})
    if not isinstance(caps, dict):
        raise EventFileError("capacity_by_role must be a table of role = number")
    for role in caps:
        if role not in ROLES:
            raise EventFileError(
                f"capacity_by_role names unknown role {role!r}; roles: {', '.join(ROLES)}"
            )
    values["capacity_by_role"] = {r: _count(caps, r, None) for r in ROLES if r in caps}
    testimonials = data.get("testimonials", [])
    if not isinstance(testimonials, list):
        raise EventFileError("testimonials must be a list of [[testimonials]] tables")
    values["testimonials"] = []
    for number, item in enumerate(testimonials, start=1):
        if not isinstance(item, dict) or not all(
            isinstance(item.get(k), str) and item[k].strip() for k in ("quote", "name")
        ):
            raise EventFileError(f"testimonial {number} needs a quote and a name")
        values["testimonials"].append(
            {
                k: _text(f"testimonial {number} {k}", str(item.get(k, "")), LINE_CONTROLS)
                for k in ("quote", "name", "title")
            }
        )
    return values


def past_editions(session: Session, now: datetime, *, but: int | None = None) -> list[Event]:
    """The events that are over at ``now`` (each in its own time zone), newest first; without
    the event of id ``but``."""
    events = session.execute(select(Event).order_by(Event.starts_on.desc())).scalars()
    return [e for e in events if e.is_over(now) and e.id != but]


def load_event(
    session: Session,
    data: dict[str, Any],
    *,
    payment: PaymentTerms | None = None,
    default_timezone: str = "UTC",
) -> tuple[Event, bool]:
    """Create or update (matched by slug) the event described by ``data``; with no
    ``timezone`` of its own, it is in ``default_timezone``.

    Returns the event and whether it was created. Registrations are never touched. When the
    event is current, every other event stops being current (the last loaded wins).
    """
    values = validate(data, default_timezone=default_timezone)
    try:
        questions = definitions(data.get("questions", []))
        prices = price_definitions(data.get("prices", []), values["currency"])
        program = program_definitions(data.get("program", []))
    except (QuestionError, FeeError, ProgramError) as exc:
        raise EventFileError(str(exc)) from None
    event = session.execute(select(Event).where(Event.slug == values["slug"])).scalar_one_or_none()
    if values["is_current"]:
        session.execute(
            update(Event)
            .where(Event.is_current, Event.slug != values["slug"])
            .values(is_current=False)
        )
    created = event is None
    if created:
        event = Event(**values)
        session.add(event)
        session.flush()
    else:
        lock_event(session, event)
        for key, value in values.items():
            setattr(event, key, value)
    try:
        changed = sync_questions(session, event, questions)
    except QuestionError as exc:
        raise EventFileError(str(exc)) from None
    changed = sync_program(session, event, program) or changed
    if sync_prices(session, event, prices) or changed:
        event.updated_at = utcnow()  # pages that show the questions or prices are made again
    session.flush()
    if not created:
        # A cap raised (or removed) makes room for people on the waiting list.
        promote_waitlisted(session, event, payment=payment)
    return event, created


#: What organizers change on the event settings page (the rest comes from the event file).
SETTINGS_FIELDS = (
    "sessions",
    "faculty",
    "capacity",
    "capacity_by_role",
    "registration_opens_at",
    "registration_closes_at",
    "tagline",
    "description",
    "virtual",
    "virtual_capacity",
    "join_url",
    "max_guests",
    "infants_count",
    "consent_version",
    "highlights_url",
)


def update_settings(
    session: Session,
    event: Event,
    values: dict[str, Any],
    *,
    payment: PaymentTerms | None = None,
) -> dict[str, Any]:
    """Change the event's settings; return {field: [old, new]} of what changed.

    Values are checked as an event file's are (EventFileError says what is wrong, and nothing
    changes). The change is made under the event lock, and a raised or removed cap promotes
    whoever now fits from the waiting list.
    """
    unknown = set(values) - set(SETTINGS_FIELDS)
    if unknown:
        raise EventFileError(f"settings that cannot be changed here: {', '.join(sorted(unknown))}")
    for key in ("sessions", "faculty", "capacity", "virtual_capacity", "max_guests"):
        if key in values:
            _count(values, key, None)
    if values.get("max_guests", 0) > MAX_GUESTS_LIMIT:
        raise EventFileError(f"max_guests may be at most {MAX_GUESTS_LIMIT}")
    for key in ("virtual", "infants_count"):
        if key in values:
            _flag(values, key)
    for key in ("join_url", "highlights_url"):
        _check_web_address(key, values.get(key, ""))
    for key in ("join_url", "consent_version", "highlights_url"):
        if len(values.get(key, "")) > EVENT_MAX_LENGTHS[key]:
            raise EventFileError(f"{key} must be at most {EVENT_MAX_LENGTHS[key]} characters")
    caps = values.get("capacity_by_role", {})
    if not isinstance(caps, dict) or any(role not in ROLES for role in caps):
        raise EventFileError(f"capacity_by_role may only name the roles {', '.join(ROLES)}")
    for role in caps:
        _count(caps, role, None)
    opens = values.get("registration_opens_at", event.registration_opens_at)
    closes = values.get("registration_closes_at", event.registration_closes_at)
    if opens and closes and closes <= opens:
        raise EventFileError("registration_closes_at must be after registration_opens_at")
    if len(values.get("tagline", "")) > EVENT_MAX_LENGTHS["tagline"]:
        raise EventFileError(f"tagline must be at most {EVENT_MAX_LENGTHS['tagline']} characters")
    if "capacity_by_role" in values:
        values = {**values, "capacity_by_role": {r: v for r, v in caps.items() if v is not None}}

    lock_event(session, event)  # also reads the event again, as it is now
    changes = {
        key: [getattr(event, key), value]
        for key, value in values.items()
        if getattr(event, key) != value
    }
    for key, (_old, new) in changes.items():
        setattr(event, key, new)
    if changes:
        event.updated_at = utcnow()
    session.flush()
    promote_waitlisted(session, event, payment=payment)
    return changes
