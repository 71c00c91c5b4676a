"""The attendee's side: landing page, registration, confirmation and self-service."""

from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    get_flashed_messages,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_limiter.errors import RateLimitExceeded

from ..countries import country_name
from ..extensions import db, limiter
from ..formats import email_key
from ..models import MAX_LENGTHS, STATUS_CANCELLED, Attendee, Event, utcnow
from ..pages import (
    CSRF_SLOT,
    current_event_or_404,
    current_snapshot,
    questions_of,
    with_visitor_csrf,
)
from ..questions import Answers, answers_of, clean_answers, error_links, sent_values
from ..registration import (
    AlreadyCancelled,
    NoRoom,
    RegistrationError,
    add_companion,
    cancel,
    companions_of,
    current_event,
    find_by_token,
    register,
    resend_links,
    room_left,
    update_answers,
    update_consents,
    update_details,
    waitlist_position,
)
from ..speed.memo import kept
from ..stats import COUNTERS, Snapshot, event_stats
from .companions import CompanionRows, blank_rows, read_rows
from .forms import CancelForm, DetailsForm, LostLinkForm, RegistrationForm

bp = Blueprint("public", __name__)

#: Headers of every page reached through a personal link: never cached, never indexed.
PRIVATE = {"Cache-Control": "no-store", "X-Robots-Tag": "noindex"}


def _threshold() -> int:
    return int(current_app.config["PLACES_LEFT_THRESHOLD"])


@bp.get("/")
def landing():
    snapshot = current_snapshot()
    if snapshot is None:
        return render_template("public/no_event.html")
    # The page is the same for every visitor until a count, the event or the window changes.
    return kept("landing", snapshot, lambda: _render_landing(snapshot), watched=False)


def _render_landing(snapshot: Snapshot) -> str:
    event = db.session.get(Event, snapshot.event_id)
    return render_template(
        "public/landing.html",
        event=event,
        stats=event_stats(db.session, event),
        etag=snapshot.etag(),  # what /api/stats answers, so the page's first poll is a 304
        counters=COUNTERS,
        registration_open=snapshot.registration_open,
        refresh_seconds=current_app.config["STATS_REFRESH_SECONDS"],
        room=room_left(db.session, event),
        threshold=_threshold(),
    )


def _render_form_page(
    form: RegistrationForm,
    event: Event,
    status: int = 200,
    is_open: bool | None = None,
    answers: dict[str, list[str]] | None = None,
    answer_errors: dict[str, str] | None = None,
    companions: CompanionRows | None = None,
):
    """The form page; ``answers``: what to show in the questions' inputs (input name ->
    values), ``answer_errors``: a message per question key; ``companions``: the companion
    rows as sent."""
    if is_open is None:
        is_open = event.registration_open(utcnow())
    room = room_left(db.session, event)
    form.show_room(room, _threshold())
    questions = questions_of(event)
    companions = companions or blank_rows(event.max_guests)
    page = render_template(
        "public/register.html",
        form=form,
        event=event,
        is_open=is_open,
        room=room,
        threshold=_threshold(),
        questions=questions,
        answers=answers or {},
        answer_errors=answer_errors or {},
        companions=companions,
        more_errors=error_links(questions, answer_errors or {}) + companions.errors,
    )
    return page, status


def _blank_form():
    """The empty form is the same for every visitor but for the CSRF token: it is rendered once
    per snapshot (counts, event, window), and each visitor's token is put into it."""
    snapshot = current_snapshot()
    if snapshot is None:
        abort(404)

    def render() -> str:
        form = RegistrationForm()
        form.csrf_token.current_token = CSRF_SLOT
        event = db.session.get(Event, snapshot.event_id)
        page, _status = _render_form_page(form, event, is_open=snapshot.registration_open)
        return page

    page = kept("register_form", snapshot, render, watched=False)
    return with_visitor_csrf(page)


@bp.route("/register", methods=["GET", "POST"])
def register_page():
    if request.method in ("GET", "HEAD"):
        return _blank_form()
    event = current_event_or_404()
    form = RegistrationForm()
    if not event.registration_open(utcnow()):
        return _render_form_page(form, event, 403)
    questions = questions_of(event)
    answers, answer_errors = clean_answers(questions, form.role.data, request.form)
    sent = sent_values(questions, request.form)
    rows = read_rows(request.form, event.max_guests)
    if not form.validate() or answer_errors or rows.errors:
        return _render_form_page(
            form, event, 400, answers=sent, answer_errors=answer_errors, companions=rows
        )
    try:
        attendee = register(
            db.session,
            event,
            form.registrant(event),
            code_prefix=_code_prefix(),
            guests=rows.companions,
            questions=questions,
            answers=answers,
        )
    except RegistrationError as exc:
        db.session.rollback()
        form.email.errors = [*form.email.errors, str(exc)]
        return _render_form_page(form, event, 409, answers=sent, companions=rows)
    token = attendee.token  # read before the commit expires it, or it is loaded again
    db.session.commit()
    return redirect(url_for(".registration", token=token), 303)


def _code_prefix() -> str:
    return current_app.config["ATTENDEE_CODE_PREFIX"]


def _attendee_or_404(token: str) -> Attendee:
    attendee = find_by_token(db.session, token)
    if attendee is None:
        abort(404)
    return attendee


def _registration_page(
    attendee: Attendee,
    form: DetailsForm | None = None,
    status: int = 200,
    sent: dict[str, list[str]] | None = None,
    answer_errors: dict[str, str] | None = None,
    companion_rows: CompanionRows | None = None,
):
    """The self-service page; ``sent`` and ``answer_errors``: the questions' inputs as sent
    and their errors, when the details were refused; ``companion_rows``: the companion to
    add as sent, when it was refused."""
    event = attendee.event
    questions = questions_of(event)
    stored = answers_of(db.session, [attendee.id], questions).get(attendee.id, Answers())
    party = _party_of(attendee)
    if form is None and attendee.status != STATUS_CANCELLED and not attendee.is_companion:
        form = DetailsForm.of(attendee)
    if form is not None:
        form.show_room(room_left(db.session, event), _threshold(), keep=attendee.role)
    page = render_template(
        "public/registration.html",
        attendee=attendee,
        event=event,
        country=country_name(attendee.country),
        position=waitlist_position(db.session, attendee),
        form=form,
        notices=get_flashed_messages(),
        party=party,
        can_add=_can_add_companion(attendee, party),
        add_rows=companion_rows or blank_rows(1),
        remove_form=CancelForm(),
        questions=questions,
        asked=[q for q in questions if q.asked_of(attendee.role)],
        stored=stored,
        answers=stored.form_values(questions) if sent is None else sent,
        answer_errors=answer_errors or {},
        more_errors=error_links(questions, answer_errors or {}),
    )
    return page, status, PRIVATE


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
def registration(token: str):
    """The confirmation and self-service page; POST corrects the details."""
    attendee = _attendee_or_404(token)
    form = DetailsForm()
    if not form.is_submitted():
        return _registration_page(attendee)
    if attendee.status == STATUS_CANCELLED or attendee.is_companion:
        return _registration_page(attendee, status=409)
    questions = questions_of(attendee.event)
    answers, answer_errors = clean_answers(questions, form.role.data, request.form)
    sent = sent_values(questions, request.form)
    if not form.validate() or answer_errors:
        return _registration_page(attendee, form, 400, sent, answer_errors)
    try:
        changes = update_details(db.session, attendee, form.details(attendee.event))
    except NoRoom as exc:
        db.session.rollback()
        where = form.role if exc.pool == "role" else form.attendance
        where.errors = [*where.errors, str(exc)]
        return _registration_page(attendee, form, 409, sent)
    changes |= update_answers(db.session, attendee, questions, answers)
    changes |= update_consents(db.session, attendee, form.consents())
    db.session.commit()
    flash("Your details are saved." if changes else "Nothing was changed.")
    return redirect(url_for(".registration", token=token), 303)


