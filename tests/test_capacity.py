"""Capacity rules: confirmed while there is room, waitlisted after, promoted in order."""

from necreg.extensions import db
from necreg.models import Attendee
from necreg.registration import (
    AlreadyCancelled,
    NoRoom,
    Registrant,
    cancel,
    register,
    restore,
    update_details,
    waitlist_position,
)


def person(n: int, role: str = "clinician") -> Registrant:
    return Registrant(
        first_name=f"P{n}", last_name="Test", email=f"p{n}@example.org", role=role, country="US"
    )


def sign_up(event, n, role="clinician") -> Attendee:
    attendee = register(db.session, event, person(n, role), code_prefix="NEC")
    db.session.commit()
    return attendee


def test_event_cap_waitlists_and_cancel_promotes_in_order(make_event):
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


def test_role_cap_passes_over_a_full_role(make_event):
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


def test_cancelled_stays_cancelled_and_restore_rechecks_room(make_event):
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


def test_role_change_into_a_full_role_is_refused(make_event):
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
