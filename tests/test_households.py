"""Households (a lead and companions placed as one), attendance in person or online, and
consents with their time and version (issue 12)."""

# ruff: noqa: F811 - pytest fixtures imported from organizer_fixtures are used as arguments

import csv
import io
import shutil
import subprocess
from datetime import UTC, datetime

import pytest
from organizer_fixtures import admin_client, make_organizer  # noqa: F401
from sqlalchemy import delete, func, select

from conftest import csrf_token, fresh, registration_form
from necreg.extensions import db
from necreg.models import Attendee, AttendeeChange, Event, OutboxMessage
from necreg.registration import (
    Companion,
    NoRoom,
    Registrant,
    RegistrationError,
    add_companion,
    cancel,
    companions_of,
    register,
    restore,
    room_left,
    update_consents,
    update_details,
    waitlist_position,
)
from necreg.stats import event_stats

FAMILY = {"max_guests": 4, "infants_count": False, "consent_version": "2025-1"}


def lead(n: int, **over) -> Registrant:
    values = {
        "first_name": f"Lead{n}",
        "last_name": "Family",
        "email": f"lead{n}@example.org",
        "role": "family",
        "country": "US",
    }
    return Registrant(**{**values, **over})


def child(name: str = "Ava", band: str = "child") -> Companion:
    return Companion(name, "Family", band)


def sign_up(event, n, guests=(), **over) -> Attendee:
    attendee = register(db.session, event, lead(n, **over), code_prefix="NEC", guests=guests)
    db.session.commit()
    return attendee


def statuses(session, lead_attendee) -> list[str]:
    return [lead_attendee.status] + [c.status for c in companions_of(session, lead_attendee)]


# --- Parties ---------------------------------------------------------------------------


def test_a_party_gets_a_code_each_and_counts_the_places_it_takes(app, make_event):
    with app.app_context():
        event = make_event(**FAMILY)
        a = sign_up(event, 1, [child("Ava"), child("Noah", "infant")])
        party = companions_of(db.session, a)
        assert [(c.first_name, c.role, c.email, c.age_band) for c in party] == [
            ("Ava", "guest", "", "child"),
            ("Noah", "guest", "", "infant"),
        ]
        assert {c.party_id for c in party} == {a.id}
        assert len({a.code, *(c.code for c in party)}) == 3
        assert [c.takes_place for c in party] == [True, False]
        assert all(c.status == "confirmed" for c in party)
        stats = event_stats(db.session, event)
        # The infant takes no place: the counters move by the places taken.
        assert stats.attendees == 2
        assert stats.by_role["family"] == 1 and stats.by_role["guest"] == 1


def test_infants_take_a_place_where_the_event_says_so(app, make_event):
    with app.app_context():
        event = make_event(**{**FAMILY, "infants_count": True})
        a = sign_up(event, 1, [child("Noah", "infant")])
        assert companions_of(db.session, a)[0].takes_place
        assert event_stats(db.session, event).attendees == 2


def test_more_companions_than_allowed_are_refused_and_nothing_is_stored(app, make_event):
    with app.app_context():
        event = make_event(**{**FAMILY, "max_guests": 1})
        with pytest.raises(RegistrationError, match="at most 1 companions"):
            register(db.session, event, lead(1), code_prefix="NEC", guests=[child(), child()])
        db.session.rollback()
        assert db.session.execute(select(func.count(Attendee.id))).scalar_one() == 0


def test_a_party_that_does_not_fit_waits_whole_and_is_promoted_whole(app, make_event):
    with app.app_context():
        event = make_event(capacity=3, **FAMILY)
        first = sign_up(event, 1, [child("A")])  # 2 places
        second = sign_up(event, 2, [child("B"), child("C")])  # 3 places: 1 left
        assert statuses(db.session, second) == ["waitlisted"] * 3
        assert waitlist_position(db.session, second) == 1
        # A companion is where its lead is in line.
        assert waitlist_position(db.session, companions_of(db.session, second)[1]) == 1
        single = sign_up(event, 3)  # fits the one place left, although the party waits
        assert single.status == "confirmed"
        assert waitlist_position(db.session, second) == 1

        promoted = cancel(db.session, first)  # frees 2 places; 0 + 2 < 3: still waits
        db.session.commit()
        assert promoted == []
        assert statuses(db.session, first) == ["cancelled", "cancelled"]
        assert statuses(db.session, second) == ["waitlisted"] * 3
        promoted = cancel(db.session, single)  # now 3 free
        db.session.commit()
        assert promoted == [second]
        assert statuses(db.session, second) == ["confirmed"] * 3
        assert event_stats(db.session, event).attendees == 3


