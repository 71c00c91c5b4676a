"""The program of an event: plenaries, sessions and workshops at their times, with credits;
and sign-ups for the items with places.

The event file's ``[[program]]`` describes the items (``definitions`` checks them,
``sync_program`` makes the event's items match). An item with a ``capacity`` is signed up
for: ``sign_up`` takes a place under that item's own row lock (so sign-ups for one workshop
go one after another on every worker and machine, and sign-ups for different workshops do
not wait for each other), or a place in its own waiting list; a cancelled sign-up, or a
cancelled registration (``leave_program``), gives its place to the longest-waiting person.
Choices that overlap in time are refused with the items named.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .database import lock_for_update
from .formats import toml_moment
from .models import (
    PROGRAM_KINDS,
    PROGRAM_MAX_LENGTHS,
    STATUS_CANCELLED,
    STATUS_CONFIRMED,
    STATUS_WAITLISTED,
    Attendee,
    AttendeeChange,
    Event,
    ProgramAttendance,
    ProgramItem,
    ProgramSignup,
    utcnow,
)

KEY_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
#: Most credits an item may give, in hours.
MAX_CREDITS = Decimal(24)
_ITEM_KEYS = {
    "key",
    "title",
    "kind",
    "starts_at",
    "ends_at",
    "room",
    "capacity",
    "credits",
    "speakers",
}


class ProgramError(ValueError):
    """A program item or a choice of items that is not valid; ``str(exc)`` says which and
    why."""


@dataclass(frozen=True)
class ItemSpec:
    """A program item as the event file describes it, checked."""

    key: str
    title: str
    kind: str
    starts_at: datetime
    ends_at: datetime
    room: str = ""
    capacity: int | None = None
    #: Hundredths of an hour.
    credits: int = 0
    speakers: tuple[str, ...] = field(default_factory=tuple)


def credits_text(hundredths: int) -> str:
    """Credit hours as people write them: ``1.5``, ``2``, ``0.25``."""
    hours = Decimal(hundredths) / 100
    return f"{hours.normalize():f}"


def _credits(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ProgramError(f"{where}: credits must be a number of hours such as 1.5")
    try:
        hours = Decimal(str(value))
    except InvalidOperation:
        raise ProgramError(f"{where}: credits must be a number of hours such as 1.5") from None
    if not hours.is_finite() or hours < 0 or hours > MAX_CREDITS:
        raise ProgramError(f"{where}: credits must be from 0 to {MAX_CREDITS} hours")
    hundredths = hours * 100
    if hundredths != hundredths.to_integral_value():
        raise ProgramError(f"{where}: credits have at most 2 decimals, e.g. 1.25")
    return int(hundredths)


def _moment(item: dict[str, Any], key: str, where: str) -> datetime:
    value = item.get(key)
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise ProgramError(
            f"{where}: {key} must be a date-time with its offset, e.g. 2025-09-08T09:00:00-05:00"
        )
    moment = toml_moment(value)
    assert moment is not None
    return moment


def definitions(items: Any) -> list[ItemSpec]:
    """Check the event file's ``[[program]]``; ProgramError names the item and the problem."""
    if not isinstance(items, list):
        raise ProgramError("program must be a list of [[program]] tables")
    specs: list[ItemSpec] = []
    for number, item in enumerate(items, start=1):
        where = f"program item {number}"
        if not isinstance(item, dict):
            raise ProgramError(f"{where} must be a table")
        unknown = sorted(set(item) - _ITEM_KEYS)
        if unknown:
            raise ProgramError(f"{where}: unknown key(s): {', '.join(unknown)}")
        key = item.get("key")
        if not isinstance(key, str) or not KEY_RE.match(key):
            raise ProgramError(f"{where}: key must be 1 to 40 lower-case letters, digits, - and _")
        where = f"program item {key!r}"
        title = item.get("title")
        if not isinstance(title, str) or not title.strip():
            raise ProgramError(f"{where}: title is required")
        if len(title.strip()) > PROGRAM_MAX_LENGTHS["title"]:
            raise ProgramError(
                f"{where}: title is at most {PROGRAM_MAX_LENGTHS['title']} characters"
            )
        kind = item.get("kind", "session")
        if kind not in PROGRAM_KINDS:
            raise ProgramError(f"{where}: kind must be one of {', '.join(PROGRAM_KINDS)}")
        starts_at, ends_at = _moment(item, "starts_at", where), _moment(item, "ends_at", where)
        if ends_at <= starts_at:
            raise ProgramError(f"{where}: ends_at must be after starts_at")
        room = item.get("room", "")
        if not isinstance(room, str) or len(room.strip()) > PROGRAM_MAX_LENGTHS["room"]:
            raise ProgramError(
                f"{where}: room is text of at most {PROGRAM_MAX_LENGTHS['room']} characters"
            )
        capacity = item.get("capacity")
        if capacity is not None and (
            isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1
        ):
            raise ProgramError(f"{where}: capacity must be a whole number of 1 or more")
        speakers = item.get("speakers", [])
        if not isinstance(speakers, list) or not all(
            isinstance(s, str) and s.strip() for s in speakers
        ):
            raise ProgramError(f"{where}: speakers must be a list of names")
        specs.append(
            ItemSpec(
                key=key,
                title=title.strip(),
                kind=kind,
                starts_at=starts_at,
                ends_at=ends_at,
                room=room.strip(),
                capacity=capacity,
                credits=_credits(item.get("credits", 0), where),
                speakers=tuple(s.strip() for s in speakers),
            )
        )
    keys = [spec.key for spec in specs]
    repeated = sorted({k for k in keys if keys.count(k) > 1})
    if repeated:
        raise ProgramError(f"program item keys are used twice: {', '.join(repeated)}")
    return specs


