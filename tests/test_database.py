"""Engine settings: SQLite's pragmas, row locks, and SQLite's writers waiting in line for the
event lock."""

# ruff: noqa: F811 - pytest fixtures imported from organizer_fixtures are used as arguments

from __future__ import annotations

import fcntl
import gc
import os
import signal
import warnings
from collections.abc import Callable

import pytest
from organizer_fixtures import make_organizer  # noqa: F401 - a fixture
from sqlalchemy import make_url, text, update
from sqlalchemy.orm import Session

from conftest import count_queries, fresh
from necreg.database import lock_for_update
from necreg.extensions import db
from necreg.models import Event, Organizer
from necreg.registration import DuplicateRegistration, Registrant, lock_event, register
from necreg.speed.sqlite_writers import wait_for_write_turn


@pytest.fixture
def sqlite_only(is_postgres: bool) -> None:
    if is_postgres:
        pytest.skip("SQLite only")


@pytest.fixture
def turn_is_free(database_url: str, sqlite_only) -> Callable[[], bool]:
    """Whether another process could take the writers' turn now."""
    path = f"{make_url(database_url).database}-writer.lock"

    def free() -> bool:
        fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        finally:
            os.close(fd)  # and with it the lock, if taken
        return True

    return free


def person(n: int) -> Registrant:
    return Registrant(
        first_name=f"P{n}", last_name="Test", email=f"p{n}@example.org", role="family", country="US"
    )


def test_sqlite_is_in_wal_mode_and_syncs_at_checkpoints(app, sqlite_only):
    with app.app_context(), db.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA synchronous")).scalar() == 1  # NORMAL
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 15_000


def test_a_writer_holds_its_turn_until_its_transaction_ends(app, make_event, turn_is_free):
    with app.app_context():
        event = make_event()
        assert turn_is_free()
        register(db.session, event, person(1), code_prefix="NEC")
        assert not turn_is_free()  # the next writer waits in the kernel's queue, not asleep
        db.session.commit()
        assert turn_is_free()
        with pytest.raises(DuplicateRegistration):
            register(db.session, event, person(1), code_prefix="NEC")
        assert not turn_is_free()
        db.session.rollback()
        assert turn_is_free()


def test_a_transaction_that_wrote_already_does_not_wait_for_a_turn(app, make_event, turn_is_free):
    """It may hold SQLite's lock, which the holder of the turn may be waiting for."""
    with app.app_context():
        event = make_event()
        db.session.execute(update(Event).values(sessions=41))
        lock_event(db.session, event)
        assert turn_is_free()
        db.session.rollback()


def test_a_second_session_of_the_same_thread_does_not_wait_for_the_first(
    app, make_event, turn_is_free
):
    """The first cannot end while the thread waits: waiting would never end."""
    with app.app_context():
        event = make_event()
        register(db.session, event, person(1), code_prefix="NEC")
        previous = signal.signal(signal.SIGALRM, lambda *_: pytest.fail("waited for its own turn"))
        signal.alarm(10)
        try:
            with Session(db.engine) as other:
                wait_for_write_turn(other)  # returns at once; SQLite's busy timeout takes over
        finally:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, previous)
        assert not turn_is_free()  # still the first session's
        db.session.rollback()
        assert turn_is_free()


def test_without_a_lock_file_writers_still_register(app, make_event, sqlite_only, monkeypatch):
    """A lock file that cannot be made (e.g. a read-only folder) leaves the waiting to SQLite."""

    def refuse(*_args, **_kwargs):
        raise PermissionError("read-only")

    monkeypatch.setattr("necreg.speed.sqlite_writers.os.open", refuse)
    with app.app_context():
        event = make_event()
        register(db.session, event, person(1), code_prefix="NEC")
        db.session.commit()
        assert db.session.execute(text("SELECT count(*) FROM attendees")).scalar() == 1


def test_a_session_dropped_in_its_transaction_frees_the_turn(app, make_event, turn_is_free):
    """As SQLite's own lock is freed with a connection that is dropped."""
    event_id = make_event().id
    with app.app_context():
        session = Session(db.engine)
        register(session, session.get(Event, event_id), person(1), code_prefix="NEC")
        assert not turn_is_free()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # about the connection and the file left open
            del session
            gc.collect()
        assert turn_is_free()


def test_any_row_is_locked_and_read_again_in_one_statement(app, make_organizer):
    """database.lock_for_update on a table without an onupdate column (organizers): the row
    as another connection left it, nothing changed by the lock itself."""
    organizer = make_organizer()
    with app.app_context():
        mine = db.session.get(Organizer, organizer.id)
        assert mine.role == "admin"  # loaded into this session
        with db.engine.begin() as other:
            other.execute(update(Organizer).values(role="staff"))
        with count_queries(app) as statements:
            lock_for_update(db.session, mine)
        assert len(statements) == 1
        assert (mine.role, mine.email) == ("staff", organizer.email)
        assert not db.session.dirty
        db.session.commit()
    assert fresh(app, organizer).email == organizer.email