def test_promotion_passes_a_party_that_does_not_fit_for_a_smaller_one_behind(app, make_event):
    with app.app_context():
        event = make_event(capacity=2, **FAMILY)
        holder = sign_up(event, 1, [child()])
        big = sign_up(event, 2, [child(), child()])
        small = sign_up(event, 3)
        assert (big.status, small.status) == ("waitlisted", "waitlisted")
        cancel(db.session, companions_of(db.session, holder)[0])  # one place free
        db.session.commit()
        assert big.status == "waitlisted" and small.status == "confirmed"
        assert holder.status == "confirmed"  # the lead stays when a companion leaves


def test_a_companion_added_later_needs_a_place_and_never_splits_the_party(app, make_event):
    with app.app_context():
        event = make_event(capacity=2, **FAMILY)
        a = sign_up(event, 1, [child("A")])
        with pytest.raises(NoRoom, match="another companion"):
            add_companion(db.session, a, child("B"), code_prefix="NEC")
        db.session.rollback()
        assert len(companions_of(db.session, a)) == 1
        waiting = sign_up(event, 2)
        added = add_companion(db.session, waiting, child("W"), code_prefix="NEC")
        db.session.commit()
        assert added.status == "waitlisted" and added.party_id == waiting.id
        actions = db.session.execute(
            select(AttendeeChange.action).where(AttendeeChange.attendee_id == added.id)
        ).scalars()
        assert list(actions) == ["add"]


def test_cancelling_a_lead_cancels_the_party_and_restore_brings_it_back(app, make_event):
    with app.app_context():
        event = make_event(capacity=10, **FAMILY)
        a = sign_up(event, 1, [child("A"), child("B")])
        left_before = cancel(db.session, companions_of(db.session, a)[1])  # B leaves first
        db.session.commit()
        assert left_before == []
        cancel(db.session, a)
        db.session.commit()
        assert statuses(db.session, a) == ["cancelled", "cancelled", "cancelled"]
        assert event_stats(db.session, event).attendees == 0
        restore(db.session, a, organizer_id=None)
        db.session.commit()
        # A comes back with its lead; B, who had left before, stays away.
        assert statuses(db.session, a) == ["confirmed", "confirmed", "cancelled"]
        assert event_stats(db.session, event).attendees == 2


def test_the_messages_list_the_party(app, make_event):
    with app.app_context():
        event = make_event(**FAMILY)
        a = sign_up(event, 1, [child("Ava"), child("Noah", "infant")])
        party = companions_of(db.session, a)
        message = db.session.execute(
            select(OutboxMessage).where(OutboxMessage.attendee_id == a.id)
        ).scalar_one()
        assert message.to_address == a.email
        for c in party:
            assert c.code in message.text_body and c.code in message.html_body
        assert "Noah Family (Infant, no place needed)" in message.text_body
        # Companions have no e-mail: nothing is sent to them.
        ids = [c.id for c in party]
        sent = select(func.count(OutboxMessage.id)).where(OutboxMessage.attendee_id.in_(ids))
        assert db.session.execute(sent).scalar_one() == 0


def test_a_lead_deleted_takes_its_companions(app, make_event):
    with app.app_context():
        event = make_event(**FAMILY)
        a = sign_up(event, 1, [child("A")])
        db.session.execute(delete(Attendee).where(Attendee.id == a.id))
        db.session.commit()
        assert db.session.execute(select(func.count(Attendee.id))).scalar_one() == 0
        assert event_stats(db.session, event).attendees == 0


# --- Attendance ----------------------------------------------------------------------------


