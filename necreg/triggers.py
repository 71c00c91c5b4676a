"""Every trigger the database runs, as SQL: the places and figures it keeps, and the change
notice.

- **Places and tallies** (SQLite and PostgreSQL): one trigger on ``attendees``, in the same
  transaction as every insert, update and delete, whatever code (or hand-written SQL) makes it:
  1. an attendee who stops holding places (confirmed, or ``pending_payment``: held until
     paid for) frees them (place_slots);
  2. one who comes to hold places and takes a place (``takes_place``: not an infant where infants
     do not count) claims one in each pool of the event that applies (in person the role's
     cap, then the event's; online the online cap); where a pool has none free (or none that
     another transaction is not claiming) the database refuses the change with ``necreg: no
     room in role`` / ``... in event`` / ``... in virtual`` (registration.py then decides
     under the event lock);
  3. the figures (``tallies``, TALLY_TERMS, and the choices of the attendee's answers) move
     by the difference between the row before and after, and ``version`` by one when any did.
- **Answers** (both): a trigger on ``answers`` moves the figure of each choice of an active
  attendee (kind ``answer``), so the dashboard's totals per choice are a few rows too; an
  attendee's answers are deleted before the attendee, while its status still tells.
- **Change notice** (PostgreSQL): statement triggers on ``events``, ``attendees`` and
  ``organizers`` NOTIFY ``necreg_changes``, which each instance's change watch LISTENs to
  (necreg/speed/watch.py), to know without a query that something changed.

**No serial point on PostgreSQL.** Registrations for one event run side by side:
- a place is claimed with ``FOR UPDATE SKIP LOCKED``, the first free slot nobody else holds;
  a claim never waits for a slot. When it finds none, the registration (registration.py)
  tries again under the event lock, which waits until no registration is in flight: so
  nobody is put on the waiting list while a place is free or may be freed;
- each writing transaction counts into a share (``shard``) of the tallies that it alone holds
  (``pg_try_advisory_xact_lock`` on shard 0, 1, ... the first free), so no two transactions
  ever wait for the same counter row, and the figures are sums over the shards. Quiet
  periods write shard 0 only; a rush spreads over as many shards as transactions in flight.

The lock order that keeps this free of deadlocks is written down in docs/performance.md
("Lock order"). Migrations install the same SQL, frozen as it was at their revision (0003 the
counting, replaced by 0010, then 0012; 0005, 0007 and 0008 the notice; tests hold them
equal). Tables made by ``metadata.create_all`` (tests, a first ``db.create_all()``) get them here.
"""

from __future__ import annotations

from sqlalchemy import DDL, Connection, event

from .extensions import db
from .models import (
    HOLDING_STATUSES,
    IN_PERSON,
    STATUS_CONFIRMED,
    STATUS_PENDING,
    VIRTUAL,
    Answer,
    Event,
)

# --- Places and tallies -----------------------------------------------------------------------

#: How the trigger's refusal for want of a place begins; "role" or "event" follows
#: (places.no_room_in reads it).
NO_ROOM = "necreg: no room in "
#: How many shares each figure may have on PostgreSQL: more transactions in flight than this
#: wait for a share (never deadlock: a share is the last lock a transaction takes).
TALLY_SHARDS = 32
#: The first key of the advisory locks that hand out shares ("NECR" in hexadecimal digits).
TALLY_LOCK_CLASS = 0x4E4543

