"""Card payments through Stripe (``PAYMENT_PROVIDER = "stripe"``).

How a person pays: the payment page collects the card with Stripe.js, which turns it into
a single-use token without the number ever reaching necreg; the page sends the token here
and ``pay_by_card`` makes a PaymentIntent of what the party owes (its metadata carries the
attendee code; one idempotency key per token, so a form sent twice charges once), confirmed
at once. A card that asks for 3-D Secure comes back ``requires_action`` and the page lets
Stripe.js finish it.

What necreg believes is what Stripe tells its webhook (``handle_event``), never the browser:
``payment_intent.succeeded`` records the payment (receipt number, confirmation of a held
place, the e-mail) in one transaction with the event's id, so an event delivered twice, or
a second event about the same PaymentIntent, changes nothing. A payment that arrives after
its hold expired is taken if the place can be had again, else refunded and the person told.
Cancelling before the event's ``refund_until`` refunds the card payments (``refund_cancelled``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import stripe
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .mail import outbox
from .models import (
    STATUS_CANCELLED,
    Attendee,
    Event,
    Payment,
    StripeEvent,
    utcnow,
)
from .money import format_amount, from_minor
from .payments import party_owed, record_payment, refund_payment
from .registration import RegistrationError, restore_expired

log = logging.getLogger("necreg.payments")

#: The webhook event that says a PaymentIntent's money arrived.
SUCCEEDED = "payment_intent.succeeded"
#: Card payments' ``method``.
CARD = "card"


class CardPaymentError(RegistrationError):
    """A card payment (or refund) that could not be made; ``str(exc)`` is for the person."""


@dataclass(frozen=True)
class StripeGateway:
    """The Stripe account necreg talks to, from the settings."""

    client: stripe.StripeClient
    publishable_key: str
    webhook_secret: str
    js_url: str
    api_base: str

    @property
    def js_origin(self) -> str:
        """Where Stripe.js comes from, for the payment page's Content-Security-Policy."""
        parts = urlsplit(self.js_url)
        return f"{parts.scheme}://{parts.netloc}"


def stripe_gateway(settings: Mapping[str, Any]) -> StripeGateway | None:
    """The gateway of the app's ``settings`` (None unless PAYMENT_PROVIDER is "stripe")."""
    if settings["PAYMENT_PROVIDER"] != "stripe":
        return None
    api_base = str(settings["STRIPE_API_BASE"]).rstrip("/")
    client = stripe.StripeClient(
        str(settings["STRIPE_SECRET_KEY"]), base_addresses={"api": api_base}, max_network_retries=2
    )
    return StripeGateway(
        client=client,
        publishable_key=str(settings["STRIPE_PUBLISHABLE_KEY"]),
        webhook_secret=str(settings["STRIPE_WEBHOOK_SECRET"]),
        js_url=str(settings["STRIPE_JS_URL"]),
        api_base=api_base,
    )


def card_page_policy(gateway: StripeGateway) -> str:
    """The payment page's Content-Security-Policy: the site's own, with Stripe.js allowed to
    load, to talk to its API and to show its card fields and 3-D Secure frames (Stripe's
    documented needs), and nothing else loosened."""
    from .web import CONTENT_SECURITY_POLICY

    stripe_js = gateway.js_origin
    api = urlsplit(gateway.api_base)
    frames = [stripe_js] + (["https://hooks.stripe.com"] if "stripe.com" in stripe_js else [])
    return CONTENT_SECURITY_POLICY.replace(
        "script-src 'self'", f"script-src 'self' {stripe_js}"
    ) + (
        f"; connect-src 'self' {stripe_js} {api.scheme}://{api.netloc}"
        f"; frame-src {' '.join(frames)}"
    )


@dataclass(frozen=True)
class CardAttempt:
    """What the payment page does next: done (``succeeded``, ``processing``), or let
    Stripe.js finish an authentication (``requires_action``, with the client secret)."""

    status: str
    client_secret: str


def pay_by_card(
    session: Session, gateway: StripeGateway, lead: Attendee, card_token: str
) -> CardAttempt:
    """Charge what ``lead``'s party owes to the card of ``card_token`` (made by Stripe.js).
    CardPaymentError says why it could not be: nothing owed, no place held, the card
    refused."""
    event = session.get(Event, lead.event_id)
    assert event is not None
    _due, owed = party_owed(session, lead)
    if not lead.holds_place:
        raise CardPaymentError("This registration has no place to pay for.")
    if owed <= 0:
        raise CardPaymentError("Nothing is owed: thank you.")
    if not card_token.startswith("tok_") or len(card_token) > 255:
        raise CardPaymentError("The card could not be read: please enter it again.")
    try:
        token = gateway.client.v1.tokens.retrieve(card_token)
        intent = gateway.client.v1.payment_intents.create(
            params={
                "amount": owed,
                "currency": event.currency.lower(),
                "payment_method": token.card.id,
                "confirm": True,
                "metadata": {"attendee_code": lead.code, "event": event.slug},
            },
            options={"idempotency_key": f"necreg-{lead.code}-{card_token}"},
        )
    except stripe.CardError as exc:
        raise CardPaymentError(exc.user_message or "The card was declined.") from None
    except stripe.InvalidRequestError:
        raise CardPaymentError("The card could not be read: please enter it again.") from None
    except stripe.StripeError:
        log.exception("Stripe refused a payment of %s", lead.code)
        raise CardPaymentError(
            "The payment service cannot be reached just now: please try again in a minute."
        ) from None
    return CardAttempt(intent.status, intent.client_secret or "")


