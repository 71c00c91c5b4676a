"""Webhooks (setting WEBHOOKS): registrations' changes told to other systems.

**What is told.** One event per registration (attendee row: a companion is told of as its
own registration) per transaction that changed it, to each receiver that wants its type:

- ``registration.created``: a new attendee row, whatever its status (confirmed, held until
  paid for, waitlisted); a companion added later too.
- ``registration.cancelled``: its status became ``cancelled`` (by its holder, an organizer,
  or a hold that expired unpaid).
- ``registration.paid``: a payment was recorded for it (its ``amount_paid`` grew).
- ``registration.checked_in``: it was checked in at the registration desk (a door of the
  program is not a check-in of the registration).
- ``registration.updated``: any other change of what the API shows of it (WATCHED): a status
  that moves otherwise (waitlisted -> confirmed, held -> confirmed once paid, a restored
  cancellation), its details, its fee, its answers or consents (which move its
  ``updated_at``), a refund, a check-in undone, a companion added to its party.

When one transaction does several of these to one registration, the first in the list above
is told (a registration paid for and thereby confirmed is ``.paid``): the body always shows
the registration as the transaction left it. What leaves the attendee's row as it was (a
program sign-up, a scan at a program's door, a value set to what it was) tells nothing.

**How.** A listener on the app's sessions notes, at each flush, which registrations changed
and how (the attributes' history; a savepoint rolled back takes its notes with it); just
before the transaction commits, one WebhookDelivery row per (registration, receiver) is
added, in that transaction: the outbox. Nothing is queued for a transaction rolled back; a
change committed is never without its deliveries. Statements that bypass the ORM
(``update(Attendee)``) say what they did with ``note``; bulk inserts of the seed command
tell nothing. The mail worker delivers (mail/worker.py ``deliver_webhooks``).

**The body** (stored at queue time, sent and signed exactly as stored)::

    {"id": 42, "type": "registration.created", "created_at": "2025-09-08T14:05:03Z",
     "data": {...the registration as GET /api/v1/attendees shows it...}}

``id`` is the delivery id (the row's id, known by flushing the row before its body is
written); a repeated delivery carries the same id, so a receiver that keeps the ids it has
seen applies each event once. Headers: ``X-Necreg-Signature: sha256=<hex HMAC-SHA256 of the
body with the receiver's secret>``, ``X-Necreg-Timestamp`` (unix seconds of ``created_at``,
which the signature covers through the body), ``X-Necreg-Delivery``, ``X-Necreg-Event``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import Flask, current_app, has_app_context
from sqlalchemy import ColumnElement, inspect, true, update
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session, SessionTransaction, scoped_session

from .api.resources import attendee_resources
from .config import WEBHOOK_EVENTS
from .extensions import db
from .formats import json_timestamp
from .models import (
    MAIL_FAILED,
    MAIL_PENDING,
    STATUS_CANCELLED,
    Attendee,
    Event,
    Payment,
    WebhookDelivery,
    utcnow,
)

CREATED, UPDATED, CANCELLED, CHECKED_IN, PAID = WEBHOOK_EVENTS
#: Of several changes to one registration in one transaction, the one told (first first).
PRECEDENCE = (CREATED, CANCELLED, PAID, CHECKED_IN, UPDATED)
#: The attendee columns the API shows (api/resources.py): a change of one is an update
#: (``code`` and ``created_at`` never change).
WATCHED = (
    "status",
    "role",
    "first_name",
    "last_name",
    "badge_name",
    "email",
    "institution",
    "country",
    "early_career",
    "credential",
    "attendance",
    "age_band",
    "party_id",
    "amount_due",
    "checked_in_at",
    # Moved with every deliberate change of the registration, answers and consents too.
    "updated_at",
)

#: Seconds a receiver has to answer a delivery.
TIMEOUT_SECONDS = 10
#: Longest part of a receiver's answer kept (in last_error), in characters.
ANSWER_LENGTH = 300
USER_AGENT = "necreg-webhooks/1"

_EXTENSION = "necreg.webhooks"
#: Session.info key of the changes noted in the session's transaction, not yet queued.
_NOTED = "necreg.webhooks.noted"


@dataclass(frozen=True)
class Receiver:
    """One receiver of the setting WEBHOOKS: its address, its secret, the events it wants."""

    url: str
    secret: str
    events: frozenset[str]


def receivers_of(settings: Mapping[str, Any]) -> tuple[Receiver, ...]:
    """The receivers of the app's ``settings`` (checked by config.load)."""
    return tuple(
        Receiver(r["url"], r["secret"], frozenset(r.get("events") or WEBHOOK_EVENTS))
        for r in settings["WEBHOOKS"]
    )


