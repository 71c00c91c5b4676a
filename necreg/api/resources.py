"""A registration as the API v1 (``/api/v1/attendees``) and the webhooks show it: one shape,
defined here once, and read for a page of attendees in a fixed number of queries.

openapi.py describes the shape (``ATTENDEE_SCHEMA``); tests/test_api_v1.py fails when the two
differ by a key. Answers to questions marked sensitive are left out: tools that read the API
get what the organizer list shows, not the data kept from those who do not need it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..formats import json_timestamp
from ..models import Attendee, Event, Payment
from ..money import amount_text
from ..questions import answers_of, event_questions


def attendee_resource(
    attendee: Attendee,
    *,
    event: Event,
    lead_code: str | None,
    paid: int,
    answers: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON object of one registration; ``lead_code``: the code of a companion's lead
    (None for a lead or someone alone), ``paid``: what was paid and kept, in minor units,
    ``answers``: the answers to the event's questions that are not sensitive, by key
    (``Answers.as_json``)."""
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
        "updated_at": _moment(attendee.updated_at),
        "answers": dict(answers or {}),
    }


def _moment(value: Any) -> str | None:
    return json_timestamp(value) if value is not None else None


def attendee_resources(
    session: Session, event: Event, attendees: Sequence[Attendee]
) -> list[dict[str, Any]]:
    """``attendee_resource`` of each of ``attendees`` (of ``event``), in their order: the
    leads' codes, the sums paid, the event's questions and the answers to those not
    sensitive read in one query each."""
    if not attendees:
        return []
    lead_ids = {a.party_id for a in attendees if a.party_id is not None}
    codes = dict(
        session.execute(select(Attendee.id, Attendee.code).where(Attendee.id.in_(lead_ids))).all()
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
        ).all()
    )
    # Retired questions too: their answers were given and are still shown to organizers.
    shown = [q for q in event_questions(session, event.id, retired=True) if not q.sensitive]
    answers = answers_of(session, [a.id for a in attendees], shown)
    return [
        attendee_resource(
            a,
            event=event,
            lead_code=codes.get(a.party_id) if a.party_id is not None else None,
            paid=int(paid.get(a.id) or 0),
            answers=answers[a.id].as_json() if a.id in answers else None,
        )
        for a in attendees
    ]
