"""Organizer accounts: argon2id passwords, the rules a password must meet, the accounts'
life (create, set a password, deactivate, change role), and the Flask-Login glue that turns
a session cookie into the signed-in organizer.

Domain functions here take a session and plain values; only the Flask-Login glue at the end
looks at the request.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache, wraps
from typing import Any, Protocol, TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import Flask, abort, current_app, flash, g, jsonify, redirect, request, url_for
from flask_login import UserMixin, current_user
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session
from zxcvbn import zxcvbn

from . import sessions
from .extensions import db, login_manager
from .formats import InvalidEmail, normalise_email, same_email
from .models import (
    ADMIN,
    ORGANIZER_ROLES,
    Organizer,
    OrganizerRole,
    OrganizerSession,
    utcnow,
)
from .speed.memo import kept

#: Shortest password accepted for an organizer account, in characters.
MIN_PASSWORD_LENGTH = 12
#: Longest password accepted (argon2 takes any length; this only bounds the work asked for).
MAX_PASSWORD_LENGTH = 1024
#: Lowest zxcvbn score (0 to 4) a password must reach: 3 is "safely unguessable" by an
#: offline attack at moderate speed (about 10^10 guesses).
MIN_PASSWORD_SCORE = 3
#: How much of a password zxcvbn looks at (its time grows with the length, and it takes at
#: most 72 characters; a longer password is judged by its start).
SCORED_LENGTH = 72
#: How long a set-password link (an invitation or a reset) works.
PASSWORD_LINK_HOURS = 72

#: Sign-ins, failed sign-ins, sign-outs and account changes: account e-mail and client
#: address, never a password, code or token.
security_log = logging.getLogger("necreg.security")

_hasher = PasswordHasher()  # argon2id with argon2-cffi's defaults (above OWASP ASVS 5.0)


@cache
def _dummy_hash() -> str:
    """Verified when the e-mail is unknown, so a wrong e-mail takes as long as a wrong password.

    Made on first use, not at import: every CLI command and worker would pay for it."""
    return _hasher.hash(secrets.token_hex(16))


class AccountError(ValueError):
    """An account the rules refuse; ``str(exc)`` says why."""


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _account_email(email: str) -> str:
    try:
        return normalise_email(email)
    except InvalidEmail as exc:
        raise AccountError(f"{email!r} is not a valid e-mail address: {exc.reason}") from None


def find_organizer(session: Session, email: str) -> Organizer | None:
    return session.execute(
        select(Organizer).where(same_email(Organizer.email, email))
    ).scalar_one_or_none()


def get_organizer(session: Session, email: str) -> Organizer:
    """The organizer with this e-mail; AccountError when there is none."""
    organizer = find_organizer(session, email) if email else None
    if organizer is None:
        raise AccountError(f"There is no organizer with the e-mail {email}.")
    return organizer


def check_password_rules(password: str, email: str = "") -> None:
    """Refuse, saying why, a password shorter than MIN_PASSWORD_LENGTH or easy to guess
    (zxcvbn's score below MIN_PASSWORD_SCORE, the account's e-mail counting as known)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"The password must have at least {MIN_PASSWORD_LENGTH} characters.")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise AccountError(f"The password may have at most {MAX_PASSWORD_LENGTH} characters.")
    known = [email, *email.replace(".", "@").split("@"), "necreg", "nec", "symposium"]
    verdict = zxcvbn(password[:SCORED_LENGTH], user_inputs=[w for w in known if w])
    if verdict["score"] < MIN_PASSWORD_SCORE:
        feedback = verdict["feedback"]
        reasons = " ".join(filter(None, [feedback["warning"], *feedback["suggestions"]]))
        raise AccountError(
            "This password is too easy to guess. "
            + (reasons + " " if reasons else "")
            + "A few unrelated words make a long password that is easy to remember."
        )


def create_organizer(
    session: Session, email: str, password: str | None, *, role: str = ADMIN
) -> Organizer:
    """Add an organizer account; raises AccountError for a bad e-mail, role or password.

    ``password`` None: an account that cannot sign in until a password is set (an invitation
    with a set-password link)."""
    if role not in ORGANIZER_ROLES:
        raise AccountError(f"Unknown role {role!r}; roles: {', '.join(ORGANIZER_ROLES)}")
    email = _account_email(email)
    if password is not None:
        check_password_rules(password, email)
    if find_organizer(session, email) is not None:
        raise AccountError(f"An organizer with the e-mail {email} already exists.")
    organizer = Organizer(
        email=email,
        password_hash=hash_password(password if password is not None else generate_password()),
        role=role,
        password_changed_at=utcnow() if password is not None else None,
    )
    session.add(organizer)
    session.flush()
    return organizer