def test_in_person_and_online_places_are_capped_apart(app, make_event):
    with app.app_context():
        event = make_event(capacity=1, virtual=True, virtual_capacity=1, **FAMILY)
        here = sign_up(event, 1)
        online = sign_up(event, 2, attendance="virtual")
        assert (here.status, online.status) == ("confirmed", "confirmed")
        assert sign_up(event, 3).status == "waitlisted"
        assert sign_up(event, 4, attendance="virtual").status == "waitlisted"
        stats = event_stats(db.session, event)
        assert stats.by_attendance == {"in_person": 1, "virtual": 1}
        room = room_left(db.session, event)
        assert (room.places_left, room.virtual_left) == (0, 0)


def test_switching_attendance_moves_places_for_the_whole_party(app, make_event):
    with app.app_context():
        event = make_event(capacity=2, virtual=True, virtual_capacity=2, **FAMILY)
        a = sign_up(event, 1, [child()])
        other = sign_up(event, 2, attendance="virtual")
        with pytest.raises(NoRoom, match="online") as refused:
            update_details(db.session, a, {"attendance": "virtual"})
        assert refused.value.pool == "virtual"
        db.session.rollback()
        assert [c.attendance for c in companions_of(db.session, a)] == ["in_person"]
        waiting = sign_up(event, 3)  # in person is full: waits
        assert waiting.status == "waitlisted"
        cancel(db.session, other)
        db.session.commit()
        update_details(db.session, a, {"attendance": "virtual"})
        db.session.commit()
        assert [c.attendance for c in companions_of(db.session, a)] == ["virtual"]
        # The in-person places freed go to whoever waited.
        assert fresh(app, waiting).status == "confirmed"
        assert event_stats(db.session, event).by_attendance == {"in_person": 1, "virtual": 2}


def test_an_event_in_person_only_refuses_online_attendance(app, make_event):
    with app.app_context():
        event = make_event()
        with pytest.raises(RegistrationError, match="in person only"):
            register(db.session, event, lead(1, attendance="virtual"), code_prefix="NEC")
        db.session.rollback()
        assert db.session.execute(select(func.count(Attendee.id))).scalar_one() == 0


def test_the_join_link_reaches_only_confirmed_online_attendees(app, make_event):
    url = "https://meet.example.org/nec"
    with app.app_context():
        event = make_event(virtual=True, virtual_capacity=1, join_url=url, **FAMILY)
        online = sign_up(event, 1, attendance="virtual")
        waiting = sign_up(event, 2, attendance="virtual")
        here = sign_up(event, 3)
        bodies = {
            a.id: db.session.execute(
                select(OutboxMessage.text_body).where(OutboxMessage.attendee_id == a.id)
            ).scalar_one()
            for a in (online, waiting, here)
        }
        assert url in bodies[online.id]
        assert url not in bodies[waiting.id] and url not in bodies[here.id]
        tokens = {a.id: a.token for a in (online, waiting, here)}
    client = app.test_client()
    assert url in client.get(f"/registration/{tokens[online.id]}").get_data(as_text=True)
    for other in (waiting, here):
        assert url not in client.get(f"/registration/{tokens[other.id]}").get_data(as_text=True)


# --- Consents ------------------------------------------------------------------------------


def test_consents_are_stored_with_their_time_and_version(app, make_event):
    when = datetime(2025, 5, 1, 12, tzinfo=UTC)
    with app.app_context():
        event = make_event(**FAMILY)
        a = register(
            db.session,
            event,
            lead(1, photo_consent=True),
            code_prefix="NEC",
            guests=[child()],
            now=when,
        )
        db.session.commit()
        assert (a.consent_version, a.photo_consent_at, a.photo_consent_version) == (
            "2025-1",
            when,
            "2025-1",
        )
        assert a.list_consent_at is None and a.list_consent_version is None
        kid = companions_of(db.session, a)[0]
        assert kid.photo_consent_at == when  # the lead decides for the companions

        event.consent_version = "2026-1"
        db.session.commit()
        changes = update_consents(db.session, a, {"photo": False, "list": True})
        db.session.commit()
        assert changes == {"consent_photo": [True, False], "consent_list": [False, True]}
        assert a.photo_consent_at is None and kid.photo_consent_at is None
        assert a.list_consent_version == "2026-1"
        entry = db.session.execute(
            select(AttendeeChange).where(AttendeeChange.action == "consent")
        ).scalar_one()
        assert entry.changes == {"consent_photo": [True, False], "consent_list": [False, True]}


