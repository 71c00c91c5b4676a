"""Tell every instance when the attendees table changes (PostgreSQL): NOTIFY necreg_changes.

As 0005 does for events: a statement trigger on attendees notifies the channel, so each
instance can keep a rendered attendee list while no registration changes (organizer/views.py,
freshness.py). SQLite needs no schema for this. The SQL is frozen here as it was written in
necreg/freshness.py.

Revision ID: 0007_attendee_change_notify
Revises: 0006_search_indexes
"""

from alembic import op

revision = "0007_attendee_change_notify"
down_revision = "0006_search_indexes"
branch_labels = None
depends_on = None

POSTGRESQL_CREATE = (
    "CREATE TRIGGER attendees_notify_change AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE"
    " ON attendees FOR EACH STATEMENT EXECUTE FUNCTION events_notify_change()"
)
POSTGRESQL_DROP = "DROP TRIGGER IF EXISTS attendees_notify_change ON attendees"


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute(POSTGRESQL_CREATE)


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute(POSTGRESQL_DROP)
