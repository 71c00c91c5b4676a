"""A registration as the API v1 (``/api/v1/attendees``) and the webhooks show it: one shape,
defined here once, and read for a page of attendees in a fixed number of queries."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..formats import json_timestamp
from ..models import Attendee, Event, Payment
from ..money import amount_text


def attendee_resource(
    attendee: Attendee, *, event: Event, lead_code: str | None, paid: int
) -> dict[str, Any]:
    """The JSON object of one registration; ``lead_code``: the code of a companion's lead
    (None for a lead or someone alone), ``paid``: what was paid and kept, in minor units."""
    return {
        "code": attendee.code,
        "event": event.slug,
        "status": attendee.status,
        "role": attendee.role,
        "first_name": attendee.first_name,
        "last_name": attendee.last_name,
        "badge_name": attendee.badge_name,
        "email": attendee.email,
        "institution": attendee.institution,
        "country": attendee.country,
        "early_career": attendee.early_career,
        "credential": attendee.credential or None,
        "attendance": attendee.attendance,
        "age_band": attendee.age_band,
        "party_of": lead_code,
        "amount_due": amount_text(attendee.amount_due, event.currency),
        "amount_paid": amount_text(paid, event.currency),
        "currency": event.currency or None,
        "checked_in_at": _moment(attendee.checked_in_at),
        "created_at": _moment(attendee.created_at),
    }


def _moment(value: Any) -> str | None:
    return json_timestamp(value) if value is not None else None


def attendee_resources(
    session: Session, event: Event, attendees: Sequence[Attendee]
) -> list[dict[str, Any]]:
    """``attendee_resource`` of each of ``attendees`` (of ``event``), in their order: the
    leads' codes and the sums paid read in one query each."""
    if not attendees:
        return []
    lead_ids = {a.party_id for a in attendees if a.party_id is not None}
    codes = dict(
        session.execute(select(Attendee.id, Attendee.code).where(Attendee.id.in_(lead_ids)))
        .tuples()
        .all()
        if lead_ids
        else ()
    )
    paid = dict(
        session.execute(
            select(Payment.attendee_id, func.sum(Payment.amount))
            .where(
                Payment.attendee_id.in_([a.id for a in attendees]),
                Payment.refunded_at.is_(None),
            )
            .group_by(Payment.attendee_id)
        )
        .tuples()
        .all()
    )
    return [
        attendee_resource(
            a,
            event=event,
            lead_code=codes.get(a.party_id) if a.party_id is not None else None,
            paid=int(paid.get(a.id) or 0),
        )
        for a in attendees
    ]
