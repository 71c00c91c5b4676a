"""Domain operations on registrations. They take a session and plain values, never ``request``,
flush but do not commit: the caller (a view, a CLI command, a test) commits once."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from functools import wraps
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from . import metrics
from .counters import PLACE_KINDS, places_from, tallied
from .database import lock_for_update
from .fees import (
    FREE,
    Fee,
    PriceSpec,
    companion_fee,
    event_prices,
    fee_for,
    record_code_use,
    reprice,
)
from .formats import same_email
from .mail import outbox
from .models import (
    AGE_BANDS,
    ATTENDANCE,
    ATTENDEE_ROLES,
    CREDENTIALS,
    GUEST_ROLE,
    IN_PERSON,
    INFANT,
    ROLES,
    STATUS_CANCELLED,
    STATUS_CONFIRMED,
    STATUS_PENDING,
    STATUS_WAITLISTED,
    Attendee,
    AttendeeChange,
    Event,
    default_badge_name,
    new_code,
    new_token,
    utcnow,
)
from .payments import PaymentTerms, party_dues
from .places import EVENT_POOL, VIRTUAL_POOL, make_room, no_room_in
from .program import choose, leave_program
from .questions import Answers, QuestionSpec, save_answers


class RegistrationError(Exception):
    """A registration the rules refuse. ``str(exc)`` is a message for the registrant."""


class RegistrationClosed(RegistrationError):
    pass


class DuplicateRegistration(RegistrationError):
    pass


class NoRoom(RegistrationError):
    """A change would put a role or the event over its cap; ``pool``: which cap ("role",
    "event" or "virtual"), when known."""

    def __init__(self, message: str, pool: str | None = None):
        super().__init__(message)
        self.pool = pool


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
    "credential",
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
    #: CREDENTIALS, or "" (the wording of a CME certificate).
    credential: str = ""
    badge_name: str = ""
    #: ``in_person`` or ``virtual`` (the event must be ``virtual``).
    attendance: str = IN_PERSON
    #: Consents beyond the registration terms: photos, appearing on the attendee list.
    photo_consent: bool = False
    list_consent: bool = False


@dataclass(frozen=True)
class Companion:
    """Someone a registrant brings (a household): no e-mail, an age band (AGE_BANDS)."""

    first_name: str
    last_name: str
    age_band: str


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


@dataclass(frozen=True)
class Room:
    """Free places of an event: in person in total and per role, and online (None:
    unlimited)."""

    places_left: int | None
    by_role: dict[str, int | None]
    virtual_left: int | None = None

    @property
    def full_roles(self) -> list[str]:
        """Roles whose new in-person registrations would join the waiting list, in ROLES
        order."""
        return [role for role in ROLES if self.by_role[role] == 0]


def room_left(session: Session, event: Event) -> Room:
    """How many more places would be confirmed now (a snapshot, without the lock)."""
    places = places_from(tallied(session, event.id, PLACE_KINDS))
    total = None if event.capacity is None else max(event.capacity - places.taken_in_person, 0)
    by_role: dict[str, int | None] = {}
    for role in ROLES:
        cap = (event.capacity_by_role or {}).get(role)
        left = None if cap is None else max(cap - places.taken_in_person_of(role), 0)
        if total is not None:
            left = total if left is None else min(left, total)
        by_role[role] = left
    virtual_left = None
    if event.virtual and event.virtual_capacity is not None:
        virtual_left = max(event.virtual_capacity - places.taken_virtual, 0)
    return Room(places_left=total, by_role=by_role, virtual_left=virtual_left)


def takes_place(event: Event, age_band: str | None) -> bool:
    """Whether a person of ``age_band`` (None: a registrant) takes a place at ``event``."""
    return age_band != INFANT or event.infants_count


def _check_party(event: Event, person: Registrant, guests: Sequence[Companion]) -> None:
    if person.attendance not in ATTENDANCE:
        raise ValueError(f"unknown attendance {person.attendance!r}")
    if person.attendance != IN_PERSON and not event.virtual:
        raise RegistrationError(f"{event.name} is attended in person only.")
    if len(guests) > event.max_guests:
        raise RegistrationError(_too_many_guests(event))
    for guest in guests:
        if guest.age_band not in AGE_BANDS:
            raise ValueError(f"unknown age band {guest.age_band!r}")


def _too_many_guests(event: Event) -> str:
    if not event.max_guests:
        return f"Registrations for {event.name} cannot bring companions."
    return f"You may bring at most {event.max_guests} companions."


def _companion(
    event: Event, lead: Attendee, guest: Companion, code_prefix: str, now: datetime
) -> Attendee:
    """The attendee row of ``guest``, in ``lead``'s party and status."""
    return Attendee(
        event_id=event.id,
        code=new_code(code_prefix),
        token=new_token(),
        status=lead.status,
        role=GUEST_ROLE,
        first_name=guest.first_name,
        last_name=guest.last_name,
        email="",
        institution="",
        country=lead.country,
        early_career=False,
        badge_name=default_badge_name(guest.first_name, guest.last_name),
        age_band=guest.age_band,
        takes_place=takes_place(event, guest.age_band),
        attendance=lead.attendance,
        consent_at=now,
        consent_version=lead.consent_version,
        photo_consent_at=lead.photo_consent_at,
        photo_consent_version=lead.photo_consent_version,
        party_id=lead.id,
        created_at=now,
        updated_at=now,
    )


