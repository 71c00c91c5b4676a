"""Paying by card (Stripe): the card form's token taken to a payment, and Stripe's webhook,
which alone says that money arrived (card_payments.py)."""

from __future__ import annotations

import logging

from flask import abort, current_app, flash, redirect, request, url_for

from ..card_payments import (
    CardPaymentError,
    handle_event,
    pay_by_card,
    stripe_gateway,
    verified_event,
)
from ..extensions import csrf, db
from ..payments import PaymentError
from . import bp
from .selfservice import attendee_or_404, pay_page, self_service_limit

log = logging.getLogger("necreg.payments")


@bp.post("/registration/<token>/pay")
@self_service_limit
def pay_card(token: str):
    """Charge the card Stripe.js made ``stripe_token`` of: done, back to the registration;
    a card that asks for 3-D Secure, the page again for Stripe.js to finish; refused, the
    page with why."""
    attendee = attendee_or_404(token)
    gateway = stripe_gateway(current_app.config)
    if gateway is None or attendee.is_companion:
        abort(404)
    try:
        attempt = pay_by_card(db.session, gateway, attendee, request.form.get("stripe_token", ""))
    except CardPaymentError as exc:
        db.session.rollback()
        return pay_page(attendee, card_error=str(exc))
    if attempt.status == "requires_action":
        return pay_page(attendee, client_secret=attempt.client_secret)
    flash("Thank you: your payment is received. Your receipt follows by e-mail.")
    return redirect(url_for(".registration", token=token), 303)


@bp.post("/payments/stripe/webhook")
@csrf.exempt
def stripe_webhook():
    """Stripe's events, verified by their signature and acted on once each."""
    gateway = stripe_gateway(current_app.config)
    if gateway is None:
        abort(404)
    try:
        event = verified_event(
            gateway, request.get_data(), request.headers.get("Stripe-Signature", "")
        )
    except ValueError as exc:
        log.warning("Stripe webhook refused: %s", exc)
        return {"error": "invalid signature"}, 400
    try:
        outcome = handle_event(
            db.session, gateway, event.id, event.type, event.data.object.to_dict()
        )
    except PaymentError as exc:  # e.g. an event with no currency: nothing to record
        db.session.rollback()
        log.error("Stripe event %s not recorded: %s", event.id, exc)
        return {"error": str(exc)}, 422
    db.session.commit()
    return {"received": outcome}, 200
