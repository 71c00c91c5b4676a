"""Signing organizers in and out.

- A correct password (and, for an account with an authenticator, a correct code: sent with
  it as ``otp``, or asked for on a second page) opens a server-side session
  (necreg/sessions.py) whose token the cookie carries; the Flask session is cleared first, so
  the sign-in gets a new CSRF token and keeps nothing from before.
- Failed attempts slow down their (account, origin) and their address (necreg/login_limits.py),
  never the owner at a device they signed in from before: a signed cookie, ``DEVICE_COOKIE``,
  names the accounts that signed in there, and attempts on those accounts from it are counted
  apart. LOGIN_RATE_LIMIT stays as a coarse flood limit per address (known devices exempt).
- Every sign-in, failure and sign-out is logged to ``necreg.security`` (account e-mail and
  client address, never a password, code or token).
"""

from __future__ import annotations

import hashlib
import secrets
import time
from datetime import timedelta
from urllib.parse import urlsplit

from flask import current_app, redirect, render_template, request, session, url_for
from flask_limiter.errors import RateLimitExceeded
from flask_login import current_user, login_user, logout_user
from itsdangerous import BadSignature, URLSafeTimedSerializer

from .. import login_limits, sessions, totp
from ..auth import (
    authenticate,
    must_enrol,
    organizer_required,
    security_log,
    signed_in,
    start_session,
)
from ..extensions import db, limiter
from ..formats import has_control_characters
from ..models import Organizer
from . import bp
from .forms import LoginForm, OtpForm

LOGIN_FAILED = "Wrong e-mail or password."
OTP_FAILED = "That code is not right. Enter the code your authenticator shows now."
#: The cookie that makes a device known to the accounts that signed in from it (with the
#: ``__Secure-`` prefix where cookies are Secure: browsers then take it only over HTTPS).
DEVICE_COOKIE = "necreg_device"
DEVICE_LIFETIME = timedelta(days=365)
#: Accounts one device remembers (a shared desk signs several people in).
DEVICE_ACCOUNTS = 8
#: How long the code step waits after the password was right.
OTP_STEP_SECONDS = 300
_PENDING = "sign_in_pending"


def client_address() -> str:
    return (request.remote_addr or "")[: login_limits.ORIGIN_LENGTH]


# --- Known devices ------------------------------------------------------------------------------


def _device_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key, salt="necreg.known-device")


def _account_mark(email: str) -> str:
    """How the device cookie names an account: a digest, so the cookie shows no e-mail."""
    return hashlib.sha256(login_limits.failure_email(email).encode()).hexdigest()[:16]


def device_cookie_name() -> str:
    secure = current_app.config["SESSION_COOKIE_SECURE"]
    return f"__Secure-{DEVICE_COOKIE}" if secure else DEVICE_COOKIE


def _known_device() -> dict | None:
    raw = request.cookies.get(device_cookie_name())
    if not raw:
        return None
    try:
        device = _device_serializer().loads(raw, max_age=int(DEVICE_LIFETIME.total_seconds()))
    except (BadSignature, ValueError):
        return None
    if not isinstance(device, dict) or not isinstance(device.get("d"), str):
        return None
    if not isinstance(device.get("a"), list):
        return None
    return device


def origin_of(email: str) -> tuple[str, bool]:
    """Where an attempt on ``email`` counts from: (this device, True) when the account signed
    in from it before, else (the client's address, False)."""
    device = _known_device()
    if device is not None and _account_mark(email) in device["a"]:
        return login_limits.DEVICE_PREFIX + device["d"], True
    return client_address(), False


def _from_known_device() -> bool:
    """Flask-Limiter's exemption: the flood limit per address does not slow known devices."""
    email = request.form.get("email", "")
    if not email and session.get(_PENDING):
        return bool(session[_PENDING].get("known"))
    return bool(email) and origin_of(email)[1]


def _remember_device(response, email: str) -> None:
    device = _known_device() or {"d": secrets.token_hex(8), "a": []}
    mark = _account_mark(email)
    accounts = [mark, *(a for a in device["a"] if a != mark)][:DEVICE_ACCOUNTS]
    response.set_cookie(
        device_cookie_name(),
        _device_serializer().dumps({"d": device["d"], "a": accounts}),
        max_age=int(DEVICE_LIFETIME.total_seconds()),
        path="/organizer/",
        secure=current_app.config["SESSION_COOKIE_SECURE"],
        httponly=True,
        samesite="Lax",
    )


# --- Pages --------------------------------------------------------------------------------------


def _login_limit() -> str:
    return current_app.config["LOGIN_RATE_LIMIT"]