def register(
    session: Session,
    event: Event,
    person: Registrant,
    *,
    code_prefix: str,
    guests: Sequence[Companion] = (),
    questions: Sequence[QuestionSpec] = (),
    answers: Answers | None = None,
    fee: Fee = FREE,
    guest_fee: Fee = FREE,
    payment: PaymentTerms | None = None,
    now: datetime | None = None,
    fresh: bool = False,
) -> Attendee:
    """Register ``person`` for ``event``, with the companions ``guests``: the whole party
    confirmed if there is room for all of it, else waitlisted together. ``fee`` is what the
    person owes (``fees.fee_for``, its code already claimed), ``guest_fee`` each companion.
    When ``payment`` is collected and the party owes money, its places are held until
    ``payment.hold`` from now (``pending_payment``) instead of confirmed.

    ``fresh``: the session's transaction has only read so far (no change, no lock), so a
    first try that the database refuses may undo the whole transaction instead of a
    savepoint (``_add_with_free_codes``).

    ``answers`` (checked by ``questions.clean_answers``) to the event's ``questions`` are
    stored with the registration. Raises RegistrationClosed outside the registration window,
    DuplicateRegistration when the e-mail already holds a registration that is not
    cancelled, RegistrationError for more companions than the event allows or an attendance
    it does not offer. Queues the confirmation or the waiting-list notice (which lists the
    party) in the same transaction.
    """
    now = now or utcnow()
    if person.role not in ROLES:
        raise ValueError(f"unknown role {person.role!r}")
    _check_party(event, person, guests)
    if not event.registration_open(now):
        raise RegistrationClosed(f"Registration for {event.name} is closed.")
    version = event.consent_version
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
        credential=person.credential,
        badge_name=person.badge_name or default_badge_name(person.first_name, person.last_name),
        attendance=person.attendance,
        takes_place=True,
        consent_at=now,
        consent_version=version,
        photo_consent_at=now if person.photo_consent else None,
        photo_consent_version=version if person.photo_consent else None,
        list_consent_at=now if person.list_consent else None,
        list_consent_version=version if person.list_consent else None,
        amount_due=fee.amount,
        price_name=fee.price_name,
        created_at=now,
        updated_at=now,
    )
    if payment is not None and fee.amount + guest_fee.amount * len(guests) > 0:
        attendee.status, attendee.payment_due_at = STATUS_PENDING, now + payment.hold
    party = [_companion(event, attendee, guest, code_prefix, now) for guest in guests]
    for companion in party:
        companion.amount_due, companion.price_name = guest_fee.amount, guest_fee.price_name
    # Rendered first, as most registrations turn out: confirmed, with the codes drawn now.
    # Queued as it is if that holds.
    draft = outbox.draft_status_message(event, attendee, now=now, party=party)

    if _single_writer(session) or fee.bypass_caps:
        # SQLite: the whole registration is the one writer. A code that passes by the caps
        # makes room first, under the lock, so that nobody else takes it.
        lock_event(session, event)
    if fee.bypass_caps:
        make_room(
            session, event, [(m.role, m.attendance) for m in (attendee, *party) if m.takes_place]
        )
    # Nothing to keep if the first try is refused: it can be the transaction itself.
    claimed = fee.bypass_caps or fee.code_id is not None  # a code's row locked, its use counted
    whole = fresh and not (claimed or _single_writer(session))
    try:
        # The database claims a place in each of the event's pools that applies, for each
        # member of the party, side by side with other registrations (triggers.py), or
        # refuses.
        _add_party(session, event, attendee, party, code_prefix, whole=whole)
    except _NoPlace:
        # No free place, as far as this transaction can see. Decide under the event lock:
        # with no registration in flight and no cancellation half-done, places are either
        # free now, or the party waits in line.
        placed = False
        if not _single_writer(session):
            lock_event(session, event)
            with suppress(_NoPlace):
                _add_party(session, event, attendee, party, code_prefix)
                placed = True
        if not placed:
            for member in (attendee, *party):
                member.status = STATUS_WAITLISTED
            attendee.payment_due_at = None
            _add_party(session, event, attendee, party, code_prefix)
    if answers is not None and answers.values:
        save_answers(session, attendee.id, questions, answers, replace=False)
    record_code_use(session, fee, attendee.id, now)
    position = waitlist_position(session, attendee)
    outbox.queue_status_message(
        session, event, attendee, position, now=now, draft=draft, party=party
    )
    return attendee


