"""Proof under concurrency, on PostgreSQL: simultaneous registrations and cancellations from
threads with their own connections never exceed a cap, lose nothing and promote in order."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from datetime import date

import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from necreg.models import (
    STATUS_CANCELLED,
    STATUS_CONFIRMED,
    STATUS_WAITLISTED,
    Attendee,
    AttendeeChange,
    Event,
    OutboxMessage,
)
from necreg.registration import Companion, Registrant, cancel, register

ROUNDS = 20
THREADS = 24
EVENT_CAP = 50
FAMILY_CAP = 20
#: Per round: 30 patient-family registrants (cap 20) and 40 clinicians (no role cap).
FIRST_WAVE = [("family", n) for n in range(30)] + [("clinician", n) for n in range(40)]


def person(round_no: int, role: str, n: int, wave: str = "a") -> Registrant:
    return Registrant(
        first_name=f"{role}{n}",
        last_name=f"Round{round_no}",
        email=f"{wave}{role}{n}.r{round_no}@example.org",
        role=role,
        country="US",
    )


def run_at_once(app, engine, tasks) -> list[BaseException]:
    """Run ``tasks`` (callables taking a session) on THREADS threads, each with its own
    connection, released together by a barrier; return the errors."""
    errors: list[BaseException] = []
    barrier = threading.Barrier(min(THREADS, len(tasks)))
    shares = [tasks[i :: barrier.parties] for i in range(barrier.parties)]

    def worker(share) -> None:
        try:
            with app.app_context(), Session(engine) as session:
                session.connection()  # connect before the start, so all start together
                barrier.wait(timeout=30)
                for task in share:
                    task(session)
                    session.commit()
        except BaseException as exc:  # reported by the caller
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(share,)) for share in shares]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a thread did not finish in 60 s"
    return errors


def registering(event_id: int, registrant: Registrant, *, fresh: bool = False):
    """``fresh``: the way the registration form registers (its transaction has only read, so
    a first try refused is the transaction rolled back, not a savepoint)."""

    def task(session: Session) -> None:
        event = session.get(Event, event_id)
        register(session, event, registrant, code_prefix="NEC", fresh=fresh)

    return task


def cancelling(attendee_id: int):
    def task(session: Session) -> None:
        cancel(session, session.get(Attendee, attendee_id))

    return task


def state(session: Session, event_id: int) -> list[Attendee]:
    session.expire_all()
    return list(
        session.execute(
            select(Attendee)
            .where(Attendee.event_id == event_id)
            .order_by(Attendee.created_at, Attendee.id)
        ).scalars()
    )


def active(rows, role=None) -> int:
    return sum(1 for a in rows if a.status == STATUS_CONFIRMED and role in (None, a.role))


def check_caps(rows) -> None:
    assert active(rows) <= EVENT_CAP
    assert active(rows, "family") <= FAMILY_CAP


def kinds(session: Session, event_id: int) -> Counter[str]:
    rows = session.execute(
        select(OutboxMessage.kind)
        .join(Attendee, Attendee.id == OutboxMessage.attendee_id)
        .where(Attendee.event_id == event_id)
    ).scalars()
    return Counter(rows)


def test_bursts_never_exceed_a_cap_and_promote_in_order(app, database_url, is_postgres):
    if not is_postgres:
        pytest.skip("needs PostgreSQL: set NECREG_TEST_DATABASE_URL to run the burst test")
    engine = create_engine(database_url, pool_size=THREADS + 2, max_overflow=0)
    started = time.monotonic()
    try:
        with Session(engine) as check:
            for round_no in range(ROUNDS):
                event = Event(
                    slug=f"burst-{round_no}",
                    name=f"Burst {round_no}",
                    starts_on=date(2099, 9, 7),
                    ends_on=date(2099, 9, 10),
                    capacity=EVENT_CAP,
                    capacity_by_role={"family": FAMILY_CAP},
                )
                check.add(event)
                check.commit()
                event_id = event.id

                # Wave 1: 70 people register at the same moment for 50 places.
                # Half as the form registers (fresh: no savepoint for the first try).
                tasks = [
                    registering(event_id, person(round_no, r, n), fresh=i % 2 == 0)
                    for i, (r, n) in enumerate(FIRST_WAVE)
                ]
                assert run_at_once(app, engine, tasks) == []
                rows = state(check, event_id)
                assert len(rows) == len(FIRST_WAVE)  # nobody lost
                check_caps(rows)
                # 70 > 50 with at most 20 family: the event fills exactly.
                assert active(rows) == EVENT_CAP
                assert sum(a.status == STATUS_WAITLISTED for a in rows) == 20
                mail = kinds(check, event_id)
                assert mail == {"confirmation": 50, "waitlisted": 20}

                # Wave 2: 5 family and 5 clinicians cancel while 10 more people register.
                confirmed = [a for a in rows if a.status == STATUS_CONFIRMED]
                leaving = [a for a in confirmed if a.role == "family"][:5] + [
                    a for a in confirmed if a.role == "clinician"
                ][:5]
                waiting_before = {a.id for a in rows if a.status == STATUS_WAITLISTED}
                newcomers = [("family", n) for n in range(5)] + [("clinician", n) for n in range(5)]
                tasks = [cancelling(a.id) for a in leaving] + [
                    registering(event_id, person(round_no, r, n, "b"), fresh=i % 2 == 0)
                    for i, (r, n) in enumerate(newcomers)
                ]
                assert run_at_once(app, engine, tasks) == []
                rows = state(check, event_id)
                assert len(rows) == len(FIRST_WAVE) + len(newcomers)
                check_caps(rows)
                # Each cancellation promoted someone in its own transaction, so the event
                # never had a free place that a newcomer could take.
                assert active(rows) == EVENT_CAP
                assert sum(a.status == STATUS_CANCELLED for a in rows) == 10
                by_id = {a.id: a for a in rows}
                promoted = [i for i in waiting_before if by_id[i].status == STATUS_CONFIRMED]
                assert len(promoted) == 10
                newcomer_rows = [a for a in rows if a.email.startswith("b")]
                assert all(a.status == STATUS_WAITLISTED for a in newcomer_rows)
                # In order: within a role, nobody still waiting was passed by a later one.
                for role in ("family", "clinician"):
                    order = [a for a in rows if a.role == role]
                    up = [k for k, a in enumerate(order) if a.id in promoted]
                    still = [k for k, a in enumerate(order) if a.status == STATUS_WAITLISTED]
                    if up and still:
                        assert max(up) < min(still), f"round {round_no}: {role} out of order"
                audit = check.execute(
                    select(func.count())
                    .select_from(AttendeeChange)
                    .join(Attendee, Attendee.id == AttendeeChange.attendee_id)
                    .where(Attendee.event_id == event_id, AttendeeChange.action == "promote")
                ).scalar_one()
                assert audit == 10
                assert kinds(check, event_id) == {
                    "confirmation": 50,
                    "waitlisted": 30,
                    "cancelled": 10,
                    "promoted": 10,
                }
    finally:
        engine.dispose()
    assert time.monotonic() - started < 60, "the burst test should stay well under a minute"


# --- Parties: 200 households at once (issue 12) -------------------------------------------------

PARTY_CAPS = {"event": 120, "role:family": 60, "virtual": 80}


def party_of(rng: random.Random, n: int, wave: str) -> tuple[Registrant, list[Companion]]:
    role = rng.choice(["family", "family", "clinician"])
    attendance = rng.choice(["in_person", "in_person", "virtual"])
    lead = Registrant(
        first_name=f"Lead{n}",
        last_name=wave,
        email=f"{wave}{n}@example.org",
        role=role,
        country="US",
        attendance=attendance,
    )
    size = rng.randint(1, 4)
    bands = [rng.choice(["adult", "child", "infant"]) for _ in range(size - 1)]
    return lead, [Companion(f"Guest{n}{k}", wave, band) for k, band in enumerate(bands)]


def registering_party(event_id: int, lead: Registrant, guests: list[Companion]):
    def task(session: Session) -> None:
        event = session.get(Event, event_id)
        register(session, event, lead, code_prefix="NEC", guests=guests)

    return task


def pools_of(a: Attendee) -> list[str]:
    """The caps a confirmed attendee holds a place in (none for an infant who takes none)."""
    if a.status != STATUS_CONFIRMED or not a.takes_place:
        return []
    if a.attendance == "virtual":
        return ["virtual"]
    return ["event", f"role:{a.role}"]


def check_parties(rows: list[Attendee]) -> dict[str, int]:
    """No cap exceeded, no party split, nobody waiting who would fit; the places taken."""
    taken: Counter[str] = Counter(pool for a in rows for pool in pools_of(a))
    for pool, cap in PARTY_CAPS.items():
        assert taken[pool] <= cap, f"{pool}: {taken[pool]} places taken of {cap}"
    parties: dict[int, list[Attendee]] = {}
    for a in rows:
        parties.setdefault(a.party_id or a.id, []).append(a)
    for members in parties.values():
        coming = [m for m in members if m.status != STATUS_CANCELLED]
        assert len({m.status for m in coming}) <= 1, f"party split: {members}"
        if coming and coming[0].status == STATUS_WAITLISTED:
            needs: Counter[str] = Counter(
                pool
                for m in coming
                for pool in pools_of(
                    Attendee(status=STATUS_CONFIRMED, takes_place=m.takes_place,
                             attendance=m.attendance, role=m.role)
                )
            )  # fmt: skip
            fits = all(taken[pool] + n <= PARTY_CAPS.get(pool, 10**9) for pool, n in needs.items())
            assert not fits, f"a party waits while there is room for it: {coming}"
    return dict(taken)


def test_two_hundred_parties_at_once_never_exceed_a_cap_nor_split(app, database_url, is_postgres):
    if not is_postgres:
        pytest.skip("needs PostgreSQL: set NECREG_TEST_DATABASE_URL to run the burst test")
    rng = random.Random(12)
    engine = create_engine(database_url, pool_size=THREADS + 2, max_overflow=0)
    try:
        with Session(engine) as check:
            event = Event(
                slug="parties",
                name="Parties",
                starts_on=date(2099, 9, 7),
                ends_on=date(2099, 9, 10),
                capacity=PARTY_CAPS["event"],
                capacity_by_role={"family": PARTY_CAPS["role:family"]},
                virtual=True,
                virtual_capacity=PARTY_CAPS["virtual"],
                max_guests=4,
                infants_count=False,
            )
            check.add(event)
            check.commit()
            event_id = event.id

            # 200 parties of 1 to 4 people register at the same moment.
            parties = [party_of(rng, n, "a") for n in range(200)]
            tasks = [registering_party(event_id, lead, guests) for lead, guests in parties]
            assert run_at_once(app, engine, tasks) == []
            rows = state(check, event_id)
            assert len(rows) == sum(1 + len(guests) for _lead, guests in parties)
            taken = check_parties(rows)
            # With far more people than places, every cap is (nearly) full.
            assert taken["event"] >= PARTY_CAPS["event"] - 3
            assert taken["virtual"] >= PARTY_CAPS["virtual"] - 3

            # 30 confirmed parties cancel while 30 more register.
            leads = [a for a in rows if a.party_id is None and a.status == STATUS_CONFIRMED]
            newcomers = [party_of(rng, n, "b") for n in range(30)]
            tasks = [cancelling(a.id) for a in rng.sample(leads, 30)] + [
                registering_party(event_id, lead, guests) for lead, guests in newcomers
            ]
            assert run_at_once(app, engine, tasks) == []
            rows = state(check, event_id)
            check_parties(rows)
    finally:
        engine.dispose()
