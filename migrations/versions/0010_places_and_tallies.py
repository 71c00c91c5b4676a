"""Places without a single lock, and tallies that registrations never wait for.

- ``place_pools`` / ``place_slots``: each cap of an event is a pool of slots, one per place,
  claimed and freed by the trigger on attendees; a change that would make an attendee active
  without a free place is refused by the database.
- ``tallies`` replace ``role_counts``, ``institution_counts`` and ``events.counts_version``:
  every figure of the public counters and the dashboard, in shares (``shard``) that writing
  transactions hold one each on PostgreSQL.

The trigger SQL is frozen here as it was written in necreg/triggers.py at this revision; the
figures and places of existing registrations are counted once here.

Revision ID: 0010_places_and_tallies
Revises: 0009_check_in_scans
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_places_and_tallies"
down_revision = "0009_check_in_scans"
branch_labels = None
depends_on = None

SQLITE_CREATE = [
    """CREATE TRIGGER attendees_tally_insert AFTER INSERT ON attendees BEGIN
    SELECT RAISE(ABORT, 'necreg: no room in role') WHERE NEW.status = 'confirmed' AND EXISTS
        (SELECT 1 FROM place_pools p WHERE p.event_id = NEW.event_id
         AND p.name = 'role:' || NEW.role AND NOT EXISTS (SELECT 1 FROM place_slots s
         WHERE s.pool_id = p.id AND s.attendee_id IS NULL));
    SELECT RAISE(ABORT, 'necreg: no room in event') WHERE NEW.status = 'confirmed' AND EXISTS
        (SELECT 1 FROM place_pools p WHERE p.event_id = NEW.event_id AND p.name = 'event'
         AND NOT EXISTS (SELECT 1 FROM place_slots s
         WHERE s.pool_id = p.id AND s.attendee_id IS NULL));
    UPDATE place_slots SET attendee_id = NEW.id WHERE NEW.status = 'confirmed' AND id IN
        (SELECT (SELECT s.id FROM place_slots s WHERE s.pool_id = p.id
                 AND s.attendee_id IS NULL ORDER BY s.id LIMIT 1)
         FROM place_pools p WHERE p.event_id = NEW.event_id AND p.name IN ('role:' || NEW.role, 'event'));
    INSERT INTO tallies (event_id, kind, key, shard, n, changed_at)
        SELECT event_id, kind, key, 0, n, CURRENT_TIMESTAMP FROM (
            SELECT e AS event_id, k AS kind, v AS key, sum(d) AS n FROM (
                SELECT NULL AS e, NULL AS k, NULL AS v, 0 AS d WHERE 0
                
                UNION ALL SELECT NEW.event_id, 'status', NEW.status, 1 WHERE 1 = 1
        UNION ALL SELECT NEW.event_id, 'day', substr(NEW.created_at, 1, 10), 1 WHERE 1 = 1
        UNION ALL SELECT NEW.event_id, 'role', NEW.role, 1 WHERE NEW.status = 'confirmed'
        UNION ALL SELECT NEW.event_id, 'country', NEW.country, 1 WHERE NEW.status = 'confirmed'
        UNION ALL SELECT NEW.event_id, 'institution', trim(NEW.institution), 1 WHERE NEW.status = 'confirmed' AND trim(NEW.institution) <> ''
        UNION ALL SELECT NEW.event_id, 'early_career', '', 1 WHERE NEW.status = 'confirmed' AND NEW.early_career
        UNION ALL SELECT NEW.event_id, 'checked_in', '', 1 WHERE NEW.status = 'confirmed' AND NEW.checked_in_at IS NOT NULL) GROUP BY e, k, v HAVING sum(d) <> 0)
        WHERE 1
        ON CONFLICT (event_id, kind, key, shard)
        DO UPDATE SET n = n + excluded.n, changed_at = excluded.changed_at;
    INSERT INTO tallies (event_id, kind, key, shard, n, changed_at)
        SELECT e, 'version', '', 0, 1, CURRENT_TIMESTAMP FROM (
            SELECT e, k, v, sum(d) AS n FROM (
                SELECT NULL AS e, NULL AS k, NULL AS v, 0 AS d WHERE 0
                
                UNION ALL SELECT NEW.event_id, 'status', NEW.status, 1 WHERE 1 = 1
        UNION ALL SELECT NEW.event_id, 'day', substr(NEW.created_at, 1, 10), 1 WHERE 1 = 1
        UNION ALL SELECT NEW.event_id, 'role', NEW.role, 1 WHERE NEW.status = 'confirmed'
        UNION ALL SELECT NEW.event_id, 'country', NEW.country, 1 WHERE NEW.status = 'confirmed'
        UNION ALL SELECT NEW.event_id, 'institution', trim(NEW.institution), 1 WHERE NEW.status = 'confirmed' AND trim(NEW.institution) <> ''
        UNION ALL SELECT NEW.event_id, 'early_career', '', 1 WHERE NEW.status = 'confirmed' AND NEW.early_career
        UNION ALL SELECT NEW.event_id, 'checked_in', '', 1 WHERE NEW.status = 'confirmed' AND NEW.checked_in_at IS NOT NULL) GROUP BY e, k, v HAVING sum(d) <> 0)
        WHERE 1 GROUP BY e
        ON CONFLICT (event_id, kind, key, shard)
        DO UPDATE SET n = n + 1, changed_at = excluded.changed_at;
