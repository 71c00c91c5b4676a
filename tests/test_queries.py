"""No page runs a query per row: the number of SQL statements does not grow with the data."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from conftest import count_queries, csrf_token, registration_form
from necreg.extensions import db
from necreg.models import Attendee, Event
from necreg.registration import lock_event


def without_token(page: bytes) -> bytes:
    """The page without its CSRF token (signed with the time, so it changes every second) and
    the registration form's stamp (the moment it was shown)."""
    page = re.sub(rb'name="csrf_token" type="hidden" value="[^"]+"', b"", page)
    return re.sub(rb'name="form_shown" value="[^"]+"', b"", page)


def queries_for(client, path: str) -> int:
    with count_queries(client.application) as statements:
        response = client.get(path)
    assert response.status_code == 200, path
    return len(statements)


@pytest.mark.parametrize("path", ["/", "/api/stats", "/register", "/privacy"])
def test_public_pages_run_a_fixed_small_number_of_queries(client, make_event, make_attendee, path):
    event = make_event()
    client.get(path)  # what is kept per version of the event (its questions) is read once
    for i in range(3):
        make_attendee(event, institution=f"I{i}")
    few = queries_for(client, path)
    for i in range(40):
        make_attendee(event, institution=f"J{i}", role=["family", "scientist"][i % 2])
    assert queries_for(client, path) == few
    assert few <= 5, path


@pytest.mark.parametrize("path", ["/", "/api/stats", "/register"])
def test_unchanged_counters_cost_no_query(client, make_event, make_attendee, path):
    """The landing page and /api/stats reuse what they computed while nothing changed, and
    the database's watch (speed/watch.py) says so without a query."""
    event = make_event()
    make_attendee(event)
    first = without_token(client.get(path).get_data())
    assert queries_for(client, path) == 0
    assert without_token(client.get(path).get_data()) == first
    make_attendee(event, institution="New Institute")  # a count changes: computed afresh
    assert queries_for(client, path) >= 1
    assert b"New Institute" not in first


def test_registration_runs_a_fixed_number_of_queries(app, client, make_event, make_attendee):
    event = make_event(capacity=1000)
    for _ in range(30):
        make_attendee(event)
    counts = []
    for n in range(2):
        form = registration_form(csrf_token=csrf_token(client), email=f"q{n}@example.org")
        with count_queries(app) as statements:
            assert client.post("/register", data=form).status_code == 303
        counts.append(len(statements))
    assert counts[0] == counts[1]
    # The current event; on SQLite the lock, which reads the event again, and the attendee's
    # INSERT between SAVEPOINT and RELEASE (a taken code or e-mail undoes only the try); its
    # message. Nothing is read back after the commit.
    assert counts[0] <= 7


def test_the_form_registers_without_a_savepoint_on_postgresql(app, client, make_event, is_postgres):
    """The form's transaction has only read before the attendee's INSERT, so on PostgreSQL
    the first try needs no savepoint: a refusal rolls back the transaction itself
    (registration._add_with_free_codes). SQLite's single writer locks first, and keeps it."""
    make_event(capacity=1)
    form = registration_form(csrf_token=csrf_token(client), email="plain@example.org")
    with count_queries(app) as statements:
        assert client.post("/register", data=form).status_code == 303
    savepoints = [s for s in statements if "SAVEPOINT" in s.upper()]
    assert (savepoints == []) is is_postgres, statements
    # Refused first tries: a duplicate stores nothing and says so; with the event full, the
    # next person waits in line.
    again = registration_form(csrf_token=csrf_token(client), email="PLAIN@example.org")
    assert client.post("/register", data=again).status_code == 409
    late = registration_form(csrf_token=csrf_token(client), email="late@example.org")
    assert client.post("/register", data=late).status_code == 303
    with app.app_context():
        rows = db.session.execute(select(Attendee.email, Attendee.status).order_by(Attendee.id))
        assert [tuple(row) for row in rows] == [
            ("plain@example.org", "confirmed"),
            ("late@example.org", "waitlisted"),
        ]


def test_the_event_lock_reads_the_event_again_in_the_same_statement(app, make_event):
    with app.app_context():
        event = make_event(capacity=5)
        assert event.capacity == 5  # loaded into this session
        # An organizer lowers the cap on another connection after this session read the event.
        with db.engine.begin() as other:
            other.execute(Event.__table__.update().values(capacity=1))
        with count_queries(app) as statements:
            lock_event(db.session, event)
        assert len(statements) == 1
        assert event.capacity == 1
        assert not db.session.dirty  # read, not changed
        db.session.rollback()


def test_confirmation_page(client, make_event, make_attendee):
    event = make_event(capacity=1)
    make_attendee(event)
    waiting = make_attendee(event, status="waitlisted")
    client.get(f"/registration/{waiting.token}")  # the event's questions are read once
    # The attendee, the event, the answers, the place in line and the party.
    assert queries_for(client, f"/registration/{waiting.token}") <= 5


def test_registration_works_without_returning(app, client, make_event, monkeypatch, is_postgres):
    """SQLite before 3.35 has no RETURNING: the lock reads the event with a second statement
    and the new row's id comes from the cursor."""
    if is_postgres:
        pytest.skip("PostgreSQL always has RETURNING")
    make_event(capacity=1)
    with app.app_context():
        dialect = db.engine.dialect
    monkeypatch.setattr(dialect, "insert_returning", False)
    monkeypatch.setattr(dialect, "update_returning", False)
    for n, expected in [(1, 303), (2, 303), (1, 409)]:
        form = registration_form(csrf_token=csrf_token(client), email=f"r{n}@example.org")
        assert client.post("/register", data=form).status_code == expected
    with app.app_context():
        statuses = db.session.execute(
            select(Attendee.email, Attendee.status).order_by(Attendee.id)
        ).all()
    assert statuses == [("r1@example.org", "confirmed"), ("r2@example.org", "waitlisted")]
