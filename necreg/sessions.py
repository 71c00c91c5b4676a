"""Organizers' sessions, kept in the database (``OrganizerSession``).

Signing in opens a session: a random token the cookie carries, of which only the SHA-256 is
stored. A session is honoured while it is not revoked, was used within ``idle`` and was opened
within ``lifetime``; signing out, a password change, a deactivation and "sign out everywhere"
revoke it, so a copied cookie stops working with them.

Domain functions: they take a database session and plain values, flush and never commit.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from .models import OrganizerSession, utcnow
from .triggers import NOTIFY_CHANNEL

#: How often a session's ``last_seen_at`` is written at most: once a minute, not per request.
TOUCH_EVERY = timedelta(minutes=1)
#: Longest client address and browser name kept with a session (the columns' lengths).
ADDRESS_LENGTH = 64
USER_AGENT_LENGTH = 300
#: Why a session is not honoured, as the sign-in page tells it.
REVOKED, IDLE, EXPIRED = "revoked", "idle", "expired"


@dataclass(frozen=True)
class Timeouts:
    """How long a session lasts: ``idle`` without use, ``lifetime`` after sign-in."""

    idle: timedelta
    lifetime: timedelta

    @classmethod
    def from_settings(cls, config) -> Timeouts:
        return cls(
            idle=timedelta(minutes=int(config["SESSION_IDLE_MINUTES"])),
            lifetime=timedelta(hours=int(config["SESSION_MAX_HOURS"])),
        )


def token_hash(token: str) -> str:
    """What is stored of a session's token: its SHA-256 in hexadecimal."""
    return hashlib.sha256(token.encode()).hexdigest()


def open_session(
    session: Session,
    organizer_id: int,
    *,
    address: str = "",
    user_agent: str = "",
    timeouts: Timeouts | None = None,
    now: datetime | None = None,
) -> str:
    """Open a session for the organizer and return its token (shown to nobody but the cookie).

    With ``timeouts``, the organizer's sessions that have ended are deleted on the way."""
    now = now or utcnow()
    token = secrets.token_urlsafe(32)
    if timeouts is not None:
        session.execute(
            delete(OrganizerSession).where(
                OrganizerSession.organizer_id == organizer_id,
                or_(
                    OrganizerSession.revoked_at.is_not(None),
                    OrganizerSession.created_at < now - timeouts.lifetime,
                    OrganizerSession.last_seen_at < now - timeouts.idle,
                ),
            )
        )
    session.add(
        OrganizerSession(
            organizer_id=organizer_id,
            token_hash=token_hash(token),
            created_at=now,
            last_seen_at=now,
            address=(address or "")[:ADDRESS_LENGTH],
            user_agent=(user_agent or "")[:USER_AGENT_LENGTH],
        )
    )
    session.flush()
    return token


def why_ended(
    created_at: datetime,
    last_seen_at: datetime,
    revoked_at: datetime | None,
    timeouts: Timeouts,
    now: datetime,
) -> str | None:
    """None while the session is honoured, else why not (REVOKED, IDLE or EXPIRED)."""
    if revoked_at is not None:
        return REVOKED
    if now - created_at >= timeouts.lifetime:
        return EXPIRED
    if now - last_seen_at >= timeouts.idle:
        return IDLE
    return None


def needs_touch(last_seen_at: datetime, now: datetime) -> bool:
    return now - last_seen_at >= TOUCH_EVERY


def touch(session: Session, session_id: int, *, now: datetime | None = None) -> None:
    """Record that the session was used now (when it was last recorded a minute ago or more,
    whoever else recorded it meanwhile)."""
    now = now or utcnow()
    session.execute(
        update(OrganizerSession)
        .where(
            OrganizerSession.id == session_id,
            OrganizerSession.last_seen_at <= now - TOUCH_EVERY,
        )
        .values(last_seen_at=now)
    )


def revoke(session: Session, token: str, *, now: datetime | None = None) -> int:
    """Revoke the session of this token (signing out); how many were revoked (0 or 1)."""
    return _revoke(session, OrganizerSession.token_hash == token_hash(token), now)


def revoke_all(
    session: Session, organizer_id: int, *, keep: str | None = None, now: datetime | None = None
) -> int:
    """Revoke every open session of the organizer but ``keep`` (a token); how many."""
    where = OrganizerSession.organizer_id == organizer_id
    if keep is not None:
        where = where & (OrganizerSession.token_hash != token_hash(keep))
    return _revoke(session, where, now)


def _revoke(session: Session, where, now: datetime | None) -> int:
    result = session.execute(
        update(OrganizerSession)
        .where(where, OrganizerSession.revoked_at.is_(None))
        .values(revoked_at=now or utcnow())
        .execution_options(synchronize_session=False)
    )
    if result.rowcount:
        _announce(session)
    return result.rowcount


def _announce(session: Session) -> None:
    """Tell every instance, at commit, that sessions changed (PostgreSQL's change notice, as
    the triggers on organizers send it: a worker that kept a session revoked elsewhere must
    learn of it). SQLite's watch sees every commit without being told."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_notify(NOTIFY_CHANNEL, "organizer_sessions")))


def open_sessions(
    session: Session, organizer_id: int, timeouts: Timeouts, *, now: datetime | None = None
) -> list[OrganizerSession]:
    """The organizer's sessions still honoured, the latest used first."""
    now = now or utcnow()
    return list(
        session.execute(
            select(OrganizerSession)
            .where(
                OrganizerSession.organizer_id == organizer_id,
                OrganizerSession.revoked_at.is_(None),
                OrganizerSession.created_at > now - timeouts.lifetime,
                OrganizerSession.last_seen_at > now - timeouts.idle,
            )
            .order_by(OrganizerSession.last_seen_at.desc(), OrganizerSession.id.desc())
        ).scalars()
    )
