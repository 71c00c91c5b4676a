"""Queue e-mails in the outbox, in the caller's transaction, rendered from templates/emails/.

Each message is rendered when it is queued, so the row holds exactly what will be sent and the
worker needs nothing but the row. Links are built from ``SITE_URL``: a message is often queued
outside any request (CLI, worker, organizer pages), so ``url_for`` cannot know the address.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from flask import current_app
from sqlalchemy import Row, Select, func, select, update
from sqlalchemy.orm import Session

from ..models import (
    MAIL_FAILED,
    MAIL_PENDING,
    MAIL_SENT,
    STATUS_PENDING,
    STATUS_WAITLISTED,
    VIRTUAL,
    Attendee,
    Event,
    OutboxMessage,
    utcnow,
)
from .ics import event_calendar

#: What a message is about; each has emails/<kind>.subject.txt, .txt and .html templates.
KINDS = (
    "confirmation", "waitlisted", "promoted", "held", "expired", "cancelled", "link", "payment",
    "refunded", "certificate", "support", "interest_confirm", "interest_open", "message",
)  # fmt: skip


def site_url() -> str:
    return str(current_app.config["SITE_URL"]).rstrip("/")


def self_service_url(attendee: Attendee) -> str:
    """The attendee's link to see, correct and cancel their registration."""
    return f"{site_url()}/registration/{attendee.token}"


