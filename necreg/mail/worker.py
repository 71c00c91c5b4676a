"""Delivering the outbox: claim due messages atomically, send, record the outcome, retry later.

Every claim and every outcome is a transaction of its own (the worker, unlike the domain
functions, owns its transactions): a claim must be visible to the other workers before the
message leaves, and an outcome must stick whatever happens to the next message.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from ..certificates import notify_ready
from ..extensions import db
from ..models import MAIL_FAILED, MAIL_PENDING, MAIL_SENT, Attendee, OutboxMessage, utcnow
from ..payments import PaymentTerms, payment_terms
from ..registration import expire_hold, holds_due
from .delivery import Backend, backend_from_config, build_message

log = logging.getLogger("necreg.mail")

#: How long a claim holds: far longer than one SMTP attempt may take (its timeout is 30 s),
#: so no other worker takes a message that is still being sent.
CLAIM_SECONDS = 300
#: Back-off after the n-th failed attempt: 1 min, 2, 4, ... at most this long.
RETRY_FIRST_SECONDS = 60
RETRY_MAX_SECONDS = 3600
#: Longest last_error kept, in characters.
ERROR_LENGTH = 1000


def retry_delay(attempts: int) -> timedelta:
    """How long to wait after ``attempts`` failed attempts (1 -> 1 min, 2 -> 2 min, ...)."""
    exponent = min(max(attempts - 1, 0), 20)
    return timedelta(seconds=min(RETRY_FIRST_SECONDS * 2**exponent, RETRY_MAX_SECONDS))


@dataclass
class Round:
    """What one round of delivery did."""

    sent: int = 0
    retrying: int = 0
    failed: int = 0
    #: Due messages that another worker claimed first.
    skipped: int = 0

    @property
    def attempted(self) -> int:
        return self.sent + self.retrying + self.failed


def _due(now: datetime):
    return (
        (OutboxMessage.status == MAIL_PENDING)
        & (OutboxMessage.next_attempt_at <= now)
        & or_(OutboxMessage.claimed_until.is_(None), OutboxMessage.claimed_until < now)
    )


def claim(session: Session, message_id: int, now: datetime, until: datetime) -> bool:
    """Claim one message until ``until``; True when this caller got it. Commits.

    A conditional UPDATE: of two workers racing for the same row, the database lets exactly
    one match (PostgreSQL re-checks the WHERE after the row lock; SQLite has one writer).
    """
    result = session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id, _due(now))
        .values(claimed_until=until)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return result.rowcount == 1


def deliver_due(
    session: Session,
    backend: Backend,
    *,
    sender: str,
    now: datetime | None = None,
    worker_id: str = "",
    limit: int = 50,
    max_attempts: int = 8,
) -> Round:
    """Deliver up to ``limit`` due messages, oldest due first; return what happened."""
    now = now or utcnow()
    done = Round()
    ids = (
        session.execute(
            select(OutboxMessage.id)
            .where(_due(now))
            .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
            .limit(limit)
        )
        .scalars()
        .all()
    )
    session.commit()
    try:
        for message_id in ids:
            # Each claim is timed by the clock when it is taken, not when the round began:
            # after a long round a claim dated from its start would be over already, and
            # another worker could take the message while this one sends it.
            claimed_at = max(now, utcnow())
            until = claimed_at + timedelta(seconds=CLAIM_SECONDS)
            if not claim(session, message_id, claimed_at, until):
                done.skipped += 1
                continue
            message = session.get(OutboxMessage, message_id, populate_existing=True)
            assert message is not None
            try:
                backend.send(build_message(message, sender), message)
            except Exception as exc:  # noqa: BLE001 - any failure is recorded and retried
                error = f"{type(exc).__name__}: {exc}"[:ERROR_LENGTH]
                attempts = message.attempts + 1
                gave_up = attempts >= max_attempts
                _finish(
                    session,
                    message_id,
                    until,
                    attempts=attempts,
                    last_error=error,
                    status=MAIL_FAILED if gave_up else MAIL_PENDING,
                    next_attempt_at=now + retry_delay(attempts),
                )
                if gave_up:
                    done.failed += 1
                    log.error("%s: gave up on message %s after %s attempts: %s",
                              worker_id, message_id, attempts, error)  # fmt: skip
                else:
                    done.retrying += 1
                    log.warning("%s: message %s failed (attempt %s), retrying: %s",
                                worker_id, message_id, attempts, error)  # fmt: skip
            else:
                _finish(
                    session,
                    message_id,
                    until,
                    attempts=message.attempts + 1,
                    status=MAIL_SENT,
                    sent_at=utcnow(),
                    last_error="",
                )
                done.sent += 1
    finally:
        backend.close()
    return done


def _finish(session: Session, message_id: int, until: datetime, **values: Any) -> None:
    """Record an outcome and release the claim, only if the claim is still ours."""
    session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id, OutboxMessage.claimed_until == until)
        .values(claimed_until=None, **values)
        .execution_options(synchronize_session=False)
    )
    session.commit()


def expire_due_holds(
    session: Session, payment: PaymentTerms | None, now: datetime | None = None
) -> int:
    """End the places held unpaid past their time, each in a transaction of its own (its
    place goes to the waiting list in the same one); return how many ended."""
    ended = 0
    for attendee_id in holds_due(session, now or utcnow()):
        attendee = session.get(Attendee, attendee_id)
        if attendee is not None:
            ended += expire_hold(session, attendee, payment=payment, now=now) is not None
        session.commit()
    return ended


def _worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@click.command("mail-worker")
@click.option("--once", is_flag=True, help="Deliver what is due now, then exit.")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.1),
    default=5.0,
    show_default=True,
    help="Seconds to wait when nothing was due.",
)
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@with_appcontext
def mail_worker_command(once: bool, interval: float, limit: int) -> None:
    """Deliver queued e-mails (MAIL_BACKEND), with retries, and end the places held unpaid
    past their time (with a PAYMENT_PROVIDER); stops on SIGTERM or Ctrl-C."""
    config = current_app.config
    backend = backend_from_config(config, current_app.instance_path)
    worker_id = _worker_id()
    stop = threading.Event()

    def request_stop(signum: int, _frame: Any) -> None:
        stop.set()

    if not once and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
        click.echo(f"mail-worker {worker_id}: delivering with {config['MAIL_BACKEND']}")
    payment = payment_terms(config)
    while True:
        try:
            expired = expire_due_holds(db.session, payment) if payment is not None else 0
            notify_ready(db.session)  # certificates that opened: told once
            db.session.commit()
            done = deliver_due(
                db.session,
                backend,
                sender=config["MAIL_SENDER"],
                worker_id=worker_id,
                limit=limit,
                max_attempts=int(config["MAIL_MAX_ATTEMPTS"]),
            )
        except Exception:
            db.session.rollback()
            if once:
                raise
            log.exception("%s: delivery round failed; trying again", worker_id)
            done, expired = Round(), 0
        if once:
            click.echo(
                f"sent {done.sent}, retrying {done.retrying}, failed {done.failed}, "
                f"skipped {done.skipped}, holds expired {expired}"
            )
            return
        # A full round may leave more due messages: go on at once; otherwise wait.
        if done.attempted + done.skipped < limit and stop.wait(interval):
            break
        if stop.is_set():
            break
    db.session.remove()