END""",
    """CREATE TRIGGER attendees_tally_delete AFTER DELETE ON attendees BEGIN
    DELETE FROM place_slots WHERE OLD.status = 'confirmed' AND attendee_id = OLD.id AND pool_id IN
        (SELECT p.id FROM place_pools p WHERE p.event_id = OLD.event_id AND p.capacity < (SELECT coalesce(sum(t.n), 0) FROM tallies t WHERE t.event_id = p.event_id AND t.kind = 'role' AND (p.name = 'event' OR p.name = 'role:' || t.key)));
    UPDATE place_slots SET attendee_id = NULL WHERE OLD.status = 'confirmed' AND attendee_id = OLD.id;
    INSERT INTO tallies (event_id, kind, key, shard, n, changed_at)
        SELECT event_id, kind, key, 0, n, CURRENT_TIMESTAMP FROM (
            SELECT e AS event_id, k AS kind, v AS key, sum(d) AS n FROM (
                SELECT NULL AS e, NULL AS k, NULL AS v, 0 AS d WHERE 0
                
                UNION ALL SELECT OLD.event_id, 'status', OLD.status, -1 WHERE 1 = 1
        UNION ALL SELECT OLD.event_id, 'day', substr(OLD.created_at, 1, 10), -1 WHERE 1 = 1
        UNION ALL SELECT OLD.event_id, 'role', OLD.role, -1 WHERE OLD.status = 'confirmed'
        UNION ALL SELECT OLD.event_id, 'country', OLD.country, -1 WHERE OLD.status = 'confirmed'
        UNION ALL SELECT OLD.event_id, 'institution', trim(OLD.institution), -1 WHERE OLD.status = 'confirmed' AND trim(OLD.institution) <> ''
        UNION ALL SELECT OLD.event_id, 'early_career', '', -1 WHERE OLD.status = 'confirmed' AND OLD.early_career
        UNION ALL SELECT OLD.event_id, 'checked_in', '', -1 WHERE OLD.status = 'confirmed' AND OLD.checked_in_at IS NOT NULL) GROUP BY e, k, v HAVING sum(d) <> 0)
        WHERE 1
        ON CONFLICT (event_id, kind, key, shard)
        DO UPDATE SET n = n + excluded.n, changed_at = excluded.changed_at;
    INSERT INTO tallies (event_id, kind, key, shard, n, changed_at)
        SELECT e, 'version', '', 0, 1, CURRENT_TIMESTAMP FROM (
            SELECT e, k, v, sum(d) AS n FROM (
                SELECT NULL AS e, NULL AS k, NULL AS v, 0 AS d WHERE 0
                
                UNION ALL SELECT OLD.event_id, 'status', OLD.status, -1 WHERE 1 = 1
        UNION ALL SELECT OLD.event_id, 'day', substr(OLD.created_at, 1, 10), -1 WHERE 1 = 1
        UNION ALL SELECT OLD.event_id, 'role', OLD.role, -1 WHERE OLD.status = 'confirmed'
        UNION ALL SELECT OLD.event_id, 'country', OLD.country, -1 WHERE OLD.status = 'confirmed'
        UNION ALL SELECT OLD.event_id, 'institution', trim(OLD.institution), -1 WHERE OLD.status = 'confirmed' AND trim(OLD.institution) <> ''
        UNION ALL SELECT OLD.event_id, 'early_career', '', -1 WHERE OLD.status = 'confirmed' AND OLD.early_career
        UNION ALL SELECT OLD.event_id, 'checked_in', '', -1 WHERE OLD.status = 'confirmed' AND OLD.checked_in_at IS NOT NULL) GROUP BY e, k, v HAVING sum(d) <> 0)
        WHERE 1 GROUP BY e
        ON CONFLICT (event_id, kind, key, shard)
        DO UPDATE SET n = n + 1, changed_at = excluded.changed_at;
