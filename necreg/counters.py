"""Figures the database keeps itself: the tallies of an event's registrations.

The trigger on ``attendees`` (its SQL is in triggers.py) moves the ``tallies`` in the same
transaction as every insert, update and delete, so the public counters and the dashboard read
a few hundred rows, not every registration, and are never stale. A figure is the sum of its
shares (``shard``): on PostgreSQL each writing transaction counts into a share of its own, so
registrations never wait for one another on a counter (triggers.py says how). ``version``
moves with every change of a figure: a page tells from it, in one small query, whether what
it computed still holds (stats.Snapshot).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, bindparam, func, select, text
from sqlalchemy.orm import Session

from .models import IN_PERSON, STATUS_CONFIRMED, VIRTUAL, Event, Tally
from .places import place_unplaced
from .triggers import ANSWER_KEY, COUNTING_SQLITE, DAY_SQL, TALLY_TERMS

_tallies = Tally.__table__
_of_event = _tallies.c.event_id == bindparam("event")

_TALLIED = (
    select(_tallies.c.kind, _tallies.c.key, func.sum(_tallies.c.n))
    .where(_of_event, _tallies.c.kind.in_(bindparam("kinds", expanding=True)))
    .group_by(_tallies.c.kind, _tallies.c.key)
    .having(func.sum(_tallies.c.n) != 0)
)


def tallied(session: Session, event_id: int, kinds: tuple[str, ...]) -> dict[str, dict[str, int]]:
    """{kind: {key: figure}} of ``kinds``, keys whose figure is 0 left out."""
    figures: dict[str, dict[str, int]] = {kind: {} for kind in kinds}
    for kind, key, n in session.execute(_TALLIED, {"event": event_id, "kinds": list(kinds)}):
        figures[kind][key] = int(n)
    return figures


#: The figures places are read from (``places_from``).
PLACE_KINDS = ("role", "virtual", "hold")


@dataclass(frozen=True)
class Places:
    """Places taken, as the caps count them: confirmed per role in all and online (the
    ``role`` and ``virtual`` figures; in person is the difference), and held until paid for
    (``hold``, keyed ``<attendance>:<role>``). The public counters count the confirmed; the
    caps count the held too (``taken_*``)."""

    by_role: dict[str, int]
    online_by_role: dict[str, int]
    held: dict[str, int] = field(default_factory=dict)

    @property
    def virtual(self) -> int:
        return sum(self.online_by_role.values())

    @property
    def in_person(self) -> int:
        return sum(self.by_role.values()) - self.virtual

    def in_person_of(self, role: str) -> int:
        return self.by_role.get(role, 0) - self.online_by_role.get(role, 0)

    def held_of(self, attendance: str, role: str | None = None) -> int:
        """Places held unpaid in ``attendance`` (by ``role``, or all)."""
        if role is not None:
            return self.held.get(f"{attendance}:{role}", 0)
        return sum(n for key, n in self.held.items() if key.startswith(f"{attendance}:"))

    @property
    def taken_virtual(self) -> int:
        return self.virtual + self.held_of(VIRTUAL)

    @property
    def taken_in_person(self) -> int:
        return self.in_person + self.held_of(IN_PERSON)

    def taken_in_person_of(self, role: str) -> int:
        return self.in_person_of(role) + self.held_of(IN_PERSON, role)


def places_from(figures: dict[str, dict[str, int]]) -> Places:
    """The places of ``tallied`` figures that include PLACE_KINDS."""
    return Places(figures["role"], figures["virtual"], figures["hold"])


def institutions() -> Select[Any]:
    """Institutions with active attendees of event ``:event``, as SQL: rows (name, n, folded)
    of one institution whatever letter case it is written in: the first of its spellings in
    letter order, its active attendees, and the case-folded name it is grouped by."""
    spelled = (
        select(_tallies.c.key.label("name"), func.sum(_tallies.c.n).label("n"))
        .where(_of_event, _tallies.c.kind == "institution")
        .group_by(_tallies.c.key)
        .having(func.sum(_tallies.c.n) > 0)
        .subquery()
    )
    folded = func.lower(spelled.c.name)
    return select(
        func.min(spelled.c.name).label("name"),
        func.sum(spelled.c.n).label("n"),
        folded.label("folded"),
    ).group_by(folded)


_RECOUNT_ANSWERS = text(
    "INSERT INTO tallies (event_id, kind, key, shard, n, changed_at)"  # noqa: S608 - our own SQL
    f" SELECT t.event_id, 'answer', {ANSWER_KEY.format(a='s')}, 0, count(*), CURRENT_TIMESTAMP"
    " FROM answers s JOIN attendees t ON t.id = s.attendee_id"
    " WHERE t.event_id = :e AND t.status = :active AND s.choice IS NOT NULL GROUP BY 1, 3"
)


def recount(session: Session, event: Event) -> None:
    """Count the event's tallies afresh from its registrations, and give a place to its active
    attendees without one: after a bulk load that skipped the per-row trigger
    (``bulk_load``). The caller holds the event lock."""
    dialect = session.get_bind().dialect.name
    params = {"e": event.id}
    session.execute(text("DELETE FROM tallies WHERE event_id = :e AND kind <> 'version'"), params)
    day = DAY_SQL[dialect].format(r="a")
    for kind, key, when in TALLY_TERMS:
        key_sql = key.format(r="a", day=day)
        session.execute(
            text(
                "INSERT INTO tallies (event_id, kind, key, shard, n, changed_at)"  # noqa: S608 - our own SQL
                f" SELECT a.event_id, '{kind}', {key_sql}, 0, count(*), CURRENT_TIMESTAMP"
                f" FROM attendees a WHERE a.event_id = :e AND {when.format(r='a')}"
                " GROUP BY 1, 3"
            ),
            params,
        )
    session.execute(_RECOUNT_ANSWERS, {**params, "active": STATUS_CONFIRMED})
    bumped = session.execute(
        text(
            "UPDATE tallies SET n = n + 1, changed_at = CURRENT_TIMESTAMP"
            " WHERE event_id = :e AND kind = 'version' AND shard = 0"
        ),
        params,
    ).rowcount
    if not bumped:
        session.execute(
            text(
                "INSERT INTO tallies (event_id, kind, key, shard, n, changed_at)"
                " VALUES (:e, 'version', '', 0, 1, CURRENT_TIMESTAMP)"
            ),
            params,
        )
    place_unplaced(session, event)


#: Add to one figure and to the event's ``version``, in this transaction's share (PostgreSQL)
#: or the one share (SQLite): for figures no trigger keeps (``attended``).
_ADD_FIGURE = {
    "postgresql": text(
        "INSERT INTO tallies AS t (event_id, kind, key, shard, n, changed_at)"
        " SELECT :e, k, v, tally_shard(), d, now() FROM (VALUES (:k, :v, :n), ('version', '', 1))"
        " AS moved (k, v, d) ORDER BY k, v"
        " ON CONFLICT (event_id, kind, key, shard) DO UPDATE SET n = t.n + EXCLUDED.n,"
        " changed_at = EXCLUDED.changed_at"
    ),
    "sqlite": text(
        "INSERT INTO tallies (event_id, kind, key, shard, n, changed_at)"
        " VALUES (:e, :k, :v, 0, :n, CURRENT_TIMESTAMP),"
        " (:e, 'version', '', 0, 1, CURRENT_TIMESTAMP)"
        " ON CONFLICT (event_id, kind, key, shard) DO UPDATE SET n = n + excluded.n,"
        " changed_at = excluded.changed_at"
    ),
}


def add_to_figure(session: Session, event_id: int, kind: str, key: str, n: int) -> None:
    """Move the figure ``kind``/``key`` of the event by ``n``, and its ``version`` by one, in
    the caller's transaction: pages that show the figures see the change at once."""
    dialect = session.get_bind().dialect.name
    session.execute(_ADD_FIGURE[dialect], {"e": event_id, "k": kind, "v": key, "n": n})


@contextmanager
def bulk_load(session: Session, event: Event) -> Iterator[None]:
    """Insert many registrations of one event, counting them once at the end.

    The per-row trigger stands aside for this transaction, and the tallies and places are
    made afresh after (``recount``): on PostgreSQL by a setting the trigger reads, on SQLite
    by dropping the insert trigger and making it again in the same transaction (SQLite's DDL
    is transactional, and the caller is the single writer: nobody else sees it missing).
    """
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        session.execute(text("SET LOCAL necreg.bulk_load = 'on'"))
    else:
        for name in _SQLITE_INSERT_TRIGGERS:
            session.execute(text(f"DROP TRIGGER {name}"))
    yield
    if dialect == "postgresql":
        session.execute(text("SET LOCAL necreg.bulk_load = 'off'"))
    else:
        for statement in COUNTING_SQLITE:
            if statement.startswith(tuple(f"CREATE TRIGGER {n} " for n in _SQLITE_INSERT_TRIGGERS)):
                session.execute(text(statement))
    recount(session, event)


#: The SQLite triggers a bulk load sets aside (of COUNTING_SQLITE): registrations' and
#: answers'.
_SQLITE_INSERT_TRIGGERS = ("attendees_tally_insert", "answers_tally_insert")
