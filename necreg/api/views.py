"""JSON for scripts and the page's own refresh: counters and a registration."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint, Response, abort, current_app, jsonify, request

from ..extensions import db
from ..formats import json_timestamp
from ..mail.outbox import join_url
from ..models import STATUS_PENDING, Event
from ..money import amount_text
from ..pages import current_snapshot, questions_of
from ..payments import amount_paid
from ..program import signups_of
from ..program import waitlist_position as item_position
from ..questions import Answers, answers_of
from ..registration import companions_of, find_by_token, party_lead, waitlist_position
from ..speed.memo import kept
from ..stats import Snapshot, event_stats

bp = Blueprint("api", __name__, url_prefix="/api")

#: The memo name of the /api/stats answer, which the WSGI fast path replays (create_app).
STATS_ANSWER = "api.stats"


@dataclass(frozen=True)
class StatsAnswer:
    """/api/stats as it goes out: kept while nothing changes, and replayed as it is."""

    etag: str  # quoted
    body: bytes
    content_type: str = "application/json"

    @property
    def cache_headers(self) -> list[tuple[str, str]]:
        # Clients may keep the answer but must ask again each time (a 304 when unchanged).
        return [("ETag", self.etag), ("Cache-Control", "no-cache")]


@bp.get("/stats")
def stats():
    answer = kept(STATS_ANSWER, None, _stats_answer)
    if answer is None:
        abort(404)
    if request.if_none_match.contains(answer.etag.strip('"')):
        return Response(status=304, headers=answer.cache_headers)
    return Response(answer.body, headers=answer.cache_headers, content_type=answer.content_type)


def _stats_answer() -> StatsAnswer | None:
    snapshot = current_snapshot()
    if snapshot is None:
        return None
    # Per snapshot too, for when there is no change watch (then only the snapshot is read).
    body = kept("api.stats.body", snapshot, lambda: _stats_body(snapshot), watched=False)
    return StatsAnswer(f'"{snapshot.etag()}"', body)


def _stats_body(snapshot: Snapshot) -> bytes:
    event = db.session.get(Event, snapshot.event_id)
    return current_app.json.dumps(event_stats(db.session, event).as_json()).encode()


@bp.get("/registrations/<token>")
def registration(token: str):
    attendee = find_by_token(db.session, token)
    if attendee is None:
        abort(404)
    questions = questions_of(attendee.event)
    answers = answers_of(db.session, [attendee.id], questions).get(attendee.id, Answers())
    event = attendee.event
    party = [] if attendee.is_companion else companions_of(db.session, attendee)
    response = jsonify(
        code=attendee.code,
        status=attendee.status,
        role=attendee.role,
        first_name=attendee.first_name,
        last_name=attendee.last_name,
        waitlist_position=waitlist_position(db.session, attendee),
        answers=answers.as_json(),
        attendance=attendee.attendance,
        join_url=join_url(event, attendee) or None,
        consents={
            "photo": attendee.photo_consent_at is not None,
            "list": attendee.list_consent_at is not None,
        },
        party=[
            {
                "code": c.code,
                "first_name": c.first_name,
                "last_name": c.last_name,
                "age_band": c.age_band,
                "status": c.status,
            }
            for c in party
        ],
        party_of=party_lead(db.session, attendee).code if attendee.is_companion else None,
        amount_due=amount_text(attendee.amount_due, event.currency),
        amount_paid=amount_text(amount_paid(db.session, attendee.id), event.currency),
        currency=event.currency or None,
        program=[
            {
                "key": item.key,
                "status": signup.status,
                "waitlist_position": item_position(db.session, signup),
            }
            for item, signup in signups_of(db.session, attendee.id)
        ],
        payment_due_at=json_timestamp(attendee.payment_due_at)
        if attendee.status == STATUS_PENDING and attendee.payment_due_at
        else None,
    )
    response.cache_control.no_store = True
    return response