#: The figures tallied per attendee row ``{r}``: (kind, key, when the row counts). ``day`` is
#: dialect-specific (``{day}``). Places (``role``; ``virtual``, the online ones by role) count
#: attendees who take one: an infant may not (``takes_place``). In-person places are the
#: difference, so a registration in person (the common one) moves no figure more than
#: before attendance existed.
_ACTIVE = f"{{r}}.status = '{STATUS_CONFIRMED}'"
_PLACED = _ACTIVE + " AND {r}.takes_place"
#: SQL: attendee ``{r}`` holds a place (confirmed, or a place held until paid for).
_HOLDS = "{r}.status IN (" + ", ".join(f"'{s}'" for s in HOLDING_STATUSES) + ")"
#: The key of a held place's figure (kind ``hold``): ``<attendance>:<role>``.
HOLD_KEY = "{r}.attendance || ':' || {r}.role"
TALLY_TERMS: tuple[tuple[str, str, str], ...] = (
    ("status", "{r}.status", "1 = 1"),
    ("day", "{day}", "1 = 1"),
    ("role", "{r}.role", _PLACED),
    ("country", "{r}.country", _ACTIVE),
    ("institution", "trim({r}.institution)", _ACTIVE + " AND trim({r}.institution) <> ''"),
    ("early_career", "''", _ACTIVE + " AND {r}.early_career"),
    ("checked_in", "''", _ACTIVE + " AND {r}.checked_in_at IS NOT NULL"),
    ("virtual", "{r}.role", _PLACED + f" AND {{r}}.attendance = '{VIRTUAL}'"),
    ("hold", HOLD_KEY, f"{{r}}.status = '{STATUS_PENDING}' AND {{r}}.takes_place"),
)
#: The UTC day of a registration, as 'YYYY-MM-DD' text.
DAY_SQL = {
    "postgresql": "to_char({r}.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
    "sqlite": "substr({r}.created_at, 1, 10)",
}
#: The columns whose change can move a place or a figure.
TALLIED_COLUMNS = (
    "status, role, event_id, country, institution, early_career, checked_in_at, created_at,"
    " attendance, takes_place"
)
#: The key of an answer's figure (kind ``answer``): ``<question id>:<choice>``.
ANSWER_KEY = "CAST({a}.question_id AS TEXT) || ':' || {a}.choice"
#: The answers of attendee ``{r}`` that count: its choices while it is active. Only an update
#: needs them: a new attendee has no answers yet, and a deleted one's went first.
_ANSWER_ROWS = (
    "SELECT {r}.event_id, 'answer', " + ANSWER_KEY.format(a="a") + ", {sign} FROM answers a"
    " WHERE a.attendee_id = {r}.id AND a.choice IS NOT NULL AND " + _ACTIVE
)


def tally_rows(dialect: str, row: str, sign: str, *, answers: bool = False) -> str:
    """SQL rows (event_id, kind, key, d) of what attendee ``row`` (NEW, OLD, a table alias)
    adds to the figures, each ``d`` = ``sign``; UNION ALL of one SELECT per term, and with
    ``answers`` of its answers' choices."""
    day = DAY_SQL[dialect].format(r=row)
    return "\n        UNION ALL ".join(
        [
            f"SELECT {row}.event_id, '{kind}', {key.format(r=row, day=day)}, {sign}"
            f" WHERE {when.format(r=row)}"
            for kind, key, when in TALLY_TERMS
        ]
        + ([_ANSWER_ROWS.format(r=row, sign=sign)] if answers else [])
    )


def _moves(old: str, new: str) -> str:
    """SQL: the attendee ``old``, holding places, is not the same holder of places as ``new``
    (being paid for, a held place stays where it is)."""
    return (
        f"(NOT {_HOLDS.format(r=new)} OR {new}.role <> {old}.role"
        f" OR {new}.event_id <> {old}.event_id OR {new}.attendance <> {old}.attendance"
        f" OR {new}.takes_place <> {old}.takes_place)"
    )


#: The pools of event ``e`` an active attendee of role ``r`` attending as ``m`` holds a place
#: in, by the name the refusal gives them: in person the role's and the event's, online the
#: online one.
_POOL_OF = {
    "role": f"p.name = 'role:' || {{r}} AND {{m}} = '{IN_PERSON}'",
    "event": f"p.name = 'event' AND {{m}} = '{IN_PERSON}'",
    "virtual": f"p.name = 'virtual' AND {{m}} = '{VIRTUAL}'",
}
_POOLS_OF = "p.event_id = {e} AND (" + " OR ".join(f"({c})" for c in _POOL_OF.values()) + ")"


def _starts(column: str, prefix: str) -> str:
    """SQL: ``column`` begins with ``prefix`` (no LIKE: its ``%`` would be taken for a
    placeholder in DDL)."""
    return f"substr({column}, 1, {len(prefix)}) = '{prefix}'"


#: SQL: pool ``p`` holds more places than its capacity while attendee ``a`` still counts in
#: it (its cap was lowered below the places taken), so a place freed there is removed. The
#: places a pool holds come from the figures: online, ``virtual``'s; in person (the event's,
#: a role's), ``role``'s less ``virtual``'s; and the places held unpaid (``hold``) of its
#: attendance (and role).
_OVER_CAPACITY = (
    "p.capacity < (SELECT coalesce(sum(CASE WHEN p.name = 'virtual' OR t.kind <> 'virtual'"
    " THEN t.n ELSE -t.n END), 0) FROM tallies t WHERE t.event_id = p.event_id"
    " AND ((p.name = 'virtual' AND (t.kind = 'virtual' OR (t.kind = 'hold'"
    f" AND {_starts('t.key', VIRTUAL + ':')})))"
    " OR ((p.name = 'event' OR p.name = 'role:' || t.key) AND t.kind IN ('role', 'virtual'))"
    f" OR (t.kind = 'hold' AND (p.name = 'event' AND {_starts('t.key', IN_PERSON + ':')}"
    f" OR t.key = '{IN_PERSON}:' || substr(p.name, 6)))))"
)