def generate_password() -> str:
    """A random password to show once (about 120 bits)."""
    return secrets.token_urlsafe(15)


def ensure_organizer(session: Session, email: str) -> tuple[str, str] | None:
    """Create the first administrator when there is no organizer; return (e-mail, password)."""
    if session.execute(select(func.count()).select_from(Organizer)).scalar_one():
        return None
    password = generate_password()
    organizer = create_organizer(session, email, password, role=ADMIN)
    return organizer.email, password


def list_organizers(session: Session) -> list[Organizer]:
    """Every account: administrators first, then by e-mail."""
    return list(
        session.execute(
            select(Organizer).order_by(Organizer.role != ADMIN, func.lower(Organizer.email))
        ).scalars()
    )


def set_password(
    session: Session,
    organizer: Organizer,
    password: str,
    *,
    keep_session: str | None = None,
    now: datetime | None = None,
) -> None:
    """Give the organizer a new password and end their sessions (all but ``keep_session``,
    the token of the session that changes it)."""
    check_password_rules(password, organizer.email)
    now = now or utcnow()
    organizer.password_hash = hash_password(password)
    organizer.password_changed_at = now
    sessions.revoke_all(session, organizer.id, keep=keep_session, now=now)
    session.flush()


def change_password(
    session: Session,
    organizer: Organizer,
    current: str,
    new: str,
    *,
    keep_session: str | None = None,
    now: datetime | None = None,
) -> None:
    """The owner's change: the current password first; ends the owner's other sessions."""
    if not verify_password(organizer.password_hash, current):
        raise AccountError("The current password is not right.")
    if secrets.compare_digest(current.encode(), new.encode()):
        raise AccountError("The new password is the same as the current one.")
    set_password(session, organizer, new, keep_session=keep_session, now=now)


def reset_password(session: Session, organizer: Organizer, *, now: datetime | None = None) -> None:
    """An administrator's reset: the old password stops working and every session ends; the
    owner sets a new one through a set-password link (``password_link``)."""
    organizer.password_hash = hash_password(generate_password())
    organizer.password_changed_at = None
    sessions.revoke_all(session, organizer.id, now=now)
    session.flush()


def _other_active_admins(session: Session, organizer: Organizer) -> int:
    return session.execute(
        select(func.count()).where(
            Organizer.role == ADMIN, Organizer.is_active, Organizer.id != organizer.id
        )
    ).scalar_one()


def _keep_an_admin(session: Session, organizer: Organizer, doing: str) -> None:
    if (
        organizer.is_active
        and organizer.role == ADMIN
        and not _other_active_admins(session, organizer)
    ):
        raise AccountError(
            f"{organizer.email} is the last active administrator: {doing} would leave nobody "
            "to manage the event. Make another account an administrator first."
        )


def deactivate_organizer(
    session: Session, organizer: Organizer, *, now: datetime | None = None
) -> None:
    """The account can no longer sign in and its sessions end; never the last admin."""
    if not organizer.is_active:
        raise AccountError(f"{organizer.email} is deactivated already.")
    _keep_an_admin(session, organizer, "deactivating it")
    organizer.is_active = False
    sessions.revoke_all(session, organizer.id, now=now)
    session.flush()


def reactivate_organizer(session: Session, organizer: Organizer) -> None:
    if organizer.is_active:
        raise AccountError(f"{organizer.email} is active already.")
    organizer.is_active = True
    session.flush()


def change_role(session: Session, organizer: Organizer, role: str) -> None:
    if role not in ORGANIZER_ROLES:
        raise AccountError(f"Unknown role {role!r}; roles: {', '.join(ORGANIZER_ROLES)}")
    if role == organizer.role:
        raise AccountError(f"{organizer.email} is {ORGANIZER_ROLES[role].lower()} already.")
    if role != ADMIN:
        _keep_an_admin(session, organizer, "taking its administrator role")
    organizer.role = role
    session.flush()