#: What a refused registration is counted as (metrics.REGISTRATIONS): the first that matches
#: the error raised (FeeError, ProgramError and SupportError are ValueErrors: what was sent).
_REFUSALS = (
    (RegistrationClosed, "closed"),
    (DuplicateRegistration, "duplicate"),
    (RegistrationError, "refused"),
    (ValueError, "invalid"),
)


def _outcome_counted(register_fn):
    """``register_fn`` with the outcome of each call counted: the status the registration is
    given, once its transaction commits, or what refused it ("error": the database, a bug)."""

    @wraps(register_fn)
    def counted(session: Session, *args: Any, **kwargs: Any) -> Attendee:
        try:
            attendee = register_fn(session, *args, **kwargs)
        except Exception as exc:
            metrics.count_registration(
                next((kind for error, kind in _REFUSALS if isinstance(exc, error)), "error")
            )
            raise
        metrics.count_registration_on_commit(session, attendee.status)
        return attendee

    return counted


@_outcome_counted
def register_with_fee(
    session: Session,
    event: Event,
    person: Registrant,
    *,
    prices: Sequence[PriceSpec],
    code: str = "",
    code_prefix: str,
    guests: Sequence[Companion] = (),
    questions: Sequence[QuestionSpec] = (),
    answers: Answers | None = None,
    program: Sequence[str] = (),
    support: str | None = None,
    payment: PaymentTerms | None = None,
    now: datetime | None = None,
    fresh: bool = False,
) -> Attendee:
    """``register`` with the fee that the event's ``prices`` and the registration ``code``
    (if any) give the person and its companions, the code's use claimed under its own lock
    in the same transaction; and, when it holds a place, signed up for the program items
    ``program`` (a registration that waits chooses once it has a place). FeeError for a code
    that may not be used, ProgramError for items that cannot be chosen together (nothing
    stored once the caller rolls back). ``support``: the statement of a request for support
    (None: none asked for; ignored where the event offers none). ``fresh``: see ``register``."""
    now = now or utcnow()
    fee = fee_for(
        session,
        event,
        prices,
        role=person.role,
        early_career=person.early_career,
        attendance=person.attendance,
        code=code,
        now=now,
    )
    attendee = register(
        session,
        event,
        person,
        code_prefix=code_prefix,
        guests=guests,
        questions=questions,
        answers=answers,
        fee=fee,
        guest_fee=companion_fee(prices, person.attendance, now),
        payment=payment,
        now=now,
        fresh=fresh,
    )
    if program and attendee.holds_place:
        choose(session, attendee, program, now=now)
    if support is not None:
        from .support import offers_support, request_support  # it reads this module

        if offers_support(event):
            request_support(session, attendee, support, now=now)
    return attendee


def _add_party(
    session: Session,
    event: Event,
    lead: Attendee,
    party: Sequence[Attendee],
    prefix: str,
    *,
    whole: bool = False,
) -> None:
    """Add and flush ``lead`` and its companions ``party`` together: if one of them finds no
    place (_NoPlace), none of them is added. ``whole``: see ``_add_with_free_codes``."""
    _add_with_free_codes(session, event, [lead, *party], prefix, whole=whole)


#: How many codes to draw before giving up: with a million codes in use, ten draws in a row
#: that are all taken happen about once in 10**29 registrations.
CODE_TRIES = 10