# SQLite: one writer at a time, so one share (0) and plain statements in the trigger.
_SQLITE_RELEASE = f"""
    DELETE FROM place_slots WHERE {{when}} AND attendee_id = OLD.id AND pool_id IN
        (SELECT p.id FROM place_pools p WHERE p.event_id = OLD.event_id AND {_OVER_CAPACITY});
    UPDATE place_slots SET attendee_id = NULL WHERE {{when}} AND attendee_id = OLD.id;"""
_SQLITE_REFUSE = """
    SELECT RAISE(ABORT, '{no_room}{pool}') WHERE {{when}} AND EXISTS
        (SELECT 1 FROM place_pools p WHERE p.event_id = NEW.event_id AND {of}
         AND NOT EXISTS (SELECT 1 FROM place_slots s
         WHERE s.pool_id = p.id AND s.attendee_id IS NULL));"""
_NEW_POOLS = _POOLS_OF.format(e="NEW.event_id", r="NEW.role", m="NEW.attendance")
_SQLITE_CLAIM = (
    "".join(
        _SQLITE_REFUSE.format(
            no_room=NO_ROOM, pool=pool, of=of.format(r="NEW.role", m="NEW.attendance")
        )
        for pool, of in _POOL_OF.items()
    )
    + f"""
    UPDATE place_slots SET attendee_id = NEW.id WHERE {{when}} AND id IN
        (SELECT (SELECT s.id FROM place_slots s WHERE s.pool_id = p.id
                 AND s.attendee_id IS NULL ORDER BY s.id LIMIT 1)
         FROM place_pools p WHERE {_NEW_POOLS});"""
)
_SQLITE_TALLY = """
    INSERT INTO tallies (event_id, kind, key, shard, n, changed_at)
        SELECT event_id, kind, key, 0, n, CURRENT_TIMESTAMP FROM (
            SELECT e AS event_id, k AS kind, v AS key, sum(d) AS n FROM (
                SELECT NULL AS e, NULL AS k, NULL AS v, 0 AS d WHERE 0
                {rows}) GROUP BY e, k, v HAVING sum(d) <> 0)
        WHERE 1
        ON CONFLICT (event_id, kind, key, shard)
        DO UPDATE SET n = n + excluded.n, changed_at = excluded.changed_at;
    INSERT INTO tallies (event_id, kind, key, shard, n, changed_at)
        SELECT e, 'version', '', 0, 1, CURRENT_TIMESTAMP FROM (
            SELECT e, k, v, sum(d) AS n FROM (
                SELECT NULL AS e, NULL AS k, NULL AS v, 0 AS d WHERE 0
                {rows}) GROUP BY e, k, v HAVING sum(d) <> 0)
        WHERE 1 GROUP BY e
        ON CONFLICT (event_id, kind, key, shard)
        DO UPDATE SET n = n + 1, changed_at = excluded.changed_at;"""


def _sqlite_tally(*parts: tuple[str, str], answers: bool = False) -> str:
    rows = "".join(
        "\n                UNION ALL " + tally_rows("sqlite", row, sign, answers=answers)
        for row, sign in parts
    )
    return _SQLITE_TALLY.format(rows=rows)


_HOLDS_NEW = _HOLDS.format(r="NEW")
_HOLDS_OLD = _HOLDS.format(r="OLD")
_PLACED_NEW = _HOLDS_NEW + " AND NEW.takes_place"

#: The answers of an attendee who is deleted go first, while the attendee's status still
#: says whether they counted (a cascade would remove them after the row, too late to tell).
_ANSWERS_FIRST = "DELETE FROM answers WHERE attendee_id = OLD.id;"


def answer_tally_rows(row: str, sign: str) -> str:
    """SQL rows (event_id, kind, key, d) of what answer ``row`` adds to the figures."""
    return (
        f"SELECT a.event_id, 'answer', {ANSWER_KEY.format(a=row)}, {sign} FROM attendees a"
        f" WHERE a.id = {row}.attendee_id AND {row}.choice IS NOT NULL AND " + _ACTIVE.format(r="a")
    )


