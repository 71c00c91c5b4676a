"""Caps as places: each cap of an event is a pool of place slots, one per place.

The database claims and frees them itself (triggers.py), in the same transaction as every
change of an attendee, and refuses an attendee who would become active in a pool without a
free place. So no code path can put more active attendees in a pool than it has places, and
registrations for different places never wait for one another: see docs/performance.md
("Places without a single lock").

This module makes the pools match the event's caps (``sync_pools``, run by every flush that
creates an event or changes its caps, under the event lock when registrations may be in
flight: events.py takes it) and tells a refusal for want of room from other refusals
(``no_room_in``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from sqlalchemy import delete, event, insert, inspect, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .models import HOLDING_STATUSES, IN_PERSON, VIRTUAL, Event, PlacePool, PlaceSlot
from .triggers import NO_ROOM

#: The pool of the event's capacity (in person); a role's pool is ``role:<role>``; the online
#: attendees' is ``virtual``.
EVENT_POOL = "event"
VIRTUAL_POOL = "virtual"


def role_pool(role: str) -> str:
    return f"role:{role}"


def pool_caps(event: Event) -> dict[str, int]:
    """The pools ``event``'s caps call for, with their places."""
    caps = {role_pool(role): cap for role, cap in (event.capacity_by_role or {}).items()}
    if event.capacity is not None:
        caps[EVENT_POOL] = event.capacity
    if event.virtual and event.virtual_capacity is not None:
        caps[VIRTUAL_POOL] = event.virtual_capacity
    return {name: cap for name, cap in caps.items() if cap is not None}


def no_room_in(error: IntegrityError) -> str | None:
    """``"role"``, ``"event"`` or ``"virtual"`` when the database refused a change for want
    of a free place in that pool (triggers.py), else None."""
    message = str(error.orig)
    at = message.find(NO_ROOM)
    if at < 0:
        return None
    return message[at + len(NO_ROOM) :].split()[0].strip("'\"")


_pools = PlacePool.__table__
_slots = PlaceSlot.__table__

#: A slot of pool ``:pool`` for each attendee holding a place it covers who has none there yet.
_HOLDING = ", ".join(f"'{status}'" for status in HOLDING_STATUSES)
_PLACE_ACTIVE = text(
    "INSERT INTO place_slots (pool_id, attendee_id)"  # noqa: S608 - our own SQL
    f" SELECT :pool, a.id FROM attendees a WHERE a.event_id = :event AND a.status IN ({_HOLDING})"
    " AND a.takes_place AND a.attendance = :attendance"
    " AND (CAST(:role AS VARCHAR(16)) IS NULL OR a.role = :role) AND NOT EXISTS"
    " (SELECT 1 FROM place_slots s WHERE s.pool_id = :pool AND s.attendee_id = a.id)"
    " ORDER BY a.created_at, a.id"
)
#: ``free`` free slots: SQLite counts them with a recursive query, PostgreSQL's is slower
#: than its generate_series (3 s against 0.2 s for 200,000).
_FREE = {
    "sqlite": text(
        "WITH RECURSIVE n (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :free)"
        " INSERT INTO place_slots (pool_id) SELECT :pool FROM n WHERE i <= :free"
    ),
    "postgresql": text(
        "INSERT INTO place_slots (pool_id) SELECT :pool FROM generate_series(1, :free)"
    ),
}


def _pool_params(event_id: int, pool_id: int, name: str) -> dict[str, object]:
    """The parameters of _PLACE_ACTIVE for one pool."""
    role = name.removeprefix("role:") if name.startswith("role:") else None
    attendance = VIRTUAL if name == VIRTUAL_POOL else IN_PERSON
    return {
        "pool": pool_id,
        "event": event_id,
        "role": role,
        "attendance": attendance,
    }


def _fill(session: Session, event_id: int, pool_id: int, name: str, capacity: int) -> None:
    """Give the empty pool ``pool_id`` a taken slot per active attendee it covers and free
    ones up to ``capacity``."""
    taken = session.execute(_PLACE_ACTIVE, _pool_params(event_id, pool_id, name)).rowcount
    if capacity > taken:
        dialect = session.get_bind().dialect.name
        session.execute(_FREE[dialect], {"pool": pool_id, "free": capacity - taken})


