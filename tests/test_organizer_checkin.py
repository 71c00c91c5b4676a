"""Check-in at the door: codes as typed or scanned, JSON for the script, plain POST without."""

# ruff: noqa: F811 - pytest fixtures imported from organizer_fixtures are used as arguments

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from organizer_fixtures import (  # noqa: F401
    STAFF_EMAIL,
    admin_client,
    make_organizer,
    page_csrf,
    staff_client,
)
from sqlalchemy import select

from conftest import fresh
from necreg.checkin import ALREADY, CHECKED_IN, check_in, extract_code, undo_check_in
from necreg.extensions import db
from necreg.models import AttendeeChange, CheckInScan

JSON = {"Accept": "application/json"}


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ("NEC-7K3QXA", "NEC-7K3QXA"),
        ("nec-7k3qxa", "NEC-7K3QXA"),
        ("  NEC 7K3 QXA\n", "NEC-7K3QXA"),
        ("NEC7K3QXA", "NEC-7K3QXA"),
        ("https://nec.example/registration/x?code=NEC-7K3QXA&y=1", "NEC-7K3QXA"),
        ("Badge: NEC-7K3QXA (Zoë)", "NEC-7K3QXA"),
        ("NEC-7K3QXAB", None),  # one character too many
        ("NEC-7K3QX", None),
        ("NEC-0O1IL5", None),  # letters that codes never use
        ("", None),
        ("hello", None),
    ],
)
def test_extract_code(payload, expected):
    assert extract_code(payload, "NEC") == expected


def _scan(client, code, **kw):
    token = page_csrf(client, "/organizer/check-in")
    return client.post("/organizer/check-in", data={"code": code, "csrf_token": token}, **kw)


@pytest.fixture
def event(make_event):
    return make_event()


def test_page_has_one_autofocused_input_and_the_script(staff_client, event):
    page = staff_client.get("/organizer/check-in").text
    assert page.count("autofocus") == 1
    assert 'name="code"' in page
    assert "js/organizer-checkin.js" in page
    assert "<script>" not in page
    # The script builds its undo form from this address, with the attendee's id for the 0.
    assert 'data-undo-url="/organizer/attendees/0/undo-check-in"' in page


def test_staff_checks_in_with_json_and_second_scan_says_when(
    app, staff_client, event, make_attendee
):
    zoe = make_attendee(event, first_name="Zoë", badge_name="Dr Zoë", role="scientist")
    response = _scan(staff_client, zoe.code.lower().replace("-", " "), headers=JSON)
    assert response.status_code == 200
    data = response.get_json()
    assert data["outcome"] == "checked_in"
    assert data["attendee"]["badge_name"] == "Dr Zoë"
    assert data["attendee"]["role_label"] == "Scientist"
    zoe = fresh(app, zoe)
    assert zoe.checked_in_at is not None
    again = _scan(staff_client, zoe.code, headers=JSON)
    assert again.status_code == 409
    assert again.get_json()["outcome"] == "already"
    assert f"already checked in at {zoe.checked_in_at:%H:%M}" in again.get_json()["message"]
    with app.app_context():
        change = db.session.execute(select(AttendeeChange)).scalar_one()
        assert change.action == "check_in"
        assert change.organizer.email == STAFF_EMAIL


def test_without_javascript_post_redirect_get(staff_client, event, make_attendee):
    zoe = make_attendee(event, badge_name="Dr Zoë", role="family")
    response = _scan(staff_client, zoe.code)
    assert response.status_code == 303
    assert response.location.endswith("/organizer/check-in")
    page = staff_client.get(response.location).text
    assert "Checked in" in page and "Dr Zoë" in page and "Patient-family" in page
    # The answer is shown once; a reload shows the empty form.
    assert "Dr Zoë" not in staff_client.get("/organizer/check-in").text
    page = staff_client.get(_scan(staff_client, zoe.code).location).text
    assert "Already checked in" in page


@pytest.mark.parametrize(
    ("status", "outcome", "http", "words"),
    [
        ("cancelled", "cancelled", 409, "is cancelled"),
        ("waitlisted", "waitlisted", 409, "waiting list"),
    ],
)
def test_cancelled_or_waitlisted_code_is_refused(
    app, staff_client, event, make_attendee, status, outcome, http, words
):
    person = make_attendee(event, status=status)
    response = _scan(staff_client, person.code, headers=JSON)
    assert response.status_code == http
    assert response.get_json()["outcome"] == outcome
    assert words in response.get_json()["message"]
    assert fresh(app, person).checked_in_at is None


def test_unknown_and_garbage_codes(app, staff_client, event, make_attendee):
    response = _scan(staff_client, "NEC-ZZZZZZ", headers=JSON)
    assert response.status_code == 404
    assert response.get_json()["message"].startswith("Unknown code NEC-ZZZZZZ")
    response = _scan(staff_client, "just some text", headers=JSON)
    assert response.status_code == 400
    assert "No attendee code found" in response.get_json()["message"]
    page = staff_client.get(_scan(staff_client, "NEC-ZZZZZZ").location).text
    assert "Unknown code" in page
    with app.app_context():
        assert db.session.execute(select(AttendeeChange)).first() is None


def test_code_of_another_event_is_unknown(staff_client, event, make_event, make_attendee):
    other = make_event(slug="nec-2024", is_current=False)
    person = make_attendee(other)
    assert _scan(staff_client, person.code, headers=JSON).status_code == 404


