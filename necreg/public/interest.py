"""The interest list's pages: sign up, confirm the address, and unsubscribe (from the interest
list or from organizers' messages) in one click."""

from __future__ import annotations

from flask import abort, current_app, redirect, render_template, request, url_for

from ..extensions import csrf, db, limiter
from ..formats import email_limit_key
from ..interest import confirm, find_by_token, sign_up
from ..mail.lists import read_token, unsubscribe
from ..models import MAX_LENGTHS
from ..registration import current_event
from . import bp
from .forms import ButtonForm, InterestForm


def _interest_limit() -> str:
    return current_app.config["INTEREST_RATE_LIMIT"]


def _interest_email_key() -> str:
    """Rate-limit key of the address signed up, whoever signs it up from wherever."""
    address = request.form.get("email", "")[: 4 * MAX_LENGTHS["email"]]
    return "interest-email:" + email_limit_key(address)[: MAX_LENGTHS["email"]]


def _event_or_404():
    event = current_event(db.session)
    if event is None:
        abort(404)
    return event


@bp.route("/interest", methods=["GET", "POST"])
@limiter.limit(_interest_limit, methods=["POST"])
@limiter.limit(_interest_limit, methods=["POST"], key_func=_interest_email_key)
def interest():
    """Sign up to hear when registration for the next symposium opens. The answer is the same
    whether the address is on the list already or not."""
    event = _event_or_404()
    form = InterestForm()
    if not form.is_submitted():
        return render_template("public/interest.html", form=form, event=event)
    if not form.validate():
        return render_template("public/interest.html", form=form, event=event), 400
    sign_up(db.session, event, email=form.email.data, name=form.name.data)
    db.session.commit()
    return redirect(url_for(".interest_sent"), 303)


@bp.get("/interest/sent")
def interest_sent():
    return render_template("public/interest_sent.html", event=_event_or_404())


@bp.route("/interest/confirm/<token>", methods=["GET", "POST"])
def interest_confirm(token: str):
    """The link in the confirmation e-mail: a button, so that a mail scanner opening the link
    confirms nothing."""
    event = _event_or_404()
    signup = find_by_token(db.session, token)
    if signup is None or signup.unsubscribed_at is not None:
        return render_template("public/interest_link.html", event=event, invalid=True), 404
    form = ButtonForm()
    if form.validate_on_submit():
        confirm(db.session, token)
        db.session.commit()
        return render_template("public/interest_link.html", event=event, confirmed=True)
    return render_template("public/interest_link.html", event=event, form=form, signup=signup)


@bp.route("/unsubscribe/<token>", methods=["GET", "POST"])
@csrf.exempt  # RFC 8058: mail programs POST "List-Unsubscribe=One-Click", with no form
def unsubscribe_page(token: str):
    """Unsubscribe in one click: GET asks (a link scanner must not unsubscribe anyone), POST
    does it, from the page's button or a mail program."""
    event = _event_or_404()
    found = read_token(token)
    if found is None:
        return render_template("public/unsubscribe.html", event=event, invalid=True), 404
    kind = found[0]
    if request.method == "POST":
        if unsubscribe(db.session, token) is None:
            return render_template("public/unsubscribe.html", event=event, invalid=True), 404
        db.session.commit()
        return render_template("public/unsubscribe.html", event=event, kind=kind, done=True)
    return render_template("public/unsubscribe.html", event=event, kind=kind, form=None)
