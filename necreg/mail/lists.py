"""Mail that people may refuse: the interest list's notices and organizers' messages.

Each such message carries a link to unsubscribe in its text and, for mail programs, in the
``List-Unsubscribe`` and ``List-Unsubscribe-Post`` header fields (RFC 8058: one click, a POST
without a form or a session). The link holds a signed reference to what it unsubscribes from,
never an address: an interest sign-up (``i``) or an attendee (``a``) whose address then gets
no more organizers' messages. Messages about one's own registration are never refused.
"""

from __future__ import annotations

from datetime import datetime

from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..models import Attendee, InterestSignup, MailOptOut, utcnow
from .outbox import site_url

#: What a link unsubscribes from: an interest sign-up, or an attendee's address.
INTEREST = "i"
ATTENDEE = "a"
_SALT = "necreg-unsubscribe"


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=_SALT)


def unsubscribe_url(kind: str, row_id: int) -> str:
    """The link that unsubscribes the interest sign-up or attendee ``row_id``."""
    return f"{site_url()}/unsubscribe/{_serializer().dumps([kind, row_id])}"


def unsubscribe_headers(url: str) -> dict[str, str]:
    """Header fields that let mail programs unsubscribe in one click (RFC 8058)."""
    return {
        "List-Unsubscribe": f"<{url}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


def read_token(token: str) -> tuple[str, int] | None:
    """What an unsubscribe link's token refers to; None if it is not one of ours."""
    try:
        kind, row_id = _serializer().loads(token)
    except (BadSignature, TypeError, ValueError):
        return None
    if kind not in (INTEREST, ATTENDEE) or not isinstance(row_id, int):
        return None
    return kind, row_id


def unsubscribe(session: Session, token: str, now: datetime | None = None) -> str | None:
    """Unsubscribe what ``token`` refers to (again is harmless); return its kind, None for a
    token that is not valid or refers to nothing left."""
    found = read_token(token)
    if found is None:
        return None
    kind, row_id = found
    now = now or utcnow()
    if kind == INTEREST:
        signup = session.get(InterestSignup, row_id)
        if signup is None:
            return None
        signup.unsubscribed_at = signup.unsubscribed_at or now
        return kind
    attendee = session.get(Attendee, row_id)
    if attendee is None:
        return None
    address = attendee.email.lower()
    if session.get(MailOptOut, address) is None:
        session.add(MailOptOut(email=address, created_at=now))
    return kind


def opted_out(session: Session) -> set[str]:
    """The addresses (in lower case) that want no organizers' messages: a few, read at once
    rather than asked about per recipient."""
    return set(session.execute(select(MailOptOut.email)).scalars())
