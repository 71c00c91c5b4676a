"""The lost link: the self-service links sent again, never saying whether an address is known."""

from __future__ import annotations

from flask import current_app, redirect, render_template, request, url_for
from flask_limiter.errors import RateLimitExceeded

from ..extensions import db, limiter
from ..formats import email_limit_key
from ..models import MAX_LENGTHS
from ..pages import current_event_or_404
from ..registration import resend_links
from . import bp
from .forms import InterestForm, LostLinkForm
from .landing import registration_form_limited
from .selfservice import limited_page


def _lost_link_limit() -> str:
    return current_app.config["LOST_LINK_RATE_LIMIT"]


def _lost_link_email_key() -> str:
    """Rate-limit key of the address asked about, whoever asks from wherever."""
    address = request.form.get("email", "")[: 4 * MAX_LENGTHS["email"]]
    return "lost-link-email:" + email_limit_key(address)[: MAX_LENGTHS["email"]]


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
def too_many_requests(exc: RateLimitExceeded):
    """Each limited page answers with itself, saying why (429): the form, the registration's
    page; for a lost link or an interest sign-up, the same answer whether or not the address
    is known."""
    if request.endpoint == "public.register_submit":
        return registration_form_limited(exc.description)
    if "token" in (request.view_args or {}):  # a change sent from a personal link
        return limited_page(exc.description)
    if request.endpoint == "public.interest":
        message = (
            "Sign-ups were made too often from here or for this address "
            f"(at most {exc.description}). Please try again later."
        )
        page = render_template(
            "public/interest.html",
            form=InterestForm(),
            event=current_event_or_404(),
            failure=message,
        )
        return page, 429
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
