"""Capacity rules: confirmed while there is room, waitlisted after, promoted in order."""

from sqlalchemy.orm import Session

from conftest import csrf_token, registration_form
from necreg.extensions import db
from necreg.models import Attendee, Event
from necreg.registration import (
    AlreadyCancelled,
    NoRoom,
    Registrant,
    cancel,
    lock_event,
    register,
    restore,
    room_left,
    update_details,
    waitlist_position,
)
from necreg.speed.memo import memo_of


def person(n: int, role: str = "clinician") -> Registrant:
    return Registrant(
        first_name=f"P{n}", last_name="Test", email=f"p{n}@example.org", role=role, country="US"
    )


def sign_up(event, n, role="clinician") -> Attendee:
    attendee = register(db.session, event, person(n, role), code_prefix="NEC")
    db.session.commit()
    return attendee


def test_event_cap_waitlists_and_cancel_promotes_in_order(app, make_event):
    with app.app_context():
        event = make_event(capacity=2)
        a, b, c, d = (sign_up(event, n) for n in range(4))
        assert [x.status for x in (a, b, c, d)] == [
            "confirmed",
            "confirmed",
            "waitlisted",
            "waitlisted",
        ]
        assert waitlist_position(db.session, c) == 1
        assert waitlist_position(db.session, d) == 2
        assert waitlist_position(db.session, a) is None

        promoted = cancel(db.session, a)
        db.session.commit()
        assert promoted == [c]
        assert (c.status, d.status) == ("confirmed", "waitlisted")
        assert waitlist_position(db.session, d) == 1


def test_role_cap_passes_over_a_full_role(app, make_event):
    with app.app_context():
        event = make_event(capacity=3, capacity_by_role={"family": 1})
        f1 = sign_up(event, 1, "family")
        f2 = sign_up(event, 2, "family")
        s1 = sign_up(event, 3, "scientist")
        s2 = sign_up(event, 4, "scientist")
        s3 = sign_up(event, 5, "scientist")
        assert [x.status for x in (f1, f2, s1, s2, s3)] == [
            "confirmed", "waitlisted", "confirmed", "confirmed", "waitlisted",
        ]  # fmt: skip
        # A scientist leaves: f2 waited longer, but family is full, so s3 gets the place.
        assert cancel(db.session, s1) == [s3]
        db.session.commit()
        assert f2.status == "waitlisted"


def test_cancelled_stays_cancelled_and_restore_rechecks_room(app, make_event):
    with app.app_context():
        event = make_event(capacity=1)
        a = sign_up(event, 1)
        cancel(db.session, a)
        db.session.commit()
        try:
            cancel(db.session, a)
        except AlreadyCancelled:
            db.session.rollback()
        else:
            raise AssertionError("a second cancel must be refused")
        b = sign_up(event, 2)
        assert b.status == "confirmed"
        restore(db.session, a, organizer_id=None)
        db.session.commit()
        assert a.status == "waitlisted"


def test_role_change_into_a_full_role_is_refused(app, make_event):
    with app.app_context():
        event = make_event(capacity_by_role={"family": 1})
        sign_up(event, 1, "family")
        a = sign_up(event, 2, "clinician")
        try:
            update_details(db.session, a, {"role": "family"})
        except NoRoom:
            db.session.rollback()
        else:
            raise AssertionError("moving into a full role must be refused")
        assert db.session.get(Attendee, a.id).role == "clinician"


# --- places left and the waiting list, before anyone submits --------------------------------


def test_room_left_counts_places_per_role(app, make_event, make_attendee):
    with app.app_context():
        event = make_event(capacity=5, capacity_by_role={"family": 2, "advocate": 4})
        make_attendee(event, role="family")
        make_attendee(event, role="family")
        make_attendee(event, role="clinician")
        make_attendee(event, role="clinician", status="waitlisted")
        make_attendee(event, role="clinician", status="cancelled")
        room = room_left(db.session, event)
        assert room.places_left == 2
        assert room.by_role == {"clinician": 2, "scientist": 2, "family": 0, "advocate": 2}
        assert room.full_roles == ["family"]
        unlimited = room_left(db.session, make_event(slug="other", is_current=False))
        assert unlimited.places_left is None and unlimited.full_roles == []


def test_few_places_left_are_announced_on_landing_and_form(app, client, make_event, make_attendee):
    event = make_event(capacity=10)
    for _ in range(7):
        make_attendee(event)
    for path in ("/", "/register"):
        assert "Only 3 places left." in client.get(path).get_data(as_text=True)
    app.config["PLACES_LEFT_THRESHOLD"] = 3
    memo_of(app).clear()  # settings change only with a restart, which starts empty
    for path in ("/", "/register"):
        assert "places left" not in client.get(path).get_data(as_text=True)


