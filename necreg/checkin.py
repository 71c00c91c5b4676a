"""Check-in at the door: find a registration by its code (typed or scanned), mark it, undo it.

Every check-in and undo is recorded in the attendee's audit trail, and every scan, whatever it
found, in the door's log (CheckInScan), from which the page after a scan shows its result.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from functools import cache

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from .formats import json_timestamp
from .models import (
    CODE_ALPHABET,
    CODE_LENGTH,
    STATUS_CANCELLED,
    Attendee,
    CheckInScan,
    Event,
    utcnow,
)
from .models import SCAN_ALREADY as ALREADY
from .models import SCAN_CANCELLED as CANCELLED
from .models import SCAN_CHECKED_IN as CHECKED_IN
from .models import SCAN_INVALID as INVALID
from .models import SCAN_UNKNOWN as UNKNOWN
from .models import SCAN_WAITLISTED as WAITLISTED
from .registration import record_change

__all__ = ["ALREADY", "CANCELLED", "CHECKED_IN", "INVALID", "UNKNOWN", "WAITLISTED"]

#: Longest scanner payload looked at (a URL with the code in it is far shorter).
MAX_PAYLOAD = 500


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
    """What the door sees after a scan. ``outcome`` is one of models.SCAN_OUTCOMES."""

    outcome: str
    message: str
    attendee: Attendee | None = None
    code: str | None = None
    #: The scan's row (CheckInScan), from which the same result can be shown again.
    scan_id: int | None = None

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
                "checked_in_at": json_timestamp(attendee.checked_in_at)
                if attendee.checked_in_at
                else None,
            },
        }


def _clock(moment: datetime, tz: tzinfo) -> str:
    """'09:12 CDT': the time of day where the event is, with the zone's abbreviation."""
    local = moment.astimezone(tz)
    return f"{local:%H:%M} {local.tzname()}"


def describe(scan: CheckInScan, *, prefix: str, tz: tzinfo = UTC) -> CheckInResult:
    """The result of ``scan`` as the door sees it, worded from the scan and the registration as
    they are now; times in ``tz`` (the event's time zone)."""
    attendee, code, outcome = scan.attendee, scan.code, scan.outcome
    if outcome == INVALID:
        message = (
            f"No attendee code found in what was scanned. Codes look like {prefix.upper()}-7K3QXA."
        )
    elif outcome == UNKNOWN or attendee is None:
        outcome, message = UNKNOWN, f"Unknown code {code}: no registration has it."
    elif outcome == CANCELLED:
        message = f"{code} ({attendee.full_name}) is cancelled: not registered."
    elif outcome == WAITLISTED:
        message = f"{code} ({attendee.full_name}) is on the waiting list, not confirmed."
    elif outcome == ALREADY:
        at = attendee.checked_in_at  # None if the check-in was undone since the scan
        when = f" at {_clock(at, tz)}" if at is not None else ""
        message = f"{attendee.full_name} is already checked in{when}."
    else:
        message = f"{attendee.full_name} is checked in."
    return CheckInResult(outcome, message, attendee, code, scan.id)


def find_by_code(session: Session, event: Event, code: str) -> Attendee | None:
    return session.execute(
        select(Attendee).where(Attendee.event_id == event.id, Attendee.code == code)
    ).scalar_one_or_none()


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
    """Check in the registration whose code is in ``payload``, and record the scan.

    Times in messages are shown in ``tz`` (the event's time zone). Only an active (confirmed)
    registration is checked in, and only once: the update is conditional on
    ``checked_in_at IS NULL``, so two scanners at two doors cannot both check in one person.
    """
    now = now or utcnow()
    code = extract_code(payload, prefix)
    attendee = find_by_code(session, event, code) if code is not None else None
    if code is None:
        outcome = INVALID
    elif attendee is None:
        outcome = UNKNOWN
    elif attendee.status == STATUS_CANCELLED:
        outcome = CANCELLED
    elif not attendee.is_active:
        outcome = WAITLISTED
    else:
        outcome = CHECKED_IN if _mark_checked_in(session, attendee, organizer_id, now) else ALREADY
    scan = CheckInScan(
        event_id=event.id,
        organizer_id=organizer_id,
        attendee=attendee,
        code=code,
        outcome=outcome,
        scanned_at=now,
    )
    session.add(scan)
    session.flush()
    return describe(scan, prefix=prefix, tz=tz)


def _mark_checked_in(
    session: Session, attendee: Attendee, organizer_id: int | None, now: datetime
) -> bool:
    """Set the check-in time unless it is set already (then False), in the audit trail too."""
    done = session.execute(
        update(Attendee)
        .where(Attendee.id == attendee.id, Attendee.checked_in_at.is_(None))
        .values(checked_in_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    session.refresh(attendee)
    if done.rowcount == 0:
        return False
    record_change(
        session,
        attendee,
        "check_in",
        {"checked_in_at": [None, now.isoformat()]},
        organizer_id=organizer_id,
        now=now,
    )
    return True


def shown_scan(
    session: Session, scan_id: int, *, organizer_id: int, prefix: str, tz: tzinfo = UTC
) -> CheckInResult | None:
    """The result of one of the organizer's own scans, to show it again; None for another's."""
    scan = session.get(CheckInScan, scan_id)
    if scan is None or scan.organizer_id != organizer_id:
        return None
    return describe(scan, prefix=prefix, tz=tz)


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
