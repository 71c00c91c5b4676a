"""Times are stored in UTC and shown on the clock of the event's time zone (its file's
``timezone``): the dashboard's days, the settings form, the public registration window, the
organizer pages, the e-mails and the calendar files. DISPLAY_TIMEZONE serves only pages with
no event to take a zone from."""

# ruff: noqa: F811 - pytest fixtures imported from organizer_fixtures are used as arguments

from __future__ import annotations

import random
import re
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from organizer_fixtures import admin_client, make_organizer, page_csrf  # noqa: F401

from conftest import fresh
from necreg.extensions import db
from necreg.formats import clock_text, local_moment, moment_text
from necreg.mail.outbox import calendar_attachment, queue_offer
from necreg.models import DiscountCode, Event, utcnow
from necreg.stats import dashboard_stats, local_days

CHICAGO = ZoneInfo("America/Chicago")
TOKYO = ZoneInfo("Asia/Tokyo")


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def wall(*parts: int) -> datetime:
    """A time as a form sends it: a date and a time of day, of no zone."""
    return datetime(*parts)  # noqa: DTZ001 - no zone, on purpose


# --- Reading a time typed on the event's clock --------------------------------------------


def test_a_local_time_is_the_utc_moment_of_that_clock():
    assert local_moment(wall(2025, 3, 1, 0, 0), CHICAGO) == at(2025, 3, 1, 6)  # CST
    assert local_moment(wall(2025, 7, 1, 9, 0), CHICAGO) == at(2025, 7, 1, 14)  # CDT
    assert local_moment(wall(2025, 7, 1, 9, 0), TOKYO) == at(2025, 7, 1, 0)
    assert local_moment(wall(2025, 7, 1, 9, 0), UTC) == at(2025, 7, 1, 9)


def test_a_time_the_clocks_skip_is_refused_and_one_that_comes_twice_is_the_first():
    with pytest.raises(ValueError, match="02:30 on March 09, 2025 does not happen in America/"):
        local_moment(wall(2025, 3, 9, 2, 30), CHICAGO)
    first = local_moment(wall(2025, 11, 2, 1, 30), CHICAGO)
    assert first == at(2025, 11, 2, 6, 30)
    assert clock_text(first, CHICAGO) == "2025-11-02 01:30 CDT"


def test_moments_are_written_with_the_zones_abbreviation():
    moment = at(2025, 9, 7, 14, 12, 5)
    assert moment_text(moment, CHICAGO) == "September 07, 2025 at 09:12 CDT"
    assert clock_text(moment, TOKYO, seconds=True) == "2025-09-07 23:12:05 JST"
    assert clock_text(moment) == "2025-09-07 14:12 UTC"


# --- The dashboard's days -----------------------------------------------------------------


def _stats_json(client) -> dict:
    return client.get("/organizer/stats.json").get_json()


def test_dashboard_days_are_chicago_days(app, admin_client, make_event, make_attendee):
    event = make_event(timezone="America/Chicago")
    make_attendee(event, created_at=at(2025, 3, 5, 3))  # 21:00 CST on the 4th
    make_attendee(event, created_at=at(2025, 3, 5, 12))  # 06:00 CST on the 5th
    make_attendee(event, created_at=at(2025, 3, 6, 5, 59))  # 23:59 CST on the 5th
    data = _stats_json(admin_client)
    assert data["per_day"] == [["2025-03-04", 1], ["2025-03-05", 2]]
    page = admin_client.get("/organizer/").get_data(as_text=True)
    assert "Day (America/Chicago)" in page and "Day (UTC)" not in page
    assert "<tr><td>2025-03-04</td>" in page and "2025-03-06" not in page


def test_dashboard_days_east_of_utc(app, admin_client, make_event, make_attendee):
    event = make_event(timezone="Asia/Tokyo")
    make_attendee(event, created_at=at(2025, 5, 1, 14, 59))  # 23:59 JST on the 1st
    make_attendee(event, created_at=at(2025, 5, 1, 15))  # midnight JST on the 2nd
    make_attendee(event, created_at=at(2025, 5, 1, 23))  # 08:00 JST on the 2nd
    assert _stats_json(admin_client)["per_day"] == [["2025-05-01", 1], ["2025-05-02", 2]]