@bp.post("/registration/<token>/companions")
def add_companion_page(token: str):
    """The lead registrant adds a companion to their party (one row, ``guests-0-*``)."""
    attendee = _attendee_or_404(token)
    if not CancelForm().validate():
        abort(400)
    if not _can_add_companion(attendee, _party_of(attendee)):
        return _registration_page(attendee, status=409)
    rows = read_rows(request.form, 1)
    if rows.errors or not rows.companions:
        if not rows.errors:
            rows.rows[0].errors["first_name"] = "Please enter your companion's first name."
        return _registration_page(attendee, status=400, companion_rows=rows)
    try:
        companion = add_companion(
            db.session, attendee, rows.companions[0], code_prefix=_code_prefix()
        )
    except RegistrationError as exc:
        db.session.rollback()
        rows.rows[0].errors["first_name"] = str(exc)
        return _registration_page(attendee, status=409, companion_rows=rows)
    flash(f"{companion.full_name} is added to your party, with the code {companion.code}.")
    db.session.commit()
    return redirect(url_for(".registration", token=token), 303)


@bp.post("/registration/<token>/companions/<int:companion_id>/remove")
def remove_companion(token: str, companion_id: int):
    """The lead registrant cancels one companion's place; the rest of the party stays."""
    attendee = _attendee_or_404(token)
    if not CancelForm().validate():
        abort(400)
    companion = db.session.get(Attendee, companion_id)
    if companion is None or companion.party_id != attendee.id:
        abort(404)
    name = companion.full_name
    try:
        cancel(db.session, companion)
    except AlreadyCancelled:
        db.session.rollback()
    else:
        db.session.commit()
        flash(f"{name} no longer comes with you.")
    return redirect(url_for(".registration", token=token), 303)


@bp.route("/registration/<token>/cancel", methods=["GET", "POST"])
def cancel_registration(token: str):
    """Are you sure? GET asks, POST cancels; a cancelled registration stays cancelled."""
    attendee = _attendee_or_404(token)
    form = CancelForm()
    if form.is_submitted() and attendee.status != STATUS_CANCELLED:
        if not form.validate():
            abort(400)
        try:
            cancel(db.session, attendee)
        except AlreadyCancelled:
            # Cancelled by a request that won the lock meanwhile: the outcome stands.
            db.session.rollback()
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


def _lost_link_limit() -> str:
    return current_app.config["LOST_LINK_RATE_LIMIT"]


def _lost_link_email_key() -> str:
    """Rate-limit key of the address asked about, whoever asks from wherever."""
    return "lost-link-email:" + email_key(request.form.get("email", ""))[: MAX_LENGTHS["email"]]


@bp.route("/registration/lost-link", methods=["GET", "POST"])
@limiter.limit(_lost_link_limit, methods=["POST"])
@limiter.limit(_lost_link_limit, methods=["POST"], key_func=_lost_link_email_key)
def lost_link():
    """Re-send the self-service link; the answer never says whether the address is known."""
    event = current_event_or_404()
    form = LostLinkForm()
    if not form.is_submitted():
        return render_template("public/lost_link.html", form=form, event=event)
    if not form.validate():
        return render_template("public/lost_link.html", form=form, event=event), 400
    resend_links(db.session, event, form.email.data)
    db.session.commit()
    return redirect(url_for(".lost_link_sent"), 303)


@bp.errorhandler(RateLimitExceeded)
def too_many_link_requests(exc: RateLimitExceeded):
    """The same answer whether or not the address is registered, as for every lost link."""
    message = (
        "Links were asked for too often from here or for this address "
        f"(at most {exc.description}). Please try again later, or write to the organizers."
    )
    page = render_template(
        "public/lost_link.html", form=LostLinkForm(), event=current_event_or_404(), failure=message
    )
    return page, 429


@bp.get("/registration/lost-link/sent")
def lost_link_sent():
    return render_template("public/lost_link_sent.html", event=current_event_or_404())


@bp.get("/privacy")
def privacy():
    return render_template("public/privacy.html", event=current_event(db.session))
