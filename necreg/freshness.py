"""Knowing without a query that the database has not changed since a page was made.

The landing page and /api/stats are polled by every open browser, and they depend on one row
(the current event: its ``updated_at`` and the ``counts_version`` the counting triggers bump).
Reading that row costs a database round trip per request; a *watch* answers the same question
for almost nothing:

- SQLite: ``PRAGMA data_version`` on a read-only connection of the process's own, which
  changes whenever any other connection (another worker, the CLI) commits to the file.
- PostgreSQL: a connection that LISTENs on ``necreg_changes``. Statement triggers on
  ``events``, ``attendees`` and ``organizers`` notify that channel on every change of those
  tables, which includes each bump of ``counts_version``; NOTIFY is delivered when the change
  commits, to every instance. Each request reads what has arrived on the socket without
  waiting.

Commits made in this process count too (``after_commit``), so a request sees its own
changes at once. A watch that cannot tell (not connected yet, connection lost, an in-memory
database) answers None, and the caller reads the row as before.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from sqlalchemy import DDL, Connection, Engine, event
from sqlalchemy.orm import Session

from .extensions import db
from .models import Event

log = logging.getLogger(__name__)
T = TypeVar("T")

CHANNEL = "necreg_changes"

#: The same SQL is frozen in migration 0005; a change here needs a new migration.
POSTGRESQL_CREATE = [
    f"""
CREATE FUNCTION events_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('{CHANNEL}', '');
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
#: Attendee changes notify the same channel (the organizer list is kept while none happens).
#: Frozen in migration 0007.
POSTGRESQL_CREATE_ATTENDEES = (
    "CREATE TRIGGER attendees_notify_change AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE"
    " ON attendees FOR EACH STATEMENT EXECUTE FUNCTION events_notify_change()"
)
#: And organizer changes (the signed-in organizer is kept while none happens). Migration 0008.
POSTGRESQL_CREATE_ORGANIZERS = (
    "CREATE TRIGGER organizers_notify_change AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE"
    " ON organizers FOR EACH STATEMENT EXECUTE FUNCTION events_notify_change()"
)

#: Bumped by every commit made in this process (any session, any app).
_local_commits = 0


@event.listens_for(Session, "after_commit")
def _count_commit(_session: Session) -> None:
    global _local_commits
    _local_commits += 1


@event.listens_for(Event.__table__, "after_create")
def _after_create(_table, connection: Connection, **_kw) -> None:
    if connection.dialect.name == "postgresql":
        for statement in POSTGRESQL_CREATE:
            connection.execute(DDL(statement))


# Once every table (and the events trigger's function) exists, whatever order they came in;
# only on the tables this create_all made.
@event.listens_for(db.metadata, "after_create")
def _after_create_all(_metadata, connection: Connection, tables=(), **_kw) -> None:
    if connection.dialect.name == "postgresql":
        made = {table.name for table in tables}
        if "attendees" in made:
            connection.execute(DDL(POSTGRESQL_CREATE_ATTENDEES))
        if "organizers" in made:
            connection.execute(DDL(POSTGRESQL_CREATE_ORGANIZERS))