def _add_with_free_codes(
    session: Session,
    event: Event,
    members: Sequence[Attendee],
    prefix: str,
    *,
    whole: bool = False,
) -> None:
    """Add and flush ``members`` (one attendee, or a lead and then its companions, who get
    the lead's id as their party), drawing other codes while a code is taken.

    Each try is one savepoint for all of them, so a refusal (which ends the whole transaction
    on PostgreSQL) undoes only the try, and frees every place it claimed. One savepoint, not
    one per member: a member's savepoint released and then undone with the try would leave
    registrations waiting for this one behind the event lock to wait for the whole of this
    transaction, which then waits for the event lock too (a deadlock). Refused for the
    e-mail: a duplicate (DuplicateRegistration); for a code: draw again; for want of a
    place: _NoPlace.

    ``whole``: the transaction has nothing to keep (it has only read), so a first try of one
    attendee needs no savepoint: a refusal rolls the transaction back, which undoes the same,
    and the attendee is added again by the next try. This spares a registration the two
    round trips of SAVEPOINT and RELEASE (docs/performance.md).
    """
    lead, *party = members
    alone = whole and not party
    for _attempt in range(CODE_TRIES):
        try:
            if alone:
                session.add(lead)
                session.flush()
            else:
                with session.begin_nested():
                    session.add(lead)
                    if party:
                        session.flush()  # the lead's id, for its companions
                        for companion in party:
                            companion.party_id = lead.id
                        session.add_all(party)
        except IntegrityError as exc:
            if alone:
                session.rollback()  # the try was all the transaction held; lead is new again
                alone = False  # a code drawn again is tried in a savepoint, as before
            if no_room_in(exc):
                raise _NoPlace from None
            if lead.party_id is None and email_taken(session, event, lead.email):
                raise DuplicateRegistration(duplicate_message(event)) from None
            taken = [m for m in members if code_taken(session, m.code)]
            if not taken and len({m.code for m in members}) == len(members):
                raise
            for member in [*taken, *members[1:]]:
                member.code = new_code(prefix)
        else:
            return
    raise RuntimeError(f"could not find unused attendee codes in {CODE_TRIES} tries")


def duplicate_message(event: Event) -> str:
    return (
        f"This e-mail address is already registered for {event.name}. "
        "Use the link in your confirmation to see or change your registration."
    )


def waitlist_position(session: Session, attendee: Attendee) -> int | None:
    """1 + the number of waiting parties of the event that came before the attendee's (a
    party waits as one: a companion is where its lead is)."""
    if attendee.status != STATUS_WAITLISTED:
        return None
    lead = party_lead(session, attendee)
    ahead = session.execute(
        select(func.count()).where(
            Attendee.event_id == lead.event_id,
            Attendee.status == STATUS_WAITLISTED,
            Attendee.party_id.is_(None),
            (Attendee.created_at < lead.created_at)
            | ((Attendee.created_at == lead.created_at) & (Attendee.id < lead.id)),
        )
    ).scalar_one()
    return ahead + 1


def party_lead(session: Session, attendee: Attendee) -> Attendee:
    """The lead registrant of ``attendee``'s party (the attendee itself for a lead)."""
    if attendee.party_id is None:
        return attendee
    lead = session.get(Attendee, attendee.party_id)
    assert lead is not None
    return lead


def companions_of(session: Session, lead: Attendee, *, status: str | None = None) -> list[Attendee]:
    """The companions of ``lead``'s party in the order they were added (of ``status`` only,
    if given)."""
    query = select(Attendee).where(Attendee.party_id == lead.id)
    if status is not None:
        query = query.where(Attendee.status == status)
    return list(session.execute(query.order_by(Attendee.id)).scalars())


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


def _make_active(
    session: Session, members: Sequence[Attendee], now: datetime, status: str = STATUS_CONFIRMED
) -> str | None:
    """Give the party ``members`` together ``status`` (confirmed, or a place held until paid
    for) if the database finds each a place; else leave them as they were and return the
    pool ("role", "event" or "virtual") that had none."""
    try:
        with session.begin_nested():
            for member in members:
                member.status = status
                member.updated_at = now
            session.flush()
    except IntegrityError as exc:
        if pool := no_room_in(exc):
            return pool
        raise
    return None


