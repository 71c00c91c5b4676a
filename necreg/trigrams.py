"""PostgreSQL's pg_trgm, which lets a GIN index find rare words for ``LIKE '%word%'``."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

_FIND = text(
    "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace"
    " WHERE e.extname = 'pg_trgm'"
)
_INSTALL = "CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public"


def trigram_schema(connection: Connection) -> str | None:
    """The schema of pg_trgm, installed in ``public`` first if it is missing and the role may;
    None without it. Never installed in the current schema: a schema dropped with CASCADE
    (tests make one per test) would take the extension and other schemas' indexes with it."""
    schema = connection.execute(_FIND).scalar()
    if schema is None:
        try:
            with connection.begin_nested():
                connection.execute(text(_INSTALL))
        except DBAPIError:
            pass  # no privilege, not available, or just created by another session
        schema = connection.execute(_FIND).scalar()
    return schema
