"""JSON for scripts and the page's own refresh: counters and a registration."""

from __future__ import annotations

from flask import Blueprint, Response, abort, current_app, jsonify, request

from ..database import change_watch
from ..extensions import db
from ..models import Event, utcnow
from ..registration import find_by_token, waitlist_position
from ..stats import Snapshot, current_snapshot, event_stats, memoized

bp = Blueprint("api", __name__, url_prefix="/api")


@bp.get("/stats")
def stats():
    snapshot = current_snapshot(db.session, utcnow(), change_watch(current_app))
    if snapshot is None:
        abort(404)
    etag = snapshot.etag()
    # Clients may keep the answer but must ask again each time (a 304 when unchanged).
    headers = {"ETag": f'"{etag}"', "Cache-Control": "no-cache"}
    if request.if_none_match.contains(etag):
        return Response(status=304, headers=headers)
    body = memoized(current_app, "api.stats", snapshot, lambda: _stats_body(snapshot))
    return Response(body, headers=headers, mimetype="application/json")


def _stats_body(snapshot: Snapshot) -> bytes:
    event = db.session.get(Event, snapshot.event_id)
    return current_app.json.dumps(event_stats(db.session, event).as_json()).encode()


@bp.get("/registrations/<token>")
def registration(token: str):
    attendee = find_by_token(db.session, token)
    if attendee is None:
        abort(404)
    response = jsonify(
        code=attendee.code,
        status=attendee.status,
        role=attendee.role,
        first_name=attendee.first_name,
        last_name=attendee.last_name,
        waitlist_position=waitlist_position(db.session, attendee),
    )
    response.cache_control.no_store = True
    return response