def _blocks(attendee: Attendee, pool: str) -> tuple[str, str]:
    """What a party of one that found no place in ``pool`` says is full for those behind
    it: all in-person places (``event``), all online ones, or its role in person."""
    if pool in (EVENT_POOL, VIRTUAL_POOL):
        return (attendee.attendance, "")
    return (attendee.attendance, attendee.role)


def promote_waitlisted(
    session: Session,
    event: Event,
    *,
    payment: PaymentTerms | None = None,
    now: datetime | None = None,
) -> list[Attendee]:
    """Confirm the longest-waiting parties that now fit, each as a whole, in order; return
    the lead registrants promoted. When ``payment`` is collected, a party that owes money is
    offered the place instead: held until ``payment.offer`` from now, e-mailed, and passed on
    to the next in line if it is not paid for by then (``expire_hold``).

    The caller holds the event lock (every function here that frees a place takes it), so
    no registration is in flight and the places freed go to those who waited. A waiting
    party that does not fit is passed over, so a smaller one or one of another role behind
    it can take a free place: the room is for whoever fits first. A party of one that does
    not fit tells which places are gone for everyone behind it too.
    """
    now = now or utcnow()
    promoted: list[Attendee] = []
    full: set[tuple[str, str]] = set()
    waiting = list(
        session.execute(
            select(Attendee)
            .where(Attendee.event_id == event.id, Attendee.status == STATUS_WAITLISTED)
            .order_by(Attendee.created_at, Attendee.id)
        ).scalars()
    )
    parties: dict[int, list[Attendee]] = {}
    for attendee in waiting:
        if attendee.party_id is not None:
            parties.setdefault(attendee.party_id, []).append(attendee)
    for lead in waiting:
        if lead.party_id is not None:
            continue
        if {(lead.attendance, ""), (lead.attendance, lead.role)} & full:
            continue
        members = [lead, *parties.get(lead.id, [])]
        offered = payment is not None and _owed(session, members) > 0
        pool = _make_active(session, members, now, STATUS_PENDING if offered else STATUS_CONFIRMED)
        if pool is not None:
            if len(members) == 1:
                full.add(_blocks(lead, pool))
            continue
        for member in members:
            record_change(
                session,
                member,
                "promote",
                {"status": [STATUS_WAITLISTED, member.status]},
                now=now,
            )
        promoted.append(lead)
        if offered:
            assert payment is not None
            lead.payment_due_at = now + payment.offer
            outbox.queue_offer(session, event, lead, now=now, party=members[1:])
        else:
            outbox.queue_promoted(session, event, lead, now=now, party=members[1:])
    session.flush()
    return promoted


def cancel(
    session: Session,
    attendee: Attendee,
    *,
    organizer_id: int | None = None,
    payment: PaymentTerms | None = None,
    now: datetime | None = None,
) -> list[Attendee]:
    """Cancel a registration (confirmed or waitlisted), with its companions when it is a
    party's lead, and promote whoever now fits. A companion cancelled alone leaves its party.

    Returns the promoted registrations. Raises AlreadyCancelled for a cancelled one.
    Queues the cancellation message (to the lead, for a companion: it names them), and the
    promotion messages for the promoted.
    """
    now = now or utcnow()
    event = session.get(Event, attendee.event_id)
    assert event is not None
    lock_event(session, event)
    session.refresh(attendee)
    if attendee.status == STATUS_CANCELLED:
        raise AlreadyCancelled("This registration is already cancelled.")
    attendee.payment_due_at = None  # cancelled, not expired
    members, held = _end(session, attendee, "cancel", organizer_id=organizer_id, now=now)
    lead = party_lead(session, attendee)
    outbox.queue_cancelled(
        session,
        event,
        lead,
        now=now,
        party=members[1:],
        left=attendee if attendee is not lead else None,
    )
    return promote_waitlisted(session, event, payment=payment, now=now) if held else []


def _end(
    session: Session,
    attendee: Attendee,
    action: str,
    *,
    organizer_id: int | None = None,
    now: datetime,
) -> tuple[list[Attendee], bool]:
    """Cancel ``attendee``, with its companions when it is a party's lead (audited as
    ``action``); return them (``attendee`` first), and whether it held places before."""
    held = attendee.holds_place
    members = [attendee]
    if attendee.party_id is None:
        members += [c for c in companions_of(session, attendee) if c.status != STATUS_CANCELLED]
    for member in members:
        old_status = member.status
        member.status = STATUS_CANCELLED
        member.cancelled_at = now
        member.updated_at = now
        record_change(
            session,
            member,
            action,
            {"status": [old_status, STATUS_CANCELLED]},
            organizer_id=organizer_id,
            now=now,
        )
        leave_program(session, member, now=now)  # workshop places go to whoever waits
    session.flush()
    return members, held