# --- The form and the self-service page -------------------------------------------------------


def family_form(token: str, **over) -> dict:
    return registration_form(
        csrf_token=token,
        role="family",
        **{
            "guests-0-first_name": "Ava",
            "guests-0-last_name": "Núñez",
            "guests-0-age_band": "child",
            "guests-1-first_name": "Noah",
            "guests-1-last_name": "Núñez",
            "guests-1-age_band": "infant",
            **over,
        },
    )


def count(app, model=Attendee) -> int:
    with app.app_context():
        return db.session.execute(select(func.count(model.id))).scalar_one()


def test_the_form_registers_a_party_and_shows_three_codes(app, client, make_event):
    make_event(**FAMILY)
    page = client.get("/register").get_data(as_text=True)
    assert 'name="guests-3-age_band"' in page and 'name="guests-4-age_band"' not in page
    response = client.post("/register", data=family_form(csrf_token(client), consent_photo="y"))
    assert response.status_code == 303
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    with app.app_context():
        people = db.session.execute(select(Attendee).order_by(Attendee.id)).scalars().all()
        assert [p.role for p in people] == ["family", "guest", "guest"]
        assert people[0].photo_consent_at is not None
        for p in people:
            assert p.code in page
    assert "Ava Núñez" in page and "no place needed" in page


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"guests-0-age_band": ""}, "Please choose adult, child or infant."),
        ({"guests-1-age_band": "teen"}, "Please choose adult, child or infant."),
        ({"guests-0-first_name": ""}, "Please enter your companion&#39;s first name."),
        ({"guests-1-last_name": "x\u0007"}, "control characters"),
        ({"attendance": "virtual"}, None),  # in person only: the field is ignored
    ],
)
def test_bad_companions_are_refused_at_the_field_and_nothing_is_stored(
    app, client, make_event, over, message
):
    make_event(**FAMILY)
    response = client.post("/register", data=family_form(csrf_token(client), **over))
    if message is None:
        assert response.status_code == 303
        with app.app_context():
            assert (
                db.session.execute(select(Attendee.attendance)).scalars().all() == ["in_person"] * 3
            )
        return
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert message in page and 'class="error-summary"' in page
    assert count(app) == 0 and count(app, OutboxMessage) == 0


def test_rows_past_max_guests_are_ignored(app, client, make_event):
    make_event(**{**FAMILY, "max_guests": 1})
    response = client.post("/register", data=family_form(csrf_token(client)))
    assert response.status_code == 303
    assert count(app) == 2


def test_an_attendance_not_offered_is_refused(app, client, make_event):
    make_event(virtual=True, **FAMILY)
    form = registration_form(csrf_token=csrf_token(client), attendance="on_the_moon")
    response = client.post("/register", data=form)
    assert response.status_code == 400
    assert "Please choose in person or online." in response.get_data(as_text=True)
    assert count(app) == 0


def test_self_service_adds_and_removes_companions(app, client, make_event):
    make_event(capacity=10, **FAMILY)
    client.post("/register", data=registration_form(csrf_token=csrf_token(client)))
    with app.app_context():
        token = db.session.execute(select(Attendee.token)).scalar_one()
    path = f"/registration/{token}"
    page = client.get(path).get_data(as_text=True)
    assert "Add a companion" in page
    form = {
        "csrf_token": csrf_token(client, path),
        "guests-0-first_name": "Ava",
        "guests-0-last_name": "Z",
        "guests-0-age_band": "child",
    }
    bad = client.post(f"{path}/companions", data={**form, "guests-0-age_band": ""})
    assert bad.status_code == 400 and count(app) == 1
    assert client.post(f"{path}/companions", data=form).status_code == 303
    with app.app_context():
        ava = db.session.execute(select(Attendee).where(Attendee.role == "guest")).scalar_one()
        ava_id, ava_code = ava.id, ava.code
    page = client.get(path).get_data(as_text=True)
    assert ava_code in page
    removed = client.post(
        f"{path}/companions/{ava_id}/remove", data={"csrf_token": csrf_token(client, path)}
    )
    assert removed.status_code == 303
    with app.app_context():
        assert db.session.get(Attendee, ava_id).status == "cancelled"
        assert event_stats(db.session, db.session.get(Event, 1)).attendees == 1


