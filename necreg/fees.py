"""Registration fees: the event's prices (``[[prices]]`` in the event file), the price that
applies to a registrant, and codes that lower it.

A price applies when its conditions match (roles, early career, attendance) and its
``until`` has not passed; the first such price in the event's order wins, and none means
free. A code takes a percentage or an amount off; its uses are counted under a lock of the
code's own row, so a code with one use left cannot be used twice by registrations at the same
moment, from any worker or machine.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from .database import lock_for_update
from .formats import clock_text, toml_moment
from .models import (
    ATTENDANCE,
    ATTENDEE_ROLES,
    CODE_LENGTH_MAX,
    GUEST_ROLE,
    PRICE_NAME_LENGTH,
    Attendee,
    CodeUse,
    DiscountCode,
    Event,
    Payment,
    Price,
    utcnow,
)
from .money import MoneyError, currency_known, format_money, parse_amount, to_minor


class FeeError(ValueError):
    """A price definition or a code that cannot be used; ``str(exc)`` says why."""


@dataclass(frozen=True)
class PriceSpec:
    """A price as the pages and rules need it (plain values, safe to keep)."""

    name: str
    amount: int
    roles: tuple[str, ...] = ()
    early_career: bool | None = None
    attendance: str | None = None
    until: datetime | None = None

    def matches(self, role: str, early_career: bool, attendance: str, now: datetime) -> bool:
        return (
            (not self.roles or role in self.roles)
            and (self.early_career is None or self.early_career == early_career)
            and (self.attendance is None or self.attendance == attendance)
            and (self.until is None or now < self.until)
        )


@dataclass(frozen=True)
class Fee:
    """What a registration owes: the price's name, the amount after any code, the code."""

    price_name: str = ""
    amount: int = 0
    code_id: int | None = None
    #: The code gives a place even when the event or the role is full.
    bypass_caps: bool = False


FREE = Fee()

_PRICE_KEYS = {"name", "amount", "roles", "early_career", "attendance", "until"}


def _until(value: Any, where: str) -> datetime | None:
    try:
        return toml_moment(value)
    except ValueError:
        raise FeeError(f"{where}: until must be a date-time such as 2025-06-01T00:00:00Z") from None


def price_definitions(items: Any, currency: str) -> list[dict[str, Any]]:
    """Check the event file's ``[[prices]]`` (amounts in ``currency``) and return Price column
    values, in order; FeeError says which price and what is wrong."""
    if not isinstance(items, list):
        raise FeeError("prices must be a list of [[prices]] tables")
    if items and not currency_known(currency):
        raise FeeError("prices need the event's currency: an ISO 4217 code such as USD")
    checked = []
    for number, item in enumerate(items, start=1):
        where = f"price {number}"
        if not isinstance(item, dict):
            raise FeeError(f"{where} must be a table")
        unknown = sorted(set(item) - _PRICE_KEYS)
        if unknown:
            raise FeeError(f"{where}: unknown key(s): {', '.join(unknown)}")
        name = item.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > PRICE_NAME_LENGTH:
            raise FeeError(f"{where}: name must be text of 1 to {PRICE_NAME_LENGTH} characters")
        where = f"price {name.strip()!r}"
        try:
            amount = parse_amount(item.get("amount"), currency, what=f"{where}: amount")
        except MoneyError as exc:
            raise FeeError(str(exc)) from None
        roles = item.get("roles", [])
        if not isinstance(roles, list) or any(r not in ATTENDEE_ROLES for r in roles):
            raise FeeError(f"{where}: roles must be a list of {', '.join(ATTENDEE_ROLES)}")
        early = item.get("early_career")
        if early is not None and not isinstance(early, bool):
            raise FeeError(f"{where}: early_career must be true or false")
        attendance = item.get("attendance")
        if attendance is not None and attendance not in ATTENDANCE:
            raise FeeError(f"{where}: attendance must be one of {', '.join(ATTENDANCE)}")
        checked.append(
            {
                "name": name.strip(),
                "amount": to_minor(amount, currency),
                "roles": [r for r in ATTENDEE_ROLES if r in roles],
                "early_career": early,
                "attendance": attendance,
                "until": _until(item.get("until"), where),
            }
        )
    return checked


