"""Counters the database keeps itself: active attendees per event and role, and per institution.

Triggers on ``attendees`` update ``role_counts`` and ``institution_counts`` in the same
transaction as every insert, update and delete, whatever code (or hand-written SQL) makes the
change. So the public counters are read from a handful of rows instead of counted over every
registration, and they are never stale. They also bump ``events.counts_version``, so a page
can tell in one small query whether what it computed from the counts still holds
(stats.Snapshot). Every change they count is made under the event's lock (registration.py),
so their row locks are always taken in one order: event, attendee, counters.
The same SQL is frozen in migration 0003; a change here needs a new migration.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import DDL, Connection, event, text
from sqlalchemy.orm import Session

from .models import Attendee

#: How an institution is counted: case and surrounding spaces do not make a new one.
INSTITUTION_KEY_SQL = "lower(trim({row}.institution))"

_SQLITE_BUMP = """
    INSERT OR IGNORE INTO role_counts (event_id, role, active, changed_at)
        SELECT {row}.event_id, {row}.role, 0, CURRENT_TIMESTAMP WHERE {cond};
    UPDATE role_counts SET active = active {sign} 1, changed_at = CURRENT_TIMESTAMP
        WHERE {cond} AND event_id = {row}.event_id AND role = {row}.role;
    INSERT OR IGNORE INTO institution_counts (event_id, institution_key, active)
        SELECT {row}.event_id, lower(trim({row}.institution)), 0
        WHERE {cond} AND trim({row}.institution) <> '';
    UPDATE institution_counts SET active = active {sign} 1
        WHERE {cond} AND event_id = {row}.event_id
        AND institution_key = lower(trim({row}.institution));
    UPDATE events SET counts_version = counts_version + 1
        WHERE {cond} AND id = {row}.event_id;
"""


def _sqlite_bump(row: str, sign: str) -> str:
    return _SQLITE_BUMP.format(row=row, sign=sign, cond=f"{row}.status = 'confirmed'")


SQLITE_CREATE = [
    "CREATE TRIGGER attendees_counts_insert AFTER INSERT ON attendees BEGIN"
    + _sqlite_bump("NEW", "+")
    + "END",
    "CREATE TRIGGER attendees_counts_delete AFTER DELETE ON attendees BEGIN"
    + _sqlite_bump("OLD", "-")
    + "END",
    "CREATE TRIGGER attendees_counts_update"
    " AFTER UPDATE OF status, role, institution, event_id ON attendees BEGIN"
    + _sqlite_bump("OLD", "-")
    + _sqlite_bump("NEW", "+")
    + "END",
]
SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS attendees_counts_insert",
    "DROP TRIGGER IF EXISTS attendees_counts_delete",
    "DROP TRIGGER IF EXISTS attendees_counts_update",
]

POSTGRESQL_CREATE = [
    """
CREATE FUNCTION attendees_counts_bump(e integer, r text, inst text, delta integer)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO role_counts (event_id, role, active, changed_at) VALUES (e, r, delta, now())
    ON CONFLICT (event_id, role)
    DO UPDATE SET active = role_counts.active + delta, changed_at = now();
    IF trim(inst) <> '' THEN
        INSERT INTO institution_counts (event_id, institution_key, active)
        VALUES (e, lower(trim(inst)), delta)
        ON CONFLICT (event_id, institution_key)
        DO UPDATE SET active = institution_counts.active + delta;
    END IF;
    UPDATE events SET counts_version = counts_version + 1 WHERE id = e;
END $$
""",
    """
CREATE FUNCTION attendees_counts_trigger() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- A bulk load (seed-demo) counts once at its end (recount) instead of row by row: the
    -- same counter row updated 100,000 times in one transaction grows a long version chain.
    IF current_setting('necreg.bulk_load', true) = 'on' THEN
        RETURN NULL;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.status = 'confirmed' THEN
        PERFORM attendees_counts_bump(OLD.event_id, OLD.role, OLD.institution, -1);
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') AND NEW.status = 'confirmed' THEN
        PERFORM attendees_counts_bump(NEW.event_id, NEW.role, NEW.institution, 1);
    END IF;
    RETURN NULL;
END $$
""",
    "CREATE TRIGGER attendees_counts AFTER INSERT OR DELETE"
    " OR UPDATE OF status, role, institution, event_id ON attendees"
    " FOR EACH ROW EXECUTE FUNCTION attendees_counts_trigger()",
]
POSTGRESQL_DROP = [
    "DROP TRIGGER IF EXISTS attendees_counts ON attendees",
    "DROP FUNCTION IF EXISTS attendees_counts_trigger()",
    "DROP FUNCTION IF EXISTS attendees_counts_bump(integer, text, text, integer)",
]


def recount(session: Session, event_id: int) -> None:
    """Count the event's active attendees afresh into role_counts and institution_counts.

    For after a bulk load that skipped the per-row triggers (see ``bulk_load``); the caller
    holds the event lock.
    """
    session.execute(
        text("UPDATE events SET counts_version = counts_version + 1 WHERE id = :e"),
        {"e": event_id},
    )
    for table in ("role_counts", "institution_counts"):
        session.execute(text(f"DELETE FROM {table} WHERE event_id = :e"), {"e": event_id})  # noqa: S608 - fixed table names
    session.execute(
        text(
            "INSERT INTO role_counts (event_id, role, active, changed_at)"
            " SELECT event_id, role, count(*), CURRENT_TIMESTAMP FROM attendees"
            " WHERE event_id = :e AND status = 'confirmed' GROUP BY event_id, role"
        ),
        {"e": event_id},
    )
    session.execute(
        text(
            "INSERT INTO institution_counts (event_id, institution_key, active)"
            " SELECT event_id, lower(trim(institution)), count(*) FROM attendees"
            " WHERE event_id = :e AND status = 'confirmed' AND trim(institution) <> ''"
            " GROUP BY event_id, lower(trim(institution))"
        ),
        {"e": event_id},
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


def create_triggers(connection: Connection) -> None:
    statements = POSTGRESQL_CREATE if connection.dialect.name == "postgresql" else SQLITE_CREATE
    for statement in statements:
        connection.execute(DDL(statement))


# Tables made by metadata.create_all (tests, a first `db.create_all()`) get the triggers too;
# the migration installs the same ones.
@event.listens_for(Attendee.__table__, "after_create")
def _after_create(_table, connection: Connection, **_kw) -> None:
    create_triggers(connection)
