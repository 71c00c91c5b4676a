"""The public counters, computed in one place for the landing page, the API and the dashboard."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

from sqlalchemy import Integer, Row, bindparam, column, func, select, values
from sqlalchemy.orm import Session

from .counters import PLACE_KINDS, Places, institutions, places_from, tallied
from .formats import clock_text, json_timestamp, time_zone
from .models import (
    IN_PERSON,
    ROLES,
    STATUSES,
    VIRTUAL,
    Attendee,
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
    """What a page shows of the current event around its content: the layout's name and hosts,
    and the time zone its times are shown in."""

    id: int
    name: str
    hosts: tuple[str, ...]
    #: The event's time zone (IANA name): the times of a page about it are on its clock.
    timezone: str = "UTC"

    @property
    def zone(self) -> tzinfo:
        return time_zone(self.timezone) or UTC


_HEADING = select(_events.c.name, _events.c.hosts, _events.c.timezone).where(
    _events.c.id == bindparam("event")
)


def read_event_heading(session: Session, event_id: int) -> EventHeading:
    name, hosts, timezone = session.connection().execute(_HEADING, {"event": event_id}).one()
    return EventHeading(event_id, name, tuple(hosts or ()), timezone)


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
    #: [(day in the event's time zone, registrations made that day, whatever their status
    #: now)], oldest first.
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
    #: The event's time zone: the days above are its days, and times are shown on its clock.
    zone: tzinfo = UTC

    def as_json(self) -> dict[str, object]:
        return {
            **self.public.as_json(),
            # The last change as the page shows it (the script puts it in as it is).
            "updated_at_text": clock_text(self.public.updated_at, self.zone),
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


#: A part of a UTC day: (start, end, n), ``n`` being all the registrations of that UTC day,
#: so that a caller may keep what it counted in a part while the day's figure stands.
DayPart = tuple[datetime, datetime, int]
#: How many registrations were made in each part: ``count(parts)`` gives a number per part.
PartCount = Callable[[list[DayPart]], list[int]]


def _day_starts(day: date, zone: tzinfo) -> list[datetime]:
    """The moments (UTC) at which a day of ``zone`` begins inside the UTC day ``day``: one
    where the zone is not on UTC then, none where it is (its days and UTC's begin together),
    two at most (a day of 23 hours). A midnight that the clocks skip begins its day when they
    jump; one that comes twice, at the first."""
    start = datetime.combine(day, time(0), UTC)
    end = start + timedelta(days=1)
    first = start.astimezone(zone).date()
    last = (end - timedelta(microseconds=1)).astimezone(zone).date()
    starts = []
    for i in range(1, (last - first).days + 1):
        midnight = datetime.combine(first + timedelta(days=i), time(0), zone).astimezone(UTC)
        if start < midnight < end:
            starts.append(midnight)
    return starts


def local_days(
    per_utc_day: Iterable[tuple[date, int]], zone: tzinfo, count: PartCount
) -> list[tuple[date, int]]:
    """Registrations per day of ``zone`` (the event's), oldest first, from the figures per UTC
    day that the database tallies.

    A UTC day lies on one day of the zone, or a day of the zone begins inside it (Chicago's at
    05:00 or 06:00 UTC, following summer time, Tokyo's at 15:00): then ``count`` says, in one
    call for all days, how many of its registrations were made in its shorter parts, and the
    longest part has the rest. So only the registrations of those shorter parts are read, by
    the index on (event, created_at), and none at all for an event on UTC.
    """
    days: Counter[date] = Counter()
    counted: list[DayPart] = []
    #: Per part counted, the day of its UTC day's longest part, which has the rest.
    rest_on: list[date] = []
    for day, n in per_utc_day:
        start = datetime.combine(day, time(0), UTC)
        bounds = [start, *_day_starts(day, zone), start + timedelta(days=1)]
        parts = list(zip(bounds, bounds[1:], strict=False))
        longest = max(parts, key=lambda part: part[1] - part[0])
        longest_day = longest[0].astimezone(zone).date()
        days[longest_day] += n
        for begin, end in parts:
            if (begin, end) != longest:
                counted.append((begin, end, n))
                rest_on.append(longest_day)
    made = count(counted) if counted else []
    for (begin, _end, _n), rest_day, k in zip(counted, rest_on, made, strict=True):
        days[begin.astimezone(zone).date()] += k
        days[rest_day] -= k
    return sorted((day, n) for day, n in days.items() if n)


def made_between(session: Session, event_id: int) -> PartCount:
    """The PartCount of ``event_id``, read from the attendees in one statement: a count per
    part, each an index range of (event, created_at)."""

    def count(parts: list[DayPart]) -> list[int]:
        moment = Attendee.created_at.type
        table = (
            values(column("i", Integer), column("a", moment), column("b", moment), name="parts")
            .data([(i, begin, end) for i, (begin, end, _n) in enumerate(parts)])
            .cte("parts")
        )
        made = (
            select(func.count())
            .select_from(Attendee)
            .where(
                Attendee.event_id == event_id,
                Attendee.created_at >= table.c.a,
                Attendee.created_at < table.c.b,
            )
            .scalar_subquery()
        )
        found = dict(session.execute(select(table.c.i, made)).all())
        return [int(found[i]) for i in range(len(parts))]

    return count


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
    count: PartCount | None = None,
) -> DashboardStats:
    """The public counters plus the breakdowns organizers see, with the totals per choice of
    ``questions``, all read from the tallies the database keeps (counters.py): a few hundred
    rows however many registrations there are. The registrations per day are by the event's
    time zone: ``count`` reads the days that straddle two of its days (``local_days``; by
    default ``made_between``)."""
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
        per_day=local_days(
            sorted((date.fromisoformat(day), n) for day, n in figures["day"].items()),
            event.zone,
            count or made_between(session, event.id),
        ),
        caps=cap_fills(event, places_from(figures)),
        answer_totals=answer_totals(questions, figures["answer"]),
        revenue=event_revenue(session, event.id) if event.currency else None,
        attendance=[
            (item.key, item.title, figures["attended"].get(item.key, 0), item.capacity)
            for item in program
        ],
        zone=event.zone,
    )
