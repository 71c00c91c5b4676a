"""Domain operations on registrations. They take a session and plain values, never ``request``,
flush but do not commit: the caller (a view, a CLI command, a test) commits once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from .database import wait_for_write_turn
from .folding import SEARCHED_FIELDS, search_text
from .mail import outbox
from .models import (
    ROLES,
    STATUS_CANCELLED,
    STATUS_CONFIRMED,
    STATUS_WAITLISTED,
    Attendee,
    AttendeeChange,
    Event,
    RoleCount,
    new_code,
    new_token,
    utcnow,
)


class RegistrationError(Exception):
    """A registration the rules refuse. ``str(exc)`` is a message for the registrant."""


class RegistrationClosed(RegistrationError):
    pass


class DuplicateRegistration(RegistrationError):
    pass


class NoRoom(RegistrationError):
    """A change would put a role or the event over its cap."""


class AlreadyCancelled(RegistrationError):
    pass


#: Fields a registrant may correct themselves; organizers may also change ``email``.
EDITABLE_FIELDS = (
    "first_name",
    "last_name",
    "role",
    "institution",
    "country",
    "early_career",
    "badge_name",
)


@dataclass(frozen=True)
class Registrant:
    """What a person gives when they register, already validated and normalised."""

    first_name: str
    last_name: str
    email: str
    role: str
    country: str
    institution: str = ""
    early_career: bool = False
    badge_name: str = ""


#: Statements of the registration path, built once (building one costs about as much as
#: running it on SQLite).
_CURRENT_EVENT = select(Event).where(Event.is_current)
_events = Event.__table__
_LOCK_POSTGRESQL = select(_events).where(_events.c.id == bindparam("event")).with_for_update()
# Not "SET id = id": writing the key makes SQLite check every row that refers to it;
# updated_at kept as it is, or its onupdate would stamp it.
_LOCK_SQLITE = (
    _events.update()
    .where(_events.c.id == bindparam("event"))
    .values(counts_version=_events.c.counts_version, updated_at=_events.c.updated_at)
)
_LOCK_SQLITE_RETURNING = _LOCK_SQLITE.returning(*_events.c)


def current_event(session: Session) -> Event | None:
    return session.execute(_CURRENT_EVENT).scalar_one_or_none()


def lock_event(session: Session, event: Event) -> None:
    """Take the event's registration lock until the transaction ends, and read the event again.

    PostgreSQL: ``SELECT ... FOR UPDATE`` on the event row, so concurrent registrations for
    the same event, from any worker or machine, count and insert one after another.
    SQLite: a no-op UPDATE of the row, which makes this transaction the database's single
    writer before it counts (a plain SELECT would not start the write transaction); the
    writers wait for it in line (database.wait_for_write_turn).
    The statement that locks also returns the row as it is now (``FOR UPDATE`` gives the
    newest version once the lock is granted; SQLite's UPDATE ... RETURNING), and ``event``
    takes its values, so caps read before the lock give way to the ones in force: one round
    trip instead of a lock and then a refresh.
    """
    dialect = session.get_bind().dialect
    if dialect.name == "postgresql":
        statement = _LOCK_POSTGRESQL
    else:
        wait_for_write_turn(session)
        if not dialect.update_returning:  # SQLite before 3.35
            session.execute(_LOCK_SQLITE, {"event": event.id})
            session.refresh(event)
            return
        statement = _LOCK_SQLITE_RETURNING
    row = session.execute(statement, {"event": event.id}).one()._mapping
    for prop in Event.__mapper__.column_attrs:
        set_committed_value(event, prop.key, row[prop.columns[0]])


def email_taken(session: Session, event: Event, email: str) -> bool:
    return (
        session.execute(
            select(Attendee.id).where(
                Attendee.event_id == event.id,
                func.lower(Attendee.email) == email.lower(),
                Attendee.status != STATUS_CANCELLED,
            )
        ).first()
        is not None
    )


_role_counts = RoleCount.__table__
_ROLE_COUNTS = select(_role_counts.c.role, _role_counts.c.active).where(
    _role_counts.c.event_id == bindparam("event")
)


def _active_counts(session: Session, event: Event) -> dict[str, int]:
    """Confirmed attendees per role (every role present), read from the trigger-kept counters:
    exact in this transaction, and a few rows however many registrations there are.

    The same read as ``stats.role_counts``, with its statement built once: it runs while the
    event lock is held, which every registration waits for.
    """
    counts = dict.fromkeys(ROLES, 0)
    counts.update(session.execute(_ROLE_COUNTS, {"event": event.id}).all())
    return counts


def _has_room(event: Event, counts: dict[str, int], role: str) -> bool:
    if event.capacity is not None and sum(counts.values()) >= event.capacity:
        return False
    role_cap = (event.capacity_by_role or {}).get(role)
    return role_cap is None or counts.get(role, 0) < role_cap


@dataclass(frozen=True)
class Room:
    """Free places of an event: in total and per role (None: unlimited)."""

    places_left: int | None
    by_role: dict[str, int | None]

    @property
    def full_roles(self) -> list[str]:
        """Roles whose new registrations would join the waiting list, in ROLES order."""
        return [role for role in ROLES if self.by_role[role] == 0]


def room_left(session: Session, event: Event) -> Room:
    """How many more registrations would be confirmed now (a snapshot, without the lock)."""
    counts = _active_counts(session, event)
    total = None if event.capacity is None else max(event.capacity - sum(counts.values()), 0)
    by_role: dict[str, int | None] = {}
    for role in ROLES:
        cap = (event.capacity_by_role or {}).get(role)
        left = None if cap is None else max(cap - counts.get(role, 0), 0)
        if total is not None:
            left = total if left is None else min(left, total)
        by_role[role] = left
    return Room(places_left=total, by_role=by_role)


def register(
    session: Session,
    event: Event,
    person: Registrant,
    *,
    code_prefix: str,
    now: datetime | None = None,
) -> Attendee:
    """Register ``person`` for ``event``: confirmed if there is room, else waitlisted.

    Raises RegistrationClosed outside the registration window and DuplicateRegistration when
    the e-mail already holds a registration that is not cancelled. Queues the confirmation or
    the waiting-list notice in the same transaction.
    """
    now = now or utcnow()
    if person.role not in ROLES:
        raise ValueError(f"unknown role {person.role!r}")
    if not event.registration_open(now):
        raise RegistrationClosed(f"Registration for {event.name} is closed.")

    attendee = Attendee(
        event_id=event.id,
        code=new_code(code_prefix),
        token=new_token(),
        status=STATUS_CONFIRMED,
        role=person.role,
        first_name=person.first_name,
        last_name=person.last_name,
        email=person.email,
        institution=person.institution,
        country=person.country,
        early_career=person.early_career,
        badge_name=person.badge_name or f"{person.first_name} {person.last_name}"[:100],
        consent_at=now,
        created_at=now,
        updated_at=now,
        cancelled_at=None,
        checked_in_at=None,
    )
    # What does not depend on the counts is made before the lock is taken, so that the lock,
    # which every registration waits for, is held the shorter: the search text, and the
    # message as a confirmation (most registrations are; a waiting one, or one whose code
    # turns out to be taken, is rendered again).
    attendee.search_text = _search_text(attendee)
    rendered = attendee.code
    message = outbox.status_message(event, attendee, None, now=now)

    lock_event(session, event)
    if not _has_room(event, _active_counts(session, event), person.role):
        attendee.status = STATUS_WAITLISTED
    _insert_attendee(session, event, attendee, code_prefix)
    if attendee.status != STATUS_CONFIRMED or attendee.code != rendered:
        position = waitlist_position(session, attendee)
        message = outbox.status_message(event, attendee, position, now=now)
    outbox.queue_rendered(session, {**message, "attendee_id": attendee.id})
    return attendee


#: How many codes to draw before giving up: with a million codes in use, ten draws in a row
#: that are all taken happen about once in 10**29 registrations.
CODE_TRIES = 10


def _insert_attendee(session: Session, event: Event, attendee: Attendee, code_prefix: str) -> None:
    """Insert a new registration, drawing another code while its code is taken, and make
    ``attendee`` persistent in the session as it was written (nothing to load back).

    One statement checks and inserts: ``INSERT ... ON CONFLICT DO NOTHING RETURNING id``
    skips the row, without an error (which would end a PostgreSQL transaction), when it would
    break a unique index: the code, or the e-mail among the event's registrations that are
    not cancelled. Only then is a second look needed: a taken e-mail is a duplicate, anything
    else was a taken code. Raises DuplicateRegistration.
    """
    dialect = session.get_bind().dialect
    statement = _INSERT_IF_NEW[dialect.name]
    if dialect.insert_returning:
        statement = _INSERT_IF_NEW_RETURNING[dialect.name]
    for attempt in range(CODE_TRIES):
        if attempt:
            attendee.code = new_code(code_prefix)
            attendee.search_text = _search_text(attendee)
        row = {column.key: getattr(attendee, column.key) for column in _INSERTED}
        result = session.execute(statement, row)
        if dialect.insert_returning:
            attendee_id = result.scalar_one_or_none()
        else:  # SQLite before 3.35
            attendee_id = result.lastrowid if result.rowcount == 1 else None
        if attendee_id is not None:
            attendee.id = attendee_id
            make_transient_to_detached(attendee)
            session.add(attendee)
            return
        if email_taken(session, event, attendee.email):
            raise DuplicateRegistration(duplicate_message(event))
    raise RuntimeError(f"could not find an unused attendee code in {CODE_TRIES} tries")


def _search_text(attendee: Attendee) -> str:
    return search_text({name: getattr(attendee, name) for name in SEARCHED_FIELDS})


_attendees = Attendee.__table__
_INSERTED = [column for column in _attendees.c if column.key != "id"]
#: INSERT statements that skip a row which would break a unique index, instead of failing.
_INSERT_IF_NEW = {
    "postgresql": postgresql.insert(_attendees).on_conflict_do_nothing(),
    "sqlite": sqlite.insert(_attendees).on_conflict_do_nothing(),
}
_INSERT_IF_NEW_RETURNING = {
    name: statement.returning(_attendees.c.id) for name, statement in _INSERT_IF_NEW.items()
}


def duplicate_message(event: Event) -> str:
    return (
        f"This e-mail address is already registered for {event.name}. "
        "Use the link in your confirmation to see or change your registration."
    )


def waitlist_position(session: Session, attendee: Attendee) -> int | None:
    """1 + the number of waitlisted registrations of the event that came before it."""
    if attendee.status != STATUS_WAITLISTED:
        return None
    ahead = session.execute(
        select(func.count()).where(
            Attendee.event_id == attendee.event_id,
            Attendee.status == STATUS_WAITLISTED,
            (Attendee.created_at < attendee.created_at)
            | ((Attendee.created_at == attendee.created_at) & (Attendee.id < attendee.id)),
        )
    ).scalar_one()
    return ahead + 1


def resend_links(session: Session, event: Event, email: str, *, now: datetime | None = None) -> int:
    """Queue the self-service links of ``email``'s registrations for ``event``; return how
    many registrations were found. The caller must not tell the visitor the number."""
    found = list(
        session.execute(
            select(Attendee)
            .where(Attendee.event_id == event.id, func.lower(Attendee.email) == email.lower())
            .order_by(Attendee.created_at.desc(), Attendee.id.desc())
            .limit(5)
        ).scalars()
    )
    if found:
        outbox.queue_links(session, event, found[0].email, found, now=now)
        session.flush()
    return len(found)


def find_by_token(session: Session, token: str) -> Attendee | None:
    if not token or len(token) > 64:
        return None
    return session.execute(select(Attendee).where(Attendee.token == token)).scalar_one_or_none()


def record_change(
    session: Session,
    attendee: Attendee,
    action: str,
    changes: dict[str, list[Any]] | None = None,
    *,
    organizer_id: int | None = None,
    now: datetime | None = None,
) -> AttendeeChange:
    """Add an entry to the attendee's audit trail."""
    entry = AttendeeChange(
        attendee_id=attendee.id,
        organizer_id=organizer_id,
        action=action,
        changes=changes or {},
        changed_at=now or utcnow(),
    )
    session.add(entry)
    return entry


def promote_waitlisted(
    session: Session, event: Event, *, now: datetime | None = None
) -> list[Attendee]:
    """Confirm the longest-waiting registrations that now fit, in order; return them.

    The caller holds the event lock (every function here that frees a place takes it). A
    waiting person whose role is still full is passed over, so someone of another role
    behind them can take a free place: the room is for whoever fits first.
    """
    now = now or utcnow()
    counts = _active_counts(session, event)
    promoted: list[Attendee] = []
    waiting = session.execute(
        select(Attendee)
        .where(Attendee.event_id == event.id, Attendee.status == STATUS_WAITLISTED)
        .order_by(Attendee.created_at, Attendee.id)
    ).scalars()
    for attendee in waiting:
        if event.capacity is not None and sum(counts.values()) >= event.capacity:
            break
        if not _has_room(event, counts, attendee.role):
            continue
        attendee.status = STATUS_CONFIRMED
        attendee.updated_at = now
        counts[attendee.role] = counts.get(attendee.role, 0) + 1
        record_change(
            session, attendee, "promote", {"status": [STATUS_WAITLISTED, STATUS_CONFIRMED]}, now=now
        )
        promoted.append(attendee)
        outbox.queue_promoted(session, event, attendee, now=now)
    session.flush()
    return promoted


def cancel(
    session: Session,
    attendee: Attendee,
    *,
    organizer_id: int | None = None,
    now: datetime | None = None,
) -> list[Attendee]:
    """Cancel a registration (confirmed or waitlisted) and promote whoever now fits.

    Returns the promoted registrations. Raises AlreadyCancelled for a cancelled one.
    Queues the cancellation message, and the promotion messages for the promoted.
    """
    now = now or utcnow()
    event = session.get(Event, attendee.event_id)
    assert event is not None
    lock_event(session, event)
    session.refresh(attendee)
    if attendee.status == STATUS_CANCELLED:
        raise AlreadyCancelled("This registration is already cancelled.")
    old_status = attendee.status
    attendee.status = STATUS_CANCELLED
    attendee.cancelled_at = now
    attendee.updated_at = now
    record_change(
        session,
        attendee,
        "cancel",
        {"status": [old_status, STATUS_CANCELLED]},
        organizer_id=organizer_id,
        now=now,
    )
    outbox.queue_cancelled(session, event, attendee, now=now)
    session.flush()
    return promote_waitlisted(session, event, now=now) if old_status == STATUS_CONFIRMED else []


def restore(
    session: Session,
    attendee: Attendee,
    *,
    organizer_id: int | None = None,
    now: datetime | None = None,
) -> Attendee:
    """Undo a cancellation (organizers only): confirmed if there is room, else waitlisted.

    The registration keeps its place in time, so restored it waits where it waited before.
    Queues the confirmation or the waiting-list notice.
    """
    now = now or utcnow()
    event = session.get(Event, attendee.event_id)
    assert event is not None
    lock_event(session, event)
    session.refresh(attendee)
    if attendee.status != STATUS_CANCELLED:
        raise RegistrationError("Only a cancelled registration can be restored.")
    if email_taken(session, event, attendee.email):
        raise DuplicateRegistration(
            "Another registration with this e-mail address is active; cancel it first."
        )
    counts = _active_counts(session, event)
    attendee.status = (
        STATUS_CONFIRMED if _has_room(event, counts, attendee.role) else STATUS_WAITLISTED
    )
    attendee.cancelled_at = None
    attendee.updated_at = now
    record_change(
        session,
        attendee,
        "restore",
        {"status": [STATUS_CANCELLED, attendee.status]},
        organizer_id=organizer_id,
        now=now,
    )
    session.flush()
    outbox.queue_status_message(
        session, event, attendee, waitlist_position(session, attendee), now=now
    )
    session.flush()
    return attendee


def update_details(
    session: Session,
    attendee: Attendee,
    values: dict[str, Any],
    *,
    organizer_id: int | None = None,
    now: datetime | None = None,
) -> dict[str, list[Any]]:
    """Correct a registration's details; return {field: [old, new]} of what changed.

    Only EDITABLE_FIELDS (and ``email`` when an organizer edits) are taken. A confirmed
    attendee moving to a role that is full raises NoRoom; the place freed in the old role
    goes to whoever waits for it.
    """
    now = now or utcnow()
    allowed = set(EDITABLE_FIELDS) | ({"email"} if organizer_id is not None else set())
    unknown = set(values) - allowed
    if unknown:
        raise ValueError(f"fields that cannot be changed here: {sorted(unknown)}")
    if "role" in values and values["role"] not in ROLES:
        raise ValueError(f"unknown role {values['role']!r}")
    if "badge_name" in values and not values["badge_name"]:
        first = values.get("first_name", attendee.first_name)
        last = values.get("last_name", attendee.last_name)
        values = {**values, "badge_name": f"{first} {last}"[:100]}
    event = session.get(Event, attendee.event_id)
    assert event is not None
    if {"role", "institution", "email"} & set(values):
        # Whether this change is counted, or moves someone into a full role, depends on the
        # status, which a concurrent cancel or promotion may be changing: decide under the
        # lock, on the row as it is now.
        lock_event(session, event)
        session.refresh(attendee)
    changes = {
        field: [getattr(attendee, field), value]
        for field, value in values.items()
        if getattr(attendee, field) != value
    }
    if not changes:
        return {}
    role_move = "role" in changes and attendee.status == STATUS_CONFIRMED
    email_move = "email" in changes and attendee.status != STATUS_CANCELLED
    # A waiting person who moves to a role with room is promoted at once.
    waiting_move = "role" in changes and attendee.status == STATUS_WAITLISTED
    if email_move and email_taken(session, event, values["email"]):
        raise DuplicateRegistration(duplicate_message(event))
    if role_move:
        counts = _active_counts(session, event)
        counts[attendee.role] -= 1
        if not _has_room(event, counts, values["role"]):
            raise NoRoom(f"There is no free place for the role {ROLES[values['role']]}.")
    for field, (_old, new) in changes.items():
        setattr(attendee, field, new)
    attendee.updated_at = now
    record_change(session, attendee, "update", changes, organizer_id=organizer_id, now=now)
    session.flush()
    if role_move or waiting_move:
        promote_waitlisted(session, event, now=now)
    return changes
