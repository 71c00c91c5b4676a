"""Tell every instance when the events table changes (PostgreSQL): NOTIFY necreg_changes.

A statement trigger on events notifies the channel on every change of the table, including
each bump of counts_version by the counting triggers; instances LISTEN and know without a
query whether the public counters may have changed (necreg/freshness.py). SQLite needs no
schema for this. The SQL is frozen here as it was written in necreg/freshness.py.

Revision ID: 0005_change_notify
Revises: 0004_search_text
"""

from alembic import op

revision = "0005_change_notify"
down_revision = "0004_search_text"
branch_labels = None
depends_on = None

POSTGRESQL_CREATE = [
    """
CREATE FUNCTION events_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('necreg_changes', '');
    RETURN NULL;
END $$
""",
    "CREATE TRIGGER events_notify_change AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE"
    " ON events FOR EACH STATEMENT EXECUTE FUNCTION events_notify_change()",
]
POSTGRESQL_DROP = [
    "DROP TRIGGER IF EXISTS events_notify_change ON events",
    "DROP FUNCTION IF EXISTS events_notify_change()",
]


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        for statement in POSTGRESQL_CREATE:
            op.execute(statement)


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        for statement in POSTGRESQL_DROP:
            op.execute(statement)