def event_program(session: Session, event_id: int, *, retired: bool = False) -> list[ProgramItem]:
    """The event's program items in time order (and retired ones with ``retired``)."""
    query = select(ProgramItem).where(ProgramItem.event_id == event_id)
    if not retired:
        query = query.where(ProgramItem.retired_at.is_(None))
    return list(session.execute(query.order_by(ProgramItem.starts_at, ProgramItem.key)).scalars())


def program_specs(session: Session, event_id: int) -> tuple[ItemSpec, ...]:
    """The event's program (not retired) as plain values, in time order: what pages keep."""
    return tuple(
        ItemSpec(
            key=item.key,
            title=item.title,
            kind=item.kind,
            starts_at=item.starts_at,
            ends_at=item.ends_at,
            room=item.room,
            capacity=item.capacity,
            credits=item.credits,
            speakers=tuple(item.speakers),
        )
        for item in event_program(session, event_id)
    )


def agenda_days(specs: Sequence[ItemSpec], zone: tzinfo) -> list[tuple[date, list[ItemSpec]]]:
    """The items grouped by their day in ``zone``, days and items in time order."""
    days: dict[date, list[ItemSpec]] = {}
    for spec in sorted(specs, key=lambda s: (s.starts_at, s.key)):
        days.setdefault(spec.starts_at.astimezone(zone).date(), []).append(spec)
    return list(days.items())


def check_choices(specs: Sequence[ItemSpec], keys: Sequence[str]) -> list[ItemSpec]:
    """The items with places of ``keys``, checked: known, with places, not at the same time.
    ProgramError otherwise (what a form says at its program field)."""
    offered = {spec.key: spec for spec in specs}
    chosen = []
    for key in dict.fromkeys(keys):
        spec = offered.get(key)
        if spec is None or spec.capacity is None:
            raise ProgramError(f"There is no program item {key!r} to sign up for.")
        chosen.append(spec)
    clash = overlapping(chosen)
    if clash is not None:
        first, second = clash
        raise ProgramError(
            f"{first.title} and {second.title} are at the same time: choose one of them."
        )
    return chosen


def _columns(spec: ItemSpec) -> dict[str, Any]:
    """The ProgramItem columns of ``spec`` (its key aside), as an item in the program."""
    return {
        "title": spec.title,
        "kind": spec.kind,
        "starts_at": spec.starts_at,
        "ends_at": spec.ends_at,
        "room": spec.room,
        "capacity": spec.capacity,
        "credits": spec.credits,
        "speakers": list(spec.speakers),
        "retired_at": None,
    }


def sync_program(session: Session, event: Event, specs: Sequence[ItemSpec]) -> bool:
    """Make the event's items those of ``specs`` (matched by key); an item no longer there is
    deleted, or retired if people signed up for it. Returns whether anything changed. The
    caller holds the event lock; places freed by a raised capacity go to those waiting."""
    existing = {item.key: item for item in event_program(session, event.id, retired=True)}
    changed = False
    now = utcnow()
    for spec in specs:
        item = existing.pop(spec.key, None)
        values = _columns(spec)
        if item is None:
            session.add(ProgramItem(event_id=event.id, key=spec.key, **values))
            changed = True
            continue
        if any(getattr(item, name) != value for name, value in values.items()):
            for name, value in values.items():
                setattr(item, name, value)
            changed = True
    for item in existing.values():
        if item.retired_at is not None:
            continue
        signed = session.execute(
            select(func.count(ProgramSignup.id)).where(ProgramSignup.item_id == item.id)
        ).scalar_one()
        if signed:
            item.retired_at = now
        else:
            session.delete(item)
        changed = True
    session.flush()
    for item in event_program(session, event.id):
        if item.signs_up:
            _promote(session, item, now)
    return changed