def test_plenty_of_room_says_nothing(client, make_event):
    make_event(capacity=300)
    for path in ("/", "/register"):
        page = client.get(path).get_data(as_text=True)
        assert "left." not in page and "waiting list" not in page


def test_full_event_says_waiting_list_before_submitting(client, make_event, make_attendee):
    event = make_event(capacity=1)
    make_attendee(event)
    for path in ("/", "/register"):
        assert "The symposium is full." in client.get(path).get_data(as_text=True)
    response = client.post("/register", data=registration_form(csrf_token=csrf_token(client)))
    assert response.status_code == 303
    assert "You are on the waiting list" in client.get(response.location).get_data(as_text=True)


def test_full_role_is_named_on_the_form_without_javascript(client, make_event, make_attendee):
    event = make_event(capacity_by_role={"family": 1, "scientist": 30})
    make_attendee(event, role="family")
    page = client.get("/register").get_data(as_text=True)
    assert "Full: <strong>Patient-family</strong>." in page
    assert "Registrations for this role join the waiting list." in page
    assert '<option value="family">Patient-family (full: joins the waiting list)</option>' in page
    assert '<option value="scientist">Scientist (30 places left)</option>' not in page  # >= 20
    assert 'data-full-roles="family"' in page
    assert "js/role-note.js" in page
    script = client.get("/static/js/role-note.js")
    assert script.status_code == 200 and b"role-waitlist-note" in script.data
    script.close()
    landing = client.get("/").get_data(as_text=True)
    assert "Full: <strong>Patient-family</strong>." in landing


def test_role_places_left_in_the_role_list(client, make_event):
    make_event(capacity_by_role={"scientist": 2})
    page = client.get("/register").get_data(as_text=True)
    assert '<option value="scientist">Scientist (2 places left)</option>' in page
    assert "Only" not in page  # the event itself is unlimited


def test_a_waiting_person_moving_to_a_role_with_room_is_promoted(app, make_event):
    with app.app_context():
        event = make_event(capacity_by_role={"family": 1})
        sign_up(event, 1, "family")
        waiting = sign_up(event, 2, "family")
        assert waiting.status == "waitlisted"
        update_details(db.session, waiting, {"role": "advocate"})
        db.session.commit()
        assert waiting.status == "confirmed"


def test_a_role_change_is_decided_on_the_status_as_it_is_under_the_lock(app, make_event):
    """The registrant's page was loaded while they waited; meanwhile they were promoted.
    Moving into a full role must then be refused, as for any confirmed attendee."""
    with app.app_context():
        event = make_event(capacity_by_role={"family": 1, "clinician": 1})
        sign_up(event, 1, "family")
        leaving = sign_up(event, 2, "clinician")
        waiting = sign_up(event, 3, "clinician")
        leaving_id, waiting_id = leaving.id, waiting.id
        assert waiting.status == "waitlisted"  # loaded into this session
        # Promoted by another connection; this session still holds the stale "waitlisted" row.
        table = Attendee.__table__
        with db.engine.begin() as other:
            for attendee_id, status in ((leaving_id, "cancelled"), (waiting_id, "confirmed")):
                other.execute(table.update().where(table.c.id == attendee_id).values(status=status))
        assert waiting.status == "waitlisted"
        try:
            update_details(db.session, waiting, {"role": "family"})
        except NoRoom:
            db.session.rollback()
        else:
            raise AssertionError("a confirmed attendee moved into a full role")
        assert db.session.get(Attendee, waiting_id).role == "clinician"


def test_registration_counts_against_the_caps_in_force_under_the_lock(app, make_event):
    with app.app_context():
        event = make_event(capacity=5)
        sign_up(event, 1)
        assert event.capacity == 5  # loaded into this session
        # An organizer lowers the cap on another connection after this session read the event.
        with Session(db.engine) as other:
            other.get(Event, event.id).capacity = 1
            other.commit()
        assert event.capacity == 5  # still the stale value here
        assert sign_up(event, 2).status == "waitlisted"


def test_registering_leaves_the_event_updated_at_alone(app, make_event):
    with app.app_context():
        event = make_event()
        before = event.updated_at
        sign_up(event, 1)
        db.session.expire_all()
        assert db.session.get(Event, event.id).updated_at == before


def test_changes_made_before_taking_the_lock_are_kept(app, make_event):
    with app.app_context():
        event = make_event(capacity=5)
        assert event.sessions == 40  # loaded into this session
        event.sessions = 41  # not flushed yet
        lock_event(db.session, event)
        assert (event.sessions, event.capacity) == (41, 5)
        db.session.commit()
        db.session.expire_all()
        assert db.session.get(Event, event.id).sessions == 41