COUNTING_SQLITE = [
    "CREATE TRIGGER attendees_tally_insert AFTER INSERT ON attendees BEGIN"
    + _SQLITE_CLAIM.format(when=_PLACED_NEW)
    + _sqlite_tally(("NEW", "1"))
    + "\nEND",
    "CREATE TRIGGER attendees_tally_delete AFTER DELETE ON attendees BEGIN"
    + _SQLITE_RELEASE.format(when=_HOLDS_OLD)
    + _sqlite_tally(("OLD", "-1"))
    + "\nEND",
    f"CREATE TRIGGER attendees_tally_update AFTER UPDATE OF {TALLIED_COLUMNS} ON attendees BEGIN"
    + _SQLITE_RELEASE.format(when=f"{_HOLDS_OLD} AND {_moves('OLD', 'NEW')}")
    + _SQLITE_CLAIM.format(when=f"{_PLACED_NEW} AND (NOT {_HOLDS_OLD} OR {_moves('OLD', 'NEW')})")
    + _sqlite_tally(("OLD", "-1"), ("NEW", "1"), answers=True)
    + "\nEND",
    f"CREATE TRIGGER attendees_answers_first BEFORE DELETE ON attendees BEGIN\n    {_ANSWERS_FIRST}"
    "\nEND",
    "CREATE TRIGGER answers_tally_insert AFTER INSERT ON answers BEGIN"
    + _SQLITE_TALLY.format(rows="UNION ALL " + answer_tally_rows("NEW", "1"))
    + "\nEND",
    "CREATE TRIGGER answers_tally_delete AFTER DELETE ON answers BEGIN"
    + _SQLITE_TALLY.format(rows="UNION ALL " + answer_tally_rows("OLD", "-1"))
    + "\nEND",
    "CREATE TRIGGER answers_tally_update AFTER UPDATE OF attendee_id, question_id, choice"
    " ON answers BEGIN"
    + _SQLITE_TALLY.format(
        rows="UNION ALL "
        + answer_tally_rows("OLD", "-1")
        + "\n                UNION ALL "
        + answer_tally_rows("NEW", "1")
    )
    + "\nEND",
]

#: PostgreSQL: add the figures moved (rows of ``d``) to this transaction's share.
_PG_ADD_MOVED = """
    INSERT INTO tallies AS t (event_id, kind, key, shard, n, changed_at)
    SELECT event_id, kind, key, tally_shard(), n, now() FROM (
        SELECT * FROM d UNION ALL SELECT DISTINCT event_id, 'version', '', 1 FROM d
    ) AS moved ORDER BY event_id, kind, key
    ON CONFLICT (event_id, kind, key, shard)
    DO UPDATE SET n = t.n + EXCLUDED.n, changed_at = EXCLUDED.changed_at;"""