def _owed(session: Session, members: Sequence[Attendee]) -> int:
    """What the party ``members`` (its lead first) still owes, in minor units."""
    due, paid = party_dues(session, members[0])
    return due - paid


def holds_due(session: Session, now: datetime, limit: int = 100) -> list[int]:
    """The ids of the registrations (leads) whose places are held unpaid past their time,
    the longest overdue first."""
    return list(
        session.execute(
            select(Attendee.id)
            .where(
                Attendee.status == STATUS_PENDING,
                Attendee.party_id.is_(None),
                Attendee.payment_due_at <= now,
            )
            .order_by(Attendee.payment_due_at, Attendee.id)
            .limit(limit)
        ).scalars()
    )


def expire_hold(
    session: Session,
    attendee: Attendee,
    *,
    payment: PaymentTerms | None = None,
    now: datetime | None = None,
) -> list[Attendee] | None:
    """End ``attendee``'s hold (with its party's) when it is still unpaid past its time:
    cancelled, told by e-mail, its places given to whoever waits for them. Returns those
    promoted, or None when the hold was paid for, cancelled or extended meanwhile."""
    now = now or utcnow()
    event = session.get(Event, attendee.event_id)
    assert event is not None
    lock_event(session, event)
    session.refresh(attendee)
    due = attendee.payment_due_at
    if attendee.status != STATUS_PENDING or attendee.party_id is not None or due is None:
        return None
    if due > now:
        return None
    members, _held = _end(session, attendee, "expire", now=now)
    outbox.queue_expired(session, event, attendee, now=now, party=members[1:])
    return promote_waitlisted(session, event, payment=payment, now=now)


def restore_expired(session: Session, attendee: Attendee, *, now: datetime | None = None) -> bool:
    """Give a registration whose hold expired before its payment arrived its place again,
    held (the payment then confirms it), if there is one free: True if it is back. One
    cancelled by its holder or an organizer stays cancelled."""
    now = now or utcnow()
    event = session.get(Event, attendee.event_id)
    assert event is not None
    lock_event(session, event)
    session.refresh(attendee)
    if not attendee.expired or attendee.party_id is not None:
        return False
    if email_taken(session, event, attendee.email):
        return False  # registered again meanwhile
    members = [attendee] + [
        c
        for c in companions_of(session, attendee, status=STATUS_CANCELLED)
        if c.cancelled_at == attendee.cancelled_at
    ]
    if _make_active(session, members, now, STATUS_PENDING) is not None:
        return False
    for member in members:
        member.cancelled_at = None
        record_change(
            session, member, "restore", {"status": [STATUS_CANCELLED, STATUS_PENDING]}, now=now
        )
    session.flush()
    return True


def confirm_paid(session: Session, lead: Attendee, *, now: datetime | None = None) -> bool:
    """Confirm ``lead``'s party when its places were held for payment and it now owes
    nothing; return whether it did. The caller queues the confirmation."""
    now = now or utcnow()
    lock_for_update(session, lead)
    if lead.status != STATUS_PENDING or _owed(session, [lead]) > 0:
        return False
    for member in [lead, *companions_of(session, lead, status=STATUS_PENDING)]:
        member.status = STATUS_CONFIRMED
        member.updated_at = now
        record_change(
            session, member, "paid", {"status": [STATUS_PENDING, STATUS_CONFIRMED]}, now=now
        )
    lead.payment_due_at = None
    session.flush()
    return True


