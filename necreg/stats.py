"""The public counters, computed in one place for the landing page, the API and the dashboard."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .models import ROLES, Event, InstitutionCount, RoleCount

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
