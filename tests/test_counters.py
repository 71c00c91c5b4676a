"""The trigger-kept counters always equal a fresh COUNT(*), whatever changes the rows."""

import random
import threading
from datetime import UTC

from flask_migrate import upgrade
from sqlalchemy import delete, func, select, text, update

from necreg import create_app
from necreg.extensions import db
from necreg.models import Attendee, Event, PlacePool, PlaceSlot, Tally, utcnow
from necreg.places import pool_caps
from necreg.registration import (
    Registrant,
    RegistrationError,
    cancel,
    register,
    restore,
    update_details,
)
from necreg.seed import seed_demo
from necreg.stats import dashboard_stats, event_stats


def fresh_counts(session, event_id: int) -> tuple[dict[str, int], int]:
    active = (Attendee.event_id == event_id) & (Attendee.status == "confirmed")
    by_role = dict(
        session.execute(
            select(Attendee.role, func.count()).where(active).group_by(Attendee.role)
        ).all()
    )
    key = func.lower(func.trim(Attendee.institution))
    institutions = session.execute(
        select(func.count(func.distinct(key))).where(active, func.trim(Attendee.institution) != "")
    ).scalar_one()
    return by_role, institutions


def fresh_breakdowns(session, event_id: int) -> dict:
    """The dashboard's breakdowns counted afresh over every registration of the event."""
    of_event = Attendee.event_id == event_id
    active = of_event & (Attendee.status == "confirmed")
    grouped = lambda column, where: dict(  # noqa: E731 - a local shorthand
        session.execute(select(column, func.count()).where(where).group_by(column)).all()
    )
    days = {}
    for created in session.execute(select(Attendee.created_at).where(of_event)).scalars():
        day = created.astimezone(UTC).date()
        days[day] = days.get(day, 0) + 1
    return {
        "by_status": grouped(Attendee.status, of_event),
        "countries": grouped(Attendee.country, active),
        "early_career": session.execute(
            select(func.count()).where(active, Attendee.early_career.is_(True))
        ).scalar_one(),
        "checked_in": session.execute(
            select(func.count()).where(active, Attendee.checked_in_at.is_not(None))
        ).scalar_one(),
        "per_day": sorted(days.items()),
    }


def assert_places_exact(session, event: Event) -> None:
    """Each pool's slots: one taken per active attendee it covers, free ones up to its cap."""
    pools = session.execute(select(PlacePool).where(PlacePool.event_id == event.id)).scalars()
    wanted = pool_caps(event)
    pools = list(pools)
    assert {p.name: p.capacity for p in pools} == wanted
    for pool in pools:
        active = select(Attendee.id).where(
            Attendee.event_id == event.id, Attendee.status == "confirmed"
        )
        if pool.name != "event":
            active = active.where(Attendee.role == pool.name.removeprefix("role:"))
        holders = session.execute(
            select(PlaceSlot.attendee_id).where(
                PlaceSlot.pool_id == pool.id, PlaceSlot.attendee_id.is_not(None)
            )
        ).scalars()
        holders = sorted(holders)
        assert holders == sorted(session.execute(active).scalars()), pool.name
        free = session.execute(
            select(func.count()).where(
                PlaceSlot.pool_id == pool.id, PlaceSlot.attendee_id.is_(None)
            )
        ).scalar_one()
        assert free == max(pool.capacity - len(holders), 0), pool.name


def assert_exact(session, event: Event) -> None:
    session.expire_all()
    stats = event_stats(session, event)
    by_role, institutions = fresh_counts(session, event.id)
    assert {r: n for r, n in stats.by_role.items() if n} == by_role
    assert stats.institutions == institutions
    assert stats.attendees == sum(by_role.values())
    figures = dashboard_stats(session, event, top=1000)
    fresh = fresh_breakdowns(session, event.id)
    assert {s: n for s, n in figures.by_status.items() if n} == fresh["by_status"]
    assert dict(figures.top_countries) == fresh["countries"]
    assert figures.early_career == fresh["early_career"]
    assert figures.checked_in == fresh["checked_in"]
    assert figures.per_day == fresh["per_day"]
    assert sum(n for _name, n in figures.top_institutions) == sum(
        n for n in fresh_institution_sizes(session, event.id)
    )
    assert_places_exact(session, event)


def fresh_institution_sizes(session, event_id: int) -> list[int]:
    key = func.lower(func.trim(Attendee.institution))
    active = (Attendee.event_id == event_id) & (Attendee.status == "confirmed")
    return list(
        session.execute(
            select(func.count()).where(active, func.trim(Attendee.institution) != "").group_by(key)
        ).scalars()
    )


def person(n: int, role: str = "clinician", institution: str = "") -> Registrant:
    return Registrant(
        first_name=f"P{n}",
        last_name="T",
        email=f"p{n}@example.org",
        role=role,
        country="US",
        institution=institution,
    )