def test_a_companion_of_another_party_cannot_be_removed(app, client, make_event):
    make_event(**FAMILY)
    client.post("/register", data=family_form(csrf_token(client)))
    token2 = csrf_token(client)
    client.post("/register", data=registration_form(csrf_token=token2, email="b@example.org"))
    with app.app_context():
        other = db.session.execute(
            select(Attendee).where(Attendee.email == "b@example.org")
        ).scalar_one()
        ava = db.session.execute(select(Attendee).where(Attendee.first_name == "Ava")).scalar_one()
        path, ava_id = f"/registration/{other.token}", ava.id
    response = client.post(
        f"{path}/companions/{ava_id}/remove", data={"csrf_token": csrf_token(client, path)}
    )
    assert response.status_code == 404
    with app.app_context():
        assert db.session.get(Attendee, ava_id).status == "confirmed"


def test_self_service_switches_attendance_and_consents(app, client, make_event):
    make_event(virtual=True, **FAMILY)
    client.post("/register", data=family_form(csrf_token(client)))
    with app.app_context():
        lead_row = db.session.execute(
            select(Attendee).where(Attendee.role == "family")
        ).scalar_one()
        path = f"/registration/{lead_row.token}"
    form = {
        "csrf_token": csrf_token(client, path),
        "first_name": "Zoë",
        "last_name": "Núñez-李",
        "role": "family",
        "institution": "",
        "country": "US",
        "badge_name": "",
        "attendance": "virtual",
        "consent_list": "y",
    }
    assert client.post(path, data=form).status_code == 303
    with app.app_context():
        people = db.session.execute(select(Attendee).order_by(Attendee.id)).scalars().all()
        assert [p.attendance for p in people] == ["virtual"] * 3
        assert people[0].list_consent_at is not None
        stats = event_stats(db.session, db.session.get(Event, people[0].event_id))
        assert stats.by_attendance == {"in_person": 0, "virtual": 2}


# --- Badges -----------------------------------------------------------------------------------


def test_the_badge_csv_has_party_attendance_and_photo_consent(
    app, client, admin_client, make_event
):
    make_event(**FAMILY)
    response = client.post("/register", data=family_form(csrf_token(client)))
    assert response.status_code == 303
    text = admin_client.get("/organizer/export/badges.csv").get_data(as_text=True)
    rows = list(csv.DictReader(io.StringIO(text)))
    by_name = {r["first_name"]: r for r in rows}
    lead_code = by_name["Zoë"]["code"]
    assert [by_name[n]["party"] for n in ("Zoë", "Ava", "Noah")] == ["", lead_code, lead_code]
    assert {r["role"] for r in rows} == {"family", "guest"}
    assert {r["attendance"] for r in rows} == {"in_person"}
    assert {r["photo_consent"] for r in rows} == {"no"}


@pytest.mark.skipif(not shutil.which("pdftotext"), reason="pdftotext needed (poppler-utils)")
def test_the_badge_pdf_has_a_badge_per_place_with_the_party_and_no_photos_marked(
    app, client, admin_client, make_event, tmp_path
):
    make_event(**FAMILY)
    # Nobody in this party agreed to photos (the lead decides for the companions).
    form = family_form(csrf_token(client))
    assert client.post("/register", data=form).status_code == 303
    response = admin_client.get("/organizer/export/badges.pdf?layout=badge-4x3")
    assert response.status_code == 200
    (tmp_path / "b.pdf").write_bytes(response.get_data())
    pages = subprocess.run(
        ["pdftotext", "-layout", str(tmp_path / "b.pdf"), "-"], capture_output=True, text=True
    ).stdout.split("\f")
    pages = [p for p in pages if p.strip()]
    # Two badges: the lead and the child; the infant takes no place, so has none.
    assert len(pages) == 2
    with app.app_context():
        lead_code = db.session.execute(
            select(Attendee.code).where(Attendee.role == "family")
        ).scalar_one()
    assert "Ava" in pages[1] and f"Party of {lead_code}" in pages[1]
    assert all("NO PHOTOS" in page for page in pages)
    assert "Noah" not in "".join(pages)