def test_dashboard_days_across_the_change_to_summer_time(app, admin_client, make_event,
                                                         make_attendee):  # fmt: skip
    """Chicago's days begin at 06:00 UTC before March 9, 2025 and at 05:00 UTC after."""
    event = make_event(timezone="America/Chicago")
    make_attendee(event, created_at=at(2025, 3, 9, 5, 30))  # 23:30 CST on the 8th
    make_attendee(event, created_at=at(2025, 3, 10, 4, 30))  # 23:30 CDT on the 9th
    make_attendee(event, created_at=at(2025, 3, 10, 5, 30))  # 00:30 CDT on the 10th
    make_attendee(event, created_at=at(2025, 11, 2, 5, 30))  # 00:30 CDT on November 2
    make_attendee(event, created_at=at(2025, 11, 3, 5, 30))  # 23:30 CST on November 2
    assert _stats_json(admin_client)["per_day"] == [
        ["2025-03-08", 1],
        ["2025-03-09", 1],
        ["2025-03-10", 1],
        ["2025-11-02", 2],
    ]


@pytest.mark.parametrize(
    "zone", ["America/Chicago", "Asia/Tokyo", "Asia/Kolkata", "Australia/Lord_Howe", "UTC"]
)
def test_local_days_are_every_registrations_own_day(app, make_event, make_attendee, zone):
    """Against each registration's day on the zone's clock, over a year of clock changes (Lord
    Howe's are of half an hour, Kolkata is half an hour off the hour)."""
    rng = random.Random(zone)
    event = make_event(timezone=zone)
    times = [at(2025, 1, 1) + timedelta(minutes=rng.randrange(366 * 24 * 60)) for _ in range(60)]
    times += [at(2025, 3, 9, 5, 59), at(2025, 3, 9, 6), at(2025, 11, 2, 4, 59), at(2025, 11, 2, 5)]
    for moment in times:
        make_attendee(event, created_at=moment)
    with app.app_context():
        figures = dashboard_stats(db.session, db.session.get(Event, event.id))
    tz = ZoneInfo(zone)
    expected = Counter(moment.astimezone(tz).date() for moment in times)
    assert figures.per_day == sorted(expected.items())


def test_an_event_on_utc_reads_no_registration_for_its_days():
    def count(start, end, n):
        raise AssertionError("a day on UTC needs no count")

    assert local_days([(date(2025, 5, 1), 3)], UTC, count) == [(date(2025, 5, 1), 3)]
    # A zone on UTC in winter (London) straddles no day then either.
    assert local_days([(date(2025, 1, 5), 2)], ZoneInfo("Europe/London"), count) == [
        (date(2025, 1, 5), 2)
    ]


def test_the_days_follow_a_registration_on_a_day_already_counted(app, admin_client, make_event,
                                                                 make_attendee):  # fmt: skip
    """The parts of days are kept while their day's figure stands: a new registration on that
    day (here backdated, as seed-demo does) is counted again, and the ETag moves."""
    event = make_event(timezone="America/Chicago")
    make_attendee(event, created_at=at(2025, 3, 5, 3))
    first = admin_client.get("/organizer/stats.json")
    first_etag = first.headers["ETag"]
    assert first.get_json()["per_day"] == [["2025-03-04", 1]]
    make_attendee(event, created_at=at(2025, 3, 5, 4))  # the 4th too
    make_attendee(event, created_at=at(2025, 3, 5, 7))  # the 5th
    second = admin_client.get(
        "/organizer/stats.json", headers={"If-None-Match": first.headers["ETag"]}
    )
    assert second.status_code == 200
    assert second.headers["ETag"] != first_etag
    assert second.get_json()["per_day"] == [["2025-03-04", 2], ["2025-03-05", 1]]
    again = admin_client.get(
        "/organizer/stats.json", headers={"If-None-Match": second.headers["ETag"]}
    )
    assert again.status_code == 304


def test_the_dashboard_shows_its_last_change_on_the_events_clock(admin_client, make_event,
                                                                 make_attendee):  # fmt: skip
    event = make_event(timezone="Asia/Tokyo")
    make_attendee(event)
    data = _stats_json(admin_client)
    assert data["updated_at_text"].endswith(" JST")
    page = admin_client.get("/organizer/").get_data(as_text=True)
    assert f'<span data-stat="updated_at_text">{data["updated_at_text"]}</span>' in page


# --- The settings form ----------------------------------------------------------------------


