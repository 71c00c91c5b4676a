"""JSON for scripts and the page's own refresh: counters and a registration."""

from __future__ import annotations

from collections.abc import Hashable

from flask import Blueprint, Flask, Response, abort, current_app, jsonify, request

from ..database import change_watch
from ..extensions import db
from ..models import Event, utcnow
from ..registration import find_by_token, waitlist_position
from ..stats import Snapshot, current_snapshot, event_stats, memoized

bp = Blueprint("api", __name__, url_prefix="/api")


@bp.get("/stats")
def stats():
    watch = change_watch(current_app)
    token = watch.token() if watch is not None else None  # before reading: see LastAnswer
    snapshot = current_snapshot(db.session, utcnow(), watch)
    if snapshot is None:
        abort(404)
    etag = snapshot.etag()
    # Clients may keep the answer but must ask again each time (a 304 when unchanged).
    headers = {"ETag": f'"{etag}"', "Cache-Control": "no-cache"}
    body = memoized(current_app, "api.stats", snapshot, lambda: _stats_body(snapshot))
    if token is not None:
        current_app.extensions[LAST_ANSWER] = LastAnswer(token, f'"{etag}"', body)
    if request.if_none_match.contains(etag):
        return Response(status=304, headers=headers)
    return Response(body, headers=headers, mimetype="application/json")


LAST_ANSWER = "necreg.api_stats_answer"


class LastAnswer:
    """The last /api/stats answer, and the change watch's token from before it was read."""

    def __init__(self, token: Hashable, quoted_etag: str, body: bytes):
        self.token = token
        self.quoted_etag = quoted_etag
        self.body = body
        cache = [("ETag", quoted_etag), ("Cache-Control", "no-cache")]
        self.ok_headers = [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            *cache,
        ]
        self.not_modified_headers = cache


class StatsFastPath:
    """WSGI middleware: GET /api/stats answered from the view's last answer, without Flask,
    while the change watch (freshness.py) says the database has not changed since.

    Every open landing page polls /api/stats, so it is the busiest path by far; what Flask
    does around a request (contexts, session, hooks, routing) cost more than the answer itself.
    Only the two usual requests are answered here (no If-None-Match, or exactly the current
    ETag); anything else, and any request while the watch cannot tell, goes to the view.
    """

    def __init__(self, wsgi_app, app: Flask):
        self.wsgi_app = wsgi_app
        self.app = app

    def __call__(self, environ, start_response):
        if (
            environ.get("PATH_INFO") == "/api/stats"
            and environ.get("REQUEST_METHOD") == "GET"
            and not environ.get("QUERY_STRING")
        ):
            last: LastAnswer | None = self.app.extensions.get(LAST_ANSWER)
            watch = change_watch(self.app)
            if last is not None and watch is not None and watch.token() == last.token:
                asked = environ.get("HTTP_IF_NONE_MATCH")
                if asked is None:
                    start_response("200 OK", list(last.ok_headers))
                    return [last.body]
                if asked == last.quoted_etag:
                    start_response("304 NOT MODIFIED", list(last.not_modified_headers))
                    return []
        return self.wsgi_app(environ, start_response)


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
