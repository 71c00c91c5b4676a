"""necreg seed-demo: realistic synthetic registrations, fast, unique, within the caps."""

from __future__ import annotations

from sqlalchemy import func, select

from necreg.extensions import db
from necreg.models import Attendee
from necreg.seed import seed_demo


def _count(*where) -> int:
    return db.session.execute(select(func.count()).select_from(Attendee).where(*where)).scalar_one()


def test_seed_demo_makes_n_plausible_unique_registrations(app, runner, make_event, make_attendee):
    event = make_event()
    make_attendee(event)
    result = runner.invoke(args=["seed-demo", "--attendees", "2000", "--seed", "7"])
    assert result.exit_code == 0, result.output
    assert "Added 2000 synthetic registrations" in result.output
    with app.app_context():
        assert _count() == 2001
        for column in (Attendee.code, Attendee.token, func.lower(Attendee.email)):
            assert (
                db.session.execute(select(func.count(func.distinct(column)))).scalar_one() == 2001
            )
        by_role = select(Attendee.role, func.count()).group_by(Attendee.role)
        roles = dict(db.session.execute(by_role).all())
        assert set(roles) == {"clinician", "scientist", "family", "advocate"}
        assert roles["clinician"] > roles["scientist"] > roles["family"] > roles["advocate"]
        assert (
            db.session.execute(select(func.count(func.distinct(Attendee.institution)))).scalar_one()
            > 40
        )
        assert (
            db.session.execute(select(func.count(func.distinct(Attendee.country)))).scalar_one()
            > 20
        )
        first, last = db.session.execute(
            select(func.min(Attendee.created_at), func.max(Attendee.created_at))
        ).one()
        assert (last - first).days > 90  # spread over months
        assert 0 < _count(Attendee.status == "cancelled") < 200


def test_seed_respects_capacity(app, make_event):
    with app.app_context():
        event = make_event(capacity=100, capacity_by_role={"family": 5})
        seed_demo(db.session, event, 500, code_prefix="NEC", seed=1)
        db.session.commit()
        assert _count(Attendee.status == "confirmed") == 100
        assert _count(Attendee.status == "confirmed", Attendee.role == "family") <= 5
        assert _count(Attendee.status == "waitlisted") > 0


def test_seed_twice_does_not_collide(app, make_event):
    with app.app_context():
        event = make_event()
        seed_demo(db.session, event, 300, code_prefix="NEC", seed=3)
        seed_demo(db.session, event, 300, code_prefix="NEC", seed=3)
        db.session.commit()
        assert _count() == 600


def test_seed_without_event_is_a_clear_error(app, runner):
    result = runner.invoke(args=["seed-demo", "--attendees", "5"])
    assert result.exit_code == 1
    assert "no current event" in result.output


def test_seed_makes_households_online_attendees_and_consents_within_every_cap(app, make_event):
    from necreg.registration import room_left
    from necreg.stats import dashboard_stats

    with app.app_context():
        event = make_event(
            capacity=150, capacity_by_role={"family": 30}, virtual=True, virtual_capacity=20,
            max_guests=4, infants_count=False, consent_version="v1",
        )  # fmt: skip
        seed_demo(db.session, event, 600, code_prefix="NEC", seed=5)
        db.session.commit()
        people = db.session.execute(select(Attendee)).scalars().all()
        leads = {a.id: a for a in people if a.party_id is None}
        companions = [a for a in people if a.party_id is not None]
        assert companions and all(leads[c.party_id].role == "family" for c in companions)
        for c in companions:  # a party is never split, and follows its lead
            lead = leads[c.party_id]
            assert (c.status, c.attendance, c.role, c.email) == (
                lead.status, lead.attendance, "guest", "",
            )  # fmt: skip
            assert c.takes_place == (c.age_band != "infant")
        placed = [a for a in people if a.status == "confirmed" and a.takes_place]
        in_person = [a for a in placed if a.attendance == "in_person"]
        assert len(in_person) <= 150
        assert sum(a.role == "family" for a in in_person) <= 30
        assert sum(a.attendance == "virtual" for a in placed) <= 20
        # The tallies counted afresh after the bulk load say the same.
        figures = dashboard_stats(db.session, event)
        assert figures.public.by_attendance == {
            "in_person": len(in_person),
            "virtual": len(placed) - len(in_person),
        }
        assert room_left(db.session, event).places_left == 150 - len(in_person)
        registrants = list(leads.values())
        photos = sum(a.photo_consent_at is not None for a in registrants) / len(registrants)
        assert 0.75 < photos < 0.95
        assert {a.photo_consent_version for a in registrants if a.photo_consent_at} == {"v1"}