def authenticate(session: Session, email: str, password: str) -> Organizer | None:
    """The active organizer with this e-mail and password, else None (one answer for all,
    in the same time whether the e-mail is known or not)."""
    organizer = find_organizer(session, email) if email else None
    if organizer is None:
        verify_password(_dummy_hash(), password)
        return None
    if not verify_password(organizer.password_hash, password) or not organizer.is_active:
        return None
    if _hasher.check_needs_rehash(organizer.password_hash):
        organizer.password_hash = hash_password(password)
    session.flush()
    return organizer


def start_session(
    session: Session,
    organizer: Organizer,
    *,
    address: str = "",
    user_agent: str = "",
    timeouts: sessions.Timeouts | None = None,
    now: datetime | None = None,
) -> str:
    """The organizer has signed in: record it and open a session; return its token."""
    now = now or utcnow()
    organizer.last_login_at = now
    return sessions.open_session(
        session, organizer.id, address=address, user_agent=user_agent, timeouts=timeouts, now=now
    )


# --- Set-password links (invitations and resets) ----------------------------------------------


def _fingerprint(password_hash: str) -> str:
    """A short digest of the password hash: a new password changes it."""
    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]


def _link_serializer(secret_key: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key, salt="necreg.set-password")


def password_link_token(organizer: Organizer, secret_key: str) -> str:
    """The token of a link that sets the organizer's password once: it names the account and
    its current password hash, so it stops working once a password is set (and after
    PASSWORD_LINK_HOURS)."""
    return _link_serializer(secret_key).dumps([organizer.id, _fingerprint(organizer.password_hash)])


def organizer_for_link(
    session: Session, token: str, secret_key: str, *, max_age: timedelta | None = None
) -> Organizer | None:
    """The active organizer a set-password link is for, or None when it is not valid (any
    more)."""
    age = max_age or timedelta(hours=PASSWORD_LINK_HOURS)
    try:
        organizer_id, fingerprint = _link_serializer(secret_key).loads(
            token, max_age=int(age.total_seconds())
        )
    except (BadSignature, ValueError, TypeError):
        return None
    if not isinstance(organizer_id, int) or not isinstance(fingerprint, str):
        return None
    organizer = session.get(Organizer, organizer_id)
    if organizer is None or not organizer.is_active:
        return None
    if not secrets.compare_digest(_fingerprint(organizer.password_hash), fingerprint):
        return None
    return organizer


# --- Flask-Login -----------------------------------------------------------------------------


class _Account(Protocol):
    """An organizer as a row or an ORM object: what a signed-in session is made from."""

    id: int
    email: str
    role: str
    password_hash: str
    totp_enabled_at: datetime | None


@dataclass(frozen=True)
class SignedInOrganizer(OrganizerRole, UserMixin):
    """The organizer of the current request, detached from the database session.

    ``session_id`` is what the session cookie carries: the session's token and the
    fingerprint of the password hash it was opened under."""

    id: int
    email: str
    role: str
    session_id: str
    totp_enabled: bool = False

    def get_id(self) -> str:
        return self.session_id

    @property
    def token(self) -> str:
        return self.session_id.partition(".")[0]


def signed_in(organizer: _Account, token: str) -> SignedInOrganizer:
    return SignedInOrganizer(
        id=organizer.id,
        email=organizer.email,
        role=organizer.role,
        session_id=f"{token}.{_fingerprint(organizer.password_hash)}",
        totp_enabled=organizer.totp_enabled_at is not None,
    )


_sessions = OrganizerSession.__table__
_organizers = Organizer.__table__
#: What a request needs of its session and organizer: a row, not ORM objects (a third of the
#: cost, and this runs on every signed-in request).
_SIGNED_IN = (
    select(
        _sessions.c.id.label("session_row"),
        _sessions.c.created_at,
        _sessions.c.last_seen_at,
        _sessions.c.revoked_at,
        _organizers.c.id,
        _organizers.c.email,
        _organizers.c.role,
        _organizers.c.password_hash,
        _organizers.c.is_active,
        _organizers.c.totp_enabled_at,
    )
    .join_from(_sessions, _organizers, _sessions.c.organizer_id == _organizers.c.id)
    .where(_sessions.c.token_hash == bindparam("token_hash"))
)

