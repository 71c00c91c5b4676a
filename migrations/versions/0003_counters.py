"""Counters kept by the database: active attendees per event and role, and per institution,
and a version number of each event's counts that changes with them.

Triggers on attendees keep role_counts and institution_counts exact in the same transaction as
every change, so the public counters read a few rows instead of counting every registration.
The trigger SQL is frozen here as it was written in necreg/counters.py at this revision.

Revision ID: 0003_counters
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_counters"
down_revision = "0002"
branch_labels = None
depends_on = None

SQLITE_CREATE = [
    """CREATE TRIGGER attendees_counts_insert AFTER INSERT ON attendees BEGIN
    INSERT OR IGNORE INTO role_counts (event_id, role, active, changed_at)
        SELECT NEW.event_id, NEW.role, 0, CURRENT_TIMESTAMP WHERE NEW.status = 'confirmed';
    UPDATE role_counts SET active = active + 1, changed_at = CURRENT_TIMESTAMP
        WHERE NEW.status = 'confirmed' AND event_id = NEW.event_id AND role = NEW.role;
    INSERT OR IGNORE INTO institution_counts (event_id, institution_key, active)
        SELECT NEW.event_id, lower(trim(NEW.institution)), 0
        WHERE NEW.status = 'confirmed' AND trim(NEW.institution) <> '';
    UPDATE institution_counts SET active = active + 1
        WHERE NEW.status = 'confirmed' AND event_id = NEW.event_id
        AND institution_key = lower(trim(NEW.institution));
    UPDATE events SET counts_version = counts_version + 1
        WHERE NEW.status = 'confirmed' AND id = NEW.event_id;
END""",
    """CREATE TRIGGER attendees_counts_delete AFTER DELETE ON attendees BEGIN
    INSERT OR IGNORE INTO role_counts (event_id, role, active, changed_at)
        SELECT OLD.event_id, OLD.role, 0, CURRENT_TIMESTAMP WHERE OLD.status = 'confirmed';
    UPDATE role_counts SET active = active - 1, changed_at = CURRENT_TIMESTAMP
        WHERE OLD.status = 'confirmed' AND event_id = OLD.event_id AND role = OLD.role;
    INSERT OR IGNORE INTO institution_counts (event_id, institution_key, active)
        SELECT OLD.event_id, lower(trim(OLD.institution)), 0
        WHERE OLD.status = 'confirmed' AND trim(OLD.institution) <> '';
    UPDATE institution_counts SET active = active - 1
        WHERE OLD.status = 'confirmed' AND event_id = OLD.event_id
        AND institution_key = lower(trim(OLD.institution));
    UPDATE events SET counts_version = counts_version + 1
        WHERE OLD.status = 'confirmed' AND id = OLD.event_id;
END""",
    """CREATE TRIGGER attendees_counts_update AFTER UPDATE OF status, role, institution, event_id ON attendees BEGIN
    INSERT OR IGNORE INTO role_counts (event_id, role, active, changed_at)
        SELECT OLD.event_id, OLD.role, 0, CURRENT_TIMESTAMP WHERE OLD.status = 'confirmed';
    UPDATE role_counts SET active = active - 1, changed_at = CURRENT_TIMESTAMP
        WHERE OLD.status = 'confirmed' AND event_id = OLD.event_id AND role = OLD.role;
    INSERT OR IGNORE INTO institution_counts (event_id, institution_key, active)
        SELECT OLD.event_id, lower(trim(OLD.institution)), 0
        WHERE OLD.status = 'confirmed' AND trim(OLD.institution) <> '';
    UPDATE institution_counts SET active = active - 1
        WHERE OLD.status = 'confirmed' AND event_id = OLD.event_id
        AND institution_key = lower(trim(OLD.institution));
    UPDATE events SET counts_version = counts_version + 1
        WHERE OLD.status = 'confirmed' AND id = OLD.event_id;

    INSERT OR IGNORE INTO role_counts (event_id, role, active, changed_at)
        SELECT NEW.event_id, NEW.role, 0, CURRENT_TIMESTAMP WHERE NEW.status = 'confirmed';
    UPDATE role_counts SET active = active + 1, changed_at = CURRENT_TIMESTAMP
        WHERE NEW.status = 'confirmed' AND event_id = NEW.event_id AND role = NEW.role;
    INSERT OR IGNORE INTO institution_counts (event_id, institution_key, active)
        SELECT NEW.event_id, lower(trim(NEW.institution)), 0
        WHERE NEW.status = 'confirmed' AND trim(NEW.institution) <> '';
    UPDATE institution_counts SET active = active + 1
        WHERE NEW.status = 'confirmed' AND event_id = NEW.event_id
        AND institution_key = lower(trim(NEW.institution));
    UPDATE events SET counts_version = counts_version + 1
        WHERE NEW.status = 'confirmed' AND id = NEW.event_id;
END""",
]
SQLITE_DROP = [
    'DROP TRIGGER IF EXISTS attendees_counts_insert',
    'DROP TRIGGER IF EXISTS attendees_counts_delete',
    'DROP TRIGGER IF EXISTS attendees_counts_update',
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
    'CREATE TRIGGER attendees_counts AFTER INSERT OR DELETE OR UPDATE OF status, role, institution, event_id ON attendees FOR EACH ROW EXECUTE FUNCTION attendees_counts_trigger()',
]
POSTGRESQL_DROP = [
    'DROP TRIGGER IF EXISTS attendees_counts ON attendees',
    'DROP FUNCTION IF EXISTS attendees_counts_trigger()',
    'DROP FUNCTION IF EXISTS attendees_counts_bump(integer, text, text, integer)',
]


def upgrade():
    op.create_table(
        "role_counts",
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("active", sa.Integer(), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["events.id"],
            name=op.f("fk_role_counts_event_id_events"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("event_id", "role", name=op.f("pk_role_counts")),
    )
    op.create_table(
        "institution_counts",
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("institution_key", sa.String(length=200), nullable=False),
        sa.Column("active", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["events.id"],
            name=op.f("fk_institution_counts_event_id_events"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("event_id", "institution_key", name=op.f("pk_institution_counts")),
    )
    op.add_column(
        "events",
        sa.Column("counts_version", sa.Integer(), nullable=False, server_default="0"),
    )
    # Count what is already there, then let the triggers keep it.
    op.execute(
        "INSERT INTO role_counts (event_id, role, active, changed_at)"
        " SELECT event_id, role, count(*), CURRENT_TIMESTAMP FROM attendees"
        " WHERE status = 'confirmed' GROUP BY event_id, role"
    )
    op.execute(
        "INSERT INTO institution_counts (event_id, institution_key, active)"
        " SELECT event_id, lower(trim(institution)), count(*) FROM attendees"
        " WHERE status = 'confirmed' AND trim(institution) <> ''"
        " GROUP BY event_id, lower(trim(institution))"
    )
    postgres = op.get_bind().dialect.name == "postgresql"
    for statement in POSTGRESQL_CREATE if postgres else SQLITE_CREATE:
        op.execute(statement)


def downgrade():
    postgres = op.get_bind().dialect.name == "postgresql"
    for statement in POSTGRESQL_DROP if postgres else SQLITE_DROP:
        op.execute(statement)
    op.drop_table("institution_counts")
    op.drop_table("role_counts")
    op.drop_column("events", "counts_version")