def overlapping(items: Sequence[Any]) -> tuple[Any, Any] | None:
    """Two of ``items`` (ProgramItem or ItemSpec) whose times overlap (the first pair in time
    order), or None."""
    ordered = sorted(items, key=lambda item: (item.starts_at, item.key))
    for earlier, later in zip(ordered, ordered[1:], strict=False):
        if later.starts_at < earlier.ends_at:
            return earlier, later
    return None


def signups_of(session: Session, attendee_id: int) -> list[tuple[ProgramItem, ProgramSignup]]:
    """The attendee's sign-ups that are not cancelled, with their items, in time order."""
    rows = session.execute(
        select(ProgramItem, ProgramSignup)
        .join(ProgramSignup, ProgramSignup.item_id == ProgramItem.id)
        .where(ProgramSignup.attendee_id == attendee_id, ProgramSignup.status != STATUS_CANCELLED)
        .order_by(ProgramItem.starts_at, ProgramItem.key)
    ).all()
    return [(item, signup) for item, signup in rows]


def waitlist_position(session: Session, signup: ProgramSignup) -> int | None:
    """1 + the sign-ups waiting for the same item before this one (None unless waiting)."""
    if signup.status != STATUS_WAITLISTED:
        return None
    ahead = session.execute(
        select(func.count(ProgramSignup.id)).where(
            ProgramSignup.item_id == signup.item_id,
            ProgramSignup.status == STATUS_WAITLISTED,
            (ProgramSignup.created_at < signup.created_at)
            | ((ProgramSignup.created_at == signup.created_at) & (ProgramSignup.id < signup.id)),
        )
    ).scalar_one()
    return ahead + 1


def _taken(session: Session, item: ProgramItem) -> int:
    return session.execute(
        select(func.count(ProgramSignup.id)).where(
            ProgramSignup.item_id == item.id, ProgramSignup.status == STATUS_CONFIRMED
        )
    ).scalar_one()


def _audit(session: Session, attendee_id: int, action: str, changes: dict, now: datetime) -> None:
    session.add(
        AttendeeChange(attendee_id=attendee_id, action=action, changes=changes, changed_at=now)
    )


def choose(
    session: Session,
    attendee: Attendee,
    keys: Sequence[str],
    *,
    now: datetime | None = None,
) -> dict[str, str]:
    """Make ``attendee``'s sign-ups those of the items ``keys`` (items with places of its
    event): new ones confirmed if the item has room, else waitlisted; ones no longer chosen
    cancelled, their places going to whoever waits. Returns {key: status} of the changes.
    ProgramError for an unknown item, one without sign-up, or two that overlap (nothing
    changed)."""
    now = now or utcnow()
    if attendee.status == STATUS_CANCELLED:
        raise ProgramError("A cancelled registration cannot sign up for the program.")
    items = {item.key: item for item in event_program(session, attendee.event_id)}
    specs = program_specs(session, attendee.event_id)
    wanted = [items[spec.key] for spec in check_choices(specs, keys)]
    current = {item.key: signup for item, signup in signups_of(session, attendee.id)}
    changes: dict[str, str] = {}
    # Item rows are locked in key order, whoever asks: no two sign-ups wait for each other
    # in a cycle.
    for item in sorted(wanted, key=lambda item: item.key):
        if item.key not in current:
            changes[item.key] = _take(session, item, attendee.id, now)
    for key, signup in sorted(current.items()):
        if key not in {item.key for item in wanted}:
            _leave(session, items.get(key) or session.get(ProgramItem, signup.item_id), signup, now)
            changes[key] = STATUS_CANCELLED
    if changes:
        _audit(session, attendee.id, "program", {k: [None, v] for k, v in changes.items()}, now)
    session.flush()
    return changes


def _take(session: Session, item: ProgramItem, attendee_id: int, now: datetime) -> str:
    """Sign ``attendee_id`` up for ``item`` under the item's lock: a place or the line."""
    lock_for_update(session, item)
    status = STATUS_CONFIRMED if _taken(session, item) < (item.capacity or 0) else STATUS_WAITLISTED
    signup = session.execute(
        select(ProgramSignup).where(
            ProgramSignup.item_id == item.id, ProgramSignup.attendee_id == attendee_id
        )
    ).scalar_one_or_none()
    if signup is None:
        session.add(
            ProgramSignup(
                item_id=item.id,
                attendee_id=attendee_id,
                status=status,
                created_at=now,
                updated_at=now,
            )
        )
    else:  # signed up again after leaving: at the back of the line
        signup.status, signup.created_at, signup.updated_at = status, now, now
    session.flush()
    return status


def _leave(session: Session, item: ProgramItem, signup: ProgramSignup, now: datetime) -> None:
    lock_for_update(session, item)
    session.refresh(signup)
    held = signup.status == STATUS_CONFIRMED
    signup.status, signup.updated_at = STATUS_CANCELLED, now
    session.flush()
    if held:
        _promote(session, item, now)


