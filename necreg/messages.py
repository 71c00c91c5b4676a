"""Messages organizers write to the attendees they choose with the attendee list's filters.

A message is Markdown with placeholders (``{first_name}``, ``{last_name}``, ``{code}``,
``{link}``), filled in for each recipient. People's values never become Markdown: the text is
rendered with a marker in each placeholder's place, and the escaped value replaces the marker,
so a name such as ``[click](https://...)`` stays a name. Each recipient's e-mail goes through
the outbox (the mail worker sends them at MAIL_RATE_PER_MINUTE) with a one-click unsubscribe
link; those who unsubscribed are counted and skipped. The message row is the log and the audit
entry: who sent what, to which filters, how many.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from markupsafe import Markup, escape
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .attendee_search import AttendeeFilters, attendee_select
from .formats import has_control_characters
from .mail.lists import ATTENDEE, opted_out, unsubscribe_headers, unsubscribe_url
from .mail.outbox import queue, self_service_url
from .models import (
    MAIL_FAILED,
    MAIL_PENDING,
    MAIL_SENT,
    MESSAGE_BODY_MAX,
    MESSAGE_SUBJECT_MAX,
    STATUS_CANCELLED,
    Attendee,
    Event,
    OrganizerMessage,
    OutboxMessage,
    utcnow,
)
from .web import render_markdown

#: What a message may say of each recipient, with what it is.
PLACEHOLDERS: dict[str, str] = {
    "first_name": "their first name",
    "last_name": "their last name",
    "code": "their attendee code",
    "link": "the link to their registration",
}
_PLACEHOLDER = re.compile(r"\{([^{}\s]{1,40})\}")
#: Stands for a placeholder while the Markdown is rendered (letters only: Markdown leaves them).
_MARKER = "NECREGPLACEHOLDER{}X"


class MessageError(ValueError):
    """A message that cannot be sent as written; the message says why."""


@dataclass(frozen=True)
class Draft:
    """What an organizer wrote, checked."""

    subject: str
    body: str


def check_draft(subject: str, body: str) -> Draft:
    """The draft, trimmed; MessageError when a part is missing, too long or names an unknown
    placeholder."""
    subject, body = " ".join((subject or "").split()), (body or "").strip()
    if not subject:
        raise MessageError("Please write a subject.")
    if len(subject) > MESSAGE_SUBJECT_MAX:
        raise MessageError(f"The subject may be at most {MESSAGE_SUBJECT_MAX} characters.")
    if not body:
        raise MessageError("Please write the message.")
    if len(body) > MESSAGE_BODY_MAX:
        raise MessageError(f"The message may be at most {MESSAGE_BODY_MAX} characters.")
    if has_control_characters(subject) or has_control_characters(body, "\n\r\t"):
        raise MessageError("The message holds control characters; please type it again.")
    unknown = sorted(
        {name for name in _PLACEHOLDER.findall(subject + body) if name not in PLACEHOLDERS}
    )
    if unknown:
        known = ", ".join(f"{{{name}}}" for name in PLACEHOLDERS)
        raise MessageError(
            f"Unknown placeholder {', '.join(f'{{{n}}}' for n in unknown)}; use {known}."
        )
    return Draft(subject, body)


def values_of(attendee: Attendee) -> dict[str, str]:
    """What the placeholders say for ``attendee``."""
    return {
        "first_name": attendee.first_name,
        "last_name": attendee.last_name,
        "code": attendee.code,
        "link": self_service_url(attendee),
    }


def fill(text: str, values: Mapping[str, str]) -> str:
    """``text`` with each placeholder replaced by its value (as plain text)."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)


def fill_html(markdown: str, values: Mapping[str, str]) -> Markup:
    """The Markdown rendered to HTML, then each placeholder replaced by its escaped value."""
    names = list(PLACEHOLDERS)
    marked = _PLACEHOLDER.sub(
        lambda m: _MARKER.format(names.index(m.group(1))) if m.group(1) in values else m.group(0),
        markdown,
    )
    html = str(render_markdown(marked))
    for number, name in enumerate(names):
        if name in values:
            html = html.replace(_MARKER.format(number), str(escape(values[name])))
    return Markup(html)  # noqa: S704 - rendered without raw HTML, values escaped


@dataclass(frozen=True)
class Rendered:
    """A message as one recipient gets it."""

    subject: str
    text: str
    html: Markup


