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
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, object_session

from . import webhooks
from .counters import add_to_figure
from .formats import json_timestamp
from .models import (
    CODE_ALPHABET,
    CODE_LENGTH,
    STATUS_CANCELLED,
    STATUS_CONFIRMED,
    Attendee,
    CheckInScan,
    Event,
    ProgramAttendance,
    ProgramItem,
    ProgramSignup,
    utcnow,
)
from .models import SCAN_ALREADY as ALREADY
from .models import SCAN_CANCELLED as CANCELLED
from .models import SCAN_CHECKED_IN as CHECKED_IN
from .models import SCAN_INVALID as INVALID
from .models import SCAN_NOT_SIGNED_UP as NOT_SIGNED_UP
from .models import SCAN_UNKNOWN as UNKNOWN
from .models import SCAN_WAITLISTED as WAITLISTED
from .registration import record_change

__all__ = [
    "ALREADY", "CANCELLED", "CHECKED_IN", "INVALID", "NOT_SIGNED_UP", "UNKNOWN", "WAITLISTED",
]  # fmt: skip

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
    #: The program item at whose door it was scanned (None: the registration desk).
    item_key: str | None = None

    def as_json(self) -> dict[str, object]:
        attendee = self.attendee
        return {
            "outcome": self.outcome,
            "message": self.message,
            "code": self.code,
            "item": self.item_key,
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
    attendee, code, outcome, item = scan.attendee, scan.code, scan.outcome, scan.item
    to = f" to {item.title}" if item is not None else ""
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
    elif outcome == NOT_SIGNED_UP:
        assert item is not None
        message = f"{attendee.full_name} has no place at {item.title}."
    elif outcome == ALREADY:
        # None if the check-in was undone since the scan
        at = attendee.checked_in_at if item is None else _attended_at(scan, item.id, attendee.id)
        when = f" at {_clock(at, tz)}" if at is not None else ""
        message = f"{attendee.full_name} is already checked in{to}{when}."
    else:
        message = f"{attendee.full_name} is checked in{to}."
    return CheckInResult(outcome, message, attendee, code, scan.id, item.key if item else None)


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
    item: ProgramItem | None = None,
    now: datetime | None = None,
    tz: tzinfo = UTC,
) -> CheckInResult:
    """Check in the registration whose code is in ``payload``, at the registration desk or at
    the door of the program ``item``, and record the scan.

    Times in messages are shown in ``tz`` (the event's time zone). Only an active (confirmed)
    registration is checked in, and only once at each door: the update is conditional on
    ``checked_in_at IS NULL`` (at an item, the insert on its unique attendance row), so two
    scanners cannot both check in one person. At an item with places, only those with a place
    there come in.
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
    elif item is not None and item.signs_up and not has_place(session, item, attendee):
        outcome = NOT_SIGNED_UP
    elif item is not None:
        came = _mark_attended(session, item, attendee, organizer_id, now)
        outcome = CHECKED_IN if came else ALREADY
    else:
        outcome = CHECKED_IN if _mark_checked_in(session, attendee, organizer_id, now) else ALREADY
    scan = CheckInScan(
        event_id=event.id,
        organizer_id=organizer_id,
        attendee=attendee,
        code=code,
        outcome=outcome,
        scanned_at=now,
        item=item,
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
    webhooks.note(session, attendee.id, webhooks.CHECKED_IN)  # the UPDATE bypasses the ORM
    record_change(
        session,
        attendee,
        "check_in",
        {"checked_in_at": [None, now.isoformat()]},
        organizer_id=organizer_id,
        now=now,
    )
    return True


def _attended_at(scan: CheckInScan, item_id: int, attendee_id: int) -> datetime | None:
    """When the attendee was checked in at the item (None: not, or no longer)."""
    session = object_session(scan)
    assert session is not None
    return session.execute(
        select(ProgramAttendance.checked_in_at).where(
            ProgramAttendance.item_id == item_id, ProgramAttendance.attendee_id == attendee_id
        )
    ).scalar_one_or_none()


def has_place(session: Session, item: ProgramItem, attendee: Attendee) -> bool:
    """The attendee has a place at the item with places (a confirmed sign-up)."""
    return (
        session.execute(
            select(ProgramSignup.id).where(
                ProgramSignup.item_id == item.id,
                ProgramSignup.attendee_id == attendee.id,
                ProgramSignup.status == STATUS_CONFIRMED,
            )
        ).first()
        is not None
    )


def _mark_attended(
    session: Session,
    item: ProgramItem,
    attendee: Attendee,
    organizer_id: int | None,
    now: datetime,
) -> bool:
    """Record the attendee at the item's door unless they are already (then False): one
    insert that the unique (item, attendee) index makes happen once, in the audit trail and
    the item's ``attended`` figure too."""
    table = ProgramAttendance.__table__
    dialect = session.get_bind().dialect.name
    upsert = (postgresql_insert if dialect == "postgresql" else sqlite_insert)(table)
    statement = upsert.values(
        item_id=item.id, attendee_id=attendee.id, checked_in_at=now, organizer_id=organizer_id
    ).on_conflict_do_nothing(index_elements=[table.c.item_id, table.c.attendee_id])
    if session.execute(statement.returning(table.c.id)).first() is None:
        return False
    add_to_figure(session, item.event_id, "attended", item.key, 1)
    record_change(
        session,
        attendee,
        "check_in_item",
        {item.key: [None, now.isoformat()]},
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