def render(
    kind: str,
    *,
    to_address: str,
    attendee: Attendee | None = None,
    attachments: Iterable[dict[str, str]] = (),
    now: datetime | None = None,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> dict[str, Any]:
    """The outbox row of a message: the ``kind`` templates rendered with ``context``;
    ``headers``: more header fields (e.g. List-Unsubscribe)."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind of message {kind!r}")
    now = now or utcnow()
    context = {"attendee": attendee, "site_url": site_url(), **context}
    subject = _render(f"emails/{kind}.subject.txt", context)
    return {
        "attendee_id": attendee.id if attendee is not None else None,
        "kind": kind,
        "to_address": to_address,
        # One line: a template's trailing newline or a stray line break must not reach a header.
        "subject": " ".join(subject.split())[:300],
        "text_body": _render(f"emails/{kind}.txt", context),
        "html_body": _render(f"emails/{kind}.html", context),
        "attachments": list(attachments),
        "headers": dict(headers or {}),
        "next_attempt_at": now,
        "created_at": now,
    }


def _render(name: str, context: dict[str, Any]) -> str:
    """Render with the app's templates and Jinja globals only: a message is the same whether
    it is queued in a request or not, so no request context processor (the signed-in user,
    the CSRF token ...) runs, three times per message."""
    return current_app.jinja_env.get_template(name).render(context)


def queue(session: Session, kind: str, **options: Any) -> OutboxMessage:
    """Render the ``kind`` templates (see ``render``) and add the message to the session."""
    return _add(session, render(kind, **options))


def _add(session: Session, row: dict[str, Any]) -> OutboxMessage:
    message = OutboxMessage(**row)
    session.add(message)
    return message


def join_url(event: Event, attendee: Attendee) -> str:
    """The link to join online: only for a confirmed online attendee, else empty."""
    if attendee.is_active and attendee.attendance == VIRTUAL:
        return event.join_url
    return ""


def calendar_attachment(event: Event, attendee: Attendee, now: datetime) -> dict[str, str]:
    """The event as an .ics attachment; its UID is stable per event and attendee."""
    host = urlsplit(site_url()).hostname or "necreg"
    joining = join_url(event, attendee)
    content = event_calendar(
        uid=f"{event.slug}-{attendee.code}@{host}",
        summary=event.name,
        location=event.venue,
        starts_on=event.starts_on,
        ends_on=event.ends_on,
        stamp=now,
        description=f"Your attendee code: {attendee.code}. Your registration: "
        + self_service_url(attendee)
        + (f". Join online: {joining}" if joining else ""),
        url=self_service_url(attendee),
    )
    return {"filename": f"{event.slug}.ics", "content_type": "text/calendar", "content": content}


#: Content-ID of the QR code image inside the HTML part of a message.
QR_CONTENT_ID = "attendee-qr"


def qr_attachment(attendee: Attendee) -> dict[str, str]:
    """The attendee code as a QR image shown inside the HTML part (the same as on the badge
    and the self-service page), so the attendee can be checked in from their phone. The
    image is drawn when the message is built for delivery, not while registering."""
    return {
        "filename": f"{attendee.code}.png",
        "content_type": "image/png",
        "qr_code": attendee.code,
        "content_id": QR_CONTENT_ID,
    }


def _common(event: Event, attendee: Attendee, party: Sequence[Attendee]) -> dict[str, Any]:
    """What every message about a registration says: the event, the link, the companions
    (``party``) and, for a confirmed online attendee, the link to join."""
    party_due = attendee.amount_due + sum(c.amount_due for c in party)
    provider = current_app.config["PAYMENT_PROVIDER"]
    collecting = provider != "none" and attendee.holds_place and party_due > 0
    return {
        "event": event,
        "link": self_service_url(attendee),
        "party": list(party),
        "party_due": party_due,
        "join_url": join_url(event, attendee),
        "pay_link": f"{self_service_url(attendee)}/pay" if collecting else "",
        "payment_instructions": payment_instructions(provider) if collecting else "",
    }


def payment_instructions(provider: str) -> str:
    """How to pay, as the e-mails and the payment page say it."""
    if provider == "stripe":
        return "by card, on your fee page."
    return str(current_app.config["PAYMENT_INSTRUCTIONS"])


def _place(
    kind: str,
    event: Event,
    attendee: Attendee,
    now: datetime | None,
    party: Sequence[Attendee],
    *,
    also: Sequence[dict[str, str]] = (),
    **extra: Any,
) -> dict[str, Any]:
    """A message telling a confirmed attendee their place: code, QR code and calendar (and
    the attachments ``also``)."""
    now = now or utcnow()
    return render(
        kind,
        to_address=attendee.email,
        attendee=attendee,
        attachments=[qr_attachment(attendee), calendar_attachment(event, attendee, now), *also],
        now=now,
        qr_cid=QR_CONTENT_ID,
        **extra,
        **_common(event, attendee, party),
    )


def _waitlisted(
    event: Event,
    attendee: Attendee,
    position: int | None,
    now: datetime | None,
    party: Sequence[Attendee],
) -> dict[str, Any]:
    return render(
        "waitlisted",
        to_address=attendee.email,
        attendee=attendee,
        now=now,
        position=position,
        **_common(event, attendee, party),
    )


def _held(
    event: Event, attendee: Attendee, now: datetime | None, party: Sequence[Attendee], **extra: Any
) -> dict[str, Any]:
    """A place held until it is paid for: how much, how to pay, by when."""
    return render(
        "held",
        to_address=attendee.email,
        attendee=attendee,
        now=now,
        due_at=attendee.payment_due_at,
        **extra,
        **_common(event, attendee, party),
    )


def queue_offer(
    session: Session,
    event: Event,
    attendee: Attendee,
    *,
    now: datetime | None = None,
    party: Sequence[Attendee] = (),
) -> OutboxMessage:
    """A place from the waiting list, offered until ``attendee.payment_due_at``."""
    return _add(session, _held(event, attendee, now, party, offered=True))


def queue_expired(
    session: Session,
    event: Event,
    attendee: Attendee,
    *,
    now: datetime | None = None,
    party: Sequence[Attendee] = (),
) -> OutboxMessage:
    """A held place given up because it was not paid for in time."""
    return queue(
        session,
        "expired",
        to_address=attendee.email,
        attendee=attendee,
        now=now,
        **_common(event, attendee, party),
    )


def queue_late_refund(
    session: Session, event: Event, attendee: Attendee, *, amount: str, now: datetime | None = None
) -> OutboxMessage:
    """A payment that came after its place was gone, given back."""
    return queue(
        session,
        "refunded",
        to_address=attendee.email,
        attendee=attendee,
        now=now,
        amount=amount,
        **_common(event, attendee, ()),
    )


def queue_certificate_ready(
    session: Session, event: Event, attendee: Attendee, *, now: datetime | None = None
) -> OutboxMessage:
    """The attendee's certificate of attendance can be downloaded now."""
    return queue(
        session,
        "certificate",
        to_address=attendee.email,
        attendee=attendee,
        now=now,
        certificate_link=f"{self_service_url(attendee)}/certificate.pdf",
        **_common(event, attendee, ()),
    )


def queue_support_decision(
    session: Session,
    event: Event,
    attendee: Attendee,
    *,
    decision: str,
    award: str,
    note: str,
    confirmed: bool,
    now: datetime | None = None,
) -> OutboxMessage:
    """The decision on the attendee's support request (``confirmed``: a waiver confirmed a
    place held for payment)."""
    return queue(
        session,
        "support",
        to_address=attendee.email,
        attendee=attendee,
        now=now,
        decision=decision,
        award=award,
        note=note,
        confirmed=confirmed,
        **_common(event, attendee, ()),
    )


def queue_promoted(
    session: Session,
    event: Event,
    attendee: Attendee,
    *,
    now: datetime | None = None,
    party: Sequence[Attendee] = (),
) -> OutboxMessage:
    return _add(session, _place("promoted", event, attendee, now, party))


def queue_cancelled(
    session: Session,
    event: Event,
    attendee: Attendee,
    *,
    now: datetime | None = None,
    party: Sequence[Attendee] = (),
    left: Attendee | None = None,
) -> OutboxMessage:
    """The cancellation of ``attendee``'s registration with its companions ``party``, or,
    with ``left``, of that companion's place only (told to the lead, ``attendee``)."""
    return queue(
        session,
        "cancelled",
        to_address=attendee.email,
        attendee=attendee,
        now=now,
        left=left,
        **_common(event, attendee, party),
    )


def queue_payment_received(
    session: Session,
    event: Event,
    payer: Attendee,
    *,
    number: int,
    amount: str,
    receipt: bytes,
    confirmed: Sequence[Attendee] | None = None,
    now: datetime | None = None,
) -> OutboxMessage:
    """Thank ``payer`` (the party's lead) for a payment, with its receipt attached (the PDF
    kept in the row, base64, so the worker needs nothing but the row). With ``confirmed``
    (the companions of a party the payment confirmed), the message is the confirmation."""
    attachment = {
        "filename": f"receipt-{event.slug}-{number}.pdf",
        "content_type": "application/pdf",
        "content_base64": base64.b64encode(receipt).decode("ascii"),
    }
    paid = {"number": number, "amount": amount}
    if confirmed is not None:
        row = _place("confirmation", event, payer, now, confirmed, also=[attachment], paid=paid)
        return _add(session, row)
    return queue(
        session,
        "payment",
        to_address=payer.email,
        attendee=payer,
        now=now,
        attachments=[attachment],
        **paid,
        **_common(event, payer, ()),
    )


def queue_links(
    session: Session,
    event: Event,
    to_address: str,
    attendees: list[Attendee],
    *,
    now: datetime | None = None,
) -> OutboxMessage:
    """One message with the self-service links of ``attendees`` (newest first)."""
    if not attendees:
        raise ValueError("queue_links needs at least one registration")
    return queue(
        session,
        "link",
        to_address=to_address,
        attendee=attendees[0],
        now=now,
        event=event,
        registrations=[(a, self_service_url(a)) for a in attendees],
    )


@dataclass(frozen=True)
class Draft:
    """A registration's status message rendered ahead (``render``'s row), with what it says."""

    row: dict[str, Any]
    status: str
    codes: tuple[str, ...]
    position: int | None

    def says(self, attendee: Attendee, position: int | None, party: Sequence[Attendee]) -> bool:
        codes = (attendee.code, *(c.code for c in party))
        return (self.status, self.codes, self.position) == (attendee.status, codes, position)


def draft_status_message(
    event: Event,
    attendee: Attendee,
    position: int | None = None,
    *,
    now: datetime | None = None,
    party: Sequence[Attendee] = (),
) -> Draft:
    """The confirmation of a confirmed registration, the notice of a place held until paid
    for, the waiting-list notice of a waiting one,
    naming the companions ``party``, rendered but not queued: registration renders it before
    taking the event lock."""
    if attendee.is_active:
        row = _place("confirmation", event, attendee, now, party)
    elif attendee.status == STATUS_PENDING:
        row = _held(event, attendee, now, party)
    elif attendee.status == STATUS_WAITLISTED:
        row = _waitlisted(event, attendee, position, now, party)
    else:
        raise ValueError(f"no status message for a {attendee.status} registration")
    codes = (attendee.code, *(c.code for c in party))
    return Draft(row, attendee.status, codes, position)


_INSERT = OutboxMessage.__table__.insert()


def queue_status_message(
    session: Session,
    event: Event,
    attendee: Attendee,
    position: int | None,
    *,
    now: datetime | None = None,
    draft: Draft | None = None,
    party: Sequence[Attendee] = (),
) -> None:
    """Queue the confirmation or waiting-list notice of ``attendee`` (flushed, so it has an
    id). ``draft``: the message rendered ahead, queued as it is if it still says what the
    registration is (status, code, place in line), else rendered again.

    Written with one INSERT, not through the unit of work: registration queues it under the
    event lock.
    """
    if draft is None or not draft.says(attendee, position, party):
        draft = draft_status_message(event, attendee, position, now=now, party=party)
    session.execute(_INSERT, {**draft.row, "attendee_id": attendee.id})


# --- Watching the outbox (the administrators' page, organizer/outbox.py) --------------------
#
# An outbox holds a message per registration and more (100,000 attendees: several hundred
# thousand rows, megabytes of bodies), so what the page reads is bounded: the counts are one
# grouped query, the list is one page of columns without the bodies, found newest first by id.

#: A message whose bodies were emptied: by an erasure (privacy.erase: its pending mail is
#: failed and emptied) or by OUTBOX_RETENTION_DAYS (privacy.purge, after it was sent).
#: Nothing is left to send.
BODIES_ERASED = (OutboxMessage.text_body == "") & (OutboxMessage.html_body == "")


@dataclass(frozen=True)
class OutboxFigures:
    """How many messages are in each state, and when the oldest still pending was queued."""

    pending: int
    failed: int
    sent: int
    oldest_pending_at: datetime | None

    def age_of_oldest(self, now: datetime | None = None) -> timedelta | None:
        """How long the oldest pending message has waited (None: nothing is pending)."""
        if self.oldest_pending_at is None:
            return None
        return max((now or utcnow()) - self.oldest_pending_at, timedelta())


def outbox_figures(session: Session) -> OutboxFigures:
    """The counts by status, in one grouped query, and the oldest pending message.

    The counts read the status alone, which PostgreSQL finds in the index on (status,
    next_attempt_at) without reading the rows; the oldest pending message is then looked for
    among the pending ones only (the same index), which are few unless mail is stuck."""
    counts = dict(
        session.execute(
            select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
        ).all()
    )
    oldest = None
    if counts.get(MAIL_PENDING):
        oldest = session.execute(
            select(func.min(OutboxMessage.created_at)).where(OutboxMessage.status == MAIL_PENDING)
        ).scalar_one()
    return OutboxFigures(
        pending=counts.get(MAIL_PENDING, 0),
        failed=counts.get(MAIL_FAILED, 0),
        sent=counts.get(MAIL_SENT, 0),
        oldest_pending_at=oldest,
    )


#: What the list shows of a message: never its bodies or attachments, only whether they
#: were erased.
LISTED = (
    OutboxMessage.id,
    OutboxMessage.kind,
    OutboxMessage.to_address,
    OutboxMessage.subject,
    OutboxMessage.status,
    OutboxMessage.attempts,
    OutboxMessage.next_attempt_at,
    OutboxMessage.created_at,
    OutboxMessage.sent_at,
    OutboxMessage.last_error,
    BODIES_ERASED.label("erased"),
)


def outbox_listing_select(
    *, status: str = "", recipient: str = "", before: int | None = None, limit: int = 50
) -> Select[Any]:
    """The query of ``outbox_listing``."""
    query = select(*LISTED).order_by(OutboxMessage.id.desc()).limit(limit)
    if status:
        query = query.where(OutboxMessage.status == status)
    if recipient:
        # ILIKE on PostgreSQL, which the trigram index of the address serves (migration
        # 0021); lower() LIKE lower() on SQLite. Wildcards typed are searched as themselves.
        escaped = recipient.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(OutboxMessage.to_address.ilike(f"%{escaped}%", escape="\\"))
    if before is not None:
        query = query.where(OutboxMessage.id < before)
    return query


def outbox_listing(
    session: Session,
    *,
    status: str = "",
    recipient: str = "",
    before: int | None = None,
    limit: int = 50,
) -> list[Row[Any]]:
    """Up to ``limit`` messages (the columns of LISTED), newest first: only those in
    ``status`` (empty: any), whose address holds ``recipient`` in any case (empty: any), with
    an id below ``before`` (None: from the newest). A page is found by id, not by an OFFSET
    that would read every row before it."""
    query = outbox_listing_select(status=status, recipient=recipient, before=before, limit=limit)
    return list(session.execute(query).all())


#: What a retry did: put the message back in the queue, or nothing, and why.
RETRY_QUEUED = "queued"
RETRY_NOT_FAILED = "not failed"
RETRY_ERASED = "erased"


@dataclass(frozen=True)
class Retry:
    """The outcome of ``retry_message`` (one of the RETRY_* values), with what the message was
    before it: its status and the attempts it had made."""

    outcome: str
    status: str
    kind: str
    attempts: int


def _requeue(now: datetime | None):
    """Failed messages that still have something to send back in the queue: due at once, not
    claimed, their attempts started over, so the worker tries again with the whole back-off
    of MAIL_MAX_ATTEMPTS (kept, they would fail for good on the first error). The last error
    stays until an attempt replaces or clears it."""
    return (
        update(OutboxMessage)
        .where(OutboxMessage.status == MAIL_FAILED, ~BODIES_ERASED)
        .values(status=MAIL_PENDING, attempts=0, next_attempt_at=now or utcnow())
        .values(claimed_until=None)
        .execution_options(synchronize_session=False)
    )


def retry_message(
    session: Session, message_id: int, *, now: datetime | None = None
) -> Retry | None:
    """Put a failed message back in the queue, to be sent at once (None: no such message).
    A message pending or sent already, or whose bodies were erased, is left as it is. Does
    not commit."""
    found = session.execute(
        select(
            OutboxMessage.status, OutboxMessage.kind, OutboxMessage.attempts, BODIES_ERASED
        ).where(OutboxMessage.id == message_id)
    ).one_or_none()
    if found is None:
        return None
    status, kind, attempts, erased = found
    if status != MAIL_FAILED:
        return Retry(RETRY_NOT_FAILED, status, kind, attempts)
    if erased:
        return Retry(RETRY_ERASED, status, kind, attempts)
    # Conditional, as the worker's claim: a message retried twice at once is queued once.
    done = session.execute(_requeue(now).where(OutboxMessage.id == message_id)).rowcount
    return Retry(RETRY_QUEUED if done == 1 else RETRY_NOT_FAILED, status, kind, attempts)


def retry_all_failed(session: Session, *, now: datetime | None = None) -> tuple[int, int]:
    """``retry_message`` for every failed message, in one statement: (how many were queued
    again, how many failed ones were left because their bodies were erased). Does not
    commit."""
    queued = session.execute(_requeue(now)).rowcount
    erased = session.execute(
        select(func.count())
        .select_from(OutboxMessage)
        .where(OutboxMessage.status == MAIL_FAILED, BODIES_ERASED)
    ).scalar_one()
    return queued, erased
