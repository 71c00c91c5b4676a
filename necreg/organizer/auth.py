"""Signing organizers in and out, with sign-in attempts limited per address and per account."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import current_app, redirect, render_template, request, url_for
from flask_limiter.errors import RateLimitExceeded
from flask_login import current_user, login_user, logout_user

from ..auth import authenticate, organizer_required, signed_in
from ..extensions import db, limiter
from ..formats import email_key
from ..models import MAX_LENGTHS
from . import bp
from .forms import LoginForm

LOGIN_FAILED = "Wrong e-mail or password."


def _login_limit() -> str:
    return current_app.config["LOGIN_RATE_LIMIT"]


def _login_email_key() -> str:
    """Rate-limit key of the account being tried, whoever tries it from wherever."""
    return "login-email:" + email_key(request.form.get("email", ""))[: MAX_LENGTHS["email"]]


def _safe_next(target: str | None) -> str | None:
    """Only a path on this site under /organizer/ (no scheme, host or protocol-relative //)."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/organizer/"):
        return None
    if "\\" in target or target.startswith("//"):
        return None
    return target


def home_url() -> str:
    """Where the signed-in organizer starts: the dashboard, or check-in for staff."""
    return url_for(".dashboard") if current_user.is_admin else url_for(".check_in")


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
@limiter.limit(_login_limit, methods=["POST"], key_func=_login_email_key)
def login():
    if current_user.is_authenticated and request.method == "GET":
        return redirect(home_url())
    form = LoginForm()
    if not form.is_submitted():
        return render_template("organizer/login.html", form=form)
    if not form.validate():
        return render_template("organizer/login.html", form=form), 400
    organizer = authenticate(db.session, form.email.data, form.password.data)
    if organizer is None:
        db.session.rollback()
        return render_template("organizer/login.html", form=form, failure=LOGIN_FAILED), 401
    db.session.commit()
    login_user(signed_in(organizer))
    return redirect(_safe_next(request.args.get("next")) or home_url(), 303)


@bp.errorhandler(RateLimitExceeded)
def too_many_attempts(exc: RateLimitExceeded):
    form = LoginForm()
    message = (
        "Too many sign-in attempts for this address or account "
        f"(at most {exc.description}). Please wait a little and try again."
    )
    return render_template("organizer/login.html", form=form, failure=message), 429


@bp.post("/logout")
@organizer_required()
def logout():
    logout_user()
    return redirect(url_for(".login"), 303)
