"""Payments received and their receipts.

An organizer records a payment made outside the site (bank transfer, cheque, cash) on the
attendee's page; partial payments add up. Each payment gets a receipt whose number is the
event's next, taken in the same transaction under the event's receipt counter: numbers run
from 1 with no gap and no repeat, whatever happens at the same moment (a rolled-back payment
gives its number back with it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from .formats import has_control_characters
from .mail import outbox
from .models import (
    HOLDING_STATUSES,
    REFERENCE_LENGTH,
    STATUS_CANCELLED,
    STATUS_CONFIRMED,
    Attendee,
    Event,
    Payment,
    ReceiptCounter,
    utcnow,
)
from .money import MoneyError, currency_known, format_amount, parse_amount, to_minor
from .receipts_pdf import receipt_pdf


@dataclass(frozen=True)
class PaymentTerms:
    """How fees are collected, when they are (a payment provider is set): a registration
    that owes money holds its place for ``hold`` (``pending_payment``) and a place offered
    from the waiting list waits ``offer`` for its payment. None in their place: nothing is
    collected, and a registration that owes money is confirmed at once."""

    hold: timedelta
    offer: timedelta


def payment_terms(settings: Mapping[str, Any]) -> PaymentTerms | None:
    """The PaymentTerms of the app's ``settings`` (None with PAYMENT_PROVIDER "none")."""
    if settings["PAYMENT_PROVIDER"] == "none":
        return None
    return PaymentTerms(
        hold=timedelta(minutes=float(settings["PAYMENT_HOLD_MINUTES"])),
        offer=timedelta(hours=float(settings["PAYMENT_OFFER_HOURS"])),
    )


class PaymentError(ValueError):
    """A payment that cannot be recorded; ``str(exc)`` says why."""


def money_moved(event: Event, attendee: Attendee, now: datetime) -> None:
    """A payment or a refund changes the attendee, and the event's money figures: the
    dashboard keeps its figures per version of the event, which ``updated_at`` marks."""
    attendee.updated_at = now
    event.updated_at = now


def next_receipt_number(session: Session, event_id: int) -> int:
    """The event's next receipt number, under its counter's row lock until the transaction
    ends: one upsert, so the first two payments of an event at once get 1 and 2 too."""
    counters = ReceiptCounter.__table__
    dialect = session.get_bind().dialect.name
    upsert = (postgresql_insert if dialect == "postgresql" else sqlite_insert)(counters)
    statement = upsert.values(event_id=event_id, last_number=1).on_conflict_do_update(
        index_elements=[counters.c.event_id],
        set_={"last_number": counters.c.last_number + 1},
    )
    return session.execute(statement.returning(counters.c.last_number)).scalar_one()


def record_payment(
    session: Session,
    attendee: Attendee,
    amount: str,
    *,
    reference: str = "",
    paid_at: datetime | None = None,
    organizer_id: int | None = None,
    method: str = "offline",
    now: datetime | None = None,
) -> Payment:
    """Record ``amount`` (text, in the event's currency) paid for ``attendee``'s registration;
    return the payment with its receipt number. A party whose places were held for payment
    and owes nothing more is confirmed, and the receipt goes with its confirmation.
    PaymentError says what is wrong, and nothing is stored."""
    from .registration import (  # it imports payments
        companions_of,
        confirm_paid,
        lock_event,
        party_lead,
        record_change,
    )

    now = now or utcnow()
    event = session.get(Event, attendee.event_id)
    assert event is not None
    if not currency_known(event.currency):
        raise PaymentError("The event has no currency: set its prices first.")
    # Decided on the registration as it is, one change at a time: an expiry of its hold
    # (which takes the same lock) is either done, and the payment refused, or waits.
    lock_event(session, event)
    session.refresh(attendee)
    if attendee.status == STATUS_CANCELLED:
        raise PaymentError("This registration is cancelled: restore it before recording a payment.")
    try:
        minor = to_minor(parse_amount(amount, event.currency), event.currency)
    except MoneyError as exc:
        raise PaymentError(f"The amount: {exc}") from None
    if minor == 0:
        raise PaymentError("A payment is more than 0.")
    reference = reference.strip()
    if len(reference) > REFERENCE_LENGTH or has_control_characters(reference):
        raise PaymentError(f"The reference is one line of at most {REFERENCE_LENGTH} characters.")
    paid_at = paid_at or now
    if paid_at > now:
        raise PaymentError("A payment cannot be dated in the future.")
    payment = Payment(
        event_id=event.id,
        attendee_id=attendee.id,
        amount=minor,
        currency=event.currency,
        method=method,
        reference=reference,
        paid_at=paid_at,
        receipt_number=next_receipt_number(session, event.id),
        organizer_id=organizer_id,
        created_at=now,
    )
    session.add(payment)
    record_change(
        session,
        attendee,
        "payment",
        {
            "amount": [None, str(parse_amount(amount, event.currency))],
            "receipt": [None, payment.receipt_number],
            "reference": [None, reference],
        },
        organizer_id=organizer_id,
        now=now,
    )
    money_moved(event, attendee, now)
    session.flush()
    payer = party_lead(session, attendee)
    # Paid in full, a place held for payment is confirmed, and this is the confirmation.
    confirmed = confirm_paid(session, payer, now=now)
    outbox.queue_payment_received(
        session,
        event,
        payer,
        number=payment.receipt_number,
        amount=format_amount(minor, event.currency),
        receipt=receipt_pdf(receipt_lines(event, attendee, payment)),
        confirmed=companions_of(session, payer, status=STATUS_CONFIRMED) if confirmed else None,
        now=now,
    )
    return payment


