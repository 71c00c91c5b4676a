"""The public counters, computed in one place for the landing page, the API and the dashboard."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypeVar

from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .freshness import Watch
from .models import ROLES, STATUS_CONFIRMED, STATUSES, Attendee, Event, InstitutionCount, RoleCount

T = TypeVar("T")

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
    sessions: int
    faculty: int
    institutions: int
    updated_at: datetime

    def as_json(self) -> dict[str, object]:
        return {
            "event": self.event,
            "attendees": self.attendees,
            "by_role": dict(self.by_role),
            "sessions": self.sessions,
            "faculty": self.faculty,
            "institutions": self.institutions,
            "updated_at": self.updated_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }


@dataclass(frozen=True)
class Snapshot:
    """What the public counters and the landing page depend on, read in one small query.

    ``counts_version`` changes with every public count (database triggers, counters.py) and
    ``updated_at`` with every change an organizer makes to the event; whether registration is
    open depends on the clock. While a snapshot is equal, what was computed from it holds.
    """

    event_id: int
    updated_at: datetime
    counts_version: int
    registration_open: bool

    def etag(self) -> str:
        return f"{self.event_id}-{self.counts_version}-{self.updated_at.timestamp():.6f}"


_SNAPSHOT = select(
    Event.__table__.c.id,
    Event.__table__.c.updated_at,
    Event.__table__.c.counts_version,
    Event.__table__.c.registration_opens_at,
    Event.__table__.c.registration_closes_at,
).where(Event.__table__.c.is_current)


def current_snapshot(
    session: Session, now: datetime, watch: Watch | None = None
) -> Snapshot | None:
    """The current event's snapshot; with a ``watch``, without a query while nothing changed."""

    def read() -> Any:
        # Core, not the ORM: this runs on every poll the watch cannot answer.
        return session.connection().execute(_SNAPSHOT).first()

    row = read() if watch is None else watch.unless_changed("snapshot", read)
    if row is None:
        return None
    event_id, updated_at, version, opens_at, closes_at = row
    is_open = (opens_at is None or now >= opens_at) and (closes_at is None or now < closes_at)
    return Snapshot(event_id, updated_at, version, is_open)


@dataclass(frozen=True)
class EventHeading:
    """What a page shows of the current event around its content: the layout's name and hosts."""

    id: int
    name: str
    hosts: tuple[str, ...]


def event_heading(app: Flask, session: Session, snapshot: Snapshot) -> EventHeading:
    """The current event's heading, read once per snapshot (an organizer's change to the event
    changes its ``updated_at``)."""
    events = Event.__table__

    def read() -> EventHeading:
        name, hosts = (
            session.connection()
            .execute(select(events.c.name, events.c.hosts).where(events.c.id == snapshot.event_id))
            .one()
        )
        return EventHeading(snapshot.event_id, name, tuple(hosts or ()))

    return memoized(app, "event_heading", snapshot, read)


def memoized(app: Flask, name: str, snapshot: Snapshot, build: Callable[[], T]) -> T:
    """``build()``, or what it gave before for this very snapshot (one value per name).

    Each process keeps its own; a snapshot read before ``build`` can only be older than the
    data ``build`` reads, so a value is never served for a newer state than it was made from.
    """
    store: dict[str, tuple[Snapshot, Any]] = app.extensions.setdefault("necreg.memo", {})
    hit = store.get(name)
    if hit is not None and hit[0] == snapshot:
        return hit[1]
    value = build()
    store[name] = (snapshot, value)
    return value


def role_counts(session: Session, event_id: int) -> dict[str, int]:
    """Active attendees per role (every role present), from the trigger-kept counters."""
    counts = dict.fromkeys(ROLES, 0)
    rows = session.execute(
        select(RoleCount.role, RoleCount.active).where(RoleCount.event_id == event_id)
    )
    counts.update(dict(rows.all()))
    return counts


def event_stats(session: Session, event: Event) -> EventStats:
    """Counters of ``event``: active (confirmed) attendees by role and their institutions.

    Read from the rows the database triggers keep (see counters.py): a few rows, not a count
    over every registration, and exact in the same transaction as each change.
    """
    by_role = role_counts(session, event.id)
    institutions, last_change = session.execute(
        select(
            select(func.count())
            .where(InstitutionCount.event_id == event.id, InstitutionCount.active > 0)
            .scalar_subquery(),
            select(func.max(RoleCount.changed_at))
            .where(RoleCount.event_id == event.id)
            .scalar_subquery(),
        )
    ).one()
    updated_at = event.updated_at if last_change is None else max(event.updated_at, last_change)
    return EventStats(
        event=event.slug,
        attendees=sum(by_role.values()),
        by_role=by_role,
        sessions=event.sessions,
        faculty=event.faculty,
        institutions=institutions,
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

    def as_json(self) -> dict[str, object]:
        return {
            **self.public.as_json(),
            "by_status": dict(self.by_status),
            "early_career": self.early_career,
            "checked_in": self.checked_in,
            "top_institutions": [[name, n] for name, n in self.top_institutions],
            "top_countries": [[code, n] for code, n in self.top_countries],
            "per_day": [[day.isoformat(), n] for day, n in self.per_day],
        }


def _utc_day(session: Session, column):
    """The UTC calendar day of a timestamp column, in the database's own dialect."""
    if session.get_bind().dialect.name == "postgresql":
        return func.date(func.timezone("UTC", column))
    return func.date(column)  # SQLite stores UTC text: 'YYYY-MM-DD HH:MM:SS...'


def _as_date(value: date | str) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def dashboard_stats(session: Session, event: Event, *, top: int = TOP_N) -> DashboardStats:
    """The public counters plus the breakdowns organizers see (a handful of grouped queries)."""
    public = event_stats(session, event)
    of_event = Attendee.event_id == event.id
    active = of_event & (Attendee.status == STATUS_CONFIRMED)

    by_status = dict.fromkeys(STATUSES, 0)
    by_status.update(
        session.execute(
            select(Attendee.status, func.count()).where(of_event).group_by(Attendee.status)
        ).all()
    )
    early_career, checked_in = session.execute(
        select(
            func.count().filter(Attendee.early_career.is_(True)),
            func.count(Attendee.checked_in_at),
        ).where(active)
    ).one()

    institution = func.lower(func.trim(Attendee.institution))
    count = func.count().label("n")
    top_institutions = session.execute(
        select(func.min(func.trim(Attendee.institution)), count)
        .where(active, institution != "")
        .group_by(institution)
        .order_by(count.desc(), institution)
        .limit(top)
    ).all()
    top_countries = session.execute(
        select(Attendee.country, count)
        .where(active)
        .group_by(Attendee.country)
        .order_by(count.desc(), Attendee.country)
        .limit(top)
    ).all()
    day = _utc_day(session, Attendee.created_at).label("day")
    per_day = session.execute(
        select(day, func.count()).where(of_event).group_by(day).order_by(day)
    ).all()
    return DashboardStats(
        public=public,
        by_status=by_status,
        early_career=early_career or 0,
        checked_in=checked_in or 0,
        top_institutions=[(name, n) for name, n in top_institutions],
        top_countries=[(code, n) for code, n in top_countries],
        per_day=[(_as_date(d), n) for d, n in per_day],
    )