def test_every_kind_of_change_keeps_the_counters_exact(app, make_event, make_attendee):
    with app.app_context():
        event = make_event(capacity=3)
        other = make_event(slug="other", is_current=False)
        s = db.session
        a = register(s, event, person(1, "clinician", "UNC"), code_prefix="NEC")
        b = register(s, event, person(2, "family", "unc "), code_prefix="NEC")
        c = register(s, event, person(3, "scientist", "Cincinnati"), code_prefix="NEC")
        d = register(s, event, person(4, "advocate", "Elsewhere"), code_prefix="NEC")  # waitlisted
        s.commit()
        assert_exact(s, event)
        assert event_stats(s, event).institutions == 2

        cancel(s, a)  # promotes d
        s.commit()
        assert_exact(s, event)
        assert s.get(Attendee, d.id).status == "confirmed"

        update_details(s, b, {"institution": "Brand New Institute", "role": "advocate"})
        s.commit()
        assert_exact(s, event)

        s.get(Attendee, d.id).checked_in_at = utcnow()  # checked in at the door
        s.get(Attendee, c.id).early_career = True
        s.get(Attendee, c.id).country = "CA"
        s.commit()
        assert_exact(s, event)

        restore(s, a, organizer_id=None)  # no room: waitlisted
        s.commit()
        assert_exact(s, event)

        # Hand-written SQL is counted too: the triggers live in the database.
        s.execute(update(Attendee).where(Attendee.id == c.id).values(status="cancelled"))
        s.execute(update(Attendee).where(Attendee.id == d.id).values(event_id=other.id))
        s.commit()
        assert_exact(s, event)
        assert_exact(s, other)
        s.execute(delete(Attendee).where(Attendee.id == b.id))
        s.commit()
        assert_exact(s, event)
        make_attendee(event, institution="  ")  # blank institutions are not counted
        assert_exact(s, event)


def test_stats_updated_at_moves_when_a_count_changes(app, make_event, make_attendee):
    with app.app_context():
        event = make_event()
        before = event_stats(db.session, event).updated_at
        db.session.execute(update(Event).values(updated_at=before.replace(year=2020)))
        db.session.commit()
        make_attendee(event)
        after = event_stats(db.session, event).updated_at
        assert after.year > 2020
        changed = db.session.execute(
            select(Tally.changed_at).where(Tally.kind == "role")
        ).scalar_one()
        assert changed.tzinfo is not None


def test_the_migration_counts_existing_registrations(app_config):
    app = create_app(app_config)
    with app.app_context():
        upgrade(revision="0002")
        db.session.execute(
            text(
                "INSERT INTO events (id, slug, name, tagline, starts_on, ends_on, venue, hosts,"
                " is_current, sessions, faculty, capacity_by_role, description, testimonials,"
                " created_at, updated_at) VALUES (1, 'e', 'E', '', '2025-09-07', '2025-09-10',"
                " '', '[]', true, 0, 0, '{}', '', '[]', '2025-01-01 00:00:00+00',"
                " '2025-01-01 00:00:00+00')"
            )
        )
        for n, (role, status, inst) in enumerate(
            [
                ("clinician", "confirmed", "A"),
                ("clinician", "confirmed", "a"),
                ("family", "confirmed", "B"),
                ("family", "waitlisted", "C"),
                ("scientist", "cancelled", "D"),
            ]
        ):
            db.session.execute(
                text(
                    "INSERT INTO attendees (event_id, code, token, status, role, first_name,"
                    " last_name, email, institution, country, early_career, badge_name,"
                    " consent_at, created_at, updated_at) VALUES (1, :c, :c, :s, :r, 'A', 'B',"
                    " :e, :i, 'US', false, 'A B', '2025-01-01 00:00:00+00',"
                    " '2025-01-01 00:00:00+00', '2025-01-01 00:00:00+00')"
                ),
                {"c": f"C{n}", "s": status, "r": role, "e": f"{n}@x.org", "i": inst},
            )
        db.session.commit()
        upgrade()
        event = db.session.get(Event, 1)
        stats = event_stats(db.session, event)
        assert stats.by_role == {"clinician": 2, "scientist": 0, "family": 1, "advocate": 0}
        assert stats.institutions == 2
    with app.app_context():
        db.engine.dispose()


def test_concurrent_changes_keep_the_counters_exact(app, make_event):
    """Registrations, cancellations, restores and edits from several connections at once."""
    event = make_event(capacity=15, capacity_by_role={"family": 5})
    event_id = event.id
    roles = ["clinician", "scientist", "family", "advocate"]
    institutions = ["UNC", "unc", "Cincinnati", "Chicago", ""]
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        try:
            with app.app_context():
                s = db.session
                ev = s.get(Event, event_id)
                barrier.wait(timeout=10)
                for i in range(12):
                    n = seed * 100 + i
                    try:
                        register(
                            s,
                            ev,
                            person(n, rng.choice(roles), rng.choice(institutions)),
                            code_prefix="NEC",
                        )
                        s.commit()
                        mine = s.execute(
                            select(Attendee).where(Attendee.event_id == event_id)
                        ).scalars()
                        target = rng.choice(list(mine))
                        action = rng.choice(["cancel", "restore", "edit"])
                        if action == "cancel":
                            cancel(s, target)
                        elif action == "restore":
                            restore(s, target, organizer_id=None)
                        else:
                            update_details(
                                s,
                                target,
                                {
                                    "role": rng.choice(roles),
                                    "institution": rng.choice(institutions),
                                },
                            )
                        s.commit()
                    except RegistrationError:
                        s.rollback()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    with app.app_context():
        event = db.session.get(Event, event_id)
        assert_exact(db.session, event)
        stats = event_stats(db.session, event)
        assert stats.attendees <= 15
        assert stats.by_role["family"] <= 5


def test_a_bulk_load_counts_once_at_the_end_and_exactly(app, make_event, make_attendee):
    """seed-demo inserts in bulk; the row trigger stands aside and the tallies and places are
    made afresh after. They equal a fresh count, and later changes go on being counted row
    by row (the trigger is back)."""
    with app.app_context():
        event = make_event(capacity=400, capacity_by_role={"family": 40})
        make_attendee(event, institution="Before The Load")
        seed_demo(db.session, event, 600, code_prefix="NEC", batch_size=128, seed=7)
        db.session.commit()
        assert_exact(db.session, event)
        assert event_stats(db.session, event).attendees == 400  # the cap, exactly
        make_attendee(event, institution="After The Load", status="waitlisted")
        assert_exact(db.session, event)