def refund_payment(
    session: Session,
    payment: Payment,
    *,
    reference: str = "",
    organizer_id: int | None = None,
    now: datetime | None = None,
) -> None:
    """Record that ``payment``'s money was given back (its receipt keeps its number and says
    so); PaymentError for one refunded already or a reference that is not one line."""
    from .registration import record_change

    now = now or utcnow()
    if payment.refunded_at is not None:
        raise PaymentError(f"Receipt no. {payment.receipt_number} is refunded already.")
    reference = reference.strip()
    if len(reference) > REFERENCE_LENGTH or has_control_characters(reference):
        raise PaymentError(f"The reference is one line of at most {REFERENCE_LENGTH} characters.")
    payment.refunded_at, payment.refund_reference = now, reference
    attendee = session.get(Attendee, payment.attendee_id)
    assert attendee is not None
    record_change(
        session,
        attendee,
        "refund",
        {"receipt": [payment.receipt_number, payment.receipt_number], "refunded": [False, True]},
        organizer_id=organizer_id,
        now=now,
    )
    event = session.get(Event, attendee.event_id)
    assert event is not None
    money_moved(event, attendee, now)
    session.flush()


def payments_of(session: Session, attendee_id: int) -> list[Payment]:
    """The attendee's payments, oldest first."""
    return list(
        session.execute(
            select(Payment)
            .where(Payment.attendee_id == attendee_id)
            .order_by(Payment.paid_at, Payment.id)
        ).scalars()
    )


def amount_paid(session: Session, attendee_id: int) -> int:
    """What the attendee has paid, in minor units."""
    return session.execute(
        select(func.coalesce(func.sum(Payment.amount), 0)).where(
            Payment.attendee_id == attendee_id, _KEPT
        )
    ).scalar_one()


#: Payments whose money was kept (not refunded): the sums count only these.
_KEPT = Payment.refunded_at.is_(None)

#: The party an attendee belongs to: its lead's id (its own for a lead or someone alone).
PARTY = func.coalesce(Attendee.party_id, Attendee.id)


def party_dues(session: Session, lead: Attendee) -> tuple[int, int]:
    """(due, paid) of ``lead``'s party in minor units: the fees of the lead and of its
    companions still coming, and every payment made for any of them (the lead pays for the
    party)."""
    due = session.execute(
        select(func.coalesce(func.sum(Attendee.amount_due), 0)).where(
            lead.id == PARTY, Attendee.status != STATUS_CANCELLED
        )
    ).scalar_one()
    paid = session.execute(
        select(func.coalesce(func.sum(Payment.amount), 0))
        .join(Attendee, Attendee.id == Payment.attendee_id)
        .where(lead.id == PARTY, _KEPT)
    ).scalar_one()
    return int(due), int(paid)


def party_owed(session: Session, lead: Attendee) -> tuple[int, int]:
    """(due, still owed) of ``lead``'s party: nothing is owed while the party has no place."""
    due, paid = party_dues(session, lead)
    return due, max(due - paid, 0) if lead.holds_place else 0


def party_totals(event_id: int) -> tuple[Any, Any]:
    """Subqueries (party, due) of parties holding places (confirmed, or held until paid) and
    (party, paid) of every payment kept."""
    due = (
        select(PARTY.label("party"), func.sum(Attendee.amount_due).label("due"))
        .where(Attendee.event_id == event_id, Attendee.status.in_(HOLDING_STATUSES))
        .group_by(PARTY)
        .subquery()
    )
    paid = (
        select(PARTY.label("party"), func.sum(Payment.amount).label("paid"))
        .join(Attendee, Attendee.id == Payment.attendee_id)
        .where(Payment.event_id == event_id, _KEPT)
        .group_by(PARTY)
        .subquery()
    )
    return due, paid


@dataclass(frozen=True)
class Revenue:
    """Money of an event, in minor units: received (and kept), still owed by parties holding
    places, and given back."""

    received: int
    outstanding: int
    refunded: int = 0


def event_revenue(session: Session, event_id: int) -> Revenue:
    kept = func.coalesce(func.sum(case((_KEPT, Payment.amount), else_=0)), 0)
    refunded = func.coalesce(func.sum(case((_KEPT, 0), else_=Payment.amount)), 0)
    received, given_back = session.execute(
        select(kept, refunded).where(Payment.event_id == event_id)
    ).one()
    due, paid = party_totals(event_id)
    still = due.c.due - func.coalesce(paid.c.paid, 0)
    owed = session.execute(
        select(func.coalesce(func.sum(still), 0))
        .select_from(due)
        .outerjoin(paid, paid.c.party == due.c.party)
        .where(still > 0)
    ).scalar_one()
    return Revenue(int(received), int(owed), int(given_back))


def receipt_lines(event: Event, attendee: Attendee, payment: Payment) -> dict[str, Any]:
    """What a receipt says, for the PDF and the tests."""
    return {
        "issuer": event.hosts[0] if event.hosts else event.name,
        "event": event.name,
        "number": payment.receipt_number,
        "payer": attendee.full_name,
        "institution": attendee.institution,
        "code": attendee.code,
        "amount": payment.amount,
        "currency": payment.currency,
        "paid_at": payment.paid_at,
        "method": payment.method,
        "reference": payment.reference,
        "refunded_at": payment.refunded_at,
    }
