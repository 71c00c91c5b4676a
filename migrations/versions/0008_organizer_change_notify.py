"""Tell every instance when the organizers table changes (PostgreSQL): NOTIFY necreg_changes.

As 0005 and 0007 do for events and attendees: each instance keeps the signed-in organizer's row
while nothing changes (auth.py), and a deactivation or a new password made anywhere must end
the session at once. SQLite needs no schema for this. The SQL is frozen here as it was written
in necreg/freshness.py.

Revision ID: 0008_organizer_change_notify
Revises: 0007_attendee_change_notify
"""

from alembic import op

revision = "0008_organizer_change_notify"
down_revision = "0007_attendee_change_notify"
branch_labels = None
depends_on = None

POSTGRESQL_CREATE = (
    "CREATE TRIGGER organizers_notify_change AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE"
    " ON organizers FOR EACH STATEMENT EXECUTE FUNCTION events_notify_change()"
)
POSTGRESQL_DROP = "DROP TRIGGER IF EXISTS organizers_notify_change ON organizers"


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute(POSTGRESQL_CREATE)


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute(POSTGRESQL_DROP)