def _safe_next(target: str | None) -> str | None:
    """Only a path on this site under /organizer/ (no scheme, host or protocol-relative //,
    no control characters)."""
    if not target or has_control_characters(target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/organizer/"):
        return None
    if "\\" in target or target.startswith("//"):
        return None
    return target


def home_url() -> str:
    """Where the signed-in organizer starts: the dashboard, or check-in for staff."""
    if must_enrol(current_user):
        return url_for(".account")
    return url_for(".dashboard") if current_user.is_admin else url_for(".check_in")


def _page(form, status: int = 200, *, failure: str | None = None, step: str = "password"):
    return render_template("organizer/login.html", form=form, failure=failure, step=step), status


def _too_soon(form, seconds: int, email: str, step: str = "password"):
    security_log.warning(
        "sign-in refused: wait %ss email=%s address=%s", seconds, email, client_address()
    )
    unit = "second" if seconds == 1 else "seconds"
    message = (
        "Too many failed sign-ins for this account from here. "
        f"Please wait {seconds} {unit} and try again."
    )
    body, status = _page(form, 429, failure=message, step=step)
    return body, status, {"Retry-After": str(seconds)}


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"], exempt_when=_from_known_device)
def login():
    if current_user.is_authenticated and request.method == "GET":
        return redirect(home_url())
    if request.method == "POST" and "password" not in request.form and session.get(_PENDING):
        return _code_step()
    form = LoginForm()
    if not form.is_submitted():
        session.pop(_PENDING, None)
        return _page(form)
    if not form.validate():
        return _page(form, 400)
    email = form.email.data
    origin, known = origin_of(email)
    wait = login_limits.seconds_to_wait(db.session, email, origin, per_address=not known)
    if wait:
        return _too_soon(form, wait, email)
    organizer = authenticate(db.session, email, form.password.data)
    if organizer is None:
        return _failed(form, email, origin, LOGIN_FAILED)
    if organizer.totp_enabled_at is not None:
        if not form.otp.data:
            db.session.commit()  # a rehashed password
            session[_PENDING] = {
                "id": organizer.id,
                "at": int(time.time()),
                "origin": origin,
                "known": known,
                "next": _safe_next(request.args.get("next")),
            }
            return _page(OtpForm(formdata=None), step="otp")
        if not totp.check_code(db.session, organizer, form.otp.data):
            return _failed(form, email, origin, OTP_FAILED)
    return _signed_in(organizer, origin, _safe_next(request.args.get("next")))


def _code_step():
    """The second page of signing in: the authenticator's code (or a recovery code)."""
    pending = session[_PENDING]
    form = OtpForm()
    organizer = db.session.get(Organizer, pending.get("id"))
    if (
        organizer is None
        or not organizer.is_active
        or organizer.totp_enabled_at is None
        or time.time() - pending.get("at", 0) > OTP_STEP_SECONDS
    ):
        session.pop(_PENDING, None)
        message = "The sign-in took too long. Please enter your e-mail and password again."
        return _page(LoginForm(formdata=None), 401, failure=message)
    if not form.validate():
        return _page(form, 400, step="otp")
    origin = pending["origin"]
    wait = login_limits.seconds_to_wait(
        db.session, organizer.email, origin, per_address=not pending.get("known")
    )
    if wait:
        return _too_soon(form, wait, organizer.email, step="otp")
    if not totp.check_code(db.session, organizer, form.otp.data):
        return _failed(form, organizer.email, origin, OTP_FAILED, step="otp")
    return _signed_in(organizer, origin, pending.get("next"))


def _failed(form, email: str, origin: str, message: str, *, step: str = "password"):
    db.session.rollback()
    login_limits.record_failure(db.session, email, origin)
    db.session.commit()
    what = "password" if message == LOGIN_FAILED else "code"
    security_log.warning("sign-in failed (%s) email=%s address=%s", what, email, client_address())
    return _page(form, 401, failure=message, step=step)


def _signed_in(organizer: Organizer, origin: str, target: str | None):
    login_limits.clear_failures(db.session, organizer.email, origin)
    token = start_session(
        db.session,
        organizer,
        address=client_address(),
        user_agent=request.headers.get("User-Agent", ""),
        timeouts=sessions.Timeouts.from_settings(current_app.config),
    )
    db.session.commit()
    # A new session: nothing of before (a CSRF token, a pending step) is carried over.
    session.clear()
    login_user(signed_in(organizer, token))
    security_log.info("sign-in email=%s address=%s", organizer.email, client_address())
    response = redirect(
        url_for(".account") if must_enrol(current_user) else target or home_url(), 303
    )
    _remember_device(response, organizer.email)
    return response


@bp.errorhandler(RateLimitExceeded)
def too_many_attempts(exc: RateLimitExceeded):
    security_log.warning("sign-in refused: flood limit address=%s", client_address())
    form = LoginForm()
    message = (
        "Too many sign-in attempts from this address "
        f"(at most {exc.description}). Please wait a little and try again."
    )
    return _page(form, 429, failure=message)


@bp.post("/logout")
@organizer_required(before_enrolment=True)
def logout():
    email = current_user.email
    sessions.revoke(db.session, current_user.token)
    db.session.commit()
    logout_user()
    session.clear()
    security_log.info("sign-out email=%s address=%s", email, client_address())
    return redirect(url_for(".login"), 303)
