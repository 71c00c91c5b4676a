"""Counters the database keeps itself: active attendees per event and role, and per institution.

Triggers on ``attendees`` (their SQL is in triggers.py) update ``role_counts`` and
``institution_counts`` in the same transaction as every insert, update and delete, and bump
``events.counts_version``, so a page can tell in one small query whether what it computed from
the counts still holds (stats.Snapshot). The public counters are read from a handful of rows
instead of counted over every registration, and they are never stale. Every change they count
is made under the event's lock (registration.py), so their row locks are always taken in one
order: event, attendee, counters.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import bindparam, func, select, text
from sqlalchemy.orm import Session

from .models import ROLES, STATUS_CONFIRMED, RoleCount


def institution_key_sql(expression: str) -> str:
    """How an institution is counted, in SQL: case and surrounding spaces do not make a new one.

    ``expression`` is the SQL of the institution's name, e.g. ``NEW.institution``.
    """
    return f"lower(trim({expression}))"


def institution_key(column: Any) -> Any:
    """The same key (``institution_key_sql``) as a SQLAlchemy expression of ``column``."""
    return func.lower(func.trim(column))


_role_counts = RoleCount.__table__
#: Built once: it runs under the event lock, which every registration waits for.
_ROLE_COUNTS = select(_role_counts.c.role, _role_counts.c.active).where(
    _role_counts.c.event_id == bindparam("event")
)


def role_counts(session: Session, event_id: int) -> dict[str, int]:
    """Active (confirmed) attendees of the event per role, every role present: read from the
    trigger-kept counters, so exact in this transaction and a few rows however many
    registrations there are."""
    counts = dict.fromkeys(ROLES, 0)
    counts.update(session.execute(_ROLE_COUNTS, {"event": event_id}).all())
    return counts


def recount(session: Session, event_id: int) -> None:
    """Count the event's active attendees afresh into role_counts and institution_counts.

    For after a bulk load that skipped the per-row triggers (see ``bulk_load``); the caller
    holds the event lock.
    """
    params = {"e": event_id, "active": STATUS_CONFIRMED}
    session.execute(
        text("UPDATE events SET counts_version = counts_version + 1 WHERE id = :e"), params
    )
    for table in ("role_counts", "institution_counts"):
        session.execute(text(f"DELETE FROM {table} WHERE event_id = :e"), params)  # noqa: S608 - fixed table names
    session.execute(
        text(
            "INSERT INTO role_counts (event_id, role, active, changed_at)"
            " SELECT event_id, role, count(*), CURRENT_TIMESTAMP FROM attendees"
            " WHERE event_id = :e AND status = :active GROUP BY event_id, role"
        ),
        params,
    )
    key = institution_key_sql("institution")
    session.execute(
        text(
            "INSERT INTO institution_counts (event_id, institution_key, active)"  # noqa: S608 - the key is our own SQL
            f" SELECT event_id, {key}, count(*) FROM attendees"
            " WHERE event_id = :e AND status = :active AND trim(institution) <> ''"
            f" GROUP BY event_id, {key}"
        ),
        params,
    )


@contextmanager
def bulk_load(session: Session, event_id: int) -> Iterator[None]:
    """Insert many registrations of one event, counting them once at the end.

    On PostgreSQL the per-row counting triggers stand aside for this transaction and the
    counts are made afresh after; SQLite's per-row upserts are cheap, so they run as usual.
    """
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        session.execute(text("SET LOCAL necreg.bulk_load = 'on'"))
    yield
    if postgres:
        session.execute(text("SET LOCAL necreg.bulk_load = 'off'"))
        recount(session, event_id)
