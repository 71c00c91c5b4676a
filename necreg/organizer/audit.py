"""The audit trail, for admins: who changed settings, exported attendees, erased people or
purged old data, when and from where (necreg/audit.py records it); and ``audit``, how the
organizer's views record what they did."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import abort, render_template, request
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from ..audit import record
from ..auth import organizer_required
from ..extensions import db
from ..models import AuditEntry
from . import bp

#: Entries shown per page, newest first; "Older" shows the next ones.
PER_PAGE = 50
#: The largest id a page may start before (the column is a 32-bit integer).
MAX_ID = 2**31 - 1


def audit(action: str, target: str = "", details: Mapping[str, Any] | None = None) -> None:
    """Record ``action`` of the signed-in organizer, from the request's client address, in
    the session's transaction (the view commits it with what it changed)."""
    record(
        db.session,
        organizer_id=current_user.id,
        action=action,
        target=target,
        details=details,
        address=request.remote_addr or "",
    )


def _before() -> int | None:
    """The ``before`` argument: show entries older than this id (None: the newest)."""
    raw = request.args.get("before", "")
    if not raw:
        return None
    if not raw.isascii() or not raw.isdigit() or not 0 < int(raw) <= MAX_ID:
        abort(400, description="before must be an entry number.")
    return int(raw)


@bp.get("/audit")
@organizer_required(admin=True)
def audit_log():
    actions = list(
        db.session.execute(select(AuditEntry.action).distinct().order_by(AuditEntry.action))
        .scalars()
        .all()
    )
    action = request.args.get("action", "")
    if action and action not in actions:
        abort(400, description="There is no such action in the audit trail.")
    before = _before()
    query = (
        select(AuditEntry)
        .options(joinedload(AuditEntry.organizer))
        .order_by(AuditEntry.id.desc())
        .limit(PER_PAGE + 1)
    )
    if action:
        query = query.where(AuditEntry.action == action)
    if before is not None:
        query = query.where(AuditEntry.id < before)
    entries = list(db.session.execute(query).scalars())
    older = entries[PER_PAGE - 1].id if len(entries) > PER_PAGE else None
    return render_template(
        "organizer/audit.html",
        event=None,
        entries=entries[:PER_PAGE],
        actions=actions,
        action=action,
        before=before,
        older=older,
    )
