"""Administrators manage the organizer accounts: invite, deactivate and reactivate, reset a
password, change a role, remove a lost authenticator. Never so that no active administrator
is left (auth.py refuses it).

An invitation or a reset gives a **set-password link**, shown once to the administrator to pass
on, rather than a password: the administrator never knows the password the person chooses,
the link works once (it names the account's current password hash, which setting a password
changes) and for PASSWORD_LINK_HOURS only, and nobody is left holding a password that was
shown on someone else's screen. A reset makes the old password stop working at once and ends
every session of the account.
"""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from .. import sessions, totp
from ..auth import (
    PASSWORD_LINK_HOURS,
    AccountError,
    change_role,
    create_organizer,
    deactivate_organizer,
    list_organizers,
    organizer_for_link,
    organizer_required,
    password_link_token,
    reactivate_organizer,
    reset_password,
    security_log,
    set_password,
)
from ..extensions import db
from ..mail.outbox import site_url
from ..models import ORGANIZER_ROLES, Organizer, RecoveryCode
from . import bp
from .audit import audit
from .auth import client_address
from .forms import AccountActionForm, InviteForm, SetPasswordForm

#: The largest id in a path (the column is a 32-bit integer).
MAX_ID = 2**31 - 1


def password_link(organizer: Organizer) -> str:
    token = password_link_token(organizer, current_app.secret_key)
    return site_url() + url_for(".set_password_page", token=token)


def _page(status: int = 200, *, invite_form=None, link=None, failure=None, invite_failure=None):
    accounts = list_organizers(db.session)
    with_codes = set(
        db.session.execute(
            select(RecoveryCode.organizer_id).where(RecoveryCode.used_at.is_(None)).distinct()
        ).scalars()
    )
    return render_template(
        "organizer/organizers.html",
        accounts=accounts,
        with_codes=with_codes,
        invite_form=invite_form or InviteForm(formdata=None),
        action_form=AccountActionForm(formdata=None),
        roles=ORGANIZER_ROLES,
        link=link,
        link_hours=PASSWORD_LINK_HOURS,
        failure=failure,
        invite_failure=invite_failure,
    ), status


@bp.route("/organizers", methods=["GET", "POST"])
@organizer_required(admin=True)
def organizers():
    if request.method == "GET":
        return _page()
    form = InviteForm()
    if not form.validate():
        return _page(400, invite_form=form)
    try:
        organizer = create_organizer(db.session, form.email.data, None, role=form.role.data)
    except AccountError as exc:
        db.session.rollback()
        return _page(400, invite_form=form, invite_failure=str(exc))
    audit("organizer.invite", organizer.email, {"role": organizer.role})
    db.session.commit()
    # Shown in this answer only (post/redirect/get would have to keep it somewhere).
    return _page(link=(organizer.email, password_link(organizer), "invite"))


@bp.post("/organizers/<int:organizer_id>")
@organizer_required(admin=True)
def manage_organizer(organizer_id: int):
    if organizer_id > MAX_ID:
        abort(404)
    organizer = db.session.get(Organizer, organizer_id)
    if organizer is None:
        abort(404)
    form = AccountActionForm()
    if not form.validate():
        return _page(400, failure="Choose what to do with the account.")
    action = form.action.data
    try:
        if action == "deactivate":
            deactivate_organizer(db.session, organizer)
            done = f"{organizer.email} is deactivated and signed out everywhere."
        elif action == "reactivate":
            reactivate_organizer(db.session, organizer)
            done = f"{organizer.email} can sign in again."
        elif action == "role":
            change_role(db.session, organizer, form.role.data or "")
            done = f"{organizer.email} is now {ORGANIZER_ROLES[organizer.role].lower()}."
        elif action == "remove_authenticator":
            if organizer.totp_enabled_at is None and organizer.totp_secret is None:
                raise AccountError(f"{organizer.email} has no authenticator.")
            totp.remove(db.session, organizer)
            sessions.revoke_all(db.session, organizer.id)
            done = (
                f"{organizer.email} signs in with the password alone now, "
                "and can set up a new authenticator."
            )
        else:  # reset
            reset_password(db.session, organizer)
            done = None
    except AccountError as exc:
        db.session.rollback()
        return _page(400, failure=str(exc))
    details = {"role": organizer.role} if action == "role" else None
    audit(f"organizer.{action}", organizer.email, details)
    db.session.commit()
    if done is None:
        return _page(link=(organizer.email, password_link(organizer), "reset"))
    if organizer.id == current_user.id and action == "deactivate":
        return redirect(url_for(".login"), 303)
    if organizer.id == current_user.id and action == "role":
        flash(done, "success")
        return redirect(url_for(".check_in"), 303)
    flash(done, "success")
    return redirect(url_for(".organizers"), 303)


@bp.route("/set-password/<token>", methods=["GET", "POST"])
def set_password_page(token: str):
    """Open to anyone holding the link (an invitation or a reset): set a password once."""
    organizer = organizer_for_link(db.session, token, current_app.secret_key)
    if organizer is None:
        abort(
            404,
            description="This link has expired or was used already. "
            "Ask an administrator for a new one.",
        )
    form = SetPasswordForm()
    if not form.validate_on_submit():
        status = 400 if form.is_submitted() else 200
        return render_template(
            "organizer/set_password.html", form=form, email=organizer.email, failure=None
        ), status
    try:
        set_password(db.session, organizer, form.new_password.data)
    except AccountError as exc:
        db.session.rollback()
        return render_template(
            "organizer/set_password.html", form=form, email=organizer.email, failure=str(exc)
        ), 400
    db.session.commit()
    security_log.info("password set by link email=%s address=%s", organizer.email, client_address())
    flash("Your password is set. Sign in with it now.", "success")
    return redirect(url_for(".login"), 303)