def _settings(client, **over):
    form = {
        "csrf_token": page_csrf(client, "/organizer/settings"),
        "sessions": "40",
        "faculty": "100",
        "max_guests": "0",
        "registration_opens_at": "2025-03-01T00:00",
        "registration_closes_at": "2025-09-01T12:30",
    }
    return client.post("/organizer/settings", data={**form, **over})


def test_settings_take_and_show_the_window_on_the_events_clock(app, admin_client, make_event):
    event = make_event(timezone="America/Chicago")
    answer = _settings(admin_client)
    assert answer.status_code == 303, answer.get_data(as_text=True)
    saved = fresh(app, event)
    assert saved.registration_opens_at == at(2025, 3, 1, 6)  # midnight CST
    assert saved.registration_closes_at == at(2025, 9, 1, 17, 30)  # 12:30 CDT
    page = admin_client.get("/organizer/settings").get_data(as_text=True)
    assert re.search(r'name="registration_opens_at"[^>]* value="2025-03-01T00:00"', page)
    assert re.search(r'name="registration_closes_at"[^>]* value="2025-09-01T12:30"', page)
    assert "Registration opens (America/Chicago)" in page
    assert "opens March 01, 2025 at 00:00 CST; closes September 01, 2025 at 12:30 CDT" in page
    assert "(UTC)" not in page


def test_settings_refuse_a_time_the_clocks_skip_and_store_nothing(app, admin_client, make_event):
    event = make_event(timezone="America/Chicago", registration_opens_at=at(2025, 1, 1, 6))
    answer = _settings(admin_client, registration_opens_at="2025-03-09T02:30", sessions="41")
    assert answer.status_code == 400
    assert "does not happen in America/Chicago" in answer.get_data(as_text=True)
    saved = fresh(app, event)
    assert (saved.registration_opens_at, saved.sessions) == (at(2025, 1, 1, 6), 40)


def test_settings_take_the_first_of_a_time_that_comes_twice(app, admin_client, make_event):
    event = make_event(timezone="America/Chicago")
    answer = _settings(
        admin_client,
        registration_opens_at="2025-11-02T01:30",
        registration_closes_at="2026-01-01T00:00",
    )
    assert answer.status_code == 303
    assert fresh(app, event).registration_opens_at == at(2025, 11, 2, 6, 30)  # 01:30 CDT


def test_settings_of_an_event_east_of_utc(app, admin_client, make_event):
    event = make_event(timezone="Asia/Tokyo")
    assert _settings(admin_client, registration_opens_at="2025-03-01T08:00").status_code == 303
    assert fresh(app, event).registration_opens_at == at(2025, 2, 28, 23)


def test_a_codes_end_is_typed_on_the_events_clock(app, admin_client, make_event):
    event = make_event(timezone="America/Chicago", currency="USD")
    page = admin_client.get("/organizer/codes").get_data(as_text=True)
    assert "Usable until (America/Chicago)" in page
    form = {"csrf_token": page_csrf(admin_client, "/organizer/codes"), "code": "EARLY",
            "percent": "10", "expires_at": "2025-06-01T00:00"}  # fmt: skip
    assert admin_client.post("/organizer/codes", data=form).status_code == 303
    with app.app_context():
        code = db.session.execute(db.select(DiscountCode)).scalar_one()
        assert (code.event_id, code.expires_at) == (event.id, at(2025, 6, 1, 5))


# --- Public pages, organizer pages, e-mails, calendars ---------------------------------------


@pytest.mark.parametrize(
    ("zone", "abbreviation"), [("America/Chicago", "C"), ("Asia/Tokyo", "JST"), ("UTC", "UTC")]
)
def test_the_public_window_is_on_the_events_clock(client, make_event, zone, abbreviation):
    opens = utcnow().replace(second=0, microsecond=0) + timedelta(days=30)
    make_event(timezone=zone, registration_opens_at=opens)
    local = opens.astimezone(ZoneInfo(zone))
    expected = f"Registration opens on {local:%B %d, %Y at %H:%M} {abbreviation}"
    for path in ("/", "/register"):
        page = client.get(path).get_data(as_text=True)
        assert expected in page, path
        assert (" UTC" in page) == (zone == "UTC"), path