def restore(
    session: Session,
    attendee: Attendee,
    *,
    organizer_id: int | None = None,
    now: datetime | None = None,
) -> Attendee:
    """Undo a cancellation (organizers only): confirmed if there is room, else waitlisted.

    A lead comes back with the companions cancelled with it, the party as one; a companion
    comes back to its lead's party, in the lead's status (refused while the lead is
    cancelled, or without room beside a confirmed lead). The registration keeps its place in
    time, so restored it waits where it waited before. Queues the confirmation or the
    waiting-list notice.
    """
    now = now or utcnow()
    event = session.get(Event, attendee.event_id)
    assert event is not None
    lock_event(session, event)
    session.refresh(attendee)
    if attendee.status != STATUS_CANCELLED:
        raise RegistrationError("Only a cancelled registration can be restored.")
    lead = party_lead(session, attendee)
    if attendee is lead:
        if email_taken(session, event, attendee.email):
            raise DuplicateRegistration(
                "Another registration with this e-mail address is active; cancel it first."
            )
        members = [attendee] + [
            c
            for c in companions_of(session, attendee, status=STATUS_CANCELLED)
            if c.cancelled_at == attendee.cancelled_at
        ]
        if _make_active(session, members, now) is not None:
            for member in members:
                member.status = STATUS_WAITLISTED
    elif lead.status == STATUS_CANCELLED:
        raise RegistrationError("Restore the registration of the party's lead first.")
    elif sum(c.status != STATUS_CANCELLED for c in companions_of(session, lead)) >= (
        event.max_guests
    ):
        raise RegistrationError(_too_many_guests(event))
    else:
        members = [attendee]
        if lead.is_active:
            if _make_active(session, members, now) is not None:
                raise NoRoom("There is no free place for this companion.")
        else:
            attendee.status = STATUS_WAITLISTED
    for member in members:
        member.cancelled_at = None
        member.updated_at = now
        record_change(
            session,
            member,
            "restore",
            {"status": [STATUS_CANCELLED, member.status]},
            organizer_id=organizer_id,
            now=now,
        )
    session.flush()
    position = waitlist_position(session, lead)
    party = companions_of(session, lead, status=lead.status)
    outbox.queue_status_message(session, event, lead, position, now=now, party=party)
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
    payment: PaymentTerms | None = None,
    now: datetime | None = None,
) -> dict[str, list[Any]]:
    """Correct a registration's details; return {field: [old, new]} of what changed.

    Only EDITABLE_FIELDS, ``attendance`` (on an event also online; a lead's companions
    follow it) and ``email`` when an organizer edits are taken. A confirmed attendee moving
    to a role or an attendance that is full raises NoRoom; the place freed goes to whoever
    waits for it.
    """
    now = now or utcnow()
    allowed = {*EDITABLE_FIELDS, "attendance"} | ({"email"} if organizer_id is not None else set())
    unknown = set(values) - allowed
    if unknown:
        raise ValueError(f"fields that cannot be changed here: {sorted(unknown)}")
    if values.get("credential", "") not in ("", *CREDENTIALS):
        raise ValueError(f"unknown credential {values['credential']!r}")
    if "role" in values and values["role"] not in ROLES:
        raise ValueError(f"unknown role {values['role']!r}")
    if "attendance" in values and values["attendance"] not in ATTENDANCE:
        raise ValueError(f"unknown attendance {values['attendance']!r}")
    if "badge_name" in values and not values["badge_name"]:
        first = values.get("first_name", attendee.first_name)
        last = values.get("last_name", attendee.last_name)
        values = {**values, "badge_name": default_badge_name(first, last)}
    event = session.get(Event, attendee.event_id)
    assert event is not None
    if values.get("attendance", IN_PERSON) != IN_PERSON and not event.virtual:
        raise RegistrationError(f"{event.name} is attended in person only.")
    if {"role", "institution", "email", "attendance"} & set(values):
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
    moved = {"role", "attendance"} & set(changes)
    place_move = bool(moved) and attendee.holds_place
    email_move = "email" in changes and attendee.status != STATUS_CANCELLED
    # A waiting person who moves to a role or an attendance with room is promoted at once.
    waiting_move = bool(moved) and attendee.status == STATUS_WAITLISTED
    if email_move and email_taken(session, event, values["email"]):
        raise DuplicateRegistration(duplicate_message(event))
    party = (
        [c for c in companions_of(session, attendee) if c.status != STATUS_CANCELLED]
        if "attendance" in changes and attendee.party_id is None
        else []
    )
    if place_move:
        # The database claims the new places, or refuses: only this change is undone.
        try:
            with session.begin_nested():
                _apply(attendee, changes, now)
                _follow_attendance(party, changes, now)
                session.flush()
        except IntegrityError as exc:
            if pool := no_room_in(exc):
                role = values.get("role", attendee.role)
                raise NoRoom(_no_room_message(pool, role), pool) from None
            raise
    else:
        _apply(attendee, changes, now)
        _follow_attendance(party, changes, now)
    if {"role", "early_career", "attendance"} & set(changes):
        before = attendee.amount_due
        if reprice(session, attendee, party) and attendee.amount_due != before:
            changes["amount_due"] = [before, attendee.amount_due]
    record_change(session, attendee, "update", changes, organizer_id=organizer_id, now=now)
    session.flush()
    if place_move or waiting_move:
        promote_waitlisted(session, event, payment=payment, now=now)
    return changes


