"""The lost link: the self-service links sent again, never saying whether an address is known."""

from __future__ import annotations

from flask import current_app, redirect, render_template, request, url_for
from flask_limiter.errors import RateLimitExceeded

from ..extensions import db, limiter
from ..formats import email_key
from ..models import MAX_LENGTHS
from ..pages import current_event_or_404
from ..registration import resend_links
from . import bp
from .forms import InterestForm, LostLinkForm


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
def too_many_requests(exc: RateLimitExceeded):
    """The same answer whether or not the address is known, as for every lost link or
    interest sign-up."""
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