def verified_event(gateway: StripeGateway, payload: bytes, signature: str) -> stripe.Event:
    """The webhook event of ``payload`` if Stripe signed it with the endpoint's secret less
    than five minutes ago; ValueError otherwise (also for a payload that is not an event)."""
    try:
        return stripe.Webhook.construct_event(payload, signature, gateway.webhook_secret)
    except stripe.SignatureVerificationError as exc:
        raise ValueError(f"signature refused: {exc.user_message or exc}") from None


def handle_event(
    session: Session,
    gateway: StripeGateway,
    event_id: str,
    event_type: str,
    intent: Mapping[str, Any],
    *,
    now: datetime | None = None,
) -> str:
    """Act on a verified webhook event once: return what it did ("duplicate", "ignored",
    "recorded", "refunded"). The caller commits (and a failure rolls back, so Stripe's
    retry finds the event not yet seen)."""
    now = now or utcnow()
    try:
        with session.begin_nested():
            session.add(StripeEvent(id=event_id, type=event_type, received_at=now))
    except IntegrityError:
        return "duplicate"
    if event_type != SUCCEEDED:
        return "ignored"
    intent_id = str(intent["id"])
    code = str((intent.get("metadata") or {}).get("attendee_code", ""))
    attendee = session.execute(select(Attendee).where(Attendee.code == code)).scalar_one_or_none()
    if attendee is None:
        log.warning("Stripe payment %s names no registration (%r)", intent_id, code)
        return "ignored"
    seen = session.execute(
        select(Payment.id).where(Payment.method == CARD, Payment.reference == intent_id)
    ).first()
    if seen is not None:
        return "duplicate"  # another event about the same PaymentIntent came first
    event = session.get(Event, attendee.event_id)
    assert event is not None
    amount = int(intent.get("amount_received") or intent["amount"])
    if str(intent["currency"]).upper() != event.currency:
        log.error(
            "Stripe payment %s is in %s, not %s", intent_id, intent["currency"], event.currency
        )
        return "ignored"
    if attendee.status == STATUS_CANCELLED and not restore_expired(session, attendee, now=now):
        _refund_late(session, gateway, event, attendee, intent_id, amount, now)
        return "refunded"
    record_payment(
        session,
        attendee,
        str(from_minor(amount, event.currency)),
        reference=intent_id,
        method=CARD,
        now=now,
    )
    return "recorded"


def _refund_late(
    session: Session,
    gateway: StripeGateway,
    event: Event,
    attendee: Attendee,
    intent_id: str,
    amount: int,
    now: datetime,
) -> None:
    """Give back a payment that came too late for a place, and tell the person."""
    from .registration import record_change

    refund = gateway.client.v1.refunds.create(
        params={"payment_intent": intent_id},
        options={"idempotency_key": f"necreg-late-{intent_id}"},
    )
    record_change(
        session,
        attendee,
        "late_payment_refunded",
        {
            "payment": [intent_id, refund.id],
            "amount": [None, str(from_minor(amount, event.currency))],
        },
        now=now,
    )
    outbox.queue_late_refund(
        session, event, attendee, amount=format_amount(amount, event.currency), now=now
    )


def refund_cancelled(
    session: Session,
    gateway: StripeGateway | None,
    lead: Attendee,
    *,
    now: datetime | None = None,
) -> int:
    """After ``lead``'s registration is cancelled: before the event's ``refund_until``, give
    back its party's card payments through Stripe (each once: an idempotency key per
    payment); after it, or for a companion cancelled alone, nothing. Returns how many were
    refunded; CardPaymentError when Stripe cannot be reached (the caller rolls back)."""
    from .payments import PARTY

    if gateway is None or lead.party_id is not None:
        return 0
    now = now or utcnow()
    event = session.get(Event, lead.event_id)
    assert event is not None
    if event.refund_until is None or now > event.refund_until:
        return 0
    paid = session.execute(
        select(Payment)
        .join(Attendee, Attendee.id == Payment.attendee_id)
        .where(lead.id == PARTY, Payment.method == CARD, Payment.refunded_at.is_(None))
        .order_by(Payment.id)
    ).scalars()
    refunded = 0
    for payment in paid:
        refund_card_payment(session, gateway, payment, now=now)
        refunded += 1
    return refunded


def refund_card_payment(
    session: Session,
    gateway: StripeGateway,
    payment: Payment,
    *,
    organizer_id: int | None = None,
    now: datetime | None = None,
) -> None:
    """Give ``payment``'s money back to the card through Stripe (once: its idempotency key
    is the payment's) and record it, with Stripe's refund id as the reference.
    CardPaymentError when Stripe cannot do it (nothing is recorded)."""
    if payment.refunded_at is not None:
        raise CardPaymentError(f"Receipt no. {payment.receipt_number} is refunded already.")
    try:
        refund = gateway.client.v1.refunds.create(
            params={"payment_intent": payment.reference},
            options={"idempotency_key": f"necreg-refund-{payment.id}"},
        )
    except stripe.StripeError:
        log.exception("Stripe refused to refund %s", payment.reference)
        raise CardPaymentError(
            "The card payment could not be refunded just now, so nothing was changed:"
            " please try again in a minute."
        ) from None
    refund_payment(session, payment, reference=refund.id, organizer_id=organizer_id, now=now)