END""",
    """CREATE TRIGGER attendees_tally_update AFTER UPDATE OF status, role, event_id, country, institution, early_career, checked_in_at, created_at ON attendees BEGIN
    DELETE FROM place_slots WHERE OLD.status = 'confirmed' AND (NEW.status <> 'confirmed' OR NEW.role <> OLD.role OR NEW.event_id <> OLD.event_id) AND attendee_id = OLD.id AND pool_id IN
        (SELECT p.id FROM place_pools p WHERE p.event_id = OLD.event_id AND p.capacity < (SELECT coalesce(sum(t.n), 0) FROM tallies t WHERE t.event_id = p.event_id AND t.kind = 'role' AND (p.name = 'event' OR p.name = 'role:' || t.key)));
    UPDATE place_slots SET attendee_id = NULL WHERE OLD.status = 'confirmed' AND (NEW.status <> 'confirmed' OR NEW.role <> OLD.role OR NEW.event_id <> OLD.event_id) AND attendee_id = OLD.id;
    SELECT RAISE(ABORT, 'necreg: no room in role') WHERE NEW.status = 'confirmed' AND (OLD.status <> 'confirmed' OR (NEW.status <> 'confirmed' OR NEW.role <> OLD.role OR NEW.event_id <> OLD.event_id)) AND EXISTS
        (SELECT 1 FROM place_pools p WHERE p.event_id = NEW.event_id
         AND p.name = 'role:' || NEW.role AND NOT EXISTS (SELECT 1 FROM place_slots s
         WHERE s.pool_id = p.id AND s.attendee_id IS NULL));
    SELECT RAISE(ABORT, 'necreg: no room in event') WHERE NEW.status = 'confirmed' AND (OLD.status <> 'confirmed' OR (NEW.status <> 'confirmed' OR NEW.role <> OLD.role OR NEW.event_id <> OLD.event_id)) AND EXISTS
        (SELECT 1 FROM place_pools p WHERE p.event_id = NEW.event_id AND p.name = 'event'
         AND NOT EXISTS (SELECT 1 FROM place_slots s
         WHERE s.pool_id = p.id AND s.attendee_id IS NULL));
    UPDATE place_slots SET attendee_id = NEW.id WHERE NEW.status = 'confirmed' AND (OLD.status <> 'confirmed' OR (NEW.status <> 'confirmed' OR NEW.role <> OLD.role OR NEW.event_id <> OLD.event_id)) AND id IN
        (SELECT (SELECT s.id FROM place_slots s WHERE s.pool_id = p.id
                 AND s.attendee_id IS NULL ORDER BY s.id LIMIT 1)
         FROM place_pools p WHERE p.event_id = NEW.event_id AND p.name IN ('role:' || NEW.role, 'event'));
    INSERT INTO tallies (event_id, kind, key, shard, n, changed_at)
        SELECT event_id, kind, key, 0, n, CURRENT_TIMESTAMP FROM (
            SELECT e AS event_id, k AS kind, v AS key, sum(d) AS n FROM (
                SELECT NULL AS e, NULL AS k, NULL AS v, 0 AS d WHERE 0
                
                UNION ALL SELECT OLD.event_id, 'status', OLD.status, -1 WHERE 1 = 1
        UNION ALL SELECT OLD.event_id, 'day', substr(OLD.created_at, 1, 10), -1 WHERE 1 = 1
        UNION ALL SELECT OLD.event_id, 'role', OLD.role, -1 WHERE OLD.status = 'confirmed'
        UNION ALL SELECT OLD.event_id, 'country', OLD.country, -1 WHERE OLD.status = 'confirmed'
        UNION ALL SELECT OLD.event_id, 'institution', trim(OLD.institution), -1 WHERE OLD.status = 'confirmed' AND trim(OLD.institution) <> ''
        UNION ALL SELECT OLD.event_id, 'early_career', '', -1 WHERE OLD.status = 'confirmed' AND OLD.early_career
        UNION ALL SELECT OLD.event_id, 'checked_in', '', -1 WHERE OLD.status = 'confirmed' AND OLD.checked_in_at IS NOT NULL
                UNION ALL SELECT NEW.event_id, 'status', NEW.status, 1 WHERE 1 = 1
        UNION ALL SELECT NEW.event_id, 'day', substr(NEW.created_at, 1, 10), 1 WHERE 1 = 1
        UNION ALL SELECT NEW.event_id, 'role', NEW.role, 1 WHERE NEW.status = 'confirmed'
        UNION ALL SELECT NEW.event_id, 'country', NEW.country, 1 WHERE NEW.status = 'confirmed'
        UNION ALL SELECT NEW.event_id, 'institution', trim(NEW.institution), 1 WHERE NEW.status = 'confirmed' AND trim(NEW.institution) <> ''
        UNION ALL SELECT NEW.event_id, 'early_career', '', 1 WHERE NEW.status = 'confirmed' AND NEW.early_career
        UNION ALL SELECT NEW.event_id, 'checked_in', '', 1 WHERE NEW.status = 'confirmed' AND NEW.checked_in_at IS NOT NULL) GROUP BY e, k, v HAVING sum(d) <> 0)
        WHERE 1
        ON CONFLICT (event_id, kind, key, shard)
        DO UPDATE SET n = n + excluded.n, changed_at = excluded.changed_at;
    INSERT INTO tallies (event_id, kind, key, shard, n, changed_at)
        SELECT e, 'version', '', 0, 1, CURRENT_TIMESTAMP FROM (
            SELECT e, k, v, sum(d) AS n FROM (
                SELECT NULL AS e, NULL AS k, NULL AS v, 0 AS d WHERE 0
                
                UNION ALL SELECT OLD.event_id, 'status', OLD.status, -1 WHERE 1 = 1
        UNION ALL SELECT OLD.event_id, 'day', substr(OLD.created_at, 1, 10), -1 WHERE 1 = 1
        UNION ALL SELECT OLD.event_id, 'role', OLD.role, -1 WHERE OLD.status = 'confirmed'
        UNION ALL SELECT OLD.event_id, 'country', OLD.country, -1 WHERE OLD.status = 'confirmed'
        UNION ALL SELECT OLD.event_id, 'institution', trim(OLD.institution), -1 WHERE OLD.status = 'confirmed' AND trim(OLD.institution) <> ''
        UNION ALL SELECT OLD.event_id, 'early_career', '', -1 WHERE OLD.status = 'confirmed' AND OLD.early_career
        UNION ALL SELECT OLD.event_id, 'checked_in', '', -1 WHERE OLD.status = 'confirmed' AND OLD.checked_in_at IS NOT NULL
                UNION ALL SELECT NEW.event_id, 'status', NEW.status, 1 WHERE 1 = 1
        UNION ALL SELECT NEW.event_id, 'day', substr(NEW.created_at, 1, 10), 1 WHERE 1 = 1
        UNION ALL SELECT NEW.event_id, 'role', NEW.role, 1 WHERE NEW.status = 'confirmed'
        UNION ALL SELECT NEW.event_id, 'country', NEW.country, 1 WHERE NEW.status = 'confirmed'
        UNION ALL SELECT NEW.event_id, 'institution', trim(NEW.institution), 1 WHERE NEW.status = 'confirmed' AND trim(NEW.institution) <> ''
        UNION ALL SELECT NEW.event_id, 'early_career', '', 1 WHERE NEW.status = 'confirmed' AND NEW.early_career
        UNION ALL SELECT NEW.event_id, 'checked_in', '', 1 WHERE NEW.status = 'confirmed' AND NEW.checked_in_at IS NOT NULL) GROUP BY e, k, v HAVING sum(d) <> 0)
        WHERE 1 GROUP BY e
        ON CONFLICT (event_id, kind, key, shard)
        DO UPDATE SET n = n + 1, changed_at = excluded.changed_at;
