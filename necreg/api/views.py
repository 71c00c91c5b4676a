"""JSON for scripts and the page's own refresh: counters and a registration."""

from __future__ import annotations

from flask import Blueprint, abort, jsonify, request

from ..extensions import db
from ..registration import current_event, find_by_token, waitlist_position
from ..stats import event_stats

bp = Blueprint("api", __name__, url_prefix="/api")


@bp.get("/stats")
def stats():
    event = current_event(db.session)
    if event is None:
        abort(404)
    figures = event_stats(db.session, event)
    response = jsonify(figures.as_json())
    response.set_etag(figures.etag())
    # Clients may keep the answer but must ask again each time (a 304 when unchanged).
    response.cache_control.no_cache = True
    return response.make_conditional(request)


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
