"""Domain operations on registrations. They take a session and plain values, never ``request``,
flush but do not commit: the caller (a view, a CLI command, a test) commits once."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .counters import role_counts
from .database import lock_for_update
from .formats import same_email
from .mail import outbox
from .models import (
    ROLES,
    STATUS_CANCELLED,
    STATUS_CONFIRMED,
    STATUS_WAITLISTED,
    Attendee,
    AttendeeChange,
    Event,
    default_badge_name,
    new_code,
    new_token,
    utcnow,
)
from .places import EVENT_POOL, no_room_in
from .questions import Answers, QuestionSpec, save_answers


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


_CURRENT_EVENT = select(Event).where(Event.is_current)  # built once: every request reads it


def current_event(session: Session) -> Event | None:
    return session.execute(_CURRENT_EVENT).scalar_one_or_none()


def lock_event(session: Session, event: Event) -> None:
    """Take the event's lock until the transaction ends; ``event`` takes the values in force
    (caps read before the lock give way to the ones the lock reads).

    What frees or moves places (cancellations, promotions, restores, role changes, cap
    changes) is decided under it, one change at a time. A registration does not take it: on
    PostgreSQL, inserting an attendee takes a share lock on the event row (its foreign key),
    which this lock waits for and holds back, so the lock also sees no registration in flight
    (docs/performance.md, "Lock order"). On SQLite it makes the transaction the single writer.
    """
    lock_for_update(session, event)


class _NoPlace(Exception):
    """The database refused an attendee as active: no free place in one of their pools."""


def _single_writer(session: Session) -> bool:
    return session.get_bind().dialect.name != "postgresql"


def email_taken(session: Session, event: Event, email: str) -> bool:
    """Whether ``email`` holds a registration for ``event`` that is not cancelled."""
    return (
        session.execute(
            select(Attendee.id).where(
                Attendee.event_id == event.id,
                same_email(Attendee.email, email),
                Attendee.status != STATUS_CANCELLED,
            )
        ).first()
        is not None
    )


def code_taken(session: Session, code: str) -> bool:
    return session.execute(select(Attendee.id).where(Attendee.code == code)).first() is not None


def event_full(event: Event, counts: dict[str, int]) -> bool:
    """No place left in the event as a whole, with ``counts`` active attendees per role."""
    return event.capacity is not None and sum(counts.values()) >= event.capacity


def has_room(event: Event, counts: dict[str, int], role: str) -> bool:
    """A place for one more active attendee of ``role``: the event's cap and the role's."""
    if event_full(event, counts):
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
    counts = role_counts(session, event.id)
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
    questions: Sequence[QuestionSpec] = (),
    answers: Answers | None = None,
    now: datetime | None = None,
) -> Attendee:
    """Register ``person`` for ``event``: confirmed if there is room, else waitlisted.

    ``answers`` (checked by ``questions.clean_answers``) to the event's ``questions`` are
    stored with the registration. Raises RegistrationClosed outside the registration window
    and DuplicateRegistration when the e-mail already holds a registration that is not
    cancelled. Queues the confirmation or the waiting-list notice in the same transaction.
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
        badge_name=person.badge_name or default_badge_name(person.first_name, person.last_name),
        consent_at=now,
        created_at=now,
        updated_at=now,
    )
    # Rendered first, as most registrations turn out: confirmed, with the code drawn now.
    # Queued as it is if that holds.
    draft = outbox.draft_status_message(event, attendee, now=now)

    if _single_writer(session):
        lock_event(session, event)  # SQLite: the whole registration is the one writer
    try:
        # The database claims a place in each of the event's pools that applies, side by side
        # with other registrations (triggers.py), or refuses.
        _add_with_free_code(session, event, attendee, code_prefix)
    except _NoPlace:
        # No free place, as far as this transaction can see. Decide under the event lock:
        # with no registration in flight and no cancellation half-done, a place is either
        # free now, or the registration waits in line.
        placed = False
        if not _single_writer(session):
            lock_event(session, event)
            with suppress(_NoPlace):
                _add_with_free_code(session, event, attendee, code_prefix)
                placed = True
        if not placed:
            attendee.status = STATUS_WAITLISTED
            _add_with_free_code(session, event, attendee, code_prefix)
    if answers is not None and answers.values:
        save_answers(session, attendee.id, questions, answers, replace=False)
    position = waitlist_position(session, attendee)
    outbox.queue_status_message(session, event, attendee, position, now=now, draft=draft)
    return attendee


#: How many codes to draw before giving up: with a million codes in use, ten draws in a row
#: that are all taken happen about once in 10**29 registrations.
CODE_TRIES = 10