END""",
]
SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS attendees_tally_insert",
    "DROP TRIGGER IF EXISTS attendees_tally_delete",
    "DROP TRIGGER IF EXISTS attendees_tally_update",
]
POSTGRESQL_CREATE = [
    """
CREATE FUNCTION tally_shard() RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    s integer := nullif(current_setting('necreg.tally_shard', true), '')::integer;
BEGIN
    IF s IS NOT NULL THEN
        RETURN s;
    END IF;
    FOR i IN 0..31 LOOP
        IF pg_try_advisory_xact_lock(5129539, i) THEN
            s := i;
            EXIT;
        END IF;
    END LOOP;
    IF s IS NULL THEN  -- every share is in use: wait for one
        s := floor(random() * 32)::integer;
        PERFORM pg_advisory_xact_lock(5129539, s);
    END IF;
    PERFORM set_config('necreg.tally_shard', s::text, true);
    RETURN s;
END $$
""",
    """
CREATE FUNCTION places_claim(a integer, e integer, r text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    pool record;
    slot integer;
BEGIN
    FOR pool IN SELECT p.id, p.name FROM place_pools p
            WHERE p.event_id = e AND p.name IN ('role:' || r, 'event') ORDER BY p.name = 'event' LOOP
        SELECT s.id INTO slot FROM place_slots s WHERE s.pool_id = pool.id
            AND s.attendee_id IS NULL ORDER BY s.id LIMIT 1 FOR UPDATE SKIP LOCKED;
        IF slot IS NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'check_violation', MESSAGE = 'necreg: no room in '
                || CASE WHEN pool.name = 'event' THEN 'event' ELSE 'role' END;
        END IF;
        UPDATE place_slots SET attendee_id = a WHERE id = slot;
    END LOOP;
END $$
""",
    """
CREATE FUNCTION places_release(a integer, e integer) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM place_slots WHERE attendee_id = a AND pool_id IN
        (SELECT p.id FROM place_pools p WHERE p.event_id = e AND p.capacity < (SELECT coalesce(sum(t.n), 0) FROM tallies t WHERE t.event_id = p.event_id AND t.kind = 'role' AND (p.name = 'event' OR p.name = 'role:' || t.key)));
    UPDATE place_slots SET attendee_id = NULL WHERE attendee_id = a;
END $$
""",
    """
CREATE FUNCTION attendees_tally() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- A bulk load (seed-demo) counts once at its end (counters.recount) instead of row by row.
    IF current_setting('necreg.bulk_load', true) = 'on' THEN
        RETURN NULL;
    END IF;
    IF TG_OP <> 'INSERT' AND OLD.status = 'confirmed'
            AND (TG_OP = 'DELETE' OR (NEW.status <> 'confirmed' OR NEW.role <> OLD.role OR NEW.event_id <> OLD.event_id)) THEN
        PERFORM places_release(OLD.id, OLD.event_id);
    END IF;
    IF TG_OP <> 'DELETE' AND NEW.status = 'confirmed' AND (TG_OP = 'INSERT'
            OR OLD.status <> 'confirmed' OR (NEW.status <> 'confirmed' OR NEW.role <> OLD.role OR NEW.event_id <> OLD.event_id)) THEN
        PERFORM places_claim(NEW.id, NEW.event_id, NEW.role);
    END IF;
    WITH d (event_id, kind, key, n) AS (
        SELECT e, k, v, sum(x) FROM (
            SELECT NULL::integer, NULL::text, NULL::text, 0 WHERE false
            UNION ALL SELECT * FROM (
                SELECT OLD.event_id, 'status', OLD.status, -1 WHERE 1 = 1
        UNION ALL SELECT OLD.event_id, 'day', to_char(OLD.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD'), -1 WHERE 1 = 1
        UNION ALL SELECT OLD.event_id, 'role', OLD.role, -1 WHERE OLD.status = 'confirmed'
        UNION ALL SELECT OLD.event_id, 'country', OLD.country, -1 WHERE OLD.status = 'confirmed'
        UNION ALL SELECT OLD.event_id, 'institution', trim(OLD.institution), -1 WHERE OLD.status = 'confirmed' AND trim(OLD.institution) <> ''
        UNION ALL SELECT OLD.event_id, 'early_career', '', -1 WHERE OLD.status = 'confirmed' AND OLD.early_career
        UNION ALL SELECT OLD.event_id, 'checked_in', '', -1 WHERE OLD.status = 'confirmed' AND OLD.checked_in_at IS NOT NULL) o WHERE TG_OP <> 'INSERT'
            UNION ALL SELECT * FROM (
                SELECT NEW.event_id, 'status', NEW.status, 1 WHERE 1 = 1
        UNION ALL SELECT NEW.event_id, 'day', to_char(NEW.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD'), 1 WHERE 1 = 1
        UNION ALL SELECT NEW.event_id, 'role', NEW.role, 1 WHERE NEW.status = 'confirmed'
        UNION ALL SELECT NEW.event_id, 'country', NEW.country, 1 WHERE NEW.status = 'confirmed'
        UNION ALL SELECT NEW.event_id, 'institution', trim(NEW.institution), 1 WHERE NEW.status = 'confirmed' AND trim(NEW.institution) <> ''
        UNION ALL SELECT NEW.event_id, 'early_career', '', 1 WHERE NEW.status = 'confirmed' AND NEW.early_career
        UNION ALL SELECT NEW.event_id, 'checked_in', '', 1 WHERE NEW.status = 'confirmed' AND NEW.checked_in_at IS NOT NULL) n WHERE TG_OP <> 'DELETE'
        ) AS rows (e, k, v, x) GROUP BY e, k, v HAVING sum(x) <> 0
    )
    INSERT INTO tallies AS t (event_id, kind, key, shard, n, changed_at)
    SELECT event_id, kind, key, tally_shard(), n, now() FROM (
        SELECT * FROM d UNION ALL SELECT DISTINCT event_id, 'version', '', 1 FROM d
    ) AS moved ORDER BY event_id, kind, key
    ON CONFLICT (event_id, kind, key, shard)
    DO UPDATE SET n = t.n + EXCLUDED.n, changed_at = EXCLUDED.changed_at;
    RETURN NULL;
END $$
""",
    'CREATE TRIGGER attendees_tally AFTER INSERT OR DELETE OR UPDATE OF status, role, event_id, country, institution, early_career, checked_in_at, created_at ON attendees FOR EACH ROW EXECUTE FUNCTION attendees_tally()',
]
POSTGRESQL_DROP = [
    "DROP TRIGGER IF EXISTS attendees_tally ON attendees",
    "DROP FUNCTION IF EXISTS attendees_tally()",
    "DROP FUNCTION IF EXISTS places_release(integer, integer)",
    "DROP FUNCTION IF EXISTS places_claim(integer, integer, text)",
    "DROP FUNCTION IF EXISTS tally_shard()",
]
#: What 0003 installed, dropped here (and made again by the downgrade, with 0003's SQL).
OLD_SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS attendees_counts_insert",
    "DROP TRIGGER IF EXISTS attendees_counts_delete",
    "DROP TRIGGER IF EXISTS attendees_counts_update",
]
OLD_POSTGRESQL_DROP = [
    "DROP TRIGGER IF EXISTS attendees_counts ON attendees",
    "DROP FUNCTION IF EXISTS attendees_counts_trigger()",
    "DROP FUNCTION IF EXISTS attendees_counts_bump(integer, text, text, integer)",
]
TALLY_TERMS = (
    ("status", "{r}.status", "1 = 1"),
    ("day", "{day}", "1 = 1"),
    ("role", "{r}.role", "{r}.status = 'confirmed'"),
    ("country", "{r}.country", "{r}.status = 'confirmed'"),
    (
        "institution",
        "trim({r}.institution)",
        "{r}.status = 'confirmed' AND trim({r}.institution) <> ''",
    ),
    ("early_career", "''", "{r}.status = 'confirmed' AND {r}.early_career"),
    ("checked_in", "''", "{r}.status = 'confirmed' AND {r}.checked_in_at IS NOT NULL"),
)
DAY_SQL = {
    "postgresql": "to_char({r}.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
    "sqlite": "substr({r}.created_at, 1, 10)",
}


def _count_existing(postgres: bool) -> None:
    """Tally the registrations already there (shard 0) and give every event with caps its
    pools, their slots taken by its active attendees, oldest first."""
    day = DAY_SQL["postgresql" if postgres else "sqlite"].format(r="a")
    for kind, key, when in TALLY_TERMS:
        key_sql = key.format(r="a", day=day)
        op.execute(
            "INSERT INTO tallies (event_id, kind, key, shard, n, changed_at)"
            f" SELECT a.event_id, '{kind}', {key_sql}, 0, count(*), CURRENT_TIMESTAMP"
            f" FROM attendees a WHERE {when.format(r='a')} GROUP BY 1, 3"
        )
    op.execute(
        "INSERT INTO tallies (event_id, kind, key, shard, n, changed_at)"
        " SELECT id, 'version', '', 0, 1, CURRENT_TIMESTAMP FROM events"
    )
    bind = op.get_bind()
    events = bind.execute(sa.text("SELECT id, capacity, capacity_by_role FROM events")).all()
    for event_id, capacity, by_role in events:
        if isinstance(by_role, str):  # SQLite gives JSON back as text here
            import json

            by_role = json.loads(by_role)
        pools = {f"role:{role}": cap for role, cap in (by_role or {}).items() if cap is not None}
        if capacity is not None:
            pools["event"] = capacity
        for name, cap in pools.items():
            pool_id = bind.execute(
                sa.text(
                    "INSERT INTO place_pools (event_id, name, capacity)"
                    " VALUES (:e, :name, :cap) RETURNING id"
                ),
                {"e": event_id, "name": name, "cap": cap},
            ).scalar_one()
            role = name.removeprefix("role:") if name != "event" else None
            taken = bind.execute(
                sa.text(
                    "INSERT INTO place_slots (pool_id, attendee_id)"
                    " SELECT :pool, id FROM attendees WHERE event_id = :e"
                    " AND status = 'confirmed' AND (CAST(:role AS VARCHAR(16)) IS NULL OR role = :role)"
                    " ORDER BY created_at, id"
                ),
                {"pool": pool_id, "e": event_id, "role": role},
            ).rowcount
            if cap > taken:
                bind.execute(
                    sa.text(
                        "WITH RECURSIVE n (i) AS"
                        " (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :free)"
                        " INSERT INTO place_slots (pool_id) SELECT :pool FROM n WHERE i <= :free"
                    ),
                    {"pool": pool_id, "free": cap - taken},
                )


def upgrade():
    postgres = op.get_bind().dialect.name == "postgresql"
    for statement in OLD_POSTGRESQL_DROP if postgres else OLD_SQLITE_DROP:
        op.execute(statement)
    op.drop_table("institution_counts")
    op.drop_table("role_counts")
    op.drop_column("events", "counts_version")
    op.create_table(
        "tallies",
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("shard", sa.Integer(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('status', 'day', 'role', 'country', 'institution', 'early_career',"
            " 'checked_in', 'version')",
            name=op.f("ck_tallies_kind_known"),
        ),
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.id"], name=op.f("fk_tallies_event_id_events"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("event_id", "kind", "key", "shard", name=op.f("pk_tallies")),
    )
    op.create_table(
        "place_pools",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["events.id"],
            name=op.f("fk_place_pools_event_id_events"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_place_pools")),
    )
    op.create_index("uq_place_pools_event_name", "place_pools", ["event_id", "name"], unique=True)
    op.create_table(
        "place_slots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pool_id", sa.Integer(), nullable=False),
        sa.Column("attendee_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["attendee_id"],
            ["attendees.id"],
            name=op.f("fk_place_slots_attendee_id_attendees"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["pool_id"],
            ["place_pools.id"],
            name=op.f("fk_place_slots_pool_id_place_pools"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_place_slots")),
    )
    op.create_index(
        op.f("ix_place_slots_attendee_id"), "place_slots", ["attendee_id"], unique=False
    )
    op.create_index(
        "ix_place_slots_free",
        "place_slots",
        ["pool_id", "id"],
        unique=False,
        sqlite_where=sa.text("attendee_id IS NULL"),
        postgresql_where=sa.text("attendee_id IS NULL"),
    )
    _count_existing(postgres)
    for statement in POSTGRESQL_CREATE if postgres else SQLITE_CREATE:
        op.execute(statement)


def downgrade():
    import importlib.util
    from pathlib import Path

    postgres = op.get_bind().dialect.name == "postgresql"
    for statement in POSTGRESQL_DROP if postgres else SQLITE_DROP:
        op.execute(statement)
    op.drop_index("ix_place_slots_free", table_name="place_slots")
    op.drop_index(op.f("ix_place_slots_attendee_id"), table_name="place_slots")
    op.drop_table("place_slots")
    op.drop_index("uq_place_pools_event_name", table_name="place_pools")
    op.drop_table("place_pools")
    op.drop_table("tallies")
    # Back to 0003's counters, made and counted by 0003's own upgrade.
    path = Path(__file__).with_name("0003_counters.py")
    spec = importlib.util.spec_from_file_location("migration_0003", path)
    counters = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(counters)
    counters.upgrade()
