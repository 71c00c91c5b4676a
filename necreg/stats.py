"""The public counters, computed in one place for the landing page, the API and the dashboard."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .models import ROLES, STATUS_CONFIRMED, Attendee, Event

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

    def etag(self) -> str:
        body = json.dumps(self.as_json(), sort_keys=True).encode()
        return hashlib.sha256(body).hexdigest()[:32]


def event_stats(session: Session, event: Event) -> EventStats:
    """Counters of ``event``: active (confirmed) attendees by role and their institutions."""
    active = (Attendee.event_id == event.id) & (Attendee.status == STATUS_CONFIRMED)
    by_role = dict.fromkeys(ROLES, 0)
    rows = session.execute(
        select(Attendee.role, func.count()).where(active).group_by(Attendee.role)
    )
    by_role.update(dict(rows.all()))
    institution = func.lower(func.trim(Attendee.institution))
    institutions = session.execute(
        select(func.count(func.distinct(institution))).where(active, institution != "")
    ).scalar_one()
    last_change = session.execute(
        select(func.max(Attendee.updated_at)).where(Attendee.event_id == event.id)
    ).scalar_one()
    updated_at = event.updated_at
    if last_change is not None:
        last_change = _aware(last_change)
        updated_at = max(updated_at, last_change)
    return EventStats(
        event=event.slug,
        attendees=sum(by_role.values()),
        by_role=by_role,
        sessions=event.sessions,
        faculty=event.faculty,
        institutions=institutions,
        updated_at=updated_at,
    )


def _aware(value: datetime | str) -> datetime:
    """``max()`` over a column bypasses the column type on SQLite; restore a UTC datetime."""
    from datetime import UTC

    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)
