"""Failed sign-ins slow down whoever fails, never the account's owner.

Failures are counted per (account, origin) and per origin across accounts, over the last
``WINDOW``. The origin is the client's address, or for a known device (one where the account
signed in before: a signed cookie, organizer/auth.py) the device itself, counted apart from
the address: so failures from elsewhere never slow the owner at their own device.

No account is ever locked: past ``PAIR_FREE`` failures of one account from one origin, the
next attempt waits ``2 ** (n - PAIR_FREE)`` seconds after the last failure (n failures so far;
1 s, 2 s, 4 s ... up to ``MAX_DELAY``); past ``ADDRESS_FREE`` failures from one address
across accounts, the same. A successful sign-in does not count and clears the failures of
its (account, origin).

Domain functions: a database session and plain values; they flush, never commit.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from .formats import email_limit_key
from .models import MAX_LENGTHS, LoginFailure, utcnow

#: How far back failures are counted.
WINDOW = timedelta(minutes=15)
#: Failures of one account from one origin before the attempts are slowed.
PAIR_FREE = 3
#: Failures from one address, whatever the accounts, before its attempts are slowed.
ADDRESS_FREE = 20
#: The longest wait asked for.
MAX_DELAY = timedelta(minutes=15)
#: Longest origin kept (the column's length): an address, or ``device:`` and the device's id.
ORIGIN_LENGTH = 64
DEVICE_PREFIX = "device:"


def failure_email(email: str) -> str:
    """The e-mail as failures are counted by (``email_limit_key``): no other spelling of
    one address gets a count of its own."""
    return email_limit_key(email)[: MAX_LENGTHS["email"]]


def delay(failures: int, free: int) -> timedelta:
    """How long after the last of ``failures`` the next attempt waits."""
    if failures < free:
        return timedelta(0)
    return min(timedelta(seconds=2 ** min(failures - free, 20)), MAX_DELAY)


def _wait(session: Session, where, free: int, now: datetime) -> float:
    count, last = session.execute(
        select(func.count(), func.max(LoginFailure.failed_at)).where(
            *where, LoginFailure.failed_at > now - WINDOW
        )
    ).one()
    if not count or last is None:
        return 0.0
    return ((last + delay(count, free)) - now).total_seconds()


def seconds_to_wait(
    session: Session,
    email: str,
    origin: str,
    *,
    per_address: bool = True,
    now: datetime | None = None,
) -> int:
    """Whole seconds before an attempt on ``email`` from ``origin`` is heard (0: now).

    ``per_address``: also apply the looser limit of the origin across accounts (not for a
    known device, which answers only for its own failures)."""
    now = now or utcnow()
    origin = origin[:ORIGIN_LENGTH]
    pair = (LoginFailure.email == failure_email(email), LoginFailure.address == origin)
    wait = _wait(session, pair, PAIR_FREE, now)
    if per_address:
        wait = max(wait, _wait(session, (LoginFailure.address == origin,), ADDRESS_FREE, now))
    return max(0, math.ceil(wait))


def record_failure(
    session: Session, email: str, origin: str, *, now: datetime | None = None
) -> None:
    """Count a failed attempt (wrong e-mail, password or code) on ``email`` from ``origin``;
    failures of the origin older than the window are let go on the way."""
    now = now or utcnow()
    origin = origin[:ORIGIN_LENGTH]
    session.execute(
        delete(LoginFailure).where(
            LoginFailure.address == origin, LoginFailure.failed_at <= now - WINDOW
        )
    )
    session.add(LoginFailure(email=failure_email(email), address=origin, failed_at=now))
    session.flush()


def clear_failures(session: Session, email: str, origin: str) -> None:
    """A successful sign-in: the failures of its (account, origin) no longer count."""
    session.execute(
        delete(LoginFailure).where(
            LoginFailure.email == failure_email(email),
            LoginFailure.address == origin[:ORIGIN_LENGTH],
        )
    )
