"""The audit trail of what organizers (and the command line) do beyond one registration:
settings changed, exports made, people erased, purges run.

``record`` adds an AuditEntry in the caller's transaction (it is kept only if that commits)
and writes the same line to the security log (logger ``necreg.security``), which an
operator ships elsewhere. Neither ever holds a password, a token or an e-mail's body: the
callers give none, and keys that name a secret are masked here as a last guard.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from .formats import json_timestamp
from .models import AuditEntry, utcnow

log = logging.getLogger("necreg.security")

#: Longest action and target the table keeps (AuditEntry's columns).
ACTION_LENGTH = 64
TARGET_LENGTH = 200
ADDRESS_LENGTH = 64
#: Parts of a key that say its value is a secret: masked, never stored or logged.
SECRET_KEYS = ("password", "token", "secret", "body", "otp", "recovery")
MASK = "[masked]"


def plain(value: Any) -> Any:
    """``value`` as JSON can hold it: moments in UTC (``2025-09-08T14:05:03Z``), days as
    ISO dates, amounts as text, tuples and sets as lists; anything else as its text."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime):
        return json_timestamp(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): MASK if _secret(str(k)) else plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=str) if isinstance(value, set | frozenset) else value
        return [plain(v) for v in items]
    return str(value)


def _secret(key: str) -> bool:
    lowered = key.lower()
    return any(part in lowered for part in SECRET_KEYS)


def record(
    session: Session,
    *,
    organizer_id: int | None,
    action: str,
    target: str = "",
    details: Mapping[str, Any] | None = None,
    address: str = "",
) -> AuditEntry:
    """Add an audit entry (``action`` such as "settings.update", done by ``organizer_id``,
    None for the command line or the system, to ``target``, from ``address``) to the
    session's transaction, and write it to the security log. ``details`` is made plain JSON
    (``plain``); keys naming a secret are masked."""
    entry = AuditEntry(
        organizer_id=organizer_id,
        action=action[:ACTION_LENGTH],
        target=target[:TARGET_LENGTH],
        details=plain(dict(details or {})),
        address=(address or "")[:ADDRESS_LENGTH],
        created_at=utcnow(),
    )
    session.add(entry)
    log.info(
        "audit action=%s organizer=%s target=%s address=%s details=%s",
        entry.action,
        "-" if organizer_id is None else organizer_id,
        json.dumps(entry.target, ensure_ascii=False),
        entry.address or "-",
        json.dumps(entry.details, ensure_ascii=False, sort_keys=True),
    )
    return entry