class Watch:
    """Says whether the database may have changed: ``token()`` differs after any change."""

    #: How long to wait before connecting again after a failure, in seconds.
    RETRY_SECONDS = 1.0

    def __init__(self, connect: Callable[[], Any]):
        self._connect = connect
        self._lock = threading.Lock()
        self._conn: Any = None
        self._pid = 0
        self._retry_at = 0.0
        self._generation = 0
        self._memo = KeyedMemo(size=8)

    def unless_changed(self, name: str, compute: Callable[[], T]) -> T:
        """``compute()``, or what it gave last time if the database has not changed since."""
        return self._memo.get(self, name, compute)

    def token(self) -> Hashable | None:
        """A value that changes whenever the database may have; None when it cannot tell."""
        with self._lock:
            if self._pid != os.getpid():  # a forked worker never uses its parent's connection
                self._conn, self._pid = None, os.getpid()
            if self._conn is None and not self._open():
                return None
            try:
                return (_local_commits, self._poll())
            except Exception:  # noqa: BLE001 - any failure means "cannot tell" until reconnected
                log.warning("change watch lost its connection; reading the database instead")
                self._drop()
                self._retry_at = time.monotonic() + self.RETRY_SECONDS  # the database may restart
                return None

    def close(self) -> None:
        with self._lock:
            if self._pid == os.getpid():
                self._drop()

    def _open(self) -> bool:
        if time.monotonic() < self._retry_at:
            return False
        try:
            self._conn = self._connect()
            self._start()
        except Exception:  # noqa: BLE001 - the database may be down; the caller reads it later
            log.warning("change watch could not connect; reading the database instead")
            self._drop()
            self._retry_at = time.monotonic() + self.RETRY_SECONDS
            return False
        # Whatever happened before now is unknown to this connection: start a new generation.
        self._generation += 1
        return True

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):  # closing a broken connection may fail too
                conn.close()

    def _start(self) -> None:
        """Make the new connection ready to report changes."""

    def _poll(self) -> Hashable:
        raise NotImplementedError


class SQLiteWatch(Watch):
    def _poll(self) -> Hashable:
        (version,) = self._conn.execute("PRAGMA data_version").fetchone()
        return (self._generation, version)


class PostgreSQLWatch(Watch):
    def _start(self) -> None:
        self._conn.autocommit = True
        self._conn.execute(f"LISTEN {CHANNEL}")

    def _poll(self) -> Hashable:
        pgconn = self._conn.pgconn
        # What has arrived on the socket, without waiting. Twice: a server that ends the
        # connection sends a last message and closes, and libpq sees the close (and raises)
        # only on a read after the one that took the message.
        pgconn.consume_input()
        pgconn.consume_input()
        while pgconn.notifies() is not None:
            self._generation += 1
        if pgconn.status != 0:  # CONNECTION_OK
            raise ConnectionError("listening connection is closed")
        return self._generation


def watch_for(engine: Engine) -> Watch | None:
    """A watch on ``engine``'s database, or None where it cannot be watched."""
    url = engine.url
    if engine.dialect.name == "sqlite":
        path = url.database
        if not path or path == ":memory:" or path.startswith("file:"):
            return None

        def connect_sqlite() -> sqlite3.Connection:
            uri = f"file:{os.path.abspath(path)}?mode=ro"
            return sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None)

        return SQLiteWatch(connect_sqlite)
    if engine.dialect.name == "postgresql" and engine.dialect.driver == "psycopg":
        cargs, cparams = engine.dialect.create_connect_args(url)

        def connect_postgresql() -> Any:
            return engine.dialect.loaded_dbapi.connect(*cargs, **cparams)

        return PostgreSQLWatch(connect_postgresql)
    return None


class KeyedMemo:
    """Values computed from the database for many keys (say, one per search), each kept while
    ``watch`` sees no change; the ``size`` most recently used are kept. Without a watch that
    can tell, every call computes."""

    def __init__(self, size: int):
        self._size = size
        self._lock = threading.Lock()
        self._items: OrderedDict[Hashable, tuple[Hashable, Any]] = OrderedDict()
        self._pid = os.getpid()

    def get(self, watch: Watch | None, key: Hashable, compute: Callable[[], T]) -> T:
        # Taken before computing, so a change made meanwhile is seen next time.
        token = watch.token() if watch is not None else None
        if token is None:
            return compute()
        with self._lock:
            if self._pid != os.getpid():  # a forked worker starts empty
                self._items.clear()
                self._pid = os.getpid()
            hit = self._items.get(key)
            if hit is not None and hit[0] == token:
                self._items.move_to_end(key)
                return hit[1]
        value = compute()
        with self._lock:
            self._items[key] = (token, value)
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return value
