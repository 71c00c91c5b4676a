"""The public counters, computed in one place for the landing page, the API and the dashboard."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import Row, bindparam, func, select
from sqlalchemy.orm import Session

from .counters import PLACE_KINDS, Places, institutions, places_from, tallied
from .formats import json_timestamp
from .models import (
    IN_PERSON,
    ROLES,
    STATUSES,
    VIRTUAL,
    Event,
    Tally,
    event_over_at,
    registration_window_open,
)
from .payments import Revenue, event_revenue
from .places import EVENT_POOL, VIRTUAL_POOL, role_pool
from .program import ItemSpec
from .questions import QuestionSpec

#: The four public counters: key in the stats, label as the symposium page words it.
COUNTERS: tuple[tuple[str, str], ...] = (
    ("attendees", "Clinicians, Scientists, Patient-Families, and Advocates"),
    ("sessions", "Educational Sessions from World Renowned Faculty"),
    ("faculty", "Global Leaders in NEC Research and Pediatric Medicine"),
    ("institutions", "Global Institutions in Pediatric and Neonatal Medicine and Research"),
)


@dataclass(frozen=True)
class EventStats:
    event: str
    attendees: int
    by_role: dict[str, int]
    #: Places taken in person and online (``in_person``, ``virtual``).
    by_attendance: dict[str, int]
    sessions: int
    faculty: int
    institutions: int
    updated_at: datetime

    def as_json(self) -> dict[str, object]:
        return {
            "event": self.event,
            "attendees": self.attendees,
            "by_role": dict(self.by_role),
            "by_attendance": dict(self.by_attendance),
            "sessions": self.sessions,
            "faculty": self.faculty,
            "institutions": self.institutions,
            "updated_at": json_timestamp(self.updated_at),
        }


@dataclass(frozen=True)
class Snapshot:
    """What the public counters and the landing page depend on, read in one small query.

    ``counts_version`` changes with every figure (the tallies' ``version``, counters.py) and
    ``updated_at`` with every change an organizer makes to the event; whether registration is
    open depends on the clock. While a snapshot is equal, what was computed from it holds.
    """

    event_id: int
    updated_at: datetime
    counts_version: int
    registration_open: bool
    #: The meeting is over (after its last day in its time zone): its page presents it as held.
    over: bool

    def etag(self) -> str:
        return f"{self.event_id}-{self.counts_version}-{self.updated_at.timestamp():.6f}"


_events = Event.__table__
_tallies = Tally.__table__
_SNAPSHOT = select(
    _events.c.id,
    _events.c.updated_at,
    select(func.coalesce(func.sum(_tallies.c.n), 0))
    .where(_tallies.c.event_id == _events.c.id, _tallies.c.kind == "version")
    .scalar_subquery(),
    _events.c.registration_opens_at,
    _events.c.registration_closes_at,
    _events.c.ends_on,
    _events.c.timezone,
).where(_events.c.is_current)


def read_snapshot(session: Session) -> Row[Any] | None:
    """The current event's row of what a Snapshot is made from (``snapshot_at``); None without
    a current event. Core, not the ORM: this runs on every poll nothing else answers."""
    return session.connection().execute(_SNAPSHOT).first()


def snapshot_at(row: Row[Any] | None, now: datetime) -> Snapshot | None:
    """The Snapshot of a ``read_snapshot`` row at the moment ``now``."""
    if row is None:
        return None
    event_id, updated_at, version, opens_at, closes_at, ends_on, timezone = row
    over_at = event_over_at(ends_on, timezone)
    return Snapshot(
        event_id,
        updated_at,
        version,
        registration_window_open(opens_at, closes_at, now, over_at),
        over=now >= over_at,
    )


@dataclass(frozen=True)
class EventHeading:
    """What a page shows of the current event around its content: the layout's name and hosts."""

    id: int
    name: str
    hosts: tuple[str, ...]


_HEADING = select(_events.c.name, _events.c.hosts).where(_events.c.id == bindparam("event"))


def read_event_heading(session: Session, event_id: int) -> EventHeading:
    name, hosts = session.connection().execute(_HEADING, {"event": event_id}).one()
    return EventHeading(event_id, name, tuple(hosts or ()))


_INSTITUTIONS = select(func.count()).select_from(institutions().subquery()).scalar_subquery()
_LAST_CHANGE = (
    select(func.max(_tallies.c.changed_at))
    .where(_tallies.c.event_id == bindparam("event"), _tallies.c.kind == "role")
    .scalar_subquery()
)
_PUBLIC = select(_INSTITUTIONS, _LAST_CHANGE)


def event_stats(session: Session, event: Event) -> EventStats:
    """Counters of ``event``: active (confirmed) attendees by role and their institutions.

    Read from the tallies the database keeps (see counters.py): a few rows, not a count over
    every registration, and exact in the same transaction as each change.
    """
    figures = tallied(session, event.id, PLACE_KINDS)
    places = places_from(figures)
    by_role = dict.fromkeys(ROLES, 0) | figures["role"]
    by_attendance = {IN_PERSON: places.in_person, VIRTUAL: places.virtual}
    counted, last_change = session.execute(_PUBLIC, {"event": event.id}).one()
    updated_at = event.updated_at if last_change is None else max(event.updated_at, last_change)
    return EventStats(
        event=event.slug,
        attendees=sum(by_role.values()),
        by_role=by_role,
        by_attendance=by_attendance,
        sessions=event.sessions,
        faculty=event.faculty,
        institutions=counted,
        updated_at=updated_at,
    )


# --- The organizer dashboard: the public counters and the breakdowns behind them -------------

#: How many institutions and countries the dashboard lists.
TOP_N = 10


@dataclass(frozen=True)
class DashboardStats:
    """Everything the organizer dashboard shows. ``public`` is exactly what /api/stats says."""

    public: EventStats
    #: Registrations per status (confirmed = active, waitlisted, cancelled).
    by_status: dict[str, int]
    #: Active attendees who are trainees or early-career investigators.
    early_career: int
    #: Active attendees checked in at the door.
    checked_in: int
    #: [(institution as most often written, active attendees)], most first.
    top_institutions: list[tuple[str, int]]
    #: [(ISO country code, active attendees)], most first.
    top_countries: list[tuple[str, int]]
    #: [(day in UTC, registrations made that day, whatever their status now)], oldest first.
    per_day: list[tuple[date, int]]
    #: How full each cap is, the event's first.
    caps: list[CapFill] = field(default_factory=list)
    #: {question key: {choice value: active attendees who chose it}}, for the questions with
    #: choices, in the order they are asked.
    answer_totals: dict[str, dict[str, int]] = field(default_factory=dict)
    #: Money received and still owed (minor units), where the event has fees.
    revenue: Revenue | None = None
    #: [(program item key, title, people checked in at its door, its places or None)], in
    #: time order.
    attendance: list[tuple[str, str, int, int | None]] = field(default_factory=list)

    def as_json(self) -> dict[str, object]:
        return {
            **self.public.as_json(),
            "by_status": dict(self.by_status),
            "early_career": self.early_career,
            "checked_in": self.checked_in,
            "top_institutions": [[name, n] for name, n in self.top_institutions],
            "top_countries": [[code, n] for code, n in self.top_countries],
            "per_day": [[day.isoformat(), n] for day, n in self.per_day],
            "caps": {cap.name: cap.as_json() for cap in self.caps},
            "answers": {key: dict(totals) for key, totals in self.answer_totals.items()},
            "attendance": {key: n for key, _title, n, _capacity in self.attendance},
            "revenue": None
            if self.revenue is None
            else {
                "received": self.revenue.received,
                "outstanding": self.revenue.outstanding,
                "refunded": self.revenue.refunded,
            },
        }


@dataclass(frozen=True)
class CapFill:
    """One cap of the event and the places taken in it."""

    name: str
    label: str
    taken: int
    capacity: int

    @property
    def percent(self) -> int:
        """How full, in whole percent (100 when full or over, as a lowered cap may be)."""
        if self.capacity <= 0:
            return 100
        return min(100, round(100 * self.taken / self.capacity))

    def as_json(self) -> dict[str, object]:
        return {"taken": self.taken, "capacity": self.capacity}


def cap_fills(event: Event, places: Places) -> list[CapFill]:
    """How full each of the event's caps is, with ``places`` taken (held unpaid included)."""
    in_person = "In person" if event.virtual else "The event"
    caps: list[CapFill] = []
    if event.capacity is not None:
        caps.append(CapFill(EVENT_POOL, in_person, places.taken_in_person, event.capacity))
    for role, cap in (event.capacity_by_role or {}).items():
        if cap is not None:
            label = ROLES.get(role, role) + (" (in person)" if event.virtual else "")
            caps.append(CapFill(role_pool(role), label, places.taken_in_person_of(role), cap))
    if event.virtual and event.virtual_capacity is not None:
        caps.append(CapFill(VIRTUAL_POOL, "Online", places.taken_virtual, event.virtual_capacity))
    return caps


def answer_totals(
    questions: Sequence[QuestionSpec], figures: dict[str, int]
) -> dict[str, dict[str, int]]:
    """{question key: {choice: n}} of ``questions`` with choices, from the ``answer``
    figures (keyed ``<question id>:<choice>``); every choice offered is there, 0 if none."""
    return {
        q.key: {value: figures.get(f"{q.id}:{value}", 0) for value, _label in q.options}
        for q in questions
        if q.is_choice
    }


_DASHBOARD_KINDS = (
    "status", "day", "role", "country", "early_career", "checked_in", "virtual", "hold", "answer",
    "attended",
)  # fmt: skip
_RANKED = institutions().subquery()
_TOP_INSTITUTIONS = (
    select(_RANKED.c.name, _RANKED.c.n)
    .order_by(_RANKED.c.n.desc(), _RANKED.c.folded)
    .limit(bindparam("top"))
)


def dashboard_stats(
    session: Session,
    event: Event,
    questions: Sequence[QuestionSpec] = (),
    program: Sequence[ItemSpec] = (),
    *,
    top: int = TOP_N,
) -> DashboardStats:
    """The public counters plus the breakdowns organizers see, with the totals per choice of
    ``questions``, all read from the tallies the database keeps (counters.py): a few hundred
    rows however many registrations there are."""
    public = event_stats(session, event)
    figures = tallied(session, event.id, _DASHBOARD_KINDS)
    by_status = dict.fromkeys(STATUSES, 0)
    by_status.update(figures["status"])
    top_institutions = session.execute(_TOP_INSTITUTIONS, {"event": event.id, "top": top}).all()
    countries = sorted(figures["country"].items(), key=lambda item: (-item[1], item[0]))
    return DashboardStats(
        public=public,
        by_status=by_status,
        early_career=figures["early_career"].get("", 0),
        checked_in=figures["checked_in"].get("", 0),
        top_institutions=[(name, int(n)) for name, n in top_institutions],
        top_countries=countries[:top],
        per_day=sorted((date.fromisoformat(day), n) for day, n in figures["day"].items()),
        caps=cap_fills(event, places_from(figures)),
        answer_totals=answer_totals(questions, figures["answer"]),
        revenue=event_revenue(session, event.id) if event.currency else None,
        attendance=[
            (item.key, item.title, figures["attended"].get(item.key, 0), item.capacity)
            for item in program
        ],
    )