def test_staff_can_undo_a_check_in_from_the_check_in_page(app, staff_client, event, make_attendee):
    person = make_attendee(event)
    _scan(staff_client, person.code)
    token = page_csrf(staff_client, "/organizer/check-in")
    response = staff_client.post(
        f"/organizer/attendees/{person.id}/undo-check-in",
        data={"csrf_token": token, "back": "check-in"},
    )
    assert response.status_code == 303
    assert response.location.endswith("/organizer/check-in")
    assert fresh(app, person).checked_in_at is None
    with app.app_context():
        actions = db.session.execute(select(AttendeeChange.action).order_by(AttendeeChange.id))
        assert actions.scalars().all() == ["check_in", "undo_check_in"]


def test_anonymous_json_scan_gets_401(app, client, event, make_attendee):
    person = make_attendee(event)
    response = client.post("/organizer/check-in", data={"code": person.code}, headers=JSON)
    # CSRF is checked first for a POST: still no check-in and no data.
    assert response.status_code in {400, 401}
    assert fresh(app, person).checked_in_at is None


def test_domain_check_in_is_once_only(app, event, make_attendee):
    with app.app_context():
        person = make_attendee(event)
        first_time = datetime(2025, 9, 7, 9, 12, tzinfo=UTC)
        first = check_in(db.session, event, person.code, prefix="NEC", organizer_id=None,
                         now=first_time)  # fmt: skip
        second = check_in(db.session, event, person.code, prefix="NEC", organizer_id=None)
        assert (first.outcome, second.outcome) == (CHECKED_IN, ALREADY)
        assert "already checked in at 09:12" in second.message
        assert undo_check_in(db.session, person, organizer_id=None) is True
        assert undo_check_in(db.session, person, organizer_id=None) is False


def test_times_are_shown_in_the_display_timezone(app, event, make_attendee):
    from zoneinfo import ZoneInfo

    with app.app_context():
        person = make_attendee(event)
        at = datetime(2025, 9, 7, 14, 12, tzinfo=UTC)
        check_in(db.session, event, person.code, prefix="NEC", organizer_id=None, now=at)
        again = check_in(db.session, event, person.code, prefix="NEC", organizer_id=None,
                         tz=ZoneInfo("America/Chicago"))  # fmt: skip
        assert again.message.endswith("already checked in at 09:12 CDT.")


def test_the_page_after_a_scan_shows_only_the_organizers_own_scans(
    app, staff_client, admin_client, event, make_attendee
):
    """The session keeps the id of a scan in the door's log, never its result; the page reads
    the result back, and only for the organizer who scanned."""
    zoe = make_attendee(event, badge_name="Dr Zoë")
    response = _scan(staff_client, zoe.code)
    with staff_client.session_transaction() as session:
        shown = dict(session)
        scan_id = session["organizer_shown_scan"]
    assert "Zoë" not in repr(shown) and zoe.code not in repr(shown)
    with app.app_context():
        scan = db.session.get(CheckInScan, scan_id)
        assert (scan.outcome, scan.code, scan.attendee_id) == (CHECKED_IN, zoe.code, zoe.id)
    # Another organizer's session naming that scan sees no result.
    with admin_client.session_transaction() as session:
        session["organizer_shown_scan"] = scan_id
    assert "Dr Zoë" not in admin_client.get("/organizer/check-in").text
    assert "Dr Zoë" in staff_client.get(response.location).text


def test_every_scan_is_in_the_doors_log(app, staff_client, event, make_attendee):
    zoe = make_attendee(event)
    for payload in (zoe.code, zoe.code, "NEC-ZZZZZZ", "hello"):
        _scan(staff_client, payload, headers=JSON)
    with app.app_context():
        log = db.session.execute(
            select(CheckInScan.outcome, CheckInScan.code).order_by(CheckInScan.id)
        ).all()
    assert log == [
        (CHECKED_IN, zoe.code),
        (ALREADY, zoe.code),
        ("unknown", "NEC-ZZZZZZ"),
        ("invalid", None),
    ]


def test_the_door_shows_times_in_the_events_zone(app_config, make_event, make_attendee):
    """The event's time zone, whatever DISPLAY_TIMEZONE says (it serves pages with no event);
    a setting that names no zone still stops the start."""
    from necreg import create_app
    from necreg.config import ConfigError

    with pytest.raises(ConfigError, match="DISPLAY_TIMEZONE 'Mars/Olympus'"):
        create_app({**app_config, "DISPLAY_TIMEZONE": "Mars/Olympus"})
    chicago = create_app({**app_config, "DISPLAY_TIMEZONE": "Asia/Tokyo"})
    event = make_event(timezone="America/Chicago")
    person = make_attendee(event, checked_in_at=datetime(2025, 9, 7, 14, 12, tzinfo=UTC))
    with chicago.app_context():
        from necreg.auth import create_organizer

        create_organizer(db.session, "door@example.org", "door password 123", role="staff")
        db.session.commit()
    from organizer_fixtures import sign_in

    client = chicago.test_client()
    assert sign_in(client, "door@example.org", "door password 123").status_code == 303
    answer = _scan(client, person.code, headers=JSON).get_json()
    assert "already checked in at 09:12 CDT" in answer["message"]
    with chicago.app_context():
        db.engine.dispose()
