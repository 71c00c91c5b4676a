"""The program (issue 14): items from the event file, the agenda by day, workshops with
places chosen on the form and the private page (overlaps refused, waiting lists of their
own, places given on when people leave), the person's agenda as .ics, and on PostgreSQL a
workshop that never takes more people than its places."""

# ruff: noqa: F811 - pytest fixtures imported from organizer_fixtures are used as arguments

from __future__ import annotations

import re
import threading
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from organizer_fixtures import admin_client, make_organizer, staff_client  # noqa: F401
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from conftest import EDITION_YEAR, csrf_token, registration_form
from necreg.events import EventFileError, load_event
from necreg.extensions import db
from necreg.models import (
    STATUS_CANCELLED,
    STATUS_CONFIRMED,
    STATUS_WAITLISTED,
    Attendee,
    Event,
    ProgramItem,
    ProgramSignup,
)
from necreg.program import ProgramError, choose, definitions, signups_of
from necreg.registration import Registrant, cancel, register

CHICAGO = timezone(timedelta(hours=-5))  # CDT, as the event file writes it


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(EDITION_YEAR, 9, day, hour, minute, tzinfo=CHICAGO)


PROGRAM = [
    {"key": "opening", "title": "Opening plenary", "kind": "plenary", "starts_at": at(8, 8),
     "ends_at": at(8, 9, 30), "room": "Grand Ballroom", "credits": 1.5,
     "speakers": ["Jennifer Canvasser"]},
    {"key": "ws-feeding", "title": "Feeding protocols", "kind": "workshop", "starts_at": at(8, 10),
     "ends_at": at(8, 12), "room": "Room A", "capacity": 2, "credits": 2},
    {"key": "ws-imaging", "title": "Imaging NEC", "kind": "workshop", "starts_at": at(8, 11),
     "ends_at": at(8, 12, 30), "room": "Room B", "capacity": 30, "credits": "1.25"},
    {"key": "ws-family", "title": "Families as partners", "kind": "workshop",
     "starts_at": at(9, 10), "ends_at": at(9, 12), "room": "Room A", "capacity": 30},
]  # fmt: skip


def event_file(**over) -> dict:
    data = {
        "slug": "nec-2099",
        "name": "NEC Symposium",
        "starts_on": date(EDITION_YEAR, 9, 7),
        "ends_on": date(EDITION_YEAR, 9, 10),
        "timezone": "America/Chicago",
        "current": True,
        "program": PROGRAM,
    }
    data.update(over)
    return data


@pytest.fixture
def event(app):
    with app.app_context():
        loaded, _ = load_event(db.session, event_file())
        db.session.commit()
        return loaded.id


def person(n: int) -> Registrant:
    return Registrant(f"P{n}", "Program", f"p{n}@example.org", "clinician", "US")


def signed(app, attendee_id: int) -> dict[str, str]:
    with app.app_context():
        return {item.key: s.status for item, s in signups_of(db.session, attendee_id)}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"key": "Bad Key"}, "key must be 1 to 40"),
        ({"starts_at": datetime(EDITION_YEAR, 9, 8, 8)}, "with its offset"),  # noqa: DTZ001
        ({"ends_at": at(8, 7)}, "ends_at must be after starts_at"),
        ({"credits": "1.234"}, "at most 2 decimals"),
        ({"credits": -1}, "from 0 to 24 hours"),
        ({"kind": "party"}, "kind must be one of plenary, session, workshop"),
        ({"capacity": 0}, "capacity must be a whole number of 1 or more"),
        ({"colour": "red"}, "unknown key(s): colour"),
        ({"key": "ws-feeding"}, "used twice: ws-feeding"),
    ],
)
def test_a_wrong_program_item_is_refused_with_what_is_wrong(app, change, message):
    wrong = [{**PROGRAM[0], **change}, *PROGRAM[1:]]
    with pytest.raises((ProgramError, EventFileError), match=re.escape(message)):
        definitions(wrong)
    with app.app_context(), pytest.raises(EventFileError):
        load_event(db.session, event_file(program=wrong))
    with app.app_context():
        db.session.rollback()
        assert db.session.execute(select(func.count(ProgramItem.id))).scalar_one() == 0


def test_the_event_file_loads_the_program_and_loading_again_updates_it(app, event):
    with app.app_context():
        items = db.session.execute(select(ProgramItem).order_by(ProgramItem.starts_at)).scalars()
        rows = [(i.key, i.credits, i.capacity, i.starts_at) for i in items]
        assert rows[0] == ("opening", 150, None, datetime(EDITION_YEAR, 9, 8, 13, tzinfo=UTC))
        assert [r[0] for r in rows] == ["opening", "ws-feeding", "ws-imaging", "ws-family"]
        attendee = register(db.session, db.session.get(Event, event), person(1), code_prefix="N")
        choose(db.session, attendee, ["ws-family"])
        db.session.commit()
        # Without ws-family (signed up for: retired) and ws-imaging (nobody: deleted).
        load_event(db.session, event_file(program=PROGRAM[:2]))
        db.session.commit()
        kept = dict(db.session.execute(select(ProgramItem.key, ProgramItem.retired_at)).all())
        assert set(kept) == {"opening", "ws-feeding", "ws-family"}
        assert kept["ws-family"] is not None and kept["opening"] is None


def test_the_landing_page_shows_the_program_day_by_day_in_the_event_time_zone(app, client, event):
    page = client.get("/").get_data(as_text=True)
    assert "Tuesday, September 08" in page and "Wednesday, September 09" in page
    assert "08:00–09:30" in page and "Opening plenary" in page and "Jennifer Canvasser" in page
    assert "1.5 credit hours" in page and "Times are America/Chicago." in page


def register_on_form(client, email: str, program: list[str]):
    form = registration_form(csrf_token=csrf_token(client), email=email, program=program)
    return client.post("/register", data=form)


def test_workshops_are_chosen_on_the_form_and_overlaps_are_refused(app, client, event):
    refused = register_on_form(client, "a@example.org", ["ws-feeding", "ws-imaging"])
    assert refused.status_code == 400
    text = refused.get_data(as_text=True)
    assert "Feeding protocols and Imaging NEC are at the same time" in text
    assert 'value="ws-feeding" checked' in text  # the choices as sent
    with app.app_context():
        assert db.session.execute(select(func.count(Attendee.id))).scalar_one() == 0
        assert db.session.execute(select(func.count(ProgramSignup.id))).scalar_one() == 0
    assert register_on_form(client, "a@example.org", ["ws-feeding", "ws-family"]).status_code == 303
    with app.app_context():
        ana = db.session.execute(select(Attendee)).scalar_one()
        token = ana.token
    assert signed(app, ana.id) == {"ws-feeding": STATUS_CONFIRMED, "ws-family": STATUS_CONFIRMED}
    data = client.get(f"/api/registrations/{token}").get_json()
    assert {p["key"]: p["status"] for p in data["program"]} == signed(app, ana.id)
    page = client.get(f"/registration/{token}").get_data(as_text=True)
    assert "Your program" in page and "You have a place" in page


def test_a_full_workshop_has_a_waiting_list_that_moves_when_someone_leaves(app, event):
    with app.app_context():
        e = db.session.get(Event, event)
        people = [register(db.session, e, person(n), code_prefix="N") for n in range(4)]
        for attendee in people:
            choose(db.session, attendee, ["ws-feeding"])
        db.session.commit()
        ids = [a.id for a in people]
    assert [signed(app, i)["ws-feeding"] for i in ids] == ["confirmed"] * 2 + ["waitlisted"] * 2
    with app.app_context():
        first = db.session.get(Attendee, ids[0])
        assert choose(db.session, first, []) == {"ws-feeding": STATUS_CANCELLED}
        db.session.commit()
    assert signed(app, ids[2])["ws-feeding"] == STATUS_CONFIRMED  # the longest waiting
    assert signed(app, ids[3])["ws-feeding"] == STATUS_WAITLISTED
    with app.app_context():
        cancel(db.session, db.session.get(Attendee, ids[1]))  # a cancelled registration
        db.session.commit()
    assert signed(app, ids[1]) == {}
    assert signed(app, ids[3])["ws-feeding"] == STATUS_CONFIRMED


def test_the_private_page_changes_the_workshops(app, client, event):
    assert register_on_form(client, "a@example.org", ["ws-feeding"]).status_code == 303
    with app.app_context():
        ana = db.session.execute(select(Attendee)).scalar_one()
        token, ana_id = ana.token, ana.id
    path = f"/registration/{token}"
    form = {"csrf_token": csrf_token(client, path), "program": ["ws-feeding", "ws-imaging"]}
    refused = client.post(f"{path}/program", data=form)
    assert refused.status_code == 400 and "at the same time" in refused.get_data(as_text=True)
    assert signed(app, ana_id) == {"ws-feeding": STATUS_CONFIRMED}
    form["program"] = ["ws-imaging", "ws-family"]
    assert client.post(f"{path}/program", data=form).status_code == 303
    assert signed(app, ana_id) == {"ws-imaging": STATUS_CONFIRMED, "ws-family": STATUS_CONFIRMED}


def test_the_agenda_calendar_holds_the_open_items_and_the_workshops_with_a_place(
    app, client, event
):
    with app.app_context():
        e = db.session.get(Event, event)
        people = [register(db.session, e, person(n), code_prefix="N") for n in range(3)]
        for attendee in people:
            choose(db.session, attendee, ["ws-feeding", "ws-family"])
        db.session.commit()
        last = people[2].token  # waits for ws-feeding
    response = client.get(f"/registration/{last}/agenda.ics")
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    assert response.mimetype == "text/calendar"
    text = response.get_data(as_text=True)
    assert text.count("BEGIN:VEVENT") == 2  # the plenary and ws-family, not ws-feeding
    assert "SUMMARY:Opening plenary" in text and "SUMMARY:Families as partners" in text
    assert "DTSTART:20990908T130000Z" in text  # 08:00 in Chicago (CDT), in UTC
    assert "\r\n" in text and "Feeding protocols" not in text


def test_on_postgresql_120_sign_ups_for_30_places_never_exceed_them(
    app, database_url, is_postgres, event
):
    if not is_postgres:
        pytest.skip("needs PostgreSQL: set NECREG_TEST_DATABASE_URL")
    with app.app_context():
        e = db.session.get(Event, event)
        ids = [register(db.session, e, person(n), code_prefix="N").id for n in range(120)]
        db.session.commit()
    engine = create_engine(database_url, pool_size=14, max_overflow=0)
    barrier = threading.Barrier(12)
    errors: list[BaseException] = []

    def signing(share: list[int]) -> None:
        try:
            with app.app_context(), Session(engine) as session:
                session.connection()
                barrier.wait(timeout=30)
                for attendee_id in share:
                    choose(session, session.get(Attendee, attendee_id), ["ws-imaging"])
                    session.commit()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=signing, args=(ids[i::12],)) for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []

    def statuses() -> dict[str, int]:
        with app.app_context():
            rows = db.session.execute(
                select(ProgramSignup.status, func.count(ProgramSignup.id)).group_by(
                    ProgramSignup.status
                )
            ).all()
            return dict(rows)

    assert statuses() == {STATUS_CONFIRMED: 30, STATUS_WAITLISTED: 90}
    with app.app_context():
        waiting = (
            db.session.execute(
                select(ProgramSignup.attendee_id)
                .where(ProgramSignup.status == STATUS_WAITLISTED)
                .order_by(ProgramSignup.created_at, ProgramSignup.id)
            )
            .scalars()
            .all()
        )
        placed = (
            db.session.execute(
                select(ProgramSignup.attendee_id).where(ProgramSignup.status == STATUS_CONFIRMED)
            )
            .scalars()
            .all()
        )

    def leaving(attendee_id: int) -> None:
        try:
            with app.app_context(), Session(engine) as session:
                choose(session, session.get(Attendee, attendee_id), [])
                session.commit()
        except BaseException as exc:
            errors.append(exc)

    leavers = [threading.Thread(target=leaving, args=(i,)) for i in placed[:10]]
    for thread in leavers:
        thread.start()
    for thread in leavers:
        thread.join(timeout=120)
    engine.dispose()
    assert errors == []
    assert statuses() == {STATUS_CONFIRMED: 30, STATUS_WAITLISTED: 80, STATUS_CANCELLED: 10}
    with app.app_context():
        now_placed = set(
            db.session.execute(
                select(ProgramSignup.attendee_id).where(ProgramSignup.status == STATUS_CONFIRMED)
            ).scalars()
        )
    assert set(waiting[:10]) <= now_placed  # the ten who waited longest, in order


JSON = {"Accept": "application/json"}


def door_scan(client, code: str, program: str):
    from organizer_fixtures import page_csrf

    token = page_csrf(client, "/organizer/check-in")
    form = {"code": code, "program": program, "csrf_token": token}
    return client.post("/organizer/check-in", data=form, headers=JSON)


def test_staff_check_people_in_at_a_room_door(app, staff_client, event):
    """At a workshop's door only those with a place come in, once; at a plenary's anyone
    registered; the desk check-in is another thing; the dashboard counts each door."""
    from necreg.models import ProgramAttendance
    from necreg.stats import dashboard_stats

    with app.app_context():
        e = db.session.get(Event, event)
        people = [register(db.session, e, person(n), code_prefix="NEC") for n in range(3)]
        for attendee in people:
            choose(db.session, attendee, ["ws-feeding"])  # two places: the third waits
        db.session.commit()
        codes = [a.code for a in people]
    page = staff_client.get("/organizer/check-in?program=ws-feeding").get_data(as_text=True)
    assert '<option value="ws-feeding" selected>Feeding protocols' in page
    first = door_scan(staff_client, codes[0], "ws-feeding")
    assert first.status_code == 200
    assert first.get_json()["message"].endswith("is checked in to Feeding protocols.")
    assert first.get_json()["item"] == "ws-feeding"
    again = door_scan(staff_client, codes[0], "ws-feeding")
    assert (
        again.status_code == 409
        and "already checked in to Feeding protocols at" in (again.get_json()["message"])
    )
    waiting = door_scan(staff_client, codes[2], "ws-feeding")
    assert waiting.status_code == 409 and waiting.get_json()["outcome"] == "not_signed_up"
    assert door_scan(staff_client, codes[2], "opening").status_code == 200  # a plenary
    unknown_door = door_scan(staff_client, codes[1], "no-such-item")
    assert unknown_door.status_code == 400
    # Without JavaScript: the next scan is at the same door.
    from organizer_fixtures import page_csrf

    form = {"code": codes[1], "program": "ws-feeding"}
    form["csrf_token"] = page_csrf(staff_client, "/organizer/check-in")
    plain = staff_client.post("/organizer/check-in", data=form)
    assert plain.status_code == 303 and plain.location.endswith("?program=ws-feeding")
    shown = staff_client.get(plain.location).get_data(as_text=True)
    assert "is checked in to Feeding protocols" in shown and "Undo this check-in" not in shown
    with app.app_context():
        rows = db.session.execute(
            select(ProgramAttendance.attendee_id, ProgramItem.key).join(
                ProgramItem, ProgramItem.id == ProgramAttendance.item_id
            )
        ).all()
        assert sorted(key for _a, key in rows) == ["opening", "ws-feeding", "ws-feeding"]
        assert all(a.checked_in_at is None for a in db.session.execute(select(Attendee)).scalars())
        from necreg.program import program_specs

        figures = dashboard_stats(
            db.session, db.session.get(Event, event), (), program_specs(db.session, event)
        )
        attended = {key: n for key, _title, n, _capacity in figures.attendance}
        assert attended == {"opening": 1, "ws-feeding": 2, "ws-imaging": 0, "ws-family": 0}


def test_admins_add_change_and_take_out_program_items(app, client, admin_client, event):
    from organizer_fixtures import csrf_for

    page = admin_client.get("/organizer/program").get_data(as_text=True)
    assert "Feeding protocols" in page and "Tue Sep 08, 10:00–12:00" in page
    new = {
        "csrf_token": csrf_for(admin_client, "/organizer/program"), "key": "ws-ultrasound",
        "title": "Bowel ultrasound", "kind": "workshop", "starts_at": "2099-09-09T14:00",
        "ends_at": "2099-09-09T15:30", "room": "Room C", "capacity": "1", "credits": "1.5",
        "speakers": "A. Expert\nB. Expert",
    }  # fmt: skip
    assert admin_client.post("/organizer/program", data=new).status_code == 303
    again = admin_client.post("/organizer/program", data={**new, "title": "Twice"})
    assert again.status_code == 400 and "already an item" in again.get_data(as_text=True)
    wrong = admin_client.post("/organizer/program", data={**new, "key": "x", "ends_at": "soon"})
    assert wrong.status_code == 400 and "The end must be a date" in wrong.get_data(as_text=True)
    with app.app_context():
        item = db.session.execute(
            select(ProgramItem).where(ProgramItem.key == "ws-ultrasound")
        ).scalar_one()
        assert item.starts_at == datetime(EDITION_YEAR, 9, 9, 19, tzinfo=UTC)  # 14:00 in Chicago
        assert (item.capacity, item.credits, item.speakers) == (1, 150, ["A. Expert", "B. Expert"])
        assert db.session.execute(select(func.count(ProgramItem.id))).scalar_one() == 5
        e = db.session.get(Event, event)
        people = [register(db.session, e, person(n), code_prefix="N") for n in range(2)]
        for attendee in people:
            choose(db.session, attendee, ["ws-ultrasound"])
        db.session.commit()
        waiting = people[1].id
    assert signed(app, waiting) == {"ws-ultrasound": STATUS_WAITLISTED}
    path = "/organizer/program/ws-ultrasound"
    form = {**new, "csrf_token": csrf_for(admin_client, path), "capacity": "2"}
    assert admin_client.post(path, data=form).status_code == 303
    assert signed(app, waiting) == {"ws-ultrasound": STATUS_CONFIRMED}  # a place was added
    refused = admin_client.post(path, data={**form, "capacity": ""})
    assert refused.status_code == 400 and "cannot be taken away" in refused.get_data(as_text=True)
    # The landing page shows the change at once.
    assert "Bowel ultrasound" in client.get("/").get_data(as_text=True)
    remove = {"csrf_token": csrf_for(admin_client, "/organizer/program")}
    assert admin_client.post(f"{path}/remove", data=remove).status_code == 303
    assert admin_client.post("/organizer/program/opening/remove", data=remove).status_code == 303
    with app.app_context():
        kept = dict(db.session.execute(select(ProgramItem.key, ProgramItem.retired_at)).all())
    assert kept["ws-ultrasound"] is not None and "opening" not in kept  # retired; deleted