def init_app(app: Flask) -> None:
    """Queue a delivery for each change of a registration, in the change's transaction."""
    receivers = receivers_of(app.config)
    app.extensions[_EXTENSION] = receivers
    if receivers:
        _listen()


def _receivers() -> tuple[Receiver, ...]:
    """The receivers of the app at work (none outside an app)."""
    if not has_app_context():
        return ()
    return current_app.extensions.get(_EXTENSION, ())


# --- Noting changes, and queueing them with the transaction ------------------------------


@dataclass(frozen=True)
class _Noted:
    #: The innermost transaction (savepoint, or the session's) the change was made in.
    transaction: SessionTransaction
    attendee_id: int
    event_type: str


def note(session: Session | scoped_session[Session], attendee_id: int, event_type: str) -> None:
    """Tell the receivers that ``attendee_id`` changed as ``event_type`` says, with this
    transaction: for changes made by statements that bypass the ORM's attributes."""
    if _receivers():
        if isinstance(session, scoped_session):
            session = session()  # db.session: this context's own
        transaction = session.get_nested_transaction() or session.get_transaction()
        assert transaction is not None, "note() within the change's transaction"
        session.info.setdefault(_NOTED, []).append(_Noted(transaction, attendee_id, event_type))


def _attendee_change(attendee: Attendee) -> str | None:
    """What a flush of the (persistent) ``attendee`` changed, as an event type; None: nothing
    the API shows."""
    attrs = inspect(attendee).attrs
    status = attrs.status.history
    if (
        status.added
        and status.added[0] == STATUS_CANCELLED
        and STATUS_CANCELLED not in status.deleted
    ):
        return CANCELLED
    checked_in = attrs.checked_in_at.history
    if checked_in.added and checked_in.added[0] is not None and not any(checked_in.deleted):
        return CHECKED_IN
    # A scalar set to the value it had has no history (added is empty).
    if any(attrs[name].history.added for name in WATCHED):
        return UPDATED
    return None


def _after_flush(session: Session, _flush_context: Any) -> None:
    """Note what the flush wrote: new and changed registrations, payments and refunds."""
    if not _receivers():
        return
    changes: list[tuple[int, str]] = []
    for obj in session.new:
        if isinstance(obj, Attendee):
            changes.append((obj.id, CREATED))
        elif isinstance(obj, Payment) and obj.refunded_at is None:
            changes.append((obj.attendee_id, PAID))
    for obj in session.dirty:
        if isinstance(obj, Attendee):
            kind = _attendee_change(obj)
            if kind is not None:
                changes.append((obj.id, kind))
        elif isinstance(obj, Payment) and inspect(obj).attrs.refunded_at.history.added:
            changes.append((obj.attendee_id, UPDATED))
    for attendee_id, kind in changes:
        note(session, attendee_id, kind)


def _within(transaction: SessionTransaction | None, outer: SessionTransaction) -> bool:
    while transaction is not None:
        if transaction is outer:
            return True
        transaction = transaction.parent
    return False


def _after_soft_rollback(session: Session, previous: SessionTransaction) -> None:
    """Forget what was noted in the savepoint (or transaction) that was rolled back."""
    noted = session.info.get(_NOTED)
    if not noted:
        return
    undone: SessionTransaction = previous
    while undone.parent is not None and not undone.nested:
        undone = undone.parent  # a flush's own subtransaction rolls back what it is in
    if undone.parent is None:
        session.info.pop(_NOTED, None)
    else:
        session.info[_NOTED] = [n for n in noted if not _within(n.transaction, undone)]


def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        session.info.pop(_NOTED, None)


def _before_commit(session: Session) -> None:
    """Queue the deliveries of what the transaction changed, in the transaction."""
    if session.in_nested_transaction():
        return  # a savepoint released: its notes wait for the transaction's commit
    receivers = _receivers()
    if not receivers:
        return
    session.flush()  # what is still unflushed is noted too
    noted: list[_Noted] = session.info.pop(_NOTED, [])
    if noted:
        queue(session, receivers, [(n.attendee_id, n.event_type) for n in noted])


def _listen() -> None:
    """Listen to the sessions of ``db`` (once for the process; the listeners do nothing in an
    app without receivers)."""
    session_class = db.session.session_factory.class_
    for name, listener in (
        ("after_flush", _after_flush),
        ("after_soft_rollback", _after_soft_rollback),
        ("after_transaction_end", _after_transaction_end),
        ("before_commit", _before_commit),
    ):
        if not sa_event.contains(session_class, name, listener):
            sa_event.listen(session_class, name, listener)


