"""The signed-in organizer's own account: change the password, set up or turn off an
authenticator (TOTP) and its recovery codes, see where the account is signed in and sign out
everywhere. Every organizer reaches it, staff too, and an administrator who must set up an
authenticator (TOTP_REQUIRED_FOR_ADMINS) reaches nothing else first."""

from __future__ import annotations

from flask import current_app, flash, redirect, render_template, session, url_for
from flask_login import current_user, login_user, logout_user
from markupsafe import Markup

from .. import sessions, totp
from ..auth import AccountError, change_password, organizer_required, security_log, signed_in
from ..extensions import db
from ..models import Organizer
from ..qr import qr_svg
from . import bp
from .audit import audit
from .auth import client_address
from .forms import ActionForm, PasswordChangeForm, TotpCodeForm


def _authenticator_qr(uri: str) -> Markup:
    """The otpauth address as an inline SVG QR code (no script, no outside reference)."""
    return qr_svg(uri, scale=5, label="QR code to scan with your authenticator app")


def _organizer() -> Organizer:
    return db.session.get(Organizer, current_user.id)


def _page(status: int = 200, **forms):
    organizer = _organizer()
    enrolling = organizer.totp_secret is not None and organizer.totp_enabled_at is None
    uri = totp.provisioning_uri(organizer.totp_secret, organizer.email) if enrolling else None
    timeouts = sessions.Timeouts.from_settings(current_app.config)
    context = {
        "organizer": organizer,
        "password_form": forms.get("password_form") or PasswordChangeForm(formdata=None),
        "code_form": forms.get("code_form") or TotpCodeForm(formdata=None),
        "action_form": ActionForm(formdata=None),
        "enrolling": enrolling,
        "qr": _authenticator_qr(uri) if uri else None,
        "secret": organizer.totp_secret if enrolling else None,
        "recovery_left": totp.unused_recovery_codes(db.session, organizer.id),
        "open_sessions": sessions.open_sessions(db.session, organizer.id, timeouts),
        "this_session": sessions.token_hash(current_user.token),
        "failure": forms.get("failure"),
        "failed_form": forms.get("failed_form"),
        "recovery_codes": forms.get("recovery_codes"),
    }
    return render_template("organizer/account.html", **context), status


@bp.get("/account")
@organizer_required(before_enrolment=True)
def account():
    return _page()


@bp.post("/account/password")
@organizer_required(before_enrolment=True)
def account_password():
    form = PasswordChangeForm()
    if not form.validate():
        return _page(400, password_form=form, failed_form="password")
    organizer = _organizer()
    try:
        change_password(
            db.session,
            organizer,
            form.current_password.data,
            form.new_password.data,
            keep_session=current_user.token,
        )
    except AccountError as exc:
        db.session.rollback()
        return _page(400, password_form=form, failure=str(exc), failed_form="password")
    audit("account.password", organizer.email)
    db.session.commit()
    # This session goes on under the new password; every other one has ended.
    login_user(signed_in(organizer, current_user.token))
    flash("Your password is changed. You are signed out everywhere else.", "success")
    return redirect(url_for(".account"), 303)


@bp.post("/account/authenticator")
@organizer_required(before_enrolment=True)
def authenticator_start():
    if not ActionForm().validate():
        return _page(400)
    try:
        totp.start_enrolment(db.session, _organizer())
    except AccountError as exc:
        db.session.rollback()
        return _page(400, failure=str(exc), failed_form="authenticator")
    db.session.commit()
    return redirect(url_for(".account", _anchor="authenticator"), 303)


@bp.post("/account/authenticator/confirm")
@organizer_required(before_enrolment=True)
def authenticator_confirm():
    form = TotpCodeForm()
    if not form.validate():
        return _page(400, code_form=form, failed_form="authenticator")
    organizer = _organizer()
    try:
        codes = totp.confirm_enrolment(db.session, organizer, form.otp.data)
    except AccountError as exc:
        db.session.rollback()
        return _page(400, code_form=form, failure=str(exc), failed_form="authenticator")
    audit("account.authenticator_on", organizer.email)
    db.session.commit()
    login_user(signed_in(organizer, current_user.token))  # totp_enabled, for the decorator
    # Shown in this answer only: never stored in the clear, never shown again.
    return _page(recovery_codes=codes)


@bp.post("/account/authenticator/disable")
@organizer_required(before_enrolment=True)
def authenticator_disable():
    form = TotpCodeForm()
    organizer = _organizer()
    if organizer.totp_enabled_at is not None and not form.validate():
        return _page(400, code_form=form, failed_form="authenticator")
    if organizer.totp_enabled_at is None and not ActionForm().validate():
        return _page(400)
    try:
        totp.disable(db.session, organizer, form.otp.data or "")
    except AccountError as exc:
        db.session.rollback()
        return _page(400, code_form=form, failure=str(exc), failed_form="authenticator")
    audit("account.authenticator_off", organizer.email)
    db.session.commit()
    login_user(signed_in(organizer, current_user.token))
    flash("The authenticator is turned off.", "success")
    return redirect(url_for(".account"), 303)


@bp.post("/account/recovery-codes")
@organizer_required(before_enrolment=True)
def recovery_codes():
    form = TotpCodeForm()
    if not form.validate():
        return _page(400, code_form=form, failed_form="recovery")
    organizer = _organizer()
    if not totp.check_code(db.session, organizer, form.otp.data):
        db.session.rollback()
        return _page(400, code_form=form, failure=totp.WRONG_CODE, failed_form="recovery")
    codes = totp.new_recovery_codes(db.session, organizer)
    audit("account.recovery_codes", organizer.email)
    db.session.commit()
    return _page(recovery_codes=codes)


@bp.post("/account/sign-out-everywhere")
@organizer_required(before_enrolment=True)
def sign_out_everywhere():
    if not ActionForm().validate():
        return _page(400)
    email = current_user.email
    ended = sessions.revoke_all(db.session, current_user.id)
    db.session.commit()
    logout_user()
    session.clear()
    security_log.info(
        "sign-out everywhere email=%s address=%s sessions=%s", email, client_address(), ended
    )
    return redirect(url_for(".login"), 303)
