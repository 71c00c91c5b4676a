"""Delivering the outbox: claim due messages atomically, send, record the outcome, retry later.

Every claim and every outcome is a transaction of its own (the worker, unlike the domain
functions, owns its transactions): a claim must be visible to the other workers before the
message leaves, and an outcome must stick whatever happens to the next message.

The same worker delivers the webhooks (``deliver_webhooks``, webhooks.py) with the same
discipline, and sends at most MAIL_RATE_PER_MINUTE e-mails in any minute (``RateBudget``).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from .. import webhooks
from ..certificates import notify_ready
from ..extensions import db
from ..models import (
    MAIL_FAILED,
    MAIL_PENDING,
    MAIL_SENT,
    Attendee,
    OutboxMessage,
    WebhookDelivery,
    utcnow,
)
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
#: Attempts of one webhook delivery before it is marked failed (then retried from the admin
#: page): with the back-off of ``retry_delay`` (at most an hour apart) the last is about
#: three days after the first, so a receiver that is down for a day loses nothing.
WEBHOOK_MAX_ATTEMPTS = 80

#: The outbox's tables: an e-mail (OutboxMessage) or a webhook delivery (WebhookDelivery).
Queued = type[OutboxMessage] | type[WebhookDelivery]


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
    #: Due webhook deliveries left for the next round: their receiver had just failed.
    deferred: int = 0

    @property
    def attempted(self) -> int:
        return self.sent + self.retrying + self.failed


class RateBudget:
    """At most ``per_minute`` sends in any 60 seconds (0: no limit), counted by ``clock``
    (seconds, monotonic): a round takes what is left, the rest waits for the next rounds. A
    burst goes at once up to the rate; nothing is spaced out below it."""

    WINDOW = 60.0

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self.clock = clock
        self._sent: deque[float] = deque()

    def available(self) -> int | None:
        """How many may be sent now (None: no limit)."""
        if not self.per_minute:
            return None
        start = self.clock() - self.WINDOW
        while self._sent and self._sent[0] <= start:
            self._sent.popleft()
        return max(self.per_minute - len(self._sent), 0)

    def spend(self) -> None:
        """One was sent (or tried) now."""
        if self.per_minute:
            self._sent.append(self.clock())


def _due(now: datetime, model: Queued = OutboxMessage):
    return (
        (model.status == MAIL_PENDING)
        & (model.next_attempt_at <= now)
        & or_(model.claimed_until.is_(None), model.claimed_until < now)
    )


def claim(
    session: Session,
    message_id: int,
    now: datetime,
    until: datetime,
    *,
    model: Queued = OutboxMessage,
) -> bool:
    """Claim one message (of ``model``: an e-mail, or a webhook delivery) until ``until``;
    True when this caller got it. Commits.

    A conditional UPDATE: of two workers racing for the same row, the database lets exactly
    one match (PostgreSQL re-checks the WHERE after the row lock; SQLite has one writer).
    """
    result = session.execute(
        update(model)
        .where(model.id == message_id, _due(now, model))
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
    budget: RateBudget | None = None,
) -> Round:
    """Deliver up to ``limit`` due messages, the system's own first (organizers' messages
    after them), oldest due first, no more than ``budget`` lets go now
    (MAIL_RATE_PER_MINUTE); return what happened."""
    now = now or utcnow()
    done = Round()
    allowed = budget.available() if budget is not None else None
    if allowed is not None:
        limit = min(limit, allowed)
    ids = (
        session.execute(
            select(OutboxMessage.id)
            .where(_due(now))
            # The system's own e-mails (a confirmation, a link) before an organizers' message
            # to everyone: under MAIL_RATE_PER_MINUTE they never wait behind its backlog.
            .order_by(
                OutboxMessage.message_id.is_not(None),
                OutboxMessage.next_attempt_at,
                OutboxMessage.id,
            )
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
            if budget is not None:
                budget.spend()
            try:
                backend.send(build_message(message, sender), message)
            except Exception as exc:  # noqa: BLE001 - any failure is recorded and retried
                error = f"{type(exc).__name__}: {exc}"[:ERROR_LENGTH]
                attempts = message.attempts + 1
                gave_up = attempts >= max_attempts
                _finish(
                    session,
                    OutboxMessage,
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
                    OutboxMessage,
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


def _finish(
    session: Session, model: Queued, message_id: int, until: datetime, **values: Any
) -> None:
    """Record an outcome and release the claim, only if the claim is still ours."""
    session.execute(
        update(model)
        .where(model.id == message_id, model.claimed_until == until)
        .values(claimed_until=None, **values)
        .execution_options(synchronize_session=False)
    )
    session.commit()


#: Sends a delivery to its receiver with the secret: (HTTP status, start of the answer).
Deliver = Callable[[WebhookDelivery, str], tuple[int, str]]


def deliver_webhooks(
    session: Session,
    receivers: Sequence[webhooks.Receiver] | Mapping[str, str],
    *,
    now: datetime | None = None,
    worker_id: str = "",
    limit: int = 50,
    max_attempts: int = WEBHOOK_MAX_ATTEMPTS,
    send: Deliver = webhooks.deliver,
) -> Round:
    """Deliver up to ``limit`` due webhook deliveries, oldest due first, each signed with its
    receiver's secret (``receivers``: the setting's, or {url: secret}); return what happened.

    Any 2xx answer is success; another answer or none (refused, timed out) is retried with
    back-off, up to ``max_attempts``, then the delivery is failed. After a receiver failed
    once, its other deliveries wait for the next round (``deferred``), so a receiver that is
    down costs a round one attempt, not one timeout per delivery. A delivery whose receiver
    is no longer in WEBHOOKS fails at once.
    """
    now = now or utcnow()
    secrets = (
        dict(receivers) if isinstance(receivers, Mapping) else {r.url: r.secret for r in receivers}
    )
    done = Round()
    due = session.execute(
        select(WebhookDelivery.id, WebhookDelivery.url)
        .where(_due(now, WebhookDelivery))
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
        .limit(limit)
    ).all()
    session.commit()
    down: set[str] = set()
    for delivery_id, url in due:
        if url in down:
            done.deferred += 1
            continue
        claimed_at = max(now, utcnow())  # as in deliver_due: timed when taken
        until = claimed_at + timedelta(seconds=CLAIM_SECONDS)
        if not claim(session, delivery_id, claimed_at, until, model=WebhookDelivery):
            done.skipped += 1
            continue
        delivery = session.get(WebhookDelivery, delivery_id, populate_existing=True)
        assert delivery is not None
        secret = secrets.get(url)
        if secret is None:
            _finish(session, WebhookDelivery, delivery_id, until, status=MAIL_FAILED,
                    last_error="Its receiver is no longer in the setting WEBHOOKS.")  # fmt: skip
            done.failed += 1
            continue
        attempts, status = delivery.attempts + 1, None
        try:
            status, answer = send(delivery, secret)
        except Exception as exc:  # noqa: BLE001 - any failure is recorded and retried
            error = f"{type(exc).__name__}: {exc}"
        else:
            error = "" if 200 <= status < 300 else f"HTTP {status}: {answer}".strip()
        if not error:
            _finish(session, WebhookDelivery, delivery_id, until, attempts=attempts,
                    status=MAIL_SENT, sent_at=utcnow(), last_status=status,
                    last_error="")  # fmt: skip
            done.sent += 1
            continue
        down.add(url)
        gave_up = attempts >= max_attempts
        _finish(
            session,
            WebhookDelivery,
            delivery_id,
            until,
            attempts=attempts,
            status=MAIL_FAILED if gave_up else MAIL_PENDING,
            next_attempt_at=now + retry_delay(attempts),
            last_status=status,
            last_error=error[:ERROR_LENGTH],
        )
        if gave_up:
            done.failed += 1
            log.error("%s: gave up on webhook delivery %s to %s after %s attempts: %s",
                      worker_id, delivery_id, url, attempts, error)  # fmt: skip
        else:
            done.retrying += 1
            log.warning("%s: webhook delivery %s to %s failed (attempt %s), retrying: %s",
                        worker_id, delivery_id, url, attempts, error)  # fmt: skip
    return done


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
    """Deliver queued e-mails (MAIL_BACKEND, at most MAIL_RATE_PER_MINUTE) and webhooks
    (WEBHOOKS), with retries, and end the places held unpaid past their time (with a
    PAYMENT_PROVIDER); stops on SIGTERM or Ctrl-C."""
    config = current_app.config
    backend = backend_from_config(config, current_app.instance_path)
    receivers = webhooks.receivers_of(config)
    budget = RateBudget(int(config["MAIL_RATE_PER_MINUTE"]))
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
                budget=budget,
            )
            hooks = (
                deliver_webhooks(db.session, receivers, worker_id=worker_id, limit=limit)
                if receivers
                else Round()
            )
        except Exception:
            db.session.rollback()
            if once:
                raise
            log.exception("%s: delivery round failed; trying again", worker_id)
            done, hooks, expired = Round(), Round(), 0
        if once:
            click.echo(
                f"sent {done.sent}, retrying {done.retrying}, failed {done.failed}, "
                f"skipped {done.skipped}, holds expired {expired}"
                + (
                    f"; webhooks sent {hooks.sent}, retrying {hooks.retrying},"
                    f" failed {hooks.failed}"
                    if receivers
                    else ""
                )
            )
            return
        # A full round may leave more due: go on at once (e-mails only while the rate lets
        # more go); otherwise wait.
        more_mail = done.attempted + done.skipped >= limit and budget.available() != 0
        more_hooks = hooks.attempted + hooks.skipped >= limit
        if not (more_mail or more_hooks) and stop.wait(interval):
            break
        if stop.is_set():
            break
    db.session.remove()
