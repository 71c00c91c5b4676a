"""Invariants held by the database itself, whatever code writes the rows."""

from datetime import datetime

import pytest
from sqlalchemy.exc import DataError, IntegrityError, StatementError

from necreg.extensions import db
from necreg.models import Event


@pytest.mark.parametrize(
    "over",
    [
        {"role": "surgeon"},
        {"status": "pending"},
        {"first_name": "   "},
        {"last_name": "x" * 101},
        {"country": "USA"},
        {"badge_name": ""},
        {"email": "a@"},
    ],
)
def test_constraints_refuse_bad_rows(make_event, make_attendee, over):
    event = make_event()
    # PostgreSQL refuses an over-long value as a DataError, before its check constraint.
    # The factory commits in an app context of its own: leaving it rolls the session back.
    with pytest.raises((IntegrityError, DataError)):
        make_attendee(event, **over)


def test_one_registration_per_email_per_event_in_any_case(make_event, make_attendee):
    event = make_event()
    other = make_event(slug="other", is_current=False)
    make_attendee(event, email="zoe@example.org")
    make_attendee(other, email="zoe@example.org")  # another event: fine
    make_attendee(event, email="ZOE@example.org", status="cancelled")  # cancelled: fine
    with pytest.raises(IntegrityError):
        make_attendee(event, email="Zoe@Example.org", status="waitlisted")


def test_only_one_current_event(make_event):
    make_event()
    with pytest.raises(IntegrityError):
        make_event(slug="second", is_current=True)


def test_codes_are_unique(make_event, make_attendee):
    event = make_event()
    make_attendee(event, code="NEC-AAAAAA")
    with pytest.raises(IntegrityError):
        make_attendee(event, code="NEC-AAAAAA")


def test_naive_timestamps_are_refused(make_event):
    with pytest.raises(StatementError, match="naive datetime"):
        make_event(registration_opens_at=datetime(2025, 3, 1))  # noqa: DTZ001


def test_timestamps_come_back_timezone_aware(app, make_event):
    with app.app_context():
        event = make_event()
        db.session.expire_all()
        assert db.session.get(Event, event.id).created_at.tzinfo is not None
