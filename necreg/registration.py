"""Domain operations on registrations. They take a session and plain values, never ``request``,
flush but do not commit: the caller (a view, a CLI command, a test) commits once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .models import (
    ROLES,
    STATUS_CANCELLED,
    STATUS_CONFIRMED,
    STATUS_WAITLISTED,
    Attendee,
    Event,
    new_code,
    utcnow,
)

EMAIL_INDEX = "uq_attendees_event_email_active"


class RegistrationError(Exception):
    """A registration the rules refuse. ``str(exc)`` is a message for the registrant."""


class RegistrationClosed(RegistrationError):
    pass


class DuplicateRegistration(RegistrationError):
    pass


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


def current_event(session: Session) -> Event | None:
    return session.execute(select(Event).where(Event.is_current)).scalar_one_or_none()


def lock_event(session: Session, event: Event) -> None:
    """Take the event's registration lock until the transaction ends.

    PostgreSQL: ``SELECT ... FOR UPDATE`` on the event row, so concurrent registrations for
    the same event, from any worker or machine, count and insert one after another.
    SQLite: a no-op UPDATE of the row, which makes this transaction the database's single
    writer before it counts (a plain SELECT would not start the write transaction).
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(Event.id).where(Event.id == event.id).with_for_update())
    else:
        session.execute(update(Event).where(Event.id == event.id).values(id=Event.id))


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


def _active_counts(session: Session, event: Event) -> dict[str, int]:
    rows = session.execute(
        select(Attendee.role, func.count())
        .where(Attendee.event_id == event.id, Attendee.status == STATUS_CONFIRMED)
        .group_by(Attendee.role)
    )
    return dict(rows.all())


def _has_room(event: Event, counts: dict[str, int], role: str) -> bool:
    if event.capacity is not None and sum(counts.values()) >= event.capacity:
        return False
    role_cap = (event.capacity_by_role or {}).get(role)
    return role_cap is None or counts.get(role, 0) < role_cap


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
    the e-mail already holds a registration that is not cancelled.
    """
    now = now or utcnow()
    if person.role not in ROLES:
        raise ValueError(f"unknown role {person.role!r}")
    if not event.registration_open(now):
        raise RegistrationClosed(f"Registration for {event.name} is closed.")

    lock_event(session, event)
    if email_taken(session, event, person.email):
        raise DuplicateRegistration(duplicate_message(event))

    counts = _active_counts(session, event)
    attendee = Attendee(
        event_id=event.id,
        code=_unused_code(session, code_prefix),
        status=STATUS_CONFIRMED if _has_room(event, counts, person.role) else STATUS_WAITLISTED,
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
    )
    session.add(attendee)
    try:
        session.flush()
    except IntegrityError as exc:
        # Only reachable when the lock was bypassed (e.g. a row written by hand); the caller
        # rolls back, as after any RegistrationError.
        if EMAIL_INDEX in str(exc.orig):
            raise DuplicateRegistration(duplicate_message(event)) from None
        raise
    return attendee


def duplicate_message(event: Event) -> str:
    return (
        f"This e-mail address is already registered for {event.name}. "
        "Use the link in your confirmation to see or change your registration."
    )


def _unused_code(session: Session, prefix: str) -> str:
    for _ in range(10):
        code = new_code(prefix)
        if session.execute(select(Attendee.id).where(Attendee.code == code)).first() is None:
            return code
    raise RuntimeError("could not find an unused attendee code in 10 tries")


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


def find_by_token(session: Session, token: str) -> Attendee | None:
    if not token or len(token) > 64:
        return None
    return session.execute(select(Attendee).where(Attendee.token == token)).scalar_one_or_none()