def sync_prices(session: Session, event: Event, items: Sequence[Mapping[str, Any]]) -> bool:
    """Make the event's prices ``items`` (``price_definitions``), in order; return whether
    they changed. Registrations keep the fee they were given."""
    old = event_prices(session, event.id)
    new = tuple(_spec(item) for item in items)
    if old == new:
        return False
    session.execute(delete(Price).where(Price.event_id == event.id))
    session.add_all(Price(event_id=event.id, position=n, **item) for n, item in enumerate(items))
    session.flush()
    return True


def _spec(values: Mapping[str, Any]) -> PriceSpec:
    return PriceSpec(
        name=values["name"],
        amount=values["amount"],
        roles=tuple(values.get("roles") or ()),
        early_career=values.get("early_career"),
        attendance=values.get("attendance"),
        until=values.get("until"),
    )


def event_prices(session: Session, event_id: int) -> tuple[PriceSpec, ...]:
    """The event's prices in order."""
    rows = session.execute(
        select(Price).where(Price.event_id == event_id).order_by(Price.position, Price.id)
    ).scalars()
    return tuple(_spec({c: getattr(row, c) for c in _PRICE_KEYS}) for row in rows)


def price_for(
    prices: Sequence[PriceSpec], role: str, early_career: bool, attendance: str, now: datetime
) -> PriceSpec | None:
    """The price that applies (None: free)."""
    return next((p for p in prices if p.matches(role, early_career, attendance, now)), None)


def tiers(prices: Sequence[PriceSpec], now: datetime) -> list[PriceSpec]:
    """The prices still offered at ``now``, in order: what the landing page lists."""
    return [p for p in prices if p.until is None or now < p.until]


def offered(prices: Sequence[PriceSpec], now: datetime) -> tuple[bool, ...]:
    """Which prices are still offered at ``now``: a page that shows them is the same while
    this is."""
    return tuple(p.until is None or now < p.until for p in prices)


def companion_fee(prices: Sequence[PriceSpec], attendance: str, now: datetime) -> Fee:
    """What each companion owes: the first price for the ``guest`` role (none: free)."""
    price = price_for(
        [p for p in prices if p.roles], GUEST_ROLE, early_career=False, attendance=attendance,
        now=now,
    )  # fmt: skip
    return Fee(price.name, price.amount) if price else FREE


def prices_json(prices: Sequence[PriceSpec], currency: str) -> str:
    """The prices offered, for the form's script that shows the fee that will apply as the
    registrant chooses (the server decides the fee again when the form is sent)."""
    return json.dumps(
        [
            {
                "name": p.name,
                "amount": format_money(p.amount, currency),
                "roles": list(p.roles),
                "early_career": p.early_career,
                "attendance": p.attendance,
            }
            for p in prices
        ]
    )


def price_terms(price: PriceSpec, zone: tzinfo = UTC) -> str:
    """Whom a price is for and until when, on the clock of ``zone`` (the event's), as the
    pages say it: ``Clinicians, trainees and early-career investigators, in person; until
    June 1, 2025, 00:00 CDT``."""
    who = [ATTENDEE_ROLES[r] + "s" for r in price.roles]
    if price.early_career is True:
        who.append("trainees and early-career investigators")
    elif price.early_career is False:
        who.append("not early career")
    if price.attendance:
        who.append(ATTENDANCE[price.attendance].lower())
    text = ", ".join(who) or "everyone"
    if price.until is not None:
        until = price.until.astimezone(zone)
        text += f"; until {until.strftime('%B %-d, %Y, %H:%M')} {until.tzname() or 'UTC'}"
    return text


# --- codes ------------------------------------------------------------------------------------

CODE_RE = re.compile(r"^[A-Z0-9][A-Z0-9_-]{2,39}$")
#: The most uses a code may be given (far beyond any event).
MAX_CODE_USES = 1_000_000


def normalise_code(text: str) -> str:
    """How a code is stored and compared: trimmed, upper-case."""
    return text.strip().upper()


