"""The landing page with its counters, the registration form and the privacy notice."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from flask import abort, current_app, redirect, render_template, request, url_for
from itsdangerous import BadSignature, Signer
from sqlalchemy import select

from ..events import past_editions
from ..extensions import db, limiter
from ..fees import FeeError, offered, prices_json, tiers
from ..metrics import count_registration
from ..models import Event, utcnow
from ..pages import (
    CSRF_SLOT,
    current_event_or_404,
    current_snapshot,
    prices_of,
    program_of,
    questions_of,
    with_visitor_csrf,
)
from ..payments import payment_terms
from ..program import ProgramError, agenda_days, check_choices
from ..questions import clean_answers, error_links, sent_values
from ..registration import RegistrationError, current_event, register_with_fee, room_left
from ..speed.memo import kept
from ..stats import COUNTERS, Snapshot, event_stats
from ..support import SupportError
from . import bp, code_prefix, threshold
from .companions import CompanionRows, blank_rows, read_rows
from .forms import RegistrationForm


@bp.get("/")
def landing():
    snapshot = current_snapshot()
    if snapshot is None:
        return render_template("public/no_event.html")
    # The page is the same for every visitor until a count, the event, the window or the
    # prices still offered change.
    key = (snapshot, offered(prices_of(snapshot), utcnow()))
    return kept("landing", key, lambda: _render_landing(snapshot), watched=False)


def _render_landing(snapshot: Snapshot) -> str:
    event = db.session.get(Event, snapshot.event_id)
    return _event_page(
        event,
        live=True,
        presented=snapshot.over,
        registration_open=snapshot.registration_open,
        etag=snapshot.etag(),  # what /api/stats answers, so the page's first poll is a 304
        refresh_seconds=current_app.config["STATS_REFRESH_SECONDS"],
    )


def _event_page(event: Event, *, presented: bool, **context: object) -> str:
    """An event's page: while it is to come, with the form's way in; once it is over (an
    edition, ``presented``), as presented, with its final figures and the earlier ones."""
    earlier = presented and bool(past_editions(db.session, utcnow(), but=event.id))
    return render_template(
        "public/landing.html",
        event=event,
        stats=event_stats(db.session, event),
        counters=COUNTERS,
        presented=presented,
        other_editions=earlier,
        room=room_left(db.session, event),
        threshold=threshold(),
        tiers=tiers(prices_of(event), utcnow()),
        **agenda_context(event),
        **context,
    )


@bp.get("/editions")
def editions():
    """The meetings held so far, newest first, each with its page."""
    return render_template(
        "public/editions.html",
        editions=past_editions(db.session, utcnow()),
        event=current_event(db.session),
    )


@bp.get("/editions/<slug>")
def edition(slug: str):
    """A meeting that was held, as presented, with its final figures; the current event's
    page is ``/``."""
    event = db.session.execute(select(Event).where(Event.slug == slug)).scalar_one_or_none()
    if event is None or not event.is_over(utcnow()):
        abort(404)
    if event.is_current:
        return redirect(url_for(".landing"))  # not for good: another event becomes current
    return _event_page(event, live=False, presented=True, registration_open=False)


def agenda_context(event: Event) -> dict[str, object]:
    """What the agenda macro needs: the program by day, in the event's time zone."""
    zone = event.zone
    agenda = agenda_days(program_of(event), zone)
    return {"agenda": agenda, "zone": zone, "zone_name": event.timezone}


