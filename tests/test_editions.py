"""Between editions: an event is over after its last day in its own time zone; then
registration closes and its page presents it as held; the next edition takes over the home
page, and earlier ones stay at /editions/<slug>."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from conftest import csrf_token, registration_form
from necreg.events import EventFileError, load_event, validate
from necreg.extensions import db
from necreg.models import Attendee, Event, utcnow
from necreg.resources import resource_dir

NEC_FILE = resource_dir("events") / "nec-symposium.toml"

NEXT_EDITION = """
slug = "nec-2099"
name = "NEC Symposium"
starts_on = 2099-09-06
ends_on = 2099-09-09
venue = "Cincinnati"
timezone = "America/New_York"
current = true
"""


def test_an_event_is_over_at_midnight_after_its_last_day_in_its_time_zone(make_event):
    event = make_event(
        starts_on=date(2025, 9, 7), ends_on=date(2025, 9, 10), timezone="America/Chicago"
    )
    # Midnight in Chicago (CDT, UTC-5) after September 10 is 05:00 UTC on September 11.
    assert event.over_at == datetime(2025, 9, 11, 5, tzinfo=UTC)
    assert event.registration_open(datetime(2025, 9, 11, 4, 59, tzinfo=UTC))
    assert not event.registration_open(datetime(2025, 9, 11, 5, tzinfo=UTC))
    assert event.is_over(datetime(2025, 9, 11, 5, tzinfo=UTC))
    tokyo = make_event(
        slug="tokyo",
        is_current=False,
        starts_on=date(2025, 9, 7),
        ends_on=date(2025, 9, 10),
        timezone="Asia/Tokyo",
    )
    assert tokyo.over_at == datetime(2025, 9, 10, 15, tzinfo=UTC)  # midnight UTC+9


def test_the_time_zone_and_highlights_are_checked_like_every_event_key():
    base = {"slug": "e", "name": "E", "starts_on": date(2030, 1, 1), "ends_on": date(2030, 1, 2)}
    assert validate(base)["timezone"] == "UTC"
    assert validate({**base, "timezone": "America/Chicago"})["timezone"] == "America/Chicago"
    with pytest.raises(EventFileError, match="timezone 'Chicago' is not a time zone"):
        validate({**base, "timezone": "Chicago"})
    with pytest.raises(EventFileError, match="highlights_url must be a web address"):
        validate({**base, "highlights_url": "javascript:alert(1)"})
    # Control and invisible characters (a NUL PostgreSQL would refuse, a bidi override) are
    # refused with the file's own error; line breaks stay allowed in the description.
    for key, value in [("name", "NEC\x00"), ("tagline", "a\u202eb"), ("hosts", ["x\u200b"])]:
        with pytest.raises(EventFileError, match=f"{key} holds a control"):
            validate({**base, key: value})
    assert validate({**base, "description": "One.\n\nTwo."})["description"] == "One.\n\nTwo."


def test_a_wrong_time_zone_in_a_file_stores_nothing(app, runner, tmp_path):
    path = tmp_path / "e.toml"
    path.write_text(NEXT_EDITION.replace("America/New_York", "Mars/Olympus"))
    result = runner.invoke(args=["load-event", str(path)])
    assert result.exit_code != 0 and "Mars/Olympus" in result.output
    with app.app_context():
        assert db.session.execute(select(func.count()).select_from(Event)).scalar_one() == 0


def load_shipped(app):
    with app.app_context():
        from necreg.events import read_event_file

        load_event(db.session, read_event_file(NEC_FILE))
        db.session.commit()


def test_a_fresh_site_presents_the_2025_meeting_as_held_and_takes_no_registration(app, client):
    load_shipped(app)
    page = client.get("/").get_data(as_text=True)
    assert "The NEC Symposium was presented in Chicago, September 7-10, 2025." in page
    assert "Stay tuned for future meetings" in page and 'href="/interest"' in page
    assert "Register now" not in page and "Registration fees" not in page
    assert "Voices from the symposium" in page and "Jennifer Canvasser" in page
    # Final figures: not refreshed any more (no polling of /api/stats from a past edition).
    assert 'data-counter="sessions">40<' in page
    register = client.get("/register").get_data(as_text=True)
    assert "Registration is closed" in register and "Leave your e-mail address" in register
    form = registration_form(csrf_token=csrf_token(client, "/interest"))
    assert client.post("/register", data=form).status_code == 403
    with app.app_context():
        assert db.session.execute(select(func.count()).select_from(Attendee)).scalar_one() == 0


def test_the_highlights_video_is_shown_once_the_meeting_is_over(app, client, make_event):
    make_event(
        starts_on=date(2025, 9, 7),
        ends_on=date(2025, 9, 10),
        highlights_url="https://video.example.org/nec-2025",
    )
    page = client.get("/").get_data(as_text=True)
    assert 'href="https://video.example.org/nec-2025"' in page
    assert "Watch highlights from the NEC Symposium" in page


def test_the_next_edition_opens_registration_and_the_last_one_stays_browsable(
    app, client, make_attendee, tmp_path, runner
):
    load_shipped(app)
    with app.app_context():
        past = db.session.execute(select(Event)).scalar_one()
        for n in range(3):
            make_attendee(past, email=f"p{n}@example.org", country="US")
    path = tmp_path / "next.toml"
    path.write_text(NEXT_EDITION)
    assert runner.invoke(args=["load-event", str(path)]).exit_code == 0
    home = client.get("/").get_data(as_text=True)
    assert "Register now" in home and "was presented" not in home
    assert "September 6-9, 2099" in home and 'data-stats-url="/api/stats"' in home
    edition = client.get("/editions/nec-2025")
    page = edition.get_data(as_text=True)
    assert edition.status_code == 200 and "was presented in Chicago" in page
    assert 'data-counter="attendees">3<' in page and "data-stats-url" not in page
    assert "Register now" not in page
    listing = client.get("/editions").get_data(as_text=True)
    assert 'href="/editions/nec-2025"' in listing and "nec-2099" not in listing
    assert client.get("/editions/nec-2099").status_code == 404  # not held yet
    assert client.get("/editions/nope").status_code == 404


def test_the_current_edition_once_over_is_its_home_page(app, client, make_event):
    make_event(slug="nec-2023", ends_on=date(2023, 9, 10), starts_on=date(2023, 9, 7))
    answer = client.get("/editions/nec-2023")
    assert answer.status_code == 302 and answer.location.endswith("/")
    assert "Earlier editions" not in client.get("/").get_data(as_text=True).split("<footer")[0]


def test_public_times_are_on_the_event_clock(app, client, make_event):
    opens = utcnow() + timedelta(days=30)
    make_event(timezone="America/Chicago", registration_opens_at=opens)
    page = client.get("/register").get_data(as_text=True)
    local = opens.astimezone(__import__("zoneinfo").ZoneInfo("America/Chicago"))
    assert f"Registration opens on {local:%B %d, %Y at %H:%M} C" in page  # CST or CDT