def create_code(
    session: Session,
    event: Event,
    code: str,
    *,
    percent: int | None = None,
    amount: str | Decimal | None = None,
    max_uses: int | None = None,
    expires_at: datetime | None = None,
    roles: Sequence[str] = (),
    bypass_caps: bool = False,
) -> DiscountCode:
    """Add a code to ``event``: ``percent`` (1 to 100) or ``amount`` (in the event's
    currency) off; with ``bypass_caps``, a place even when full. FeeError says what is
    wrong, and nothing is stored."""
    text = normalise_code(code)
    if not CODE_RE.match(text):
        raise FeeError(
            f"A code has 3 to {CODE_LENGTH_MAX} letters, digits, - and _, e.g. FACULTY25."
        )
    if (percent is None) == (amount is None):
        raise FeeError("Give either a percentage or an amount off, not both.")
    if percent is not None and not 1 <= percent <= 100:
        raise FeeError("The percentage off must be from 1 to 100.")
    minor = None
    if amount is not None:
        if not currency_known(event.currency):
            raise FeeError("An amount off needs the event's currency: set it first.")
        try:
            minor = to_minor(parse_amount(str(amount), event.currency), event.currency)
        except MoneyError as exc:
            raise FeeError(f"The amount off: {exc}") from None
    if max_uses is not None and not 1 <= max_uses <= MAX_CODE_USES:
        raise FeeError(f"A code's use limit must be from 1 to {MAX_CODE_USES:,}.")
    if any(role not in ATTENDEE_ROLES for role in roles):
        raise FeeError(f"A code's roles must be among {', '.join(ATTENDEE_ROLES)}.")
    taken = session.execute(
        select(DiscountCode.id).where(DiscountCode.event_id == event.id, DiscountCode.code == text)
    ).first()
    if taken is not None:
        raise FeeError(f"The code {text} exists already.")
    row = DiscountCode(
        event_id=event.id,
        code=text,
        percent=percent,
        amount=minor,
        max_uses=max_uses,
        expires_at=expires_at,
        roles=[r for r in ATTENDEE_ROLES if r in roles],
        bypass_caps=bypass_caps,
    )
    session.add(row)
    session.flush()
    return row


def code_summary(code: DiscountCode, currency: str, zone: tzinfo = UTC) -> str:
    """What a code does, as the organizer pages and the CLI say it, its end on the clock of
    ``zone`` (the event's): ``100% off, 3 of 10 uses, for Patient-families, until 2025-06-01
    00:00 CDT``."""
    off = (
        f"{code.percent}% off"
        if code.percent is not None
        else (f"{format_money(code.amount or 0, currency)} off")
    )
    parts = [off, f"{code.uses} of {code.max_uses} uses" if code.max_uses else f"{code.uses} uses"]
    if code.roles:
        parts.append("for " + ", ".join(ATTENDEE_ROLES[r] + "s" for r in code.roles))
    if code.expires_at:
        parts.append(f"until {clock_text(code.expires_at, zone)}")
    if code.bypass_caps:
        parts.append("a place even when full")
    return ", ".join(parts)


def discounted(amount: int, code: DiscountCode) -> int:
    """``amount`` (minor units) after ``code``: never below 0, percentages rounded half up."""
    if code.percent is not None:
        kept = Decimal(amount) * (100 - code.percent) / 100
        return int(kept.quantize(Decimal(1), rounding=ROUND_HALF_UP))
    return max(amount - (code.amount or 0), 0)


def find_code(session: Session, event: Event, text: str) -> DiscountCode | None:
    return session.execute(
        select(DiscountCode).where(
            DiscountCode.event_id == event.id, DiscountCode.code == normalise_code(text)
        )
    ).scalar_one_or_none()


def _usable(code: DiscountCode | None, role: str, now: datetime) -> None:
    """FeeError unless ``code`` may be used now by a registrant of ``role``."""
    if code is None:
        raise FeeError("This code is not valid for this event.")
    if code.expires_at is not None and now >= code.expires_at:
        raise FeeError("This code has expired.")
    if code.roles and role not in code.roles:
        raise FeeError("This code is not valid for the role you chose.")
    if code.max_uses is not None and code.uses >= code.max_uses:
        raise FeeError("This code has been used as many times as it may be.")


