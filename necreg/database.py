"""What differs between the databases: engine settings (so SQLite is a sound embedded default),
row locks, and the indexes that exist on one of them only."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from select import POLLIN, POLLPRI, poll
from typing import Any

from flask import Flask
from sqlalchemy import Select, Table, Update, bindparam, event, inspect, make_url, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from .extensions import db
from .speed.sqlite_writers import wait_for_write_turn

#: How long a SQLite writer waits for another to finish before giving up, in milliseconds.
SQLITE_BUSY_TIMEOUT_MS = 15_000


def engine_options(config: dict[str, Any]) -> dict[str, Any]:
    url = make_url(str(config["DATABASE_URL"]))
    if url.get_backend_name() == "sqlite":
        return {}
    # With psycopg a connection in use is checked without a round trip (_check_out); other
    # drivers are pinged with a query before each use.
    return {"pool_pre_ping": url.get_driver_name() != "psycopg", "pool_size": 5, "max_overflow": 5}


#: A pooled connection idle for longer than this is pinged at checkout (see _check_out).
IDLE_PING_SECONDS = 30.0


def _checked_in(_dbapi_connection: Any, record: Any) -> None:
    record.info["idle_since"] = time.monotonic()


def _check_out(dialect: Any) -> Callable[[Any, Any, Any], None]:
    """The pool's check of a psycopg connection at each checkout: refuse one the server has
    closed or is closing, so the pool opens a new one (its reply to DisconnectionError).

    A pooled connection is idle and listens to nothing, so its socket has nothing to read
    unless the server has gone: a restart or a terminated backend sends an error and closes
    the socket (anything else the server might send an idle connection, a rare notice, costs
    only a new connection). Polling the socket costs microseconds where ``pool_pre_ping``
    sends a query and waits for its answer on every request (docs/performance.md, "Issue 11,
    stop 26"). A connection can also die without a word: a firewall or a NAT that forgets an
    idle connection drops it silently. So one idle for longer than IDLE_PING_SECONDS, which
    a busy worker's connections never are, is pinged as before.

    What the poll cannot see: a server that vanishes without a word within that time (a host
    lost, an address moved by a failover). Its connections are handed out; their first
    statement fails, that request gets a 503 (faults.py) and the pool takes new connections.
    ``pool_pre_ping`` would have found a reset and reconnected unseen; against silence it
    would have waited as long as the statement does."""

    def check(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        if dbapi_connection.closed:  # also when psycopg saw the connection break
            raise DisconnectionError("the connection to the database is closed")
        poller = poll()
        poller.register(dbapi_connection.fileno(), POLLIN | POLLPRI)
        if poller.poll(0):  # also POLLHUP and POLLERR, which poll reports unasked
            raise DisconnectionError("the database closed the connection")
        idle_since = record.info.pop("idle_since", None)  # None: a new connection
        if idle_since is not None and time.monotonic() - idle_since > IDLE_PING_SECONDS:
            try:
                dialect.do_ping(dbapi_connection)
            except dialect.loaded_dbapi.Error as exc:
                raise DisconnectionError("the database did not answer a ping") from exc

    return check


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers go on while one writer writes; several gunicorn workers share the file.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    # In WAL mode NORMAL syncs at checkpoints, not at every commit: the database is never
    # corrupted, but a power cut may lose the last commits before the checkpoint. FULL would
    # add an fsync to every registration, made while holding the single writer lock.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def sqlite_path(url: str, instance_path: str | Path) -> Path | None:
    """The file of a SQLite database URL (a relative one inside the instance folder, as
    Flask-SQLAlchemy takes it); None for another database or one in memory."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    name = parsed.database or ""
    if name in ("", ":memory:") or name.startswith("file:") or parsed.query.get("mode") == "memory":
        return None
    path = Path(name)
    return path if path.is_absolute() else Path(instance_path) / path


def create_private_sqlite_file(url: str, instance_path: str | Path) -> None:
    """Create the SQLite file (and its folder) readable by the site's user only, 0600 (0700),
    before SQLite would create it with the usual 0644; its -wal and -shm files take the same
    mode. An existing file is left as it is. Call before Flask-SQLAlchemy, which would create
    the instance folder 0755."""
    path = sqlite_path(url, instance_path)
    if path is None or path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # No O_EXCL or O_TRUNC: a file another worker made meanwhile is opened and left as it is.
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))


def init_app(app: Flask) -> None:
    with app.app_context():
        engine: Engine = db.engine
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    elif engine.dialect.driver == "psycopg" and not app.config["SQLALCHEMY_ENGINE_OPTIONS"].get(
        "pool_pre_ping"
    ):
        event.listen(engine, "checkin", _checked_in)
        event.listen(engine, "checkout", _check_out(engine.dialect))


def lock_for_update(session: Session, instance: Any) -> None:
    """Lock ``instance``'s row until the transaction ends, and give ``instance`` the row's
    values as they are now, read by the same statement (one round trip, not a lock and then
    a refresh). The row's primary key is one column.

    - PostgreSQL: ``SELECT ... FOR UPDATE``, so transactions that lock the same row, from any
      worker or machine, go one after another; once the lock is granted it reads the newest
      version of the row.
    - SQLite: an UPDATE that changes nothing, ``RETURNING`` the row, which makes this
      transaction the database's single writer (a plain SELECT would not start the write
      transaction). Writers that lock wait for their turn in line (speed/sqlite_writers.py).
    """
    state = inspect(instance)
    table = state.mapper.local_table
    params = {"locked_row": state.identity[0]}
    dialect = session.get_bind().dialect
    if dialect.name == "postgresql":
        statement = _locks(table).select_for_update
    else:
        wait_for_write_turn(session)
        if not dialect.update_returning:  # SQLite before 3.35
            session.execute(_locks(table).touch, params)
            session.refresh(instance)
            return
        statement = _locks(table).touch_returning
    row = session.execute(statement, params).one()._mapping
    for prop in state.mapper.column_attrs:
        set_committed_value(instance, prop.key, row[prop.columns[0]])


@dataclass(frozen=True)
class _RowLock:
    select_for_update: Select[Any]
    touch: Update
    touch_returning: Update


@cache
def _locks(table: Table) -> _RowLock:
    """The statements that lock one row of ``table``, built once (building one costs about as
    much as running it on SQLite)."""
    (key,) = table.primary_key.columns
    # Not named after a column: an UPDATE reserves those names (a table may have a "key").
    where = key == bindparam("locked_row")
    # Columns set to themselves: those with an onupdate (or it would stamp them), else the
    # first other column; never the key, whose writing makes SQLite check every row that
    # refers to it.
    kept = [c for c in table.c if c.onupdate is not None] or [
        next(c for c in table.c if not c.primary_key)
    ]
    touch = table.update().where(where).values({c: c for c in kept})
    return _RowLock(select(table).where(where).with_for_update(), touch, touch.returning(*table.c))


def include_object_for(dialect_name: str) -> Callable[..., bool]:
    """Alembic's ``include_object`` for comparing models and database: leaves out the indexes
    the models make only on another database (``Index(...).ddl_if(dialect=...)``)."""

    def include(obj: Any, _name: str, type_: str, reflected: bool, _compare_to: Any) -> bool:
        condition = getattr(obj, "_ddl_if", None)
        if type_ != "index" or reflected or condition is None or not condition.dialect:
            return True
        dialects = condition.dialect
        return dialect_name == dialects if isinstance(dialects, str) else dialect_name in dialects

    return include