def sync_pools(session: Session, event: Event) -> None:
    """Make the event's pools match its caps: new ones filled, dropped ones removed, changed
    ones made afresh from the active attendees.

    The caller holds the event lock (registration.lock_event): on PostgreSQL it waits for the
    registrations in flight and holds back new ones until the commit, so the active
    attendees counted here are all there are.
    """
    wanted = pool_caps(event)
    existing = {
        name: (pool_id, capacity)
        for pool_id, name, capacity in session.execute(
            select(_pools.c.id, _pools.c.name, _pools.c.capacity).where(
                _pools.c.event_id == event.id
            )
        )
    }
    for name, (pool_id, capacity) in existing.items():
        if name not in wanted or wanted[name] != capacity:
            session.execute(delete(_slots).where(_slots.c.pool_id == pool_id))
        if name not in wanted:
            session.execute(delete(_pools).where(_pools.c.id == pool_id))
    for name, capacity in wanted.items():
        if name in existing:
            pool_id, old = existing[name]
            if old == capacity:
                continue
            session.execute(_pools.update().where(_pools.c.id == pool_id).values(capacity=capacity))
        else:
            pool_id = session.execute(
                insert(_pools)
                .values(event_id=event.id, name=name, capacity=capacity)
                .returning(_pools.c.id)
            ).scalar_one()
        _fill(session, event.id, pool_id, name, capacity)


_CAPS = ("capacity", "capacity_by_role", "virtual", "virtual_capacity")


@event.listens_for(Session, "after_flush")
def _caps_flushed(session: Session, _context: object) -> None:
    """Every session's flush that made an event or changed its caps makes its pools match."""
    for instance in (*session.new, *session.dirty):
        if not isinstance(instance, Event):
            continue
        state = inspect(instance)
        if instance in session.new or any(state.attrs[a].history.has_changes() for a in _CAPS):
            sync_pools(session, instance)


_SPARE = text(
    "DELETE FROM place_slots WHERE id IN (SELECT id FROM place_slots"
    " WHERE pool_id = :pool AND attendee_id IS NULL ORDER BY id DESC LIMIT :n)"
)


def place_unplaced(session: Session, event: Event) -> None:
    """Give each active attendee without a place in one of the event's pools a slot of their
    own, and remove as many free ones (fewer if there are not as many: the pool then holds
    more places than its cap, like a cap lowered below them). For after a bulk load that
    skipped the trigger; the caller holds the event lock. Cheaper than making the pools
    afresh: only the new attendees' slots are written."""
    sync_pools(session, event)
    pools = session.execute(
        select(_pools.c.id, _pools.c.name).where(_pools.c.event_id == event.id)
    ).all()
    for pool_id, name in pools:
        placed = session.execute(_PLACE_ACTIVE, _pool_params(event.id, pool_id, name)).rowcount
        if placed:
            session.execute(_SPARE, {"pool": pool_id, "n": placed})


_FREE_IN = text("SELECT count(*) FROM place_slots WHERE pool_id = :pool AND attendee_id IS NULL")


def make_room(session: Session, event: Event, places: Sequence[tuple[str, str]]) -> None:
    """Add free slots so that ``places`` (role and attendance of each, e.g. a party) fit in
    every pool they need even when it is full: for a code that passes by the caps. Only
    what is missing is added, so a pool with room keeps its cap; one pushed past it sheds
    the extra slots as places are freed (triggers.py, "over capacity"). The caller holds
    the event lock, so nobody else takes them first."""
    needed: Counter[str] = Counter()
    for role, attendance in places:
        needed.update([VIRTUAL_POOL] if attendance == VIRTUAL else [role_pool(role), EVENT_POOL])
    dialect = session.get_bind().dialect.name
    for pool_id, name in session.execute(
        select(_pools.c.id, _pools.c.name).where(_pools.c.event_id == event.id)
    ):
        free = session.execute(_FREE_IN, {"pool": pool_id}).scalar_one()
        if needed[name] > free:
            session.execute(_FREE[dialect], {"pool": pool_id, "free": needed[name] - free})