def test_the_landing_page_says_when_registration_closes(client, make_event):
    closes = utcnow().replace(second=0, microsecond=0) + timedelta(days=30)
    make_event(timezone="Asia/Tokyo", registration_closes_at=closes)
    page = client.get("/").get_data(as_text=True)
    assert f"Registration closes on {moment_text(closes, TOKYO)}." in page
    assert moment_text(closes, TOKYO).endswith(" JST")


def test_organizer_pages_show_times_on_the_events_clock(admin_client, make_event, make_attendee):
    event = make_event(timezone="America/Chicago")
    person = make_attendee(
        event, created_at=at(2025, 3, 5, 3), checked_in_at=at(2025, 9, 7, 14, 12)
    )
    page = admin_client.get(f"/organizer/attendees/{person.id}").get_data(as_text=True)
    assert "Registered</dt><dd>2025-03-04 21:00 CST" in page
    assert "Checked in</dt><dd>2025-09-07 09:12 CDT" in page
    listing = admin_client.get("/organizer/attendees").get_data(as_text=True)
    assert "2025-09-07 09:12 CDT" in listing and "2025-03-04" in listing
    answer = admin_client.get("/organizer/account")
    account = answer.get_data(as_text=True)
    assert answer.status_code == 200, account[-3000:]
    assert "Times are America/Chicago." in account
    assert re.search(r"<td>\d{4}-\d\d-\d\d \d\d:\d\d C[SD]T", account)  # the session's start


def test_pages_with_no_event_use_display_timezone(app_config, make_organizer):
    from organizer_fixtures import PASSWORD, sign_in

    from necreg import create_app

    tokyo = create_app({**app_config, "DISPLAY_TIMEZONE": "Asia/Tokyo"})
    make_organizer("admin@example.org")
    client = tokyo.test_client()
    assert sign_in(client, "admin@example.org", PASSWORD).status_code == 303
    page = client.get("/organizer/account").get_data(as_text=True)
    assert "Times are Asia/Tokyo." in page and " JST" in page
    with tokyo.app_context():
        db.engine.dispose()


def test_emails_give_times_on_the_events_clock(app, make_event, make_attendee):
    event = make_event(timezone="America/Chicago")
    person = make_attendee(event, status="pending_payment", payment_due_at=at(2025, 7, 1, 4, 59))
    with app.app_context():
        event, person = db.session.get(Event, event.id), db.session.merge(person)
        mail = queue_offer(db.session, event, person)
        assert "June 30, 2025 at 23:59 CDT" in mail.subject
        assert "by June 30, 2025 at 23:59 CDT" in mail.text_body
        assert "June 30, 2025 at 23:59 CDT" in mail.html_body
        assert "UTC" not in mail.text_body + mail.subject
        db.session.rollback()


def test_the_calendar_file_holds_the_events_own_days(app, make_event, make_attendee):
    """The meeting's days are dates (RFC 5545 VALUE=DATE: the same days in every zone), the end
    exclusive; moments (DTSTAMP, the agenda's items) are UTC with Z, which calendars show in
    their own zone, so no VTIMEZONE is needed."""
    event = make_event(timezone="Asia/Tokyo")
    person = make_attendee(event)
    with app.app_context():
        event, person = db.session.get(Event, event.id), db.session.merge(person)
        text = calendar_attachment(event, person, at(2025, 5, 1, 16))["content"]
    assert "DTSTART;VALUE=DATE:20990907\r\n" in text
    assert "DTEND;VALUE=DATE:20990911\r\n" in text
    assert "DTSTAMP:20250501T160000Z\r\n" in text
    assert "TZID" not in text


# --- Fees: a price's and a code's end -------------------------------------------------------


def test_a_price_and_a_code_end_on_the_events_clock():
    from necreg.fees import PriceSpec, code_summary, price_terms

    price = PriceSpec(name="Early", amount=100, until=at(2025, 6, 1, 5, 0))
    assert price_terms(price, CHICAGO).endswith("until June 1, 2025, 00:00 CDT")
    assert price_terms(price, TOKYO).endswith("until June 1, 2025, 14:00 JST")
    assert price_terms(price).endswith("until June 1, 2025, 05:00 UTC")
    code = DiscountCode(code="FAMILY", percent=100, uses=0, max_uses=0, roles=[])
    code.expires_at = at(2025, 1, 15, 6, 0)
    assert "until 2025-01-15 00:00 CST" in code_summary(code, "USD", CHICAGO)
    assert "UTC" not in code_summary(code, "USD", CHICAGO)
