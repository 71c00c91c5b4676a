"""The attendee's side: landing page, registration, confirmation and self-service."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, redirect, render_template, url_for

from ..countries import country_name
from ..extensions import db
from ..models import Event, utcnow
from ..registration import (
    RegistrationError,
    current_event,
    find_by_token,
    register,
    waitlist_position,
)
from ..stats import COUNTERS, event_stats
from .forms import RegistrationForm

bp = Blueprint("public", __name__)


def _current_event_or_404() -> Event:
    event = current_event(db.session)
    if event is None:
        abort(404)
    return event


@bp.get("/")
def landing():
    event = current_event(db.session)
    if event is None:
        return render_template("public/no_event.html")
    return render_template(
        "public/landing.html",
        event=event,
        stats=event_stats(db.session, event),
        counters=COUNTERS,
        registration_open=event.registration_open(utcnow()),
        refresh_seconds=current_app.config["STATS_REFRESH_SECONDS"],
    )


def _form_page(form: RegistrationForm, event: Event, status: int = 200, **extra):
    is_open = event.registration_open(utcnow())
    page = render_template("public/register.html", form=form, event=event, is_open=is_open, **extra)
    return page, status


@bp.route("/register", methods=["GET", "POST"])
def register_page():
    event = _current_event_or_404()
    form = RegistrationForm()
    if not form.is_submitted():
        return _form_page(form, event)
    if not event.registration_open(utcnow()):
        return _form_page(form, event, 403)
    if not form.validate():
        return _form_page(form, event, 400)
    try:
        attendee = register(
            db.session,
            event,
            form.registrant(),
            code_prefix=current_app.config["ATTENDEE_CODE_PREFIX"],
        )
    except RegistrationError as exc:
        db.session.rollback()
        form.email.errors = [*form.email.errors, str(exc)]
        return _form_page(form, event, 409)
    db.session.commit()
    return redirect(url_for(".registration", token=attendee.token), 303)


@bp.get("/registration/<token>")
def registration(token: str):
    attendee = find_by_token(db.session, token)
    if attendee is None:
        abort(404)
    page = render_template(
        "public/registration.html",
        attendee=attendee,
        event=attendee.event,
        country=country_name(attendee.country),
        position=waitlist_position(db.session, attendee),
    )
    return page, 200, {"Cache-Control": "no-store", "X-Robots-Tag": "noindex"}


@bp.get("/privacy")
def privacy():
    return render_template("public/privacy.html", event=current_event(db.session))
