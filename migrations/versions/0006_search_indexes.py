"""Search indexes: the attendee list in its default order, and trigrams on PostgreSQL.

The list reads one page in registration order and counts matches only up to a bound; both stop
early when the rows come in that order from an index, (event_id, created_at, id). On SQLite the
index also holds the folded search text, so a search reads its words from the index instead of
looking up each table row. On PostgreSQL a B-tree entry could not hold a long search text; a
trigram (pg_trgm) GIN index finds rare words instead, where a scan would read every row.

pg_trgm is installed in the public schema when it is missing (never in the current schema: a
schema dropped with CASCADE would take the extension, and other schemas' indexes, with it) and
the opclass is named with its schema. When it cannot be had (no privilege, not available) the
migration goes on without the trigram index: search works the same, only rare words are slower.
Downgrade leaves the extension, which other schemas may use.

Revision ID: 0006_search_indexes
Revises: 0005_change_notify
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_search_indexes"
down_revision = "0005_change_notify"
branch_labels = None
depends_on = None


def _trigram_schema(conn) -> str | None:
    """The schema of pg_trgm, installed in public if missing and allowed; None without it."""
    find = sa.text(
        "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace"
        " WHERE e.extname = 'pg_trgm'"
    )
    schema = conn.execute(find).scalar()
    if schema is None:
        try:
            with conn.begin_nested():
                conn.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public"))
        except sa.exc.DBAPIError:
            pass  # no privilege, not installed, or created meanwhile by another session
        schema = conn.execute(find).scalar()
    return schema


def upgrade():
    conn = op.get_bind()
    op.drop_index("ix_attendees_event_created", table_name="attendees")
    if conn.dialect.name == "postgresql":
        op.create_index(
            "ix_attendees_event_created", "attendees", ["event_id", "created_at", "id"]
        )
        schema = _trigram_schema(conn)
        if schema is not None:
            quoted = conn.dialect.identifier_preparer.quote_schema(schema)
            op.execute(
                "CREATE INDEX ix_attendees_search_trgm ON attendees"
                f" USING gin (search_text {quoted}.gin_trgm_ops)"
            )
    else:
        op.create_index(
            "ix_attendees_event_created_text",
            "attendees",
            ["event_id", "created_at", "id", "search_text"],
        )


def downgrade():
    conn = op.get_bind()
    if conn.dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_attendees_search_trgm")
        op.drop_index("ix_attendees_event_created", table_name="attendees")
    else:
        op.drop_index("ix_attendees_event_created_text", table_name="attendees")
    op.create_index("ix_attendees_event_created", "attendees", ["event_id", "created_at"])
