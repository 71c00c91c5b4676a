"""Values as people type them and as files and JSON carry them, each read or written in one
place: e-mail addresses, yes/no answers, timestamps, and control and invisible characters in
text."""

from __future__ import annotations

import contextlib
import unicodedata
from datetime import UTC, date, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import ColumnElement, func

#: Control characters a text of several lines may hold: line breaks and tabs.
LINE_CONTROLS = "\n\r\t"
#: Unicode categories refused in every text people type: control characters (Cc: NUL, escape,
#: line breaks where one line is asked for) and format characters (Cf: the bidi overrides
#: U+202A-202E and isolates U+2066-2069 that show a text in another order than it is stored,
#: the zero-width U+200B-200D and U+FEFF that make two names look alike, the soft hyphen).
REFUSED_CATEGORIES = frozenset({"Cc", "Cf"})


def has_control_characters(text: str, allowed: str = "") -> bool:
    """Whether ``text`` holds a control or format character (REFUSED_CATEGORIES) not in
    ``allowed``."""
    return any(unicodedata.category(ch) in REFUSED_CATEGORIES and ch not in allowed for ch in text)


def nfc(text: str) -> str:
    """``text`` in Unicode's composed form (NFC): an "é" typed as e + accent is stored as the
    one letter, so that it is found, compared and counted as the same name."""
    return unicodedata.normalize("NFC", text)


class InvalidEmail(ValueError):
    """An address that cannot be an e-mail address; ``str(exc)`` says why, for the person, and
    ``reason`` is what email-validator found."""

    def __init__(self, reason: str):
        super().__init__(f"This e-mail address does not look right: {reason}")
        self.reason = reason


def normalise_email(address: str, *, check_deliverability: bool = False) -> str:
    """The address as email-validator normalises it (e.g. the domain in lower case).

    ``check_deliverability`` asks DNS whether the domain takes mail (setting
    EMAIL_CHECK_DELIVERABILITY for registrations). Raises InvalidEmail.
    """
    try:
        checked = validate_email(address.strip(), check_deliverability=check_deliverability)
    except EmailNotValidError as exc:
        raise InvalidEmail(str(exc)) from None
    return checked.normalized


def email_key(address: str) -> str:
    """What two addresses are compared by: letter case and surrounding spaces do not count (as
    the unique indexes on ``lower(email)`` say)."""
    return address.strip().lower()


def email_limit_key(address: str) -> str:
    """What rate limits count an address by: its normalised form (as ``normalise_email`` would
    deliver to it, e.g. a full-width domain in ASCII) in compatibility form (NFKC) and case
    folded, so that no other spelling of one mailbox gets a count of its own. Never raises:
    what is not an address is keyed as it is, folded the same way."""
    with contextlib.suppress(InvalidEmail, ValueError):
        address = normalise_email(address)
    return unicodedata.normalize("NFKC", address).strip().casefold()


def same_email(column: Any, address: str) -> ColumnElement[bool]:
    """SQL: the address in ``column`` is ``address`` (compared by ``email_key``)."""
    return func.lower(column) == email_key(address)


YES = frozenset({"yes", "y", "true", "1", "on"})
NO = frozenset({"no", "n", "false", "0", "off"})


def parse_yes_no(raw: str | None, *, default: bool | None = None) -> bool | None:
    """``yes``/``true``/``1``/``on`` (and ``y``) as True, their opposites as False, in any
    letter case; empty or missing as ``default``. Raises ValueError for anything else."""
    value = (raw or "").strip().lower()
    if not value:
        return default
    if value in YES:
        return True
    if value in NO:
        return False
    raise ValueError(f"{raw!r} is neither yes nor no")


def is_yes(raw: str | None) -> bool:
    """A flag in a query string: on only when it says yes (anything else is off)."""
    return (raw or "").strip().lower() in YES


def json_timestamp(moment: datetime) -> str:
    """A moment as JSON gives it: UTC to the second, ``2026-11-23T19:40:00Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def toml_moment(value: Any) -> datetime | None:
    """A moment written in an event file (TOML): a date-time (UTC unless it has an offset) or
    a date (its midnight, UTC); None for None; ValueError for anything else."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    raise ValueError(f"not a date-time: {value!r}")


def moment_text(moment: datetime, zone: tzinfo = UTC) -> str:
    """A moment as people read it in messages and pages, on the clock of ``zone`` (the
    event's), e.g. "December 01, 2026 at 08:05 CST"."""
    local = moment.astimezone(zone)
    return local.strftime("%B %d, %Y at %H:%M ") + (local.tzname() or "UTC")


def time_zone(name: str) -> tzinfo | None:
    """The time zone named ``name`` (IANA, e.g. America/Chicago, or UTC); None if there is
    none of that name."""
    if name.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def zone_name(zone: tzinfo) -> str:
    """The name a form or a page gives ``zone``: its IANA key (America/Chicago), else UTC."""
    return getattr(zone, "key", None) or "UTC"


def clock_text(moment: datetime, zone: tzinfo = UTC, *, seconds: bool = False) -> str:
    """A moment in a table of organizers' pages, on the clock of ``zone`` with the zone's
    abbreviation: "2025-09-07 09:12 CDT" (``seconds``: "09:12:05")."""
    local = moment.astimezone(zone)
    return local.strftime("%Y-%m-%d %H:%M:%S " if seconds else "%Y-%m-%d %H:%M ") + (
        local.tzname() or "UTC"
    )


def local_input(moment: datetime | None, zone: tzinfo) -> str:
    """``moment`` as an ``<input type="datetime-local">`` shows it: the wall clock of ``zone``
    (``2025-03-01T00:00``); empty for None."""
    return moment.astimezone(zone).strftime("%Y-%m-%dT%H:%M") if moment is not None else ""


def local_moment(wall: datetime, zone: tzinfo) -> datetime:
    """The UTC moment at which a clock in ``zone`` reads ``wall`` (a naive date and time, as a
    form sends it). An aware ``wall`` is only converted.

    When the clocks go back, a time of the hour that comes twice is taken as the first of the
    two (still on summer time): the settings form says so. When they go forward, the times
    skipped never happen: ValueError, with a message for the person who typed one.
    """
    if wall.tzinfo is not None:
        return wall.astimezone(UTC)
    first = wall.replace(tzinfo=zone, fold=0)
    if first.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != wall:
        after = wall.replace(tzinfo=zone, fold=1)
        raise ValueError(
            f"{wall:%H:%M} on {wall:%B %d, %Y} does not happen in {zone_name(zone)}: the clocks"
            f" go forward that night, from {first.tzname()} to {after.tzname()}. Please choose"
            " another time."
        )
    return first.astimezone(UTC)
