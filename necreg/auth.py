"""Organizer accounts: argon2id passwords, Flask-Login sessions and the access decorator.

Domain functions here take a session and plain values; only the Flask-Login glue at the end
looks at the request.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cache, wraps
from typing import Any, Protocol, TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import Flask, abort, jsonify, redirect, request, url_for
from flask_login import UserMixin, current_user
from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from .extensions import db, login_manager
from .formats import InvalidEmail, normalise_email, same_email
from .models import ADMIN, ORGANIZER_ROLES, Organizer, OrganizerRole, utcnow
from .speed.memo import kept

#: Shortest password accepted for an organizer account, in characters.
MIN_PASSWORD_LENGTH = 12
#: The e-mail of the first administrator that `make run` creates on an empty database.
FIRST_ADMIN_EMAIL = "admin@example.org"

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


def check_password_rules(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"The password must have at least {MIN_PASSWORD_LENGTH} characters.")


def create_organizer(
    session: Session, email: str, password: str, *, role: str = ADMIN
) -> Organizer:
    """Add an organizer account; raises AccountError for a bad e-mail, role or password."""
    if role not in ORGANIZER_ROLES:
        raise AccountError(f"Unknown role {role!r}; roles: {', '.join(ORGANIZER_ROLES)}")
    email = _account_email(email)
    check_password_rules(password)
    if find_organizer(session, email) is not None:
        raise AccountError(f"An organizer with the e-mail {email} already exists.")
    organizer = Organizer(email=email, password_hash=hash_password(password), role=role)
    session.add(organizer)
    session.flush()
    return organizer


def generate_password() -> str:
    """A random password to show once (about 120 bits)."""
    return secrets.token_urlsafe(15)


def ensure_organizer(session: Session, email: str = FIRST_ADMIN_EMAIL) -> tuple[str, str] | None:
    """Create the first administrator when there is no organizer; return (e-mail, password)."""
    if session.execute(select(func.count()).select_from(Organizer)).scalar_one():
        return None
    password = generate_password()
    organizer = create_organizer(session, email, password, role=ADMIN)
    return organizer.email, password


def authenticate(
    session: Session, email: str, password: str, *, now: datetime | None = None
) -> Organizer | None:
    """The active organizer with this e-mail and password, else None (one answer for all)."""
    organizer = find_organizer(session, email) if email else None
    if organizer is None:
        verify_password(_dummy_hash(), password)
        return None
    if not verify_password(organizer.password_hash, password) or not organizer.is_active:
        return None
    if _hasher.check_needs_rehash(organizer.password_hash):
        organizer.password_hash = hash_password(password)
    organizer.last_login_at = now or utcnow()
    session.flush()
    return organizer


# --- Flask-Login -----------------------------------------------------------------------------


class _Account(Protocol):
    """An organizer as a row or an ORM object: what a signed-in session is made from."""

    id: int
    email: str
    role: str
    password_hash: str


def _session_id(organizer: _Account) -> str:
    """The id kept in the session cookie: the account and a fingerprint of its password hash,
    so changing the password ends every other session."""
    fingerprint = hashlib.sha256(organizer.password_hash.encode()).hexdigest()[:16]
    return f"{organizer.id}.{fingerprint}"


@dataclass(frozen=True)
class SignedInOrganizer(OrganizerRole, UserMixin):
    """The organizer of the current request, detached from the database session."""

    id: int
    email: str
    role: str
    session_id: str

    def get_id(self) -> str:
        return self.session_id


def signed_in(organizer: _Account) -> SignedInOrganizer:
    return SignedInOrganizer(
        id=organizer.id,
        email=organizer.email,
        role=organizer.role,
        session_id=_session_id(organizer),
    )


_organizers = Organizer.__table__
#: What a request needs of its organizer: a row, not an ORM object (a third of the cost, and
#: this runs on every signed-in request).
_SIGNED_IN = select(
    _organizers.c.id,
    _organizers.c.email,
    _organizers.c.role,
    _organizers.c.password_hash,
    _organizers.c.is_active,
).where(_organizers.c.id == bindparam("id"))


#: How many organizers' rows each process keeps (while the change watch sees no change).
ORGANIZERS_KEPT = 256


def load_organizer(session_id: str) -> SignedInOrganizer | None:
    """Flask-Login's user loader: None (signed out) for unknown, deactivated or stale ids.

    The row is kept per process while the database does not change (speed/memo.py; organizer
    changes notify on PostgreSQL), so a signed-in page that reads nothing else costs no query;
    a deactivation or a new password made anywhere ends the session at the next request.
    """
    raw_id, _, _fingerprint = session_id.partition(".")
    if not raw_id.isdigit():
        return None
    organizer_id = int(raw_id)
    organizer = kept(
        "organizer",
        organizer_id,
        lambda: db.session.connection().execute(_SIGNED_IN, {"id": organizer_id}).first(),
        size=ORGANIZERS_KEPT,
    )
    if organizer is None or not organizer.is_active:
        return None
    user = signed_in(organizer)
    return user if secrets.compare_digest(user.session_id, session_id) else None


def wants_machine_answer() -> bool:
    """Downloads (CSV, PDF) and JSON clients get 401/403 bodies, not an HTML page or redirect."""
    if request.path.endswith((".csv", ".json", ".pdf")):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json" and request.accept_mimetypes[best] > 0


def _unauthorized():
    if wants_machine_answer():
        return jsonify(error="Please sign in.", status=401), 401
    target = request.full_path if request.method == "GET" else request.path
    return redirect(url_for("organizer.login", next=target.rstrip("?")))


def init_app(app: Flask) -> None:
    login_manager.init_app(app)
    login_manager.user_loader(load_organizer)
    login_manager.unauthorized_handler(_unauthorized)
    login_manager.session_protection = "basic"


F = TypeVar("F", bound=Callable[..., Any])


def organizer_required(admin: bool = False) -> Callable[[F], F]:
    """Let signed-in organizers through (only administrators when ``admin``)."""

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if admin and not current_user.is_admin:
                abort(403)
            return view(*args, **kwargs)

        wrapper.organizer_access = "admin" if admin else "staff"  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate
