"""SQLite's writers wait in line for their turn, instead of polling for the database.

SQLite has one writer at a time, and a connection that finds the database locked polls: its
busy handler sleeps 1, 2, 5, 10 ... up to 100 ms between tries. Under a burst of registrations
from several worker processes, the workers spent most of their time asleep while the database
was free. Writers that take a row lock (database.lock_for_update: the event lock of
registration.py) first wait here for an exclusive ``flock`` on ``<database>-writer.lock``,
which the kernel hands to the next waiter as soon as it is released: when the transaction
ends. SQLite's own locking still decides who writes; the turn only makes the waiting short.
Writers that do not take a turn (the mail worker, check-in) still use the busy handler.
"""

from __future__ import annotations

import fcntl
import io
import os
import threading
import weakref

from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

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

    The turn is held until the session's transaction ends (committed or rolled back).
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