def queue(
    session: Session,
    receivers: Sequence[Receiver],
    changes: Iterable[tuple[int, str]],
    *,
    now: datetime | None = None,
) -> list[WebhookDelivery]:
    """Add the deliveries of ``changes`` ((attendee id, event type), several per attendee
    allowed: one is told, PRECEDENCE) to ``receivers``, each body the registration as it is
    now; return them (flushed, bodies written)."""
    now = now or utcnow()
    kinds: dict[int, set[str]] = {}
    for attendee_id, kind in changes:
        kinds.setdefault(attendee_id, set()).add(kind)
    told = {a: min(k, key=PRECEDENCE.index) for a, k in kinds.items()}
    if not any(kind in r.events for kind in set(told.values()) for r in receivers):
        return []
    by_event: dict[int, list[Attendee]] = {}
    for attendee_id in sorted(told):
        attendee = session.get(Attendee, attendee_id)
        if attendee is not None:  # deleted in the same transaction: nothing to show
            by_event.setdefault(attendee.event_id, []).append(attendee)
    queued: list[tuple[WebhookDelivery, dict[str, Any]]] = []
    for event_id, attendees in by_event.items():
        event = session.get(Event, event_id)
        assert event is not None
        for attendee, data in zip(
            attendees, attendee_resources(session, event, attendees), strict=True
        ):
            kind = told[attendee.id]
            for receiver in receivers:
                if kind in receiver.events:
                    delivery = WebhookDelivery(
                        url=receiver.url,
                        event_type=kind,
                        body="",
                        status=MAIL_PENDING,
                        attempts=0,
                        next_attempt_at=now,
                        created_at=now,
                        last_error="",
                    )
                    queued.append((delivery, data))
    session.add_all([delivery for delivery, _data in queued])
    session.flush()  # the ids, which the bodies carry
    for delivery, data in queued:
        delivery.body = body_of(delivery.id, delivery.event_type, now, data)
    session.flush()
    return [delivery for delivery, _data in queued]


def body_of(delivery_id: int, event_type: str, created_at: datetime, data: dict[str, Any]) -> str:
    """The JSON body of a delivery, as it is stored, sent and signed."""
    return json.dumps(
        {
            "id": delivery_id,
            "type": event_type,
            "created_at": json_timestamp(created_at),
            "data": data,
        },
        ensure_ascii=False,
        separators=(",", ":"),
    )


# --- Sending -------------------------------------------------------------------------------


def signature(secret: str, body: bytes) -> str:
    """The value of X-Necreg-Signature: ``sha256=`` and the hex HMAC-SHA256 of ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def headers_of(delivery: WebhookDelivery, secret: str) -> dict[str, str]:
    """The headers a delivery is sent with, signed with the receiver's ``secret``."""
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Necreg-Delivery": str(delivery.id),
        "X-Necreg-Event": delivery.event_type,
        "X-Necreg-Timestamp": str(int(delivery.created_at.timestamp())),
        "X-Necreg-Signature": signature(secret, delivery.body.encode()),
    }


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A receiver that answers 3xx has not taken the delivery: it is retried, not followed
    (a POST followed as a GET would lose its body)."""

    def redirect_request(self, *_args: Any, **_kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


def post(url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> tuple[int, str]:
    """POST ``body`` to ``url``; return the HTTP status of the answer and the start of its
    text. OSError (URLError, a timeout) when no answer came."""
    # config.load lets only http:// and https:// addresses into WEBHOOKS
    request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")  # noqa: S310
    try:
        with _OPENER.open(request, timeout=timeout) as response:  # noqa: S310
            return response.status, _text(response.read(ANSWER_LENGTH))
    except urllib.error.HTTPError as answer:
        with answer:
            return answer.code, _text(answer.read(ANSWER_LENGTH))


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace").strip()


def deliver(
    delivery: WebhookDelivery, secret: str, *, timeout: float = TIMEOUT_SECONDS
) -> tuple[int, str]:
    """Send ``delivery`` to its receiver, signed with ``secret``: (status, answer)."""
    return post(delivery.url, delivery.body.encode(), headers_of(delivery, secret), timeout)


# --- The admin's log -----------------------------------------------------------------------


def retry_now(session: Session, delivery_id: int, *, now: datetime | None = None) -> bool:
    """Put a failed delivery back in the queue, due now, its retries started over; False if
    it is not (or no longer) failed. Does not commit."""
    return _requeue(session, WebhookDelivery.id == delivery_id, now) == 1


def retry_all_failed(session: Session, *, now: datetime | None = None) -> int:
    """``retry_now`` for every failed delivery; return how many. Does not commit."""
    return _requeue(session, true(), now)


def _requeue(session: Session, which: ColumnElement[bool], now: datetime | None) -> int:
    done = session.execute(
        update(WebhookDelivery)
        .where(which, WebhookDelivery.status == MAIL_FAILED)
        .values(status=MAIL_PENDING, attempts=0, next_attempt_at=now or utcnow())
        .values(claimed_until=None)
        .execution_options(synchronize_session=False)
    )
    return done.rowcount
