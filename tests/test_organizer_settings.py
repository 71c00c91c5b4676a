"""Event settings: counters, window, capacity and landing text; changes show at once."""

# ruff: noqa: F811 - pytest fixtures imported from organizer_fixtures are used as arguments

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from organizer_fixtures import admin_client, make_organizer, page_csrf  # noqa: F401

from conftest import fresh
from necreg.events import EventFileError, update_settings
from necreg.extensions import db
from necreg.models import Event


def _form(client, **over):
    form = {
        "csrf_token": page_csrf(client, "/organizer/settings"),
        "sessions": "42",
        "faculty": "120",
        "capacity": "",
        "cap_clinician": "",
        "cap_scientist": "",
        "cap_family": "",
        "cap_advocate": "",
        "registration_opens_at": "2025-03-01T00:00",
        "registration_closes_at": "2099-09-01T12:30",
        "tagline": "A world without NEC",
        "description": "## Welcome\n\nNew **landing** text.",
        "virtual_capacity": "",
        "join_url": "",
        "max_guests": "0",
        "consent_version": "",
    }
    form.update(over)
    return {k: v for k, v in form.items() if v is not None}


def test_settings_page_shows_current_values(admin_client, make_event):
    make_event(capacity=300, capacity_by_role={"family": 60})
    page = admin_client.get("/organizer/settings").get_data(as_text=True)
    for name, value in (("sessions", "40"), ("cap_family", "60"), ("capacity", "300")):
        assert re.search(rf'<input[^>]* name="{name}"[^>]* value="{value}"', page), name
    assert not re.search(r'<input[^>]* name="cap_clinician"[^>]* value="\d', page)


def test_change_shows_on_landing_and_api_at_once(app, admin_client, make_event):
    make_event()
    response = admin_client.post("/organizer/settings", data=_form(admin_client))
    assert response.status_code == 303, response.get_data(as_text=True)
    stats = admin_client.get("/api/stats").get_json()
    assert (stats["sessions"], stats["faculty"]) == (42, 120)
    landing = admin_client.get("/").get_data(as_text=True)
    assert "<strong>landing</strong>" in landing
    assert "A world without NEC" in landing
    with app.app_context():
        event = db.session.execute(db.select(Event)).scalar_one()
        assert event.registration_closes_at == datetime(2099, 9, 1, 12, 30, tzinfo=UTC)
        assert event.capacity is None and event.capacity_by_role == {}


def test_raising_a_cap_promotes_waiting_people(app, admin_client, make_event, make_attendee):
    event = make_event(capacity=1)
    make_attendee(event, status="confirmed")
    waiting = make_attendee(event, status="waitlisted")
    response = admin_client.post("/organizer/settings", data=_form(admin_client, capacity="2"))
    assert response.status_code == 303
    waiting = fresh(app, waiting)
    assert waiting.status == "confirmed"


def test_role_cap_is_saved_and_respected(app, admin_client, make_event, make_attendee):
    event = make_event()
    form = _form(admin_client, cap_family="5")
    assert admin_client.post("/organizer/settings", data=form).status_code == 303
    event = fresh(app, event)
    assert event.capacity_by_role == {"family": 5}


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"sessions": "-1"}, "0 or more"),
        ({"faculty": "many"}, "Not a valid integer"),
        ({"cap_family": "-3"}, "0 or more"),
        ({"registration_closes_at": "2025-02-01T00:00"}, "close after it opens"),
        ({"registration_opens_at": "yesterday"}, "Not a valid datetime"),
        ({"tagline": "x" * 301}, "At most 300"),
    ],
)
def test_bad_settings_are_refused_and_change_nothing(app, admin_client, make_event, over, message):
    event = make_event()
    response = admin_client.post("/organizer/settings", data=_form(admin_client, **over))
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    event = fresh(app, event)
    assert (event.sessions, event.faculty, event.tagline) == (
        40,
        100,
        "Building a World Without NEC",
    )
    assert event.capacity_by_role in ({}, None)


def test_update_settings_domain_rules(app, make_event):
    with app.app_context():
        event = make_event()
        with pytest.raises(EventFileError, match="cannot be changed here"):
            update_settings(db.session, event, {"slug": "other"})
        with pytest.raises(EventFileError, match="roles"):
            update_settings(db.session, event, {"capacity_by_role": {"vip": 3}})
        with pytest.raises(EventFileError, match="whole number"):
            update_settings(db.session, event, {"sessions": -5})
        changes = update_settings(db.session, event, {"sessions": 41, "faculty": 100})
        assert changes == {"sessions": [40, 41]}


def test_online_attendance_companions_and_consent_version_are_set_here(
    app, client, admin_client, make_event
):
    event = make_event()
    form = _form(
        admin_client,
        virtual="y",
        virtual_capacity="50",
        join_url="https://meet.example.org/nec",
        max_guests="3",
        infants_count="y",
        consent_version="2026-2",
    )
    assert admin_client.post("/organizer/settings", data=form).status_code == 303
    saved = fresh(app, event)
    assert (saved.virtual, saved.virtual_capacity, saved.join_url) == (
        True,
        50,
        "https://meet.example.org/nec",
    )
    assert (saved.max_guests, saved.infants_count, saved.consent_version) == (3, True, "2026-2")
    page = client.get("/register").get_data(as_text=True)
    assert 'name="guests-2-age_band"' in page and 'name="attendance"' in page


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"join_url": "javascript:alert(1)"}, "Please enter a web address"),
        ({"max_guests": "11"}, "From 0 to 10."),
        ({"max_guests": None}, "Please enter a number."),
        ({"virtual_capacity": "-1"}, "0 or more"),
    ],
)
def test_wrong_family_or_online_settings_are_refused(app, admin_client, make_event, over, message):
    event = make_event()
    response = admin_client.post("/organizer/settings", data=_form(admin_client, **over))
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    saved = fresh(app, event)
    assert (saved.max_guests, saved.join_url, saved.virtual_capacity) == (0, "", None)


def test_the_domain_refuses_what_the_form_would(app, make_event):
    with app.app_context():
        event = db.session.merge(make_event())
        for values, message in (
            ({"join_url": "ftp://x"}, "join_url must be a web address"),
            ({"max_guests": 99}, "max_guests may be at most 10"),
            ({"virtual": "yes"}, "virtual must be true or false"),
        ):
            with pytest.raises(EventFileError, match=message):
                update_settings(db.session, event, values)