#: How many sessions' rows each process keeps (while the change watch sees no change).
SESSIONS_KEPT = 256


def _read_session(token_hash: str) -> Any:
    return db.session.connection().execute(_SIGNED_IN, {"token_hash": token_hash}).first()


def load_organizer(session_id: str) -> SignedInOrganizer | None:
    """Flask-Login's user loader: None (signed out) for an unknown, revoked, idle or expired
    session, a deactivated account, or a password changed since the session opened.

    The row is kept per process while the database does not change (speed/memo.py; changes
    of organizers and revocations notify on PostgreSQL), so a signed-in page that reads
    nothing else costs no query; the times are checked against the clock at each request. A
    session that looks idle is read again before it is refused (another worker may have seen
    it since), and ``last_seen_at`` is written at most once a minute (sessions.TOUCH_EVERY).
    """
    token, _, fingerprint = session_id.partition(".")
    if not token or not fingerprint:
        return None
    key = sessions.token_hash(token)
    row = kept("organizer", key, lambda: _read_session(key), size=SESSIONS_KEPT)
    if row is None:
        return None
    timeouts = sessions.Timeouts.from_settings(current_app.config)
    now = utcnow()
    ended = sessions.why_ended(row.created_at, row.last_seen_at, row.revoked_at, timeouts, now)
    if ended == sessions.IDLE:
        row = _read_session(key)
        if row is None:
            return None
        ended = sessions.why_ended(row.created_at, row.last_seen_at, row.revoked_at, timeouts, now)
    if ended is not None:
        g.organizer_session_ended = ended
        return None
    if not row.is_active or not secrets.compare_digest(
        _fingerprint(row.password_hash), fingerprint
    ):
        return None
    if sessions.needs_touch(row.last_seen_at, now):
        # The first look at current_user comes before the view (organizer_required), so
        # nothing else is in this transaction yet.
        sessions.touch(db.session, row.session_row, now=now)
        db.session.commit()
    return SignedInOrganizer(
        id=row.id,
        email=row.email,
        role=row.role,
        session_id=session_id,
        totp_enabled=row.totp_enabled_at is not None,
    )


#: What the sign-in page says when a session has ended by itself.
SESSION_ENDED = {
    sessions.IDLE: "You were signed out after a time without activity. Please sign in again.",
    sessions.EXPIRED: "Your session reached its longest length. Please sign in again.",
}


def wants_machine_answer() -> bool:
    """Downloads (CSV, PDF) and JSON clients get 401/403 bodies, not an HTML page or redirect."""
    if request.path.endswith((".csv", ".json", ".pdf")):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json" and request.accept_mimetypes[best] > 0


def _unauthorized():
    if wants_machine_answer():
        return jsonify(error="Please sign in.", status=401), 401
    ended = g.get("organizer_session_ended")
    if ended in SESSION_ENDED:
        flash(SESSION_ENDED[ended], "info")
    target = request.full_path if request.method == "GET" else request.path
    return redirect(url_for("organizer.login", next=target.rstrip("?")))


def init_app(app: Flask) -> None:
    login_manager.init_app(app)
    login_manager.user_loader(load_organizer)
    login_manager.unauthorized_handler(_unauthorized)
    login_manager.session_protection = "basic"


def must_enrol(user: Any) -> bool:
    """An administrator without an authenticator where TOTP_REQUIRED_FOR_ADMINS is on."""
    return bool(
        current_app.config["TOTP_REQUIRED_FOR_ADMINS"] and user.is_admin and not user.totp_enabled
    )


F = TypeVar("F", bound=Callable[..., Any])


def organizer_required(admin: bool = False, *, before_enrolment: bool = False) -> Callable[[F], F]:
    """Let signed-in organizers through (only administrators when ``admin``).

    Where administrators must use an authenticator (TOTP_REQUIRED_FOR_ADMINS), one without
    is sent to set it up, except on the views marked ``before_enrolment`` (the account page,
    signing out)."""

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if admin and not current_user.is_admin:
                abort(403)
            if not before_enrolment and must_enrol(current_user):
                if wants_machine_answer():
                    message = "Set up an authenticator on your account page first."
                    return jsonify(error=message, status=403), 403
                return redirect(url_for("organizer.account"))
            return view(*args, **kwargs)

        wrapper.organizer_access = "admin" if admin else "staff"  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate
