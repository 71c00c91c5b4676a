"""Every trigger the database runs, as SQL: the counters it keeps, and the change notice.

- **Counting** (SQLite and PostgreSQL): triggers on ``attendees`` keep ``role_counts`` and
  ``institution_counts`` exact in the same transaction as every insert, update and delete,
  whatever code (or hand-written SQL) makes the change, and bump ``events.counts_version``.
  counters.py reads and rebuilds those rows.
- **Change notice** (PostgreSQL): statement triggers on ``events``, ``attendees`` and
  ``organizers`` NOTIFY ``necreg_changes``, which each instance's change watch LISTENs to
  (necreg/speed/watch.py), to know without a query that something changed.

Migrations install the same SQL, frozen as it was at their revision (0003 the counting, 0005,
0007 and 0008 the notice; tests hold the two equal). Tables made by ``metadata.create_all``
(tests, a first ``db.create_all()``) get them here.
"""

from __future__ import annotations

from sqlalchemy import DDL, Connection, event

from .counters import institution_key_sql
from .extensions import db
from .models import STATUS_CONFIRMED, Attendee, Event

# --- Counting ---------------------------------------------------------------------------------

_SQLITE_BUMP = """
    INSERT OR IGNORE INTO role_counts (event_id, role, active, changed_at)
        SELECT {row}.event_id, {row}.role, 0, CURRENT_TIMESTAMP WHERE {cond};
    UPDATE role_counts SET active = active {sign} 1, changed_at = CURRENT_TIMESTAMP
        WHERE {cond} AND event_id = {row}.event_id AND role = {row}.role;
    INSERT OR IGNORE INTO institution_counts (event_id, institution_key, active)
        SELECT {row}.event_id, {key}, 0
        WHERE {cond} AND trim({row}.institution) <> '';
    UPDATE institution_counts SET active = active {sign} 1
        WHERE {cond} AND event_id = {row}.event_id
        AND institution_key = {key};
    UPDATE events SET counts_version = counts_version + 1
        WHERE {cond} AND id = {row}.event_id;
"""


def _sqlite_bump(row: str, sign: str) -> str:
    return _SQLITE_BUMP.format(
        row=row,
        sign=sign,
        cond=f"{row}.status = '{STATUS_CONFIRMED}'",
        key=institution_key_sql(f"{row}.institution"),
    )


COUNTING_SQLITE = [
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

COUNTING_POSTGRESQL = [
    f"""
CREATE FUNCTION attendees_counts_bump(e integer, r text, inst text, delta integer)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO role_counts (event_id, role, active, changed_at) VALUES (e, r, delta, now())
    ON CONFLICT (event_id, role)
    DO UPDATE SET active = role_counts.active + delta, changed_at = now();
    IF trim(inst) <> '' THEN
        INSERT INTO institution_counts (event_id, institution_key, active)
        VALUES (e, {institution_key_sql("inst")}, delta)
        ON CONFLICT (event_id, institution_key)
        DO UPDATE SET active = institution_counts.active + delta;
    END IF;
    UPDATE events SET counts_version = counts_version + 1 WHERE id = e;
END $$
""",  # noqa: S608 - our own SQL, no outside value
    f"""
CREATE FUNCTION attendees_counts_trigger() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- A bulk load (seed-demo) counts once at its end (recount) instead of row by row: the
    -- same counter row updated 100,000 times in one transaction grows a long version chain.
    IF current_setting('necreg.bulk_load', true) = 'on' THEN
        RETURN NULL;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.status = '{STATUS_CONFIRMED}' THEN
        PERFORM attendees_counts_bump(OLD.event_id, OLD.role, OLD.institution, -1);
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') AND NEW.status = '{STATUS_CONFIRMED}' THEN
        PERFORM attendees_counts_bump(NEW.event_id, NEW.role, NEW.institution, 1);
    END IF;
    RETURN NULL;
END $$
""",
    "CREATE TRIGGER attendees_counts AFTER INSERT OR DELETE"
    " OR UPDATE OF status, role, institution, event_id ON attendees"
    " FOR EACH ROW EXECUTE FUNCTION attendees_counts_trigger()",
]

# --- Change notice (PostgreSQL) ---------------------------------------------------------------

#: The channel that every change of events, attendees and organizers is announced on.
NOTIFY_CHANNEL = "necreg_changes"

NOTIFY_EVENTS = [
    f"""
CREATE FUNCTION events_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('{NOTIFY_CHANNEL}', '');
    RETURN NULL;
END $$
""",
    "CREATE TRIGGER events_notify_change AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE"
    " ON events FOR EACH STATEMENT EXECUTE FUNCTION events_notify_change()",
]


def _notify_on(table: str) -> str:
    """The statement trigger that announces every change of ``table`` (same function)."""
    return (
        f"CREATE TRIGGER {table}_notify_change AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE"
        f" ON {table} FOR EACH STATEMENT EXECUTE FUNCTION events_notify_change()"
    )


NOTIFY_ATTENDEES = _notify_on("attendees")
NOTIFY_ORGANIZERS = _notify_on("organizers")


# --- For metadata.create_all ------------------------------------------------------------------


def _run(connection: Connection, statements: list[str]) -> None:
    for statement in statements:
        connection.execute(DDL(statement))


@event.listens_for(Attendee.__table__, "after_create")
def _attendees_created(_table, connection: Connection, **_kw) -> None:
    postgres = connection.dialect.name == "postgresql"
    _run(connection, COUNTING_POSTGRESQL if postgres else COUNTING_SQLITE)


@event.listens_for(Event.__table__, "after_create")
def _events_created(_table, connection: Connection, **_kw) -> None:
    if connection.dialect.name == "postgresql":
        _run(connection, NOTIFY_EVENTS)


# Once every table (and the events trigger's function) exists, whatever order they came in;
# only on the tables this create_all made.
@event.listens_for(db.metadata, "after_create")
def _all_created(_metadata, connection: Connection, tables=(), **_kw) -> None:
    if connection.dialect.name == "postgresql":
        made = {table.name for table in tables}
        if "attendees" in made:
            _run(connection, [NOTIFY_ATTENDEES])
        if "organizers" in made:
            _run(connection, [NOTIFY_ORGANIZERS])
