"""The interest list: people who asked to hear when registration for the next symposium opens.

Double opt-in: a sign-up counts once its address is confirmed through the link mailed to it,
so nobody can put someone else's address on the list. The answer to a sign-up is the same
whether the address was known or not (the page never says). ``notify_opened`` tells each
confirmed address once per edition, through the outbox, however often it is run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import exists, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .mail.lists import INTEREST, unsubscribe_headers, unsubscribe_url
from .mail.outbox import queue, site_url
from .models import Event, InterestNotice, InterestSignup, new_token, utcnow
from .registration import lock_event

#: The consent a sign-up gives, and its version (stored with it): change both together.
CONSENT_TEXT = (
    "I agree to be e-mailed when registration for the next NEC Symposium opens. I can "
    "unsubscribe at any time with the link in every message."
)
CONSENT_VERSION = "interest-1"


class InterestError(ValueError):
    """What cannot be done; the message says why."""


def _find(session: Session, email: str) -> InterestSignup | None:
    return session.execute(
        select(InterestSignup).where(func.lower(InterestSignup.email) == email.lower())
    ).scalar_one_or_none()


def sign_up(
    session: Session, event: Event, *, email: str, name: str, now: datetime | None = None
) -> bool:
    """Put ``email`` on the list, to be confirmed, and mail it the link that confirms it;
    return whether a message was queued (not for an address confirmed already). An address
    that had unsubscribed must confirm again. ``event`` names the symposium in the message."""
    now = now or utcnow()
    signup = _find(session, email)
    if signup is None:
        signup = InterestSignup(email=email, name=name, created_at=now)
        try:
            with session.begin_nested():  # someone signing up the same address at once
                session.add(signup)
        except IntegrityError:
            signup = _find(session, email)
            assert signup is not None
    elif signup.confirmed_at is not None and signup.unsubscribed_at is None:
        return False
    if signup.unsubscribed_at is not None:
        signup.unsubscribed_at = None
        signup.confirmed_at = None
        signup.token = new_token()  # the old links stop working
    signup.name = name
    signup.consent_at = now
    signup.consent_version = CONSENT_VERSION
    session.flush()
    queue(
        session,
        "interest_confirm",
        to_address=signup.email,
        now=now,
        event=event,
        name=signup.name,
        confirm_link=f"{site_url()}/interest/confirm/{signup.token}",
    )
    return True


def find_by_token(session: Session, token: str) -> InterestSignup | None:
    if not token or len(token) > 64:
        return None
    return session.execute(
        select(InterestSignup).where(InterestSignup.token == token)
    ).scalar_one_or_none()


def confirm(session: Session, token: str, now: datetime | None = None) -> InterestSignup | None:
    """Confirm the sign-up whose link holds ``token`` (again is harmless); None if there is
    none (or it unsubscribed since)."""
    signup = find_by_token(session, token)
    if signup is None or signup.unsubscribed_at is not None:
        return None
    signup.confirmed_at = signup.confirmed_at or now or utcnow()
    return signup


@dataclass(frozen=True)
class ListFigures:
    """The interest list as organizers see it."""

    confirmed: int
    unconfirmed: int
    unsubscribed: int
    #: Confirmed addresses not yet told that this event opened.
    to_notify: int


def _waiting(event: Event):
    """Confirmed, subscribed sign-ups not yet told that ``event`` opened."""
    told = exists().where(
        InterestNotice.signup_id == InterestSignup.id, InterestNotice.event_id == event.id
    )
    return (
        InterestSignup.confirmed_at.is_not(None),
        InterestSignup.unsubscribed_at.is_(None),
        ~told,
    )


def list_figures(session: Session, event: Event) -> ListFigures:
    confirmed = InterestSignup.confirmed_at.is_not(None)
    unsubscribed = InterestSignup.unsubscribed_at.is_not(None)
    row = session.execute(
        select(
            func.count().filter(confirmed & ~unsubscribed),
            func.count().filter(~confirmed & ~unsubscribed),
            func.count().filter(unsubscribed),
        )
    ).one()
    waiting = session.execute(select(func.count()).where(*_waiting(event))).scalar_one()
    return ListFigures(row[0], row[1], row[2], waiting)


def notify_opened(session: Session, event: Event, now: datetime | None = None) -> int:
    """Tell every confirmed address that registration for ``event`` is open, once: return
    how many were told now (0 when all were already). Under the event's lock, so two runs at
    once tell nobody twice."""
    now = now or utcnow()
    if not event.registration_open(now):
        raise InterestError(
            f"Registration for {event.name} ({event.slug}) is not open, so the interest list "
            "is not told yet."
        )
    lock_event(session, event)
    signups = session.execute(
        select(InterestSignup).where(*_waiting(event)).order_by(InterestSignup.id)
    ).scalars()
    told = 0
    for signup in signups:
        session.add(InterestNotice(signup_id=signup.id, event_id=event.id, created_at=now))
        link = unsubscribe_url(INTEREST, signup.id)
        queue(
            session,
            "interest_open",
            to_address=signup.email,
            now=now,
            headers=unsubscribe_headers(link),
            event=event,
            name=signup.name,
            register_link=f"{site_url()}/register",
            unsubscribe_link=link,
        )
        told += 1
    session.flush()
    return told
