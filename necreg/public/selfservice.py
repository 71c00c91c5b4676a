"""A registration's private page (its link is its only key): details, answers, consents,
the party with its companions, and cancellation."""

from __future__ import annotations

from flask import (
    abort,
    current_app,
    flash,
    get_flashed_messages,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)

from ..card_payments import CardPaymentError, card_page_policy, refund_cancelled, stripe_gateway
from ..countries import country_name
from ..extensions import db, limiter
from ..mail.outbox import payment_instructions
from ..models import STATUS_CANCELLED, SUPPORT_DECISIONS, Attendee
from ..pages import questions_of
from ..payments import party_owed, payment_terms, payments_of, receipt_lines
from ..questions import Answers, answers_of, clean_answers, error_links, sent_values
from ..receipts_pdf import receipt_pdf
from ..registration import (
    AlreadyCancelled,
    NoRoom,
    RegistrationError,
    add_companion,
    cancel,
    companions_of,
    find_by_token,
    room_left,
    update_answers,
    update_consents,
    update_details,
    waitlist_position,
)
from . import bp, code_prefix, threshold
from .companions import CompanionRows, blank_rows, read_rows
from .forms import CancelForm, DetailsForm

#: Headers of every page reached through a personal link: never cached, never indexed.
PRIVATE = {"Cache-Control": "no-store", "X-Robots-Tag": "noindex"}


def _self_service_limit() -> str:
    return current_app.config["SELF_SERVICE_RATE_LIMIT"]


#: Changes sent from personal links (details, party, cancellation, workshops, support,
#: payment): SELF_SERVICE_RATE_LIMIT per client address, all of them together.
self_service_limit = limiter.shared_limit(
    _self_service_limit, scope="self-service", methods=["POST"]
)


def attendee_or_404(token: str) -> Attendee:
    attendee = find_by_token(db.session, token)
    if attendee is None:
        abort(404)
    return attendee


def registration_page(
    attendee: Attendee,
    form: DetailsForm | None = None,
    status: int = 200,
    sent: dict[str, list[str]] | None = None,
    answer_errors: dict[str, str] | None = None,
    companion_rows: CompanionRows | None = None,
    program_error: str = "",
    support_error: str = "",
):
    """The self-service page; ``sent`` and ``answer_errors``: the questions' inputs as sent
    and their errors, when the details were refused; ``companion_rows``: the companion to
    add as sent, when it was refused; ``program_error``: why the workshops were refused."""
    from .program import program_view  # its views use this page

    event = attendee.event
    questions = questions_of(event)
    stored = answers_of(db.session, [attendee.id], questions).get(attendee.id, Answers())
    party = _party_of(attendee)
    if form is None and attendee.status != STATUS_CANCELLED and not attendee.is_companion:
        form = DetailsForm.of(attendee)
    if form is not None:
        form.show_room(room_left(db.session, event), threshold(), keep=attendee.role)
    page = render_template(
        "public/registration.html",
        attendee=attendee,
        event=event,
        country=country_name(attendee.country),
        position=waitlist_position(db.session, attendee),
        form=form,
        notices=get_flashed_messages(),
        party=party,
        # Payments need the event's currency: none to read without it.
        payments=payments_of(db.session, attendee.id) if event.currency else [],
        pay_online=_collecting() and attendee.holds_place,
        can_add=_can_add_companion(attendee, party),
        add_rows=companion_rows or blank_rows(1),
        remove_form=CancelForm(),
        questions=questions,
        asked=[q for q in questions if q.asked_of(attendee.role)],
        stored=stored,
        answers=stored.form_values(questions) if sent is None else sent,
        answer_errors=answer_errors or {},
        more_errors=error_links(questions, answer_errors or {}),
        program_error=program_error,
        support_error=support_error,
        support_decisions=SUPPORT_DECISIONS,
        **program_view(attendee),
    )
    return page, status, PRIVATE


def limited_page(limit: str):
    """The registration's page, saying that changes were sent too often (429)."""
    attendee = attendee_or_404(str((request.view_args or {}).get("token", "")))
    flash(
        f"Changes were sent too often from here (at most {limit}). Nothing was changed;"
        " please try again in a minute."
    )
    return registration_page(attendee, status=429)


def _party_of(attendee: Attendee) -> list[Attendee]:
    """The companions a lead brings, those still coming first (none for a companion)."""
    if attendee.is_companion:
        return []
    party = companions_of(db.session, attendee)
    return sorted(party, key=lambda c: c.status == STATUS_CANCELLED)


def _can_add_companion(attendee: Attendee, party: list[Attendee]) -> bool:
    """Whether the lead ``attendee`` with the companions ``party`` may bring one more."""
    if attendee.is_companion or attendee.status == STATUS_CANCELLED:
        return False
    coming = [c for c in party if c.status != STATUS_CANCELLED]
    return len(coming) < attendee.event.max_guests


@bp.route("/registration/<token>", methods=["GET", "POST"])
@self_service_limit
def registration(token: str):
    """The confirmation and self-service page; POST corrects the details."""
    attendee = attendee_or_404(token)
    form = DetailsForm()
    if not form.is_submitted():
        return registration_page(attendee)
    if attendee.status == STATUS_CANCELLED or attendee.is_companion:
        return registration_page(attendee, status=409)
    questions = questions_of(attendee.event)
    answers, answer_errors = clean_answers(questions, form.role.data, request.form)
    sent = sent_values(questions, request.form)
    if not form.validate() or answer_errors:
        return registration_page(attendee, form, 400, sent, answer_errors)
    try:
        changes = update_details(
            db.session,
            attendee,
            form.details(attendee.event),
            payment=payment_terms(current_app.config),
        )
    except NoRoom as exc:
        db.session.rollback()
        where = form.role if exc.pool == "role" else form.attendance
        where.errors = [*where.errors, str(exc)]
        return registration_page(attendee, form, 409, sent)
    changes |= update_answers(db.session, attendee, questions, answers)
    changes |= update_consents(db.session, attendee, form.consents())
    db.session.commit()
    flash("Your details are saved." if changes else "Nothing was changed.")
    return redirect(url_for(".registration", token=token), 303)


@bp.post("/registration/<token>/companions")
@self_service_limit
def add_companion_page(token: str):
    """The lead registrant adds a companion to their party (one row, ``guests-0-*``)."""
    attendee = attendee_or_404(token)
    if not CancelForm().validate():
        abort(400)
    if not _can_add_companion(attendee, _party_of(attendee)):
        return registration_page(attendee, status=409)
    rows = read_rows(request.form, 1)
    if rows.errors or not rows.companions:
        if not rows.errors:
            rows.rows[0].errors["first_name"] = "Please enter your companion's first name."
        return registration_page(attendee, status=400, companion_rows=rows)
    try:
        companion = add_companion(
            db.session, attendee, rows.companions[0], code_prefix=code_prefix()
        )
    except RegistrationError as exc:
        db.session.rollback()
        rows.rows[0].errors["first_name"] = str(exc)
        return registration_page(attendee, status=409, companion_rows=rows)
    flash(f"{companion.full_name} is added to your party, with the code {companion.code}.")
    db.session.commit()
    return redirect(url_for(".registration", token=token), 303)


@bp.post("/registration/<token>/companions/<int:companion_id>/remove")
@self_service_limit
def remove_companion(token: str, companion_id: int):
    """The lead registrant cancels one companion's place; the rest of the party stays."""
    attendee = attendee_or_404(token)
    if not CancelForm().validate():
        abort(400)
    companion = db.session.get(Attendee, companion_id)
    if companion is None or companion.party_id != attendee.id:
        abort(404)
    name = companion.full_name
    try:
        cancel(db.session, companion, payment=payment_terms(current_app.config))
    except AlreadyCancelled:
        db.session.rollback()
    else:
        db.session.commit()
        flash(f"{name} no longer comes with you.")
    return redirect(url_for(".registration", token=token), 303)


@bp.route("/registration/<token>/cancel", methods=["GET", "POST"])
@self_service_limit
def cancel_registration(token: str):
    """Are you sure? GET asks, POST cancels; a cancelled registration stays cancelled."""
    attendee = attendee_or_404(token)
    form = CancelForm()
    if form.is_submitted() and attendee.status != STATUS_CANCELLED:
        if not form.validate():
            abort(400)
        try:
            cancel(db.session, attendee, payment=payment_terms(current_app.config))
            refund_cancelled(db.session, stripe_gateway(current_app.config), attendee)
        except AlreadyCancelled:
            # Cancelled by a request that won the lock meanwhile: the outcome stands.
            db.session.rollback()
        except CardPaymentError as exc:
            db.session.rollback()
            flash(str(exc))
        else:
            db.session.commit()
            flash("Your registration is cancelled. A confirmation is on its way to your e-mail.")
        return redirect(url_for(".registration", token=token), 303)
    if form.is_submitted():
        return redirect(url_for(".registration", token=token), 303)
    page = render_template(
        "public/cancel.html",
        attendee=attendee,
        event=attendee.event,
        form=form,
        position=waitlist_position(db.session, attendee),
    )
    return page, 200, PRIVATE


@bp.get("/registration/<token>/receipt.pdf")
def receipt(token: str):
    """A receipt of the registration's payments: ``number`` (default the latest)."""
    attendee = attendee_or_404(token)
    payments = payments_of(db.session, attendee.id)
    number = request.args.get("number", type=int)
    chosen = [p for p in payments if number is None or p.receipt_number == number]
    if not chosen:
        abort(404)
    pdf = receipt_pdf(receipt_lines(attendee.event, attendee, chosen[-1]))
    response = make_response(pdf)
    response.headers.update(PRIVATE)
    response.headers["Content-Type"] = "application/pdf"
    name = f"receipt-{attendee.event.slug}-{chosen[-1].receipt_number}.pdf"
    response.headers["Content-Disposition"] = f'inline; filename="{name}"'
    return response


def _collecting() -> bool:
    """Fees are paid through the site (a payment provider is set)."""
    return current_app.config["PAYMENT_PROVIDER"] != "none"


@bp.get("/registration/<token>/pay")
def pay(token: str):
    """How to pay the party's fees: what is owed, what was paid, and the organizers'
    instructions (offline) or the card form (Stripe)."""
    attendee = attendee_or_404(token)
    if not _collecting() or attendee.is_companion:
        abort(404)
    return pay_page(attendee)


def pay_page(attendee: Attendee, *, card_error: str = "", client_secret: str = ""):
    """The payment page; with Stripe, the card form (``card_error``: why the last try
    failed; ``client_secret``: a payment Stripe.js is to authenticate) and a
    Content-Security-Policy that lets Stripe.js in, on this page only."""
    due, owed = party_owed(db.session, attendee)
    gateway = stripe_gateway(current_app.config)
    page = render_template(
        "public/pay.html",
        attendee=attendee,
        event=attendee.event,
        party=[c for c in _party_of(attendee) if c.status != STATUS_CANCELLED],
        payments=payments_of(db.session, attendee.id),
        due=due,
        owed=owed,
        instructions=payment_instructions(current_app.config["PAYMENT_PROVIDER"]),
        gateway=gateway,
        card_error=card_error,
        client_secret=client_secret,
    )
    headers = dict(PRIVATE)
    if gateway is not None:
        headers["Content-Security-Policy"] = card_page_policy(gateway)
    return page, 400 if card_error else 200, headers