def fee_for(
    session: Session,
    event: Event,
    prices: Sequence[PriceSpec],
    *,
    role: str,
    early_career: bool,
    attendance: str,
    code: str = "",
    now: datetime | None = None,
) -> Fee:
    """The fee of a registrant, with the code ``code`` (if any) claimed: its row locked until
    the transaction ends, its use counted (``record_code_use`` ties it to the attendee).
    FeeError when the code may not be used; the caller rolls back."""
    now = now or utcnow()
    price = price_for(prices, role, early_career, attendance, now)
    if not code.strip():
        return Fee(price.name, price.amount) if price else FREE
    row = find_code(session, event, code)
    if row is not None:
        lock_for_update(session, row)  # the code's own lock: its uses, as they are now
    _usable(row, role, now)
    assert row is not None
    row.uses += 1
    amount = discounted(price.amount, row) if price else 0
    return Fee(price.name if price else "", amount, row.id, row.bypass_caps)


def record_code_use(session: Session, fee: Fee, attendee_id: int, now: datetime) -> None:
    """Keep which registration used the fee's code."""
    if fee.code_id is not None:
        session.add(CodeUse(code_id=fee.code_id, attendee_id=attendee_id, used_at=now))


def _code_of(session: Session, attendee_id: int) -> DiscountCode | None:
    """The code a registration used, if any."""
    return session.execute(
        select(DiscountCode)
        .join(CodeUse, CodeUse.code_id == DiscountCode.id)
        .where(CodeUse.attendee_id == attendee_id)
    ).scalar_one_or_none()


def reprice(session: Session, attendee: Attendee, companions: Sequence[Attendee] = ()) -> bool:
    """Give ``attendee`` (and its ``companions``) the fee their details call for now that
    they changed (role, early career, attendance): the prices as they were offered when they
    registered, and the code they used if it is still for their role. Return whether any
    fee changed."""
    prices = event_prices(session, attendee.event_id)
    at = attendee.created_at
    price = price_for(prices, attendee.role, attendee.early_career, attendee.attendance, at)
    code = _code_of(session, attendee.id)
    amount = price.amount if price else 0
    if code is not None and (not code.roles or attendee.role in code.roles):
        amount = discounted(amount, code)
    fees = [(attendee, Fee(price.name if price else "", amount))]
    for companion in companions:
        fees.append((companion, companion_fee(prices, companion.attendance, companion.created_at)))
    changed = False
    for person, fee in fees:
        if (person.amount_due, person.price_name) != (fee.amount, fee.price_name):
            person.amount_due, person.price_name = fee.amount, fee.price_name
            changed = True
    return changed


def currency_in_use(session: Session, event: Event) -> bool:
    """Whether amounts are stored in the event's currency (fees owed, codes' amounts off,
    payments): then the currency cannot change, or they would mean other sums."""
    for query in (
        select(Attendee.id).where(Attendee.event_id == event.id, Attendee.amount_due > 0),
        select(DiscountCode.id).where(
            DiscountCode.event_id == event.id, DiscountCode.amount.is_not(None)
        ),
        select(Payment.id).where(Payment.event_id == event.id),
    ):
        if session.execute(query.limit(1)).first() is not None:
            return True
    return False


def update_fees(
    session: Session,
    event: Event,
    currency: str,
    items: Sequence[Mapping[str, Any]],
    *,
    now: datetime | None = None,
) -> bool:
    """Set the event's currency and its prices (``[[prices]]`` tables, checked as the event
    file's are); return whether anything changed. FeeError says what is wrong, and nothing
    changes: an unknown currency, a wrong price, or a new currency while sums are stored in
    the old one."""
    currency = currency.strip().upper()
    if currency and not currency_known(currency):
        raise FeeError("The currency must be an ISO 4217 code such as USD.")
    if currency != event.currency and currency_in_use(session, event):
        raise FeeError(
            "The currency cannot change once fees are owed, codes take amounts off or"
            f" payments are recorded: they are sums in {event.currency}."
        )
    prices = price_definitions(list(items), currency)
    changed = currency != event.currency
    event.currency = currency
    changed = sync_prices(session, event, prices) or changed
    if changed:
        event.updated_at = now or utcnow()  # the pages that show the prices are made again
    return changed