def render_for(draft: Draft, attendee: Attendee) -> Rendered:
    values = values_of(attendee)
    subject = " ".join(fill(draft.subject, values).split())[:300]
    return Rendered(subject, fill(draft.body, values), fill_html(draft.body, values))


@dataclass(frozen=True)
class Recipients:
    """Who a message to some filters reaches: ``people`` get it; ``unsubscribed`` match but
    asked for no organizers' messages."""

    people: list[Attendee]
    unsubscribed: list[Attendee]


def recipients(session: Session, event: Event, filters: AttendeeFilters) -> Recipients:
    """The registrants the filters choose, in the list's order. Companions have no address of
    their own (their lead is written to); cancelled registrations only when the filters ask
    for them (status cancelled)."""
    query = attendee_select(event, filters).where(Attendee.party_id.is_(None), Attendee.email != "")
    if not filters.status:
        query = query.where(Attendee.status != STATUS_CANCELLED)
    chosen = list(session.execute(query).scalars())
    refused = opted_out(session)
    return Recipients(
        people=[a for a in chosen if a.email.lower() not in refused],
        unsubscribed=[a for a in chosen if a.email.lower() in refused],
    )


def _queue_one(
    session: Session,
    event: Event,
    draft: Draft,
    attendee: Attendee,
    *,
    to_address: str,
    now: datetime,
    message_id: int | None,
    subject_prefix: str = "",
) -> None:
    rendered = render_for(draft, attendee)
    link = unsubscribe_url(ATTENDEE, attendee.id)
    row = queue(
        session,
        "message",
        to_address=to_address,
        attendee=attendee,
        now=now,
        headers=unsubscribe_headers(link),
        event=event,
        subject=subject_prefix + rendered.subject,
        text=rendered.text,
        html=rendered.html,
        unsubscribe_link=link,
    )
    row.message_id = message_id


def send(
    session: Session,
    event: Event,
    draft: Draft,
    filters: AttendeeFilters,
    *,
    organizer_id: int | None,
    expected: int | None = None,
    now: datetime | None = None,
) -> OrganizerMessage:
    """Queue the message to everyone the filters choose (but those who unsubscribed) and log
    it. ``expected``: how many the sender was shown; MessageError if that changed since."""
    now = now or utcnow()
    chosen = recipients(session, event, filters)
    if expected is not None and expected != len(chosen.people):
        raise MessageError(
            f"The recipients changed since the count you saw: the message would now reach "
            f"{len(chosen.people)}, not {expected}. Please check, and send again."
        )
    if not chosen.people:
        raise MessageError("Nobody would receive this message: change the filters.")
    message = OrganizerMessage(
        event_id=event.id,
        subject=draft.subject,
        body=draft.body,
        recipients_filter=filters.as_args(),
        recipients=len(chosen.people),
        unsubscribed=len(chosen.unsubscribed),
        organizer_id=organizer_id,
        sent_at=now,
    )
    session.add(message)
    session.flush()
    for attendee in chosen.people:
        _queue_one(
            session, event, draft, attendee, to_address=attendee.email, now=now,
            message_id=message.id,
        )  # fmt: skip
    session.flush()
    return message


def send_test(
    session: Session, event: Event, draft: Draft, example: Attendee, *, to_address: str
) -> None:
    """The message as ``example`` would get it, sent to ``to_address`` (the sender), marked
    as a test; not logged as sent."""
    _queue_one(
        session, event, draft, example, to_address=to_address, now=utcnow(), message_id=None,
        subject_prefix="[Test] ",
    )  # fmt: skip


@dataclass(frozen=True)
class Delivery:
    """How far a message's e-mails went."""

    queued: int = 0
    delivered: int = 0
    failed: int = 0


def deliveries(session: Session, message_ids: list[int]) -> dict[int, Delivery]:
    """The e-mails of each message, by state, in one query."""
    if not message_ids:
        return {}
    rows = session.execute(
        select(OutboxMessage.message_id, OutboxMessage.status, func.count())
        .where(OutboxMessage.message_id.in_(message_ids))
        .group_by(OutboxMessage.message_id, OutboxMessage.status)
    ).all()
    counts: dict[int, dict[str, int]] = {}
    for message_id, status, n in rows:
        counts.setdefault(message_id, {})[status] = n
    return {
        i: Delivery(
            queued=counts.get(i, {}).get(MAIL_PENDING, 0),
            delivered=counts.get(i, {}).get(MAIL_SENT, 0),
            failed=counts.get(i, {}).get(MAIL_FAILED, 0),
        )
        for i in message_ids
    }