COUNTING_POSTGRESQL = [
    f"""
CREATE FUNCTION tally_shard() RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    s integer := nullif(current_setting('necreg.tally_shard', true), '')::integer;
BEGIN
    IF s IS NOT NULL THEN
        RETURN s;
    END IF;
    FOR i IN 0..{TALLY_SHARDS - 1} LOOP
        IF pg_try_advisory_xact_lock({TALLY_LOCK_CLASS}, i) THEN
            s := i;
            EXIT;
        END IF;
    END LOOP;
    IF s IS NULL THEN  -- every share is in use: wait for one
        s := floor(random() * {TALLY_SHARDS})::integer;
        PERFORM pg_advisory_xact_lock({TALLY_LOCK_CLASS}, s);
    END IF;
    PERFORM set_config('necreg.tally_shard', s::text, true);
    RETURN s;
END $$
""",
    f"""
CREATE FUNCTION places_claim(a integer, e integer, r text, m text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    pool record;
    slot integer;
BEGIN
    FOR pool IN SELECT p.id, p.name FROM place_pools p
            WHERE {_POOLS_OF.format(e="e", r="r", m="m")} ORDER BY p.name = 'event' LOOP
        SELECT s.id INTO slot FROM place_slots s WHERE s.pool_id = pool.id
            AND s.attendee_id IS NULL ORDER BY s.id LIMIT 1 FOR UPDATE SKIP LOCKED;
        IF slot IS NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'check_violation', MESSAGE = '{NO_ROOM}'
                || CASE WHEN pool.name IN ('event', 'virtual') THEN pool.name ELSE 'role' END;
        END IF;
        UPDATE place_slots SET attendee_id = a WHERE id = slot;
    END LOOP;
END $$
""",
    f"""
CREATE FUNCTION places_release(a integer, e integer) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM place_slots WHERE attendee_id = a AND pool_id IN
        (SELECT p.id FROM place_pools p WHERE p.event_id = e AND {_OVER_CAPACITY});
    UPDATE place_slots SET attendee_id = NULL WHERE attendee_id = a;
END $$
""",
    f"""
CREATE FUNCTION attendees_tally() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- A bulk load (seed-demo) counts once at its end (counters.recount) instead of row by row.
    IF current_setting('necreg.bulk_load', true) = 'on' THEN
        RETURN NULL;
    END IF;
    IF TG_OP <> 'INSERT' AND {_HOLDS_OLD}
            AND (TG_OP = 'DELETE' OR {_moves("OLD", "NEW")}) THEN
        PERFORM places_release(OLD.id, OLD.event_id);
    END IF;
    IF TG_OP <> 'DELETE' AND {_PLACED_NEW} AND (TG_OP = 'INSERT'
            OR NOT {_HOLDS_OLD} OR {_moves("OLD", "NEW")}) THEN
        PERFORM places_claim(NEW.id, NEW.event_id, NEW.role, NEW.attendance);
    END IF;
    WITH d (event_id, kind, key, n) AS (
        SELECT e, k, v, sum(x) FROM (
            SELECT NULL::integer, NULL::text, NULL::text, 0 WHERE false
            UNION ALL SELECT * FROM (
                {tally_rows("postgresql", "OLD", "-1")}) o WHERE TG_OP <> 'INSERT'
            UNION ALL SELECT * FROM (
                {tally_rows("postgresql", "NEW", "1")}) n WHERE TG_OP <> 'DELETE'
            UNION ALL SELECT * FROM (
                {_ANSWER_ROWS.format(r="OLD", sign="-1")}
                UNION ALL {_ANSWER_ROWS.format(r="NEW", sign="1")}) a WHERE TG_OP = 'UPDATE'
        ) AS rows (e, k, v, x) GROUP BY e, k, v HAVING sum(x) <> 0
    ){_PG_ADD_MOVED}
    RETURN NULL;
END $$
""",
    "CREATE TRIGGER attendees_tally AFTER INSERT OR DELETE"
    f" OR UPDATE OF {TALLIED_COLUMNS} ON attendees"
    " FOR EACH ROW EXECUTE FUNCTION attendees_tally()",
    f"""
CREATE FUNCTION attendees_answers_first() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    {_ANSWERS_FIRST}
    RETURN OLD;
END $$
""",
    "CREATE TRIGGER attendees_answers_first BEFORE DELETE ON attendees"
    " FOR EACH ROW EXECUTE FUNCTION attendees_answers_first()",
    f"""
CREATE FUNCTION answers_tally() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('necreg.bulk_load', true) = 'on' THEN
        RETURN NULL;
    END IF;
    WITH d (event_id, kind, key, n) AS (
        SELECT e, k, v, sum(x) FROM (
            SELECT NULL::integer, NULL::text, NULL::text, 0 WHERE false
            UNION ALL SELECT * FROM (
                {answer_tally_rows("OLD", "-1")}) o WHERE TG_OP <> 'INSERT'
            UNION ALL SELECT * FROM (
                {answer_tally_rows("NEW", "1")}) n WHERE TG_OP <> 'DELETE'
        ) AS rows (e, k, v, x) GROUP BY e, k, v HAVING sum(x) <> 0
    ){_PG_ADD_MOVED}
    RETURN NULL;
END $$
""",
    "CREATE TRIGGER answers_tally AFTER INSERT OR DELETE"
    " OR UPDATE OF attendee_id, question_id, choice ON answers"
    " FOR EACH ROW EXECUTE FUNCTION answers_tally()",
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


@event.listens_for(Answer.__table__, "after_create")
def _answers_created(_table, connection: Connection, **_kw) -> None:
    """The triggers on attendees need answers, and answers need attendees: made with the
    later of the two."""
    postgres = connection.dialect.name == "postgresql"
    _run(connection, COUNTING_POSTGRESQL if postgres else COUNTING_SQLITE)


@event.listens_for(Answer.__table__, "before_drop")
def _answers_dropped(_table, connection: Connection, **_kw) -> None:
    """SQLite will not drop attendees while its triggers name a table that is gone."""
    if connection.dialect.name == "sqlite":
        names = [statement.split()[2] for statement in COUNTING_SQLITE]
        _run(connection, [f"DROP TRIGGER IF EXISTS {name}" for name in names])


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
