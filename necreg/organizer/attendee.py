"""Each attendee's page: details, party, consents, answers and history; correct, cancel,
restore, check in; export the person's data, erase it (privacy.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, time

from flask import Response, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from ..auth import organizer_required
from ..card_payments import (
    CARD,
    CardPaymentError,
    refund_cancelled,
    refund_card_payment,
    stripe_gateway,
)
from ..checkin import ALREADY, CHECKED_IN, check_in
from ..countries import country_name
from ..extensions import db
from ..models import Attendee, AttendeeChange, Payment, utcnow
from ..pages import event_attendee_or_404
from ..payments import (
    PaymentError,
    payment_terms,
    payments_of,
    record_payment,
    refund_payment,
)
from ..privacy import erase, person_data
from ..questions import Answers, answers_of, event_questions
from ..registration import (
    RegistrationError,
    cancel,
    companions_of,
    party_lead,
    restore,
    update_details,
    waitlist_position,
)
from . import bp
from .audit import audit
from .checkin import door_settings
from .exports import download
from .forms import ActionForm, AttendeeForm, PaymentForm

#: Why an erased registration's page has no buttons that change it.
ERASED_REFUSAL = "This registration's data was erased: it can no longer be changed."


def _render_attendee_page(
    attendee: Attendee,
    form: AttendeeForm,
    status: int = 200,
    error: str = "",
    payment_form: PaymentForm | None = None,
):
    history = (
        db.session.execute(
            select(AttendeeChange)
            .options(joinedload(AttendeeChange.organizer))
            .where(AttendeeChange.attendee_id == attendee.id)
            .order_by(AttendeeChange.changed_at.desc(), AttendeeChange.id.desc())
        )
        .scalars()
        .all()
    )
    # Questions no longer asked too: their answers were given and stay.
    questions = event_questions(db.session, attendee.event_id, retired=True)
    answers = answers_of(db.session, [attendee.id], questions).get(attendee.id, Answers())
    page = render_template(
        "organizer/attendee.html",
        event=attendee.event,
        questions=questions,
        answers=answers,
        attendee=attendee,
        form=form,
        action_form=ActionForm(),
        history=history,
        error=error,
        country_name=country_name,
        position=waitlist_position(db.session, attendee),
        lead=party_lead(db.session, attendee) if attendee.is_companion else None,
        payments=payments_of(db.session, attendee.id),
        card_refunds=current_app.config["PAYMENT_PROVIDER"] == "stripe",
        payment_form=payment_form or PaymentForm(formdata=None),
        party=[] if attendee.is_companion else companions_of(db.session, attendee),
        now=utcnow(),
    )
    return page, status


@bp.route("/attendees/<int:attendee_id>", methods=["GET", "POST"])
@organizer_required(admin=True)
def attendee(attendee_id: int):
    attendee = event_attendee_or_404(attendee_id)
    form = AttendeeForm.of(attendee)
    if not form.is_submitted():
        return _render_attendee_page(attendee, form)
    if attendee.erased_at is not None:
        return _render_attendee_page(attendee, form, 409, ERASED_REFUSAL)
    if not form.validate():
        return _render_attendee_page(attendee, form, 400)
    try:
        changes = update_details(
            db.session,
            attendee,
            form.values(),
            organizer_id=current_user.id,
            payment=payment_terms(current_app.config),
        )
    except RegistrationError as exc:
        db.session.rollback()
        return _render_attendee_page(attendee, form, 409, str(exc))
    db.session.commit()
    if changes:
        flash(f"Saved: {', '.join(sorted(changes))} changed.", "success")
    else:
        flash("Nothing changed.", "success")
    return redirect(url_for(".attendee", attendee_id=attendee.id), 303)


def _act_on_attendee(attendee_id: int, action: Callable[[Attendee], str]) -> Response:
    """Run ``action`` (a button on the attendee's page), commit, and go back to the page with
    the message it returns, or the RegistrationError it raises."""
    attendee = event_attendee_or_404(attendee_id)
    if not ActionForm().validate():
        abort(400)
    if attendee.erased_at is not None:
        flash(ERASED_REFUSAL, "error")
        return redirect(url_for(".attendee", attendee_id=attendee.id), 303)
    try:
        message = action(attendee)
    except RegistrationError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(url_for(".attendee", attendee_id=attendee.id), 303)
    db.session.commit()
    flash(message, "success")
    return redirect(url_for(".attendee", attendee_id=attendee.id), 303)


@bp.route("/attendees/<int:attendee_id>/cancel", methods=["GET", "POST"])
@organizer_required(admin=True)
def cancel_attendee(attendee_id: int):
    """GET asks "are you sure?" (the attendee gets an e-mail, places move); POST cancels."""
    if request.method != "POST":
        attendee = event_attendee_or_404(attendee_id)
        return render_template(
            "organizer/cancel.html",
            event=attendee.event,
            attendee=attendee,
            action_form=ActionForm(),
            position=waitlist_position(db.session, attendee),
        )

    def action(attendee: Attendee) -> str:
        promoted = cancel(
            db.session,
            attendee,
            organizer_id=current_user.id,
            payment=payment_terms(current_app.config),
        )
        refunded = refund_cancelled(db.session, stripe_gateway(current_app.config), attendee)
        names = ", ".join(p.full_name for p in promoted)
        return (
            "Registration cancelled."
            + (f" Card payments refunded: {refunded}." if refunded else "")
            + (f" Promoted from the waiting list: {names}." if names else "")
        )

    return _act_on_attendee(attendee_id, action)


@bp.post("/attendees/<int:attendee_id>/restore")
@organizer_required(admin=True)
def restore_attendee(attendee_id: int):
    def action(attendee: Attendee) -> str:
        restore(db.session, attendee, organizer_id=current_user.id)
        return f"Registration restored: {attendee.status}."

    return _act_on_attendee(attendee_id, action)


@bp.post("/attendees/<int:attendee_id>/check-in")
@organizer_required(admin=True)
def check_in_attendee(attendee_id: int):
    def action(attendee: Attendee) -> str:
        result = check_in(
            db.session,
            attendee.event,
            attendee.code,
            organizer_id=current_user.id,
            **door_settings(attendee.event),
        )
        if result.outcome not in {CHECKED_IN, ALREADY}:
            raise RegistrationError(result.message)
        return result.message

    return _act_on_attendee(attendee_id, action)


@bp.post("/attendees/<int:attendee_id>/payments")
@organizer_required(admin=True)
def record_attendee_payment(attendee_id: int):
    """Record a payment received outside the site; its receipt gets the next number."""
    attendee = event_attendee_or_404(attendee_id)
    payment_form = PaymentForm()
    form = AttendeeForm.of(attendee)
    if not payment_form.validate():
        return _render_attendee_page(attendee, form, 400, payment_form=payment_form)
    paid_on = payment_form.paid_on.data
    paid_at = None
    if paid_on:  # a day's payment at its noon where the event is; today's before noon, now
        now = utcnow()
        zone = attendee.event.zone
        paid_at = datetime.combine(paid_on, time(12), zone).astimezone(UTC)
        if paid_on == now.astimezone(zone).date():
            paid_at = min(paid_at, now)
    try:
        payment = record_payment(
            db.session,
            attendee,
            payment_form.amount.data or "",
            reference=payment_form.reference.data or "",
            paid_at=paid_at,
            organizer_id=current_user.id,
        )
    except PaymentError as exc:
        db.session.rollback()
        return _render_attendee_page(attendee, form, 400, str(exc), payment_form)
    number = payment.receipt_number
    db.session.commit()
    flash(f"Payment recorded: receipt no. {number}.", "success")
    return redirect(url_for(".attendee", attendee_id=attendee_id), 303)


@bp.post("/attendees/<int:attendee_id>/payments/<int:payment_id>/refund")
@organizer_required(admin=True)
def refund_attendee_payment(attendee_id: int, payment_id: int):
    """Record that a payment's money was given back."""
    attendee = event_attendee_or_404(attendee_id)
    payment = db.session.get(Payment, payment_id)
    if payment is None or payment.attendee_id != attendee.id:
        abort(404)
    if not ActionForm().validate():
        abort(400)
    gateway = stripe_gateway(current_app.config)
    try:
        if payment.method == CARD and gateway is not None:
            # Given back to the card through Stripe; its refund id is the reference.
            refund_card_payment(db.session, gateway, payment, organizer_id=current_user.id)
        else:
            refund_payment(
                db.session,
                payment,
                reference=request.form.get("refund_reference", ""),
                organizer_id=current_user.id,
            )
    except (PaymentError, CardPaymentError) as exc:
        db.session.rollback()
        return _render_attendee_page(attendee, AttendeeForm.of(attendee), 400, str(exc))
    number = payment.receipt_number
    db.session.commit()
    flash(f"Receipt no. {number} is recorded as refunded.", "success")
    return redirect(url_for(".attendee", attendee_id=attendee_id), 303)


@bp.get("/attendees/<int:attendee_id>/data.json")
@organizer_required(admin=True)
def export_attendee_data(attendee_id: int):
    """Everything kept about the person (privacy.person_data), as a JSON file; audited."""
    attendee = event_attendee_or_404(attendee_id)
    data = person_data(db.session, attendee, internal=True)
    audit("attendee.export", attendee.code, {"companions": len(data.get("companions", []))})
    db.session.commit()
    body = json.dumps(data, ensure_ascii=False, indent=2).encode()
    return download(body, f"attendee-{data['registration']['code']}.json", "application/json")


@bp.post("/attendees/<int:attendee_id>/erase")
@organizer_required(admin=True)
def erase_attendee(attendee_id: int):
    """Erase the person's data (privacy.erase), once the box saying so is ticked; audited."""
    attendee = event_attendee_or_404(attendee_id)
    if not ActionForm().validate():
        abort(400)
    back = redirect(url_for(".attendee", attendee_id=attendee.id), 303)
    if request.form.get("confirm") != "yes":
        flash("Nothing erased: tick the box to confirm that the data is to be erased.", "error")
        return back
    code = attendee.code
    try:
        done = erase(
            db.session,
            attendee,
            organizer_id=current_user.id,
            payment=payment_terms(current_app.config),
        )
    except RegistrationError as exc:  # ErasureError among them
        db.session.rollback()
        flash(str(exc), "error")
        return back
    audit(
        "attendee.erase",
        code,
        {
            "erased": [member.code for member in done.erased],
            "cancelled": done.cancelled,
            "promoted": len(done.promoted),
        },
    )
    db.session.commit()
    flash(
        f"Erased: {len(done.erased)} registration(s)"
        + (", cancelled first (their places are free)" if done.cancelled else "")
        + (f"; promoted from the waiting list: {len(done.promoted)}" if done.promoted else "")
        + ". Payments are kept for the accounts.",
        "success",
    )
    return back
