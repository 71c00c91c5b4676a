"""Engine settings per database, so SQLite behaves as a sound embedded default."""

from __future__ import annotations

import fcntl
import io
import os
import threading
import weakref
from collections.abc import Callable
from typing import Any

from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, SessionTransaction

from .extensions import db
from .freshness import Watch, watch_for

#: How long a SQLite writer waits for another to finish before giving up, in milliseconds.
SQLITE_BUSY_TIMEOUT_MS = 15_000


def engine_options(config: dict[str, Any]) -> dict[str, Any]:
    if str(config["DATABASE_URL"]).startswith("sqlite"):
        return {}
    return {"pool_pre_ping": True, "pool_size": 5, "max_overflow": 5}


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


#: Session.info key of the writer turn a session holds (the locked file).
_WRITER_TURN = "necreg.sqlite_writer_turn"
_thread_turns = threading.local()


def _turns_of_this_thread() -> weakref.WeakSet[io.FileIO]:
    """The writers' turns that sessions of this thread hold (gone with a dropped session)."""
    if not hasattr(_thread_turns, "held"):
        _thread_turns.held = weakref.WeakSet()
    return _thread_turns.held


def wait_for_write_turn(session: Session) -> None:
    """On SQLite, wait in line for the right to write, before writing; elsewhere do nothing.

    SQLite has one writer at a time, and a connection that finds the database locked polls:
    its busy handler sleeps 1, 2, 5, 10 ... up to 100 ms between tries. Under a burst of
    registrations from several worker processes, the workers spent most of their time asleep
    while the database was free. Here writers that take the event lock (registration.py)
    first wait for an exclusive ``flock`` on a file beside the database, which the kernel
    hands to the next waiter as soon as it is released: after the transaction ends. SQLite's
    own locking still decides who writes; the turn only makes the waiting short. Writers
    that do not take a turn (the mail worker, check-in) still use the busy handler.
    """
    bind = session.get_bind()
    path = bind.url.database
    if bind.dialect.name != "sqlite" or not path or path == ":memory:":
        return
    if _WRITER_TURN in session.info:
        return
    if _turns_of_this_thread():
        # Another session of this thread holds the turn and cannot end while we wait for it:
        # leave the waiting to SQLite, whose busy timeout then ends it with an error.
        return
    dbapi_connection = session.connection().connection.dbapi_connection
    if dbapi_connection is not None and dbapi_connection.in_transaction:
        # This transaction has written already, so it may hold SQLite's lock: waiting for a
        # turn now could wait for someone who waits for us (until the busy timeout).
        return
    try:
        # Read-only is enough for flock, so another account that can read it can queue too.
        fd = os.open(f"{path}-writer.lock", os.O_RDONLY | os.O_CREAT, 0o644)
    except OSError:
        return  # e.g. a read-only directory: SQLite's busy handler still serialises writers
    # A file object, not a bare descriptor: should the session be dropped without ending its
    # transaction, collecting it closes the file, and so frees the turn, as SQLite's lock is
    # freed with the connection.
    turn = os.fdopen(fd, "rb", buffering=0)
    try:
        fcntl.flock(turn, fcntl.LOCK_EX)
    except BaseException:
        turn.close()
        raise
    session.info[_WRITER_TURN] = turn
    _turns_of_this_thread().add(turn)


@event.listens_for(Session, "after_transaction_end")
def _end_write_turn(session: Session, transaction: SessionTransaction) -> None:
    """The transaction is committed or rolled back: let the next writer go (closing the file
    releases the lock)."""
    if transaction.parent is None and _WRITER_TURN in session.info:
        turn = session.info.pop(_WRITER_TURN)
        turn.close()
        _turns_of_this_thread().discard(turn)


def init_app(app: Flask) -> None:
    with app.app_context():
        engine: Engine = db.engine
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _sqlite_pragmas)
        watch = watch_for(engine) if app.config["CHANGE_WATCH"] else None
        if watch is not None:
            app.extensions["necreg.watch"] = watch
            # Disposing of the engine (tests, shutdown) closes the watch's connection too.
            event.listen(engine, "engine_disposed", lambda _engine: watch.close())


def change_watch(app: Flask) -> Watch | None:
    """The app's watch on its database (freshness.py), if it can be watched."""
    return app.extensions.get("necreg.watch")


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