def _promote(session: Session, item: ProgramItem, now: datetime) -> list[int]:
    """Give the item's free places to the longest-waiting sign-ups; their attendee ids.
    The caller holds the item's lock (or the event's, when the program changes)."""
    free = (item.capacity or 0) - _taken(session, item)
    if free <= 0:
        return []
    waiting = list(
        session.execute(
            select(ProgramSignup)
            .where(ProgramSignup.item_id == item.id, ProgramSignup.status == STATUS_WAITLISTED)
            .order_by(ProgramSignup.created_at, ProgramSignup.id)
            .limit(free)
        ).scalars()
    )
    for signup in waiting:
        signup.status, signup.updated_at = STATUS_CONFIRMED, now
        _audit(
            session,
            signup.attendee_id,
            "program",
            {item.key: [STATUS_WAITLISTED, STATUS_CONFIRMED]},
            now,
        )
    session.flush()
    return [signup.attendee_id for signup in waiting]


def leave_program(session: Session, attendee: Attendee, *, now: datetime | None = None) -> None:
    """A cancelled registration leaves every item it signed up for; their places go to
    whoever waits."""
    now = now or utcnow()
    for item, signup in sorted(signups_of(session, attendee.id), key=lambda pair: pair[0].key):
        _leave(session, item, signup, now)


# --- Admins edit the program (/organizer/program) ----------------------------------------------


def item_from_form(values: dict[str, Any], zone: tzinfo) -> ItemSpec:
    """An item from the organizer's form: times as the site's clock reads them (``zone``),
    credits as text, speakers one per line. ProgramError says what is wrong."""
    raw: dict[str, Any] = {
        "key": (values.get("key") or "").strip(),
        "title": values.get("title") or "",
        "kind": values.get("kind") or "session",
        "room": values.get("room") or "",
        "credits": (values.get("credits") or "0").strip() or "0",
        "speakers": [s.strip() for s in (values.get("speakers") or "").splitlines() if s.strip()],
    }
    capacity = (values.get("capacity") or "").strip()
    if capacity:
        if not capacity.isdigit():
            raise ProgramError("Places must be a whole number, or empty for no sign-up.")
        raw["capacity"] = int(capacity)
    for name in ("starts_at", "ends_at"):
        text = (values.get(name) or "").strip()
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            label = "start" if name == "starts_at" else "end"
            raise ProgramError(
                f"The {label} must be a date and time, e.g. 2025-09-08 09:00."
            ) from None
        raw[name] = moment.replace(tzinfo=zone) if moment.tzinfo is None else moment
    return definitions([raw])[0]


def save_item(
    session: Session, event: Event, spec: ItemSpec, *, new: bool, now: datetime | None = None
) -> ProgramItem:
    """Add ``spec`` to the event's program (``new``) or change the item of its key; a place
    freed by a raised capacity goes to whoever waits. The caller holds the event lock."""
    now = now or utcnow()
    items = {item.key: item for item in event_program(session, event.id, retired=True)}
    item = items.get(spec.key)
    if new and item is not None:
        raise ProgramError(f"There is already an item {spec.key!r}: choose another key.")
    if not new and item is None:
        raise ProgramError(f"There is no program item {spec.key!r}.")
    if item is not None and spec.capacity is None and item.capacity is not None:
        signed = session.execute(
            select(func.count(ProgramSignup.id)).where(
                ProgramSignup.item_id == item.id, ProgramSignup.status != STATUS_CANCELLED
            )
        ).scalar_one()
        if signed:
            raise ProgramError("People signed up for it: its places cannot be taken away.")
    values = _columns(spec)
    if item is None:
        item = ProgramItem(event_id=event.id, key=spec.key, **values)
        session.add(item)
    else:
        for name, value in values.items():
            setattr(item, name, value)
    event.updated_at = now  # every page that shows the program is made again
    session.flush()
    if item.signs_up:
        lock_for_update(session, item)
        _promote(session, item, now)
    return item


def remove_item(session: Session, event: Event, key: str, *, now: datetime | None = None) -> str:
    """Take an item out of the program: deleted, or retired (its sign-ups and check-ins
    kept) when people signed up or came. Returns "deleted" or "retired"."""
    now = now or utcnow()
    item = next((i for i in event_program(session, event.id) if i.key == key), None)
    if item is None:
        raise ProgramError(f"There is no program item {key!r}.")
    used = (
        session.execute(
            select(func.count(ProgramSignup.id)).where(ProgramSignup.item_id == item.id)
        ).scalar_one()
        or session.execute(
            select(func.count(ProgramAttendance.id)).where(ProgramAttendance.item_id == item.id)
        ).scalar_one()
    )
    event.updated_at = now
    if used:
        item.retired_at = now
        session.flush()
        return "retired"
    session.delete(item)
    session.flush()
    return "deleted"