def _render_form_page(
    form: RegistrationForm,
    event: Event,
    status: int = 200,
    is_open: bool | None = None,
    answers: dict[str, list[str]] | None = None,
    answer_errors: dict[str, str] | None = None,
    companions: CompanionRows | None = None,
    chosen_program: Sequence[str] = (),
    program_error: str = "",
    shown_stamp: str | None = None,
    failure: str = "",
):
    """The form page; ``answers``: what to show in the questions' inputs (input name ->
    values), ``answer_errors``: a message per question key; ``companions``: the companion
    rows as sent; ``chosen_program``, ``program_error``: the workshops ticked, and why they
    were refused; ``shown_stamp``: the form's signed time of showing (``form_stamp``; by
    default the one sent back, else now); ``failure``: why nothing was taken (a limit)."""
    if is_open is None:
        is_open = event.registration_open(utcnow())
    room = room_left(db.session, event)
    form.show_room(room, threshold())
    questions = questions_of(event)
    companions = companions or blank_rows(event.max_guests)
    offered_now = tiers(prices_of(event), utcnow())
    page = render_template(
        "public/register.html",
        tiers=offered_now,
        prices_json=prices_json(offered_now, event.currency),
        form=form,
        event=event,
        is_open=is_open,
        room=room,
        threshold=threshold(),
        questions=questions,
        answers=answers or {},
        answer_errors=answer_errors or {},
        companions=companions,
        program=program_of(event),
        zone=event.zone,
        chosen_program=list(chosen_program),
        program_error=program_error,
        honeypot=HONEYPOT_FIELD,
        stamp_field=STAMP_FIELD,
        shown_stamp=shown_stamp or _stamp_sent_back() or form_stamp(),
        failure=failure,
        more_errors=error_links(questions, answer_errors or {})
        + companions.errors
        + ([("program", "Workshops", program_error)] if program_error else []),
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
        page, _status = _render_form_page(
            form, event, is_open=snapshot.registration_open, shown_stamp=STAMP_SLOT
        )
        return page

    key = (snapshot, offered(prices_of(snapshot), utcnow()))
    page = kept("register_form", key, render, watched=False)
    return with_visitor_csrf(page).replace(STAMP_SLOT, form_stamp())


# --- What tells a script from a person ------------------------------------------------------
#: A text input people never see or reach (hidden by the style sheet, aria-hidden, out of the
#: tab order, labelled "leave empty"); scripts that fill in every input fill it.
HONEYPOT_FIELD = "website"
#: The hidden input with the signed moment the form was shown (``form_stamp``).
STAMP_FIELD = "form_shown"
#: Stands for the visitor's stamp in the blank form rendered once for many visitors.
STAMP_SLOT = "form-shown-stamp-of-this-visitor"
_STAMP_SALT = "necreg.register-form-shown"

security_log = logging.getLogger("necreg.security")


def _stamp_signer() -> Signer:
    return Signer(current_app.secret_key, salt=_STAMP_SALT)


def form_stamp(at: float | None = None) -> str:
    """The moment the form is shown (``at``, default now, seconds since the epoch), signed:
    the form sends it back, and a form sent back sooner than REGISTER_MIN_SECONDS after it
    was shown is a script's."""
    moment = time.time() if at is None else at
    return _stamp_signer().sign(f"{moment:.3f}").decode()


def _shown_at(stamp: str) -> float | None:
    """When the form with ``stamp`` was shown; None for a stamp not made here."""
    try:
        return float(_stamp_signer().unsign(stamp))
    except (BadSignature, ValueError):
        return None


def _stamp_sent_back() -> str | None:
    """The stamp the form was sent back with, if it is one of ours (a form shown again with
    its errors keeps the moment it was first shown)."""
    if request.method != "POST":
        return None
    stamp = request.form.get(STAMP_FIELD, "")
    return stamp if _shown_at(stamp) is not None else None


def scripted_reason() -> str | None:
    """Why the registration sent looks like a script's (None: it does not): the honeypot is
    filled in, or the form came back sooner than REGISTER_MIN_SECONDS after it was shown (or
    without a stamp of ours)."""
    if request.form.get(HONEYPOT_FIELD, ""):
        return "honeypot filled in"
    least = float(current_app.config["REGISTER_MIN_SECONDS"])
    if least <= 0:
        return None
    shown = _shown_at(request.form.get(STAMP_FIELD, ""))
    if shown is None:
        return "no form stamp"
    if time.time() - shown < least:
        return "sent too soon after the form was shown"
    return None


def registration_form_limited(limit: str):
    """The form, as sent, saying that registrations were sent too often from here (429)."""
    failure = (
        f"Registrations were sent too often from here (at most {limit}). Nothing was stored;"
        " please try again later, or write to the organizers."
    )
    return _render_form_page(RegistrationForm(), current_event_or_404(), 429, failure=failure)


def _register_limit() -> str:
    return current_app.config["REGISTER_RATE_LIMIT"]


@bp.get("/register")
def register_page():
    """The form, the busiest page after the landing page. A view of its own, outside the rate
    limit's decorator: that decorator checks its limits on every request it wraps, GET too,
    only to find that they are for POST (about 8% of this page's instructions)."""
    return _blank_form()


@bp.post("/register")
@limiter.limit(_register_limit)
def register_submit():
    event = current_event_or_404()
    form = RegistrationForm()
    if not event.registration_open(utcnow()):
        count_registration("closed")
        return _render_form_page(form, event, 403)
    reason = scripted_reason()
    if reason is not None:
        count_registration("scripted")
        # Answered as a registration taken, so that the script learns nothing; nothing is
        # stored and no e-mail is sent.
        security_log.info(
            "registration refused as scripted (%s): address=%s", reason, request.remote_addr
        )
        return redirect(url_for(".registration_received"), 303)
    questions = questions_of(event)
    answers, answer_errors = clean_answers(questions, form.role.data, request.form)
    sent = sent_values(questions, request.form)
    rows = read_rows(request.form, event.max_guests)
    chosen = request.form.getlist("program")
    again = {"answers": sent, "companions": rows, "chosen_program": chosen}
    program_error = ""
    try:
        check_choices(program_of(event), chosen)
    except ProgramError as exc:
        program_error = str(exc)
    if not form.validate() or answer_errors or rows.errors or program_error:
        count_registration("invalid")
        return _render_form_page(
            form, event, 400, answer_errors=answer_errors, program_error=program_error, **again
        )
    try:
        attendee = register_with_fee(
            db.session,
            event,
            form.registrant(event),
            prices=prices_of(event),
            code=form.code.data or "",
            code_prefix=code_prefix(),
            guests=rows.companions,
            questions=questions,
            answers=answers,
            program=chosen,
            support=form.support_statement.data or "" if form.support_request.data else None,
            payment=payment_terms(current_app.config),
            fresh=True,  # this request has only read so far
        )
    except FeeError as exc:
        db.session.rollback()
        form.code.errors = [*form.code.errors, str(exc)]
        return _render_form_page(form, event, 400, **again)
    except SupportError as exc:  # a statement that cannot be stored as written
        db.session.rollback()
        form.support_statement.errors = [*form.support_statement.errors, str(exc)]
        return _render_form_page(form, event, 400, **again)
    except ProgramError as exc:  # the program changed meanwhile
        db.session.rollback()
        return _render_form_page(form, event, 400, program_error=str(exc), **again)
    except RegistrationError as exc:
        db.session.rollback()
        form.email.errors = [*form.email.errors, str(exc)]
        return _render_form_page(form, event, 409, **again)
    token = attendee.token  # read before the commit expires it, or it is loaded again
    db.session.commit()
    return redirect(url_for(".registration", token=token), 303)


@bp.get("/register/received")
def registration_received():
    """Where a registration refused as a script's ends: a plain thank-you."""
    return render_template("public/register_received.html", event=current_event_or_404())


@bp.get("/privacy")
def privacy():
    config = current_app.config
    return render_template(
        "public/privacy.html",
        event=current_event(db.session),
        retention_days=int(config["RETENTION_DAYS_AFTER_EVENT"]),
        outbox_days=int(config["OUTBOX_RETENTION_DAYS"]),
    )