def _follow_attendance(
    party: Sequence[Attendee], changes: dict[str, list[Any]], now: datetime
) -> None:
    """A lead's companions attend as the lead does."""
    if "attendance" in changes:
        for companion in party:
            _apply(companion, {"attendance": changes["attendance"]}, now)


def _no_room_message(pool: str, role: str) -> str:
    if pool == "role":
        return f"There is no free place for the role {ATTENDEE_ROLES[role]}."
    if pool == VIRTUAL_POOL:
        return "There is no free place to attend online."
    return "There is no free place to attend in person."


def add_companion(
    session: Session,
    lead: Attendee,
    guest: Companion,
    *,
    code_prefix: str,
    organizer_id: int | None = None,
    now: datetime | None = None,
) -> Attendee:
    """Add ``guest`` to ``lead``'s party, in the lead's status: a confirmed party without a
    free place for them raises NoRoom (the party stays as it was, never split)."""
    now = now or utcnow()
    event = session.get(Event, lead.event_id)
    assert event is not None
    if guest.age_band not in AGE_BANDS:
        raise ValueError(f"unknown age band {guest.age_band!r}")
    if not event.registration_open(now):
        raise RegistrationClosed(f"Registration for {event.name} is closed.")
    lock_event(session, event)
    session.refresh(lead)
    if lead.party_id is not None or lead.status == STATUS_CANCELLED:
        raise RegistrationError("Companions are added to an active registration's party.")
    active = [c for c in companions_of(session, lead) if c.status != STATUS_CANCELLED]
    if len(active) >= event.max_guests:
        raise RegistrationError(_too_many_guests(event))
    companion = _companion(event, lead, guest, code_prefix, now)
    fee = companion_fee(event_prices(session, event.id), lead.attendance, now)
    companion.amount_due, companion.price_name = fee.amount, fee.price_name
    try:
        _add_with_free_codes(session, event, [companion], code_prefix)
    except _NoPlace:
        raise NoRoom("There is no free place for another companion.") from None
    record_change(
        session,
        companion,
        "add",
        {"party": [None, lead.code], "status": [None, companion.status]},
        organizer_id=organizer_id,
        now=now,
    )
    record_change(
        session,
        lead,
        "update",
        {"companions": [len(active), len(active) + 1]},
        organizer_id=organizer_id,
        now=now,
    )
    lead.updated_at = now
    session.flush()
    return companion


#: The consents a person may give or withdraw after registering: (name, the column of its
#: time, of the version of its text).
CONSENTS = {
    "photo": ("photo_consent_at", "photo_consent_version"),
    "list": ("list_consent_at", "list_consent_version"),
}


def update_consents(
    session: Session,
    attendee: Attendee,
    given: dict[str, bool],
    *,
    organizer_id: int | None = None,
    now: datetime | None = None,
) -> dict[str, list[Any]]:
    """Give or withdraw the consents named in ``given`` (CONSENTS); return {"consent_<name>":
    [old, new]} of those that changed. A consent given is stored with its time and the
    version of the event's text (``consent_version``); a lead's photo consent is its
    companions' too (they are photographed together)."""
    now = now or utcnow()
    unknown = set(given) - set(CONSENTS)
    if unknown:
        raise ValueError(f"unknown consents: {sorted(unknown)}")
    event = session.get(Event, attendee.event_id)
    assert event is not None
    changes: dict[str, list[Any]] = {}
    followers = (
        companions_of(session, attendee)
        if given.get("photo") is not None and attendee.party_id is None
        else []
    )
    for name, agreed in given.items():
        at, version = CONSENTS[name]
        before = getattr(attendee, at) is not None
        if before == agreed:
            continue
        changes[f"consent_{name}"] = [before, agreed]
        for person in [attendee, *(followers if name == "photo" else [])]:
            setattr(person, at, now if agreed else None)
            setattr(person, version, event.consent_version if agreed else None)
            person.updated_at = now
    if changes:
        record_change(session, attendee, "consent", changes, organizer_id=organizer_id, now=now)
        session.flush()
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