def _add_with_free_code(session: Session, event: Event, attendee: Attendee, prefix: str) -> None:
    """Add and flush ``attendee``, drawing another code while its code is taken.

    Each try is flushed in a savepoint, so a refusal (which ends the whole transaction on
    PostgreSQL) undoes only the try, and frees any place it claimed. Refused for the e-mail:
    a duplicate (DuplicateRegistration); for the code: draw again; for want of a place:
    _NoPlace.
    """
    for _attempt in range(CODE_TRIES):
        try:
            with session.begin_nested():
                session.add(attendee)
        except IntegrityError as exc:
            if no_room_in(exc):
                raise _NoPlace from None
            if email_taken(session, event, attendee.email):
                raise DuplicateRegistration(duplicate_message(event)) from None
            if not code_taken(session, attendee.code):
                raise
            attendee.code = new_code(prefix)
        else:
            return
    raise RuntimeError(f"could not find an unused attendee code in {CODE_TRIES} tries")


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
            .where(Attendee.event_id == event.id, same_email(Attendee.email, email))
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


def _make_active(session: Session, attendee: Attendee, now: datetime) -> str | None:
    """Confirm ``attendee`` if the database finds them a place; else leave them as they were
    and return the pool ("role" or "event") that had none."""
    try:
        with session.begin_nested():
            attendee.status = STATUS_CONFIRMED
            attendee.updated_at = now
            session.flush()
    except IntegrityError as exc:
        if pool := no_room_in(exc):
            return pool
        raise
    return None


def promote_waitlisted(
    session: Session, event: Event, *, now: datetime | None = None
) -> list[Attendee]:
    """Confirm the longest-waiting registrations that now fit, in order; return them.

    The caller holds the event lock (every function here that frees a place takes it), so
    no registration is in flight and the places freed go to those who waited. A waiting
    person whose role is still full is passed over, so someone of another role behind them
    can take a free place: the room is for whoever fits first.
    """
    now = now or utcnow()
    promoted: list[Attendee] = []
    full_roles: set[str] = set()
    waiting = session.execute(
        select(Attendee)
        .where(Attendee.event_id == event.id, Attendee.status == STATUS_WAITLISTED)
        .order_by(Attendee.created_at, Attendee.id)
    ).scalars()
    for attendee in list(waiting):
        if attendee.role in full_roles:
            continue
        full = _make_active(session, attendee, now)
        if full == EVENT_POOL:
            break
        if full is not None:
            full_roles.add(attendee.role)
            continue
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
    old_status, was_active = attendee.status, attendee.is_active
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
    return promote_waitlisted(session, event, now=now) if was_active else []


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
    if _make_active(session, attendee, now) is not None:
        attendee.status = STATUS_WAITLISTED
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
    position = waitlist_position(session, attendee)
    outbox.queue_status_message(session, event, attendee, position, now=now)
    return attendee


def _apply(attendee: Attendee, changes: dict[str, list[Any]], now: datetime) -> None:
    for field, (_old, new) in changes.items():
        setattr(attendee, field, new)
    attendee.updated_at = now


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
        values = {**values, "badge_name": default_badge_name(first, last)}
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
    role_move = "role" in changes and attendee.is_active
    email_move = "email" in changes and attendee.status != STATUS_CANCELLED
    # A waiting person who moves to a role with room is promoted at once.
    waiting_move = "role" in changes and attendee.status == STATUS_WAITLISTED
    if email_move and email_taken(session, event, values["email"]):
        raise DuplicateRegistration(duplicate_message(event))
    if role_move:
        # The database claims the new role's place, or refuses: only this change is undone.
        try:
            with session.begin_nested():
                _apply(attendee, changes, now)
                session.flush()
        except IntegrityError as exc:
            if no_room_in(exc):
                role = ROLES[values["role"]]
                raise NoRoom(f"There is no free place for the role {role}.") from None
            raise
    else:
        _apply(attendee, changes, now)
    record_change(session, attendee, "update", changes, organizer_id=organizer_id, now=now)
    session.flush()
    if role_move or waiting_move:
        promote_waitlisted(session, event, now=now)
    return changes


#: What the audit trail records of a sensitive answer: that it changed, not what it says.
SENSITIVE_CHANGE = "(sensitive answer)"


def update_answers(
    session: Session,
    attendee: Attendee,
    questions: Sequence[QuestionSpec],
    answers: Answers,
    *,
    organizer_id: int | None = None,
    now: datetime | None = None,
) -> dict[str, list[Any]]:
    """Replace the attendee's answers to ``questions`` with ``answers`` (checked by
    ``questions.clean_answers``); return {"q_<key>": [old, new]} of those that changed.

    The change is kept in the audit trail, sensitive answers without their text.
    """
    now = now or utcnow()
    changes = save_answers(session, attendee.id, questions, answers)
    if not changes:
        return {}
    sensitive = {q.name for q in questions if q.sensitive}
    recorded = {
        name: [SENSITIVE_CHANGE, SENSITIVE_CHANGE] if name in sensitive else values
        for name, values in changes.items()
    }
    attendee.updated_at = now  # the attendee's row changes too: lists and watches see it
    record_change(session, attendee, "answers", recorded, organizer_id=organizer_id, now=now)
    session.flush()
    return changes
