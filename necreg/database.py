"""Engine settings per database, so SQLite behaves as a sound embedded default."""

from __future__ import annotations

import fcntl
import os
import threading
from typing import Any

from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, SessionTransaction

from .extensions import db

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


#: Session.info key of the writer turn a session holds (an open file descriptor).
_WRITER_TURN = "necreg.sqlite_writer_turn"
#: How many writer turns the sessions of each thread hold.
_thread_turns = threading.local()


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
    if getattr(_thread_turns, "held", 0):
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
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
    except BaseException:
        os.close(fd)
        raise
    session.info[_WRITER_TURN] = fd
    _thread_turns.held = getattr(_thread_turns, "held", 0) + 1


@event.listens_for(Session, "after_transaction_end")
def _end_write_turn(session: Session, transaction: SessionTransaction) -> None:
    """The transaction is committed or rolled back: let the next writer go (closing the file
    releases the lock)."""
    if transaction.parent is None and _WRITER_TURN in session.info:
        os.close(session.info.pop(_WRITER_TURN))
        _thread_turns.held -= 1


def init_app(app: Flask) -> None:
    with app.app_context():
        engine: Engine = db.engine
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _sqlite_pragmas)
