"""Check-in at the door: find a registration by its code (typed or scanned), mark it, undo it.

Every check-in and undo is recorded in the attendee's audit trail.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from functools import cache

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from .models import (
    CODE_ALPHABET,
    CODE_LENGTH,
    STATUS_CANCELLED,
    STATUS_CONFIRMED,
    Attendee,
    Event,
    utcnow,
)
from .registration import record_change

#: Longest scanner payload looked at (a URL with the code in it is far shorter).
MAX_PAYLOAD = 500

CHECKED_IN = "checked_in"
ALREADY = "already"
UNKNOWN = "unknown"
CANCELLED = "cancelled"
WAITLISTED = "waitlisted"
INVALID = "invalid"


@cache
def _code_pattern(prefix: str) -> re.Pattern[str]:
    body = f"[{CODE_ALPHABET}]{{{CODE_LENGTH}}}"
    return re.compile(rf"(?<![A-Z0-9]){re.escape(prefix.upper())}-?({body})(?![A-Z0-9])")


def extract_code(payload: str, prefix: str) -> str | None:
    """The attendee code in what a person typed or a scanner sent, in its canonical form.

    Takes ``NEC-7K3QXA``, ``nec-7k3qxa``, ``NEC 7K3 QXA``, ``NEC7K3QXA`` or a URL or text that
    contains the code; None when there is no code in it.
    """
    if not payload:
        return None
    text = "".join(payload[:MAX_PAYLOAD].split()).upper()
    match = _code_pattern(prefix).search(text)
    return f"{prefix.upper()}-{match.group(1)}" if match else None


@dataclass(frozen=True)
class CheckInResult:
    """What the door sees after a scan. ``outcome`` is one of the constants above."""

    outcome: str
    message: str
    attendee: Attendee | None = None
    code: str | None = None

    @property
    def ok(self) -> bool:
        return self.outcome == CHECKED_IN

    def as_json(self) -> dict[str, object]:
        attendee = self.attendee
        return {
            "outcome": self.outcome,
            "message": self.message,
            "code": self.code,
            "attendee": None
            if attendee is None
            else {
                "id": attendee.id,
                "code": attendee.code,
                "name": attendee.full_name,
                "badge_name": attendee.badge_name,
                "role": attendee.role,
                "role_label": attendee.role_label,
                "institution": attendee.institution,
                "status": attendee.status,
                "checked_in_at": attendee.checked_in_at.strftime("%Y-%m-%dT%H:%M:%SZ")
                if attendee.checked_in_at
                else None,
            },
        }


def find_by_code(session: Session, event: Event, code: str) -> Attendee | None:
    return session.execute(
        select(Attendee).where(Attendee.event_id == event.id, Attendee.code == code)
    ).scalar_one_or_none()


def _clock(moment: datetime, tz: tzinfo) -> str:
    """'09:12 CDT': the time of day where the event is, with the zone's abbreviation."""
    local = moment.astimezone(tz)
    return f"{local:%H:%M} {local.tzname()}"


def check_in(
    session: Session,
    event: Event,
    payload: str,
    *,
    prefix: str,
    organizer_id: int | None,
    now: datetime | None = None,
    tz: tzinfo = UTC,
) -> CheckInResult:
    """Check in the registration whose code is in ``payload``.

    Times in messages are shown in ``tz`` (the event's time zone). Only a confirmed
    registration is checked in, and only once: the update is conditional on
    ``checked_in_at IS NULL``, so two scanners at two doors cannot both check in one person.
    """
    now = now or utcnow()
    code = extract_code(payload, prefix)
    if code is None:
        return CheckInResult(
            INVALID,
            f"No attendee code found in what was scanned. Codes look like {prefix.upper()}-7K3QXA.",
        )
    attendee = find_by_code(session, event, code)
    if attendee is None:
        return CheckInResult(UNKNOWN, f"Unknown code {code}: no registration has it.", code=code)
    if attendee.status == STATUS_CANCELLED:
        return CheckInResult(
            CANCELLED,
            f"{code} ({attendee.full_name}) is cancelled: not registered.",
            attendee,
            code,
        )
    if attendee.status != STATUS_CONFIRMED:
        return CheckInResult(
            WAITLISTED,
            f"{code} ({attendee.full_name}) is on the waiting list, not confirmed.",
            attendee,
            code,
        )
    done = session.execute(
        update(Attendee)
        .where(Attendee.id == attendee.id, Attendee.checked_in_at.is_(None))
        .values(checked_in_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    session.refresh(attendee)
    if done.rowcount == 0:
        assert attendee.checked_in_at is not None
        return CheckInResult(
            ALREADY,
            f"{attendee.full_name} is already checked in at {_clock(attendee.checked_in_at, tz)}.",
            attendee,
            code,
        )
    record_change(
        session,
        attendee,
        "check_in",
        {"checked_in_at": [None, now.isoformat()]},
        organizer_id=organizer_id,
        now=now,
    )
    session.flush()
    return CheckInResult(CHECKED_IN, f"{attendee.full_name} is checked in.", attendee, code)


def undo_check_in(
    session: Session,
    attendee: Attendee,
    *,
    organizer_id: int | None,
    now: datetime | None = None,
) -> bool:
    """Take back a check-in; False (and nothing recorded) if the attendee was not checked in."""
    now = now or utcnow()
    session.refresh(attendee)
    previous = attendee.checked_in_at
    if previous is None:
        return False
    attendee.checked_in_at = None
    attendee.updated_at = now
    record_change(
        session,
        attendee,
        "undo_check_in",
        {"checked_in_at": [previous.isoformat(), None]},
        organizer_id=organizer_id,
        now=now,
    )
    session.flush()
    return True
