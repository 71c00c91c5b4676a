"""Support for trainees and families to come: travel grants and fee waivers, asked for on the
registration form and decided by organizers.

A request (``SupportRequest``) holds the person's statement; reviewers score it and decide:
an ``award`` (an amount towards travel, in the event's currency), a ``waiver`` (the fee
becomes zero, and a place held for payment is confirmed as paid) or ``decline``, each with a
note. A decision is taken under the request's row lock and only when it changes something, so
the same decision submitted twice (two tabs, a double click) is recorded, e-mailed and
applied once. The awarded total is kept against the event's ``support_budget``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .database import lock_for_update
from .formats import has_control_characters
from .mail import outbox
from .models import (
    STATUS_CANCELLED,
    SUPPORT_DECISIONS,
    SUPPORT_STATEMENT_MAX,
    Attendee,
    Event,
    SupportRequest,
    utcnow,
)
from .money import MoneyError, format_amount, parse_amount, to_minor
from .payments import money_moved

#: Longest reviewer's note, in characters.
NOTE_MAX = 2000


class SupportError(ValueError):
    """A request or a decision that cannot be taken; ``str(exc)`` says why."""


class StatementError(SupportError):
    """A statement that cannot be stored as written."""


def clean_statement(text: str) -> str:
    """The applicant's statement, checked: SupportError when too long."""
    statement = (text or "").strip()
    if len(statement) > SUPPORT_STATEMENT_MAX:
        raise StatementError(f"Please keep your statement to {SUPPORT_STATEMENT_MAX} characters.")
    if has_control_characters(statement, allowed="\n\r\t"):
        raise StatementError("The statement has characters that cannot be stored.")
    return statement


def offers_support(event: Event) -> bool:
    """Support is offered where the event has a budget for it."""
    return event.support_budget is not None


def support_of(session: Session, attendee: Attendee) -> SupportRequest | None:
    """The attendee's request, looked up only where the event offers support."""
    if not offers_support(attendee.event):
        return None
    return session.execute(
        select(SupportRequest).where(SupportRequest.attendee_id == attendee.id)
    ).scalar_one_or_none()


def why_not_ask(attendee: Attendee, request: SupportRequest | None, now: datetime) -> str:
    """Why ``attendee`` cannot ask for support (or rewrite their statement) now; "" if they
    can: a registrant, not cancelled, of an event that offers support, while registration is
    open, whose request is not decided yet."""
    if not offers_support(attendee.event):
        return "This event does not offer support."
    if attendee.is_companion or attendee.status == STATUS_CANCELLED:
        return "Support is asked for by a registrant with a registration that stands."
    if not attendee.event.registration_open(now):
        return "Support is asked for while registration is open."
    if request is not None and request.decision:
        return "Your request was decided already."
    return ""


def request_support(
    session: Session, attendee: Attendee, statement: str, *, now: datetime | None = None
) -> SupportRequest:
    """Ask for support for ``attendee`` (one request each; asking again updates the
    statement of one not yet decided). SupportError says why it cannot be, and nothing is
    stored."""
    now = now or utcnow()
    text = clean_statement(statement)
    existing = support_of(session, attendee)
    refused = why_not_ask(attendee, existing, now)
    if refused:
        raise SupportError(refused)
    if existing is not None:
        existing.statement = text
        session.flush()
        return existing
    request = SupportRequest(attendee_id=attendee.id, statement=text, requested_at=now)
    session.add(request)
    session.flush()
    return request


@dataclass(frozen=True)
class Budget:
    """The event's support budget and what was awarded (minor units; budget None: none)."""

    budget: int | None
    awarded: int

    @property
    def left(self) -> int | None:
        return None if self.budget is None else self.budget - self.awarded


def budget_of(session: Session, event: Event) -> Budget:
    awarded = session.execute(
        select(func.coalesce(func.sum(SupportRequest.award), 0))
        .join(Attendee, Attendee.id == SupportRequest.attendee_id)
        .where(Attendee.event_id == event.id, SupportRequest.decision == "award")
    ).scalar_one()
    return Budget(event.support_budget, int(awarded))


def requests_of(session: Session, event: Event) -> list[tuple[SupportRequest, Attendee]]:
    """The event's requests with their applicants: undecided first, then by request time."""
    rows = session.execute(
        select(SupportRequest, Attendee)
        .join(Attendee, Attendee.id == SupportRequest.attendee_id)
        .where(Attendee.event_id == event.id)
        .order_by(SupportRequest.decision != "", SupportRequest.requested_at, SupportRequest.id)
    ).all()
    return [(request, attendee) for request, attendee in rows]


def decide(
    session: Session,
    request: SupportRequest,
    decision: str,
    *,
    award: str = "",
    note: str = "",
    score: int | None = None,
    organizer_id: int | None = None,
    now: datetime | None = None,
) -> bool:
    """Record ``decision`` (SUPPORT_DECISIONS) on ``request``; return False when it is the
    decision already recorded (nothing happens again). A waiver makes the applicant's fee
    zero and confirms a place held for payment; an award must fit the budget left.
    SupportError says what is wrong, and nothing is stored."""
    from .registration import confirm_paid, record_change  # it imports this module

    now = now or utcnow()
    if decision not in SUPPORT_DECISIONS:
        raise SupportError(f"Choose one of: {', '.join(SUPPORT_DECISIONS.values())}.")
    note = (note or "").strip()
    if len(note) > NOTE_MAX:
        raise SupportError(f"The note is at most {NOTE_MAX} characters.")
    if score is not None and not 0 <= score <= 10:
        raise SupportError("A score is from 0 to 10.")
    lock_for_update(session, request)  # one decision at a time, as it is now
    attendee = session.get(Attendee, request.attendee_id)
    assert attendee is not None
    event = session.get(Event, attendee.event_id)
    assert event is not None
    minor = 0
    if decision == "award":
        try:
            minor = to_minor(parse_amount(award, event.currency), event.currency)
        except MoneyError as exc:
            raise SupportError(f"The award: {exc}") from None
        if minor <= 0:
            raise SupportError("An award is more than 0.")
        budget = budget_of(session, event)
        already = request.award if request.decision == "award" else 0
        if budget.left is not None and minor - already > budget.left:
            left = format_amount(budget.left, event.currency)
            raise SupportError(f"That is more than the budget has left ({left}).")
    if (request.decision, request.award, request.note) == (decision, minor, note):
        if score is not None:
            request.score = score
        return False
    before = [request.decision or None, request.award]
    request.decision, request.award, request.note = decision, minor, note
    request.score = score if score is not None else request.score
    request.decided_at, request.organizer_id = now, organizer_id
    changes: dict[str, list] = {"decision": [before[0], decision], "award": [before[1], minor]}
    if decision == "waiver" and attendee.amount_due:
        changes["amount_due"] = [attendee.amount_due, 0]
        attendee.amount_due = 0
        money_moved(event, attendee, now)
    record_change(session, attendee, "support", changes, organizer_id=organizer_id, now=now)
    session.flush()
    confirmed = decision == "waiver" and confirm_paid(session, attendee, now=now)
    outbox.queue_support_decision(
        session,
        event,
        attendee,
        decision=decision,
        award=format_amount(minor, event.currency) if minor else "",
        note=note,
        confirmed=confirmed,
        now=now,
    )
    return True