def test_the_organizer_sees_the_party_and_corrects_a_companion(
    app, client, admin_client, make_event
):
    make_event(**FAMILY)
    assert client.post("/register", data=family_form(csrf_token(client))).status_code == 303
    with app.app_context():
        people = db.session.execute(select(Attendee).order_by(Attendee.id)).scalars().all()
        lead_row, ava = people[0], people[1]
        lead_id, ava_id, lead_code = lead_row.id, ava.id, lead_row.code
    page = admin_client.get(f"/organizer/attendees/{lead_id}").get_data(as_text=True)
    assert "Ava Núñez" in page and "Noah Núñez" in page and "(no place)" in page
    assert "<strong>no photos</strong>" in page
    path = f"/organizer/attendees/{ava_id}"
    page = admin_client.get(path).get_data(as_text=True)
    assert f"({lead_code})" in page and 'name="email"' not in page
    from organizer_fixtures import csrf_for

    form = {
        "csrf_token": csrf_for(admin_client, path),
        "first_name": "Ava-Marie",
        "last_name": "Núñez",
        "institution": "",
        "country": "US",
        "badge_name": "",
    }
    assert admin_client.post(path, data=form).status_code == 303
    with app.app_context():
        ava = db.session.get(Attendee, ava_id)
        assert (ava.first_name, ava.role, ava.email) == ("Ava-Marie", "guest", "")


def test_the_directory_for_attendees_lists_only_those_who_agreed(
    app, client, admin_client, make_event
):
    make_event(**FAMILY)
    listed = family_form(csrf_token(client), consent_list="y", institution="=cmd|x")
    assert client.post("/register", data=listed).status_code == 303
    unlisted = registration_form(csrf_token=csrf_token(client), email="no@example.org")
    unlisted["first_name"] = "Hidden"
    assert client.post("/register", data=unlisted).status_code == 303
    response = admin_client.get("/organizer/export/directory.csv")
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
    assert rows == [
        {
            "first_name": "Zoë",
            "last_name": "Núñez-李",
            "institution": "'=cmd|x",
            "country": "United States",
            "role": "Patient-family",
        }
    ]


def test_an_online_cap_lowered_below_the_places_taken_frees_none_until_under_it(app, make_event):
    from necreg.events import update_settings

    with app.app_context():
        event = make_event(capacity=10, virtual=True, virtual_capacity=3, **FAMILY)
        online = [sign_up(event, n, attendance="virtual") for n in range(3)]
        waiting = sign_up(event, 9, attendance="virtual")
        here = sign_up(event, 10)  # in person: its place is not the online cap's
        assert waiting.status == "waitlisted" and here.status == "confirmed"
        update_settings(db.session, event, {"virtual_capacity": 1})
        db.session.commit()
        cancel(db.session, online[0])  # 2 online for a cap of 1: the place goes away
        db.session.commit()
        assert fresh(app, waiting).status == "waitlisted"
        cancel(db.session, online[1])  # 1 online for a cap of 1: still full
        db.session.commit()
        assert fresh(app, waiting).status == "waitlisted"
        cancel(db.session, online[2])  # now a place is free
        db.session.commit()
        assert fresh(app, waiting).status == "confirmed"
        assert room_left(db.session, event).virtual_left == 0
        assert room_left(db.session, event).places_left == 9


def test_no_companion_is_added_after_registration_closes_nor_restored_past_the_limit(
    app, make_event
):
    from necreg.registration import RegistrationClosed

    with app.app_context():
        event = make_event(**{**FAMILY, "max_guests": 1})
        a = sign_up(event, 1, [child("A")])
        first = companions_of(db.session, a)[0]
        cancel(db.session, first)
        db.session.commit()
        add_companion(db.session, a, child("B"), code_prefix="NEC")
        db.session.commit()
        with pytest.raises(RegistrationError, match="at most 1 companions"):
            restore(db.session, first)
        db.session.rollback()
        event.registration_closes_at = datetime(2020, 1, 1, tzinfo=UTC)
        db.session.commit()
        with pytest.raises(RegistrationClosed):
            add_companion(db.session, a, child("C"), code_prefix="NEC")
        db.session.rollback()
        assert len(companions_of(db.session, a)) == 2
