"""The change watch: knowing without a query whether the database may have changed.

Each worker process has one watch on its database. ``token()`` answers a value that changes
whenever the database may have changed, or None when the watch cannot tell:

- SQLite: ``PRAGMA data_version`` on a read-only connection of the process's own, which
  changes whenever any other connection (another worker, the CLI) commits to the file.
- PostgreSQL: a connection that LISTENs on ``necreg_changes``. Statement triggers on
  ``events``, ``attendees`` and ``organizers`` notify that channel on every change of those
  tables (their DDL is in ``necreg/triggers.py``); NOTIFY is delivered when the change commits,
  to every instance. Each request reads what has arrived on the socket without waiting.

Commits made in this process count too (``after_commit``), so a request sees its own
changes at once. A watch that cannot tell (not connected yet, connection lost, an in-memory
database) answers None, and what is kept (memo.py) is built afresh.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Hashable
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.orm import Session

from ..metrics import WATCH_RECONNECTS
from ..triggers import NOTIFY_CHANNEL

log = logging.getLogger(__name__)

#: Bumped by every commit made in this process (any session, any app).
_local_commits = 0


@event.listens_for(Session, "after_commit")
def _count_commit(_session: Session) -> None:
    global _local_commits
    _local_commits += 1


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
        #: Whether this process's watch has been connected before: the next connection is
        #: then a reconnection (counted in metrics.WATCH_RECONNECTS).
        self._connected_before = False

    def token(self) -> Hashable | None:
        """A value that changes whenever the database may have; None when it cannot tell."""
        with self._lock:
            if self._pid != os.getpid():  # a forked worker never uses its parent's connection
                self._conn, self._pid = None, os.getpid()
                self._connected_before = False
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
        if self._connected_before:
            WATCH_RECONNECTS.inc()
        self._connected_before = True
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
        self._conn.execute(f"LISTEN {NOTIFY_CHANNEL}")

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
