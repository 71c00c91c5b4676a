"""The read-only API for organizers' tools: /api/v1/attendees and its OpenAPI description.

Every request but the description's carries ``Authorization: Bearer <token>``
(``necreg create-api-token``) and counts against that token's budget (API_RATE_LIMIT). The
attendees come in pages ordered by id, each page starting after the last one seen (a cursor),
so registrations made meanwhile neither shift nor repeat what a client has read. Answers carry
an ETag of their body: a client that sends it back is told 304 while nothing changed.
"""

from __future__ import annotations

import base64
import hashlib
import math
import time

from flask import Blueprint, Response, current_app, g, jsonify, request
from flask_limiter import RequestLimit
from flask_limiter.errors import RateLimitExceeded
from sqlalchemy import BigInteger, literal, select

from ..attendee_search import FilterError, attendee_select, parse_filters
from ..extensions import db, limiter
from ..models import Attendee, Event
from ..pages import questions_of
from ..registration import current_event
from ..speed.memo import kept
from .openapi import (
    CODE_MAX,
    DEFAULT_LIMIT,
    EVENT_PARAMETER,
    FILTER_PARAMETERS,
    PAGE_PARAMETERS,
    ParameterError,
    check_parameters,
    openapi_document,
)
from .resources import attendee_resources
from .tokens import authenticate

bp = Blueprint("api_v1", __name__, url_prefix="/api/v1")

#: What a 401 asks for (RFC 6750).
CHALLENGE = 'Bearer realm="necreg"'
#: Personal data: kept by the client only (never by a shared cache), and asked for again each
#: time (a 304 while the ETag holds).
CACHE_CONTROL = "private, no-cache"
#: The largest id a cursor stands for (SQLite's integers are 64-bit and signed).
MAX_ID = 2**63 - 1


class ApiError(Exception):
    """An answer other than the one asked for: its status and what to tell the client."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def _error_response(status: int, message: str, headers: dict[str, str] | None = None):
    response = jsonify(error=message, status=status)
    response.status_code = status
    response.headers.update(headers or {})
    response.cache_control.no_store = True
    return response


@bp.errorhandler(ApiError)
def api_error(exc: ApiError):
    return _error_response(exc.status, exc.message, exc.headers)


# --- tokens and their budget --------------------------------------------------------------


@bp.before_request
def require_token():
    """Every endpoint but the description needs a token that is neither unknown nor revoked."""
    if request.endpoint == "api_v1.openapi":
        return None
    given = request.authorization
    secret = given.token if given is not None and given.type == "bearer" else None
    token = authenticate(db.session, secret or "")
    if token is None:
        challenge = CHALLENGE + (', error="invalid_token"' if secret else "")
        raise ApiError(
            401,
            "Send a valid API token: Authorization: Bearer <token> (necreg create-api-token NAME)."
            if not secret
            else "This API token is unknown or has been revoked.",
            {"WWW-Authenticate": challenge},
        )
    g.api_token_hash = token.token_hash
    if db.session.is_modified(token):  # its last use noted
        db.session.commit()
    return None


def _rate_limit() -> str:
    return current_app.config["API_RATE_LIMIT"]


def _token_key() -> str:
    """The budget's key: the token (by its hash), wherever its requests come from."""
    return "api-token:" + g.api_token_hash


def _too_many(limit: RequestLimit) -> Response:
    wait = max(1, math.ceil(limit.window[0] - time.time()))
    return _error_response(
        429,
        f"Too many requests with this token (at most {limit.limit}); try again in {wait} s.",
        {"Retry-After": str(wait)},
    )


#: One budget per token for every endpoint that needs one.
token_budget = limiter.shared_limit(
    _rate_limit, scope="api-v1", key_func=_token_key, on_breach=_too_many
)


@bp.errorhandler(RateLimitExceeded)
def rate_limited(exc: RateLimitExceeded):
    return exc.get_response()


# --- answers ------------------------------------------------------------------------------


def _json_with_etag(body) -> Response:
    """``body`` as JSON with an ETag of its bytes; 304 when the client has them already."""
    data = current_app.json.dumps(body).encode()
    etag = hashlib.sha256(data).hexdigest()[:40]
    headers = {"ETag": f'"{etag}"', "Cache-Control": CACHE_CONTROL, "Vary": "Authorization"}
    if request.if_none_match.contains_weak(etag):
        return Response(status=304, headers=headers)
    return Response(data, headers=headers, mimetype="application/json")


def _parameters(declared: list[dict]) -> dict[str, str]:
    try:
        return check_parameters(request.args.to_dict(flat=False), declared)
    except ParameterError as exc:
        raise ApiError(400, str(exc)) from None


def _event(slug: str | None) -> Event:
    """The event named by ``slug``, or the current one; 404 when there is none."""
    if slug is not None:
        event = db.session.execute(select(Event).where(Event.slug == slug)).scalar_one_or_none()
        if event is None:
            raise ApiError(404, f"There is no event {slug!r}.")
        return event
    event = current_event(db.session)
    if event is None:
        raise ApiError(404, "There is no current event; name one with event=<slug>.")
    return event


def encode_cursor(last_id: int) -> str:
    """The cursor of the page after the attendee with id ``last_id``."""
    return base64.urlsafe_b64encode(last_id.to_bytes(8, "big")).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The id a cursor (openapi.CURSOR_PATTERN, already checked) starts after; 0: the start."""
    if not cursor:
        return 0
    return min(int.from_bytes(base64.urlsafe_b64decode(cursor + "="), "big"), MAX_ID)


def _answer_filters() -> dict[str, str]:
    """The ``q_<question key>=<choice>`` arguments, each given once."""
    found = {}
    for name, values in request.args.lists():
        if not name.startswith("q_"):
            continue
        if len(values) > 1:
            raise ApiError(400, f"Give {name} once, not {len(values)} times.")
        found[name] = values[0]
    return found


@bp.get("/attendees")
@token_budget
def attendees():
    values = _parameters([EVENT_PARAMETER, *FILTER_PARAMETERS, *PAGE_PARAMETERS])
    event = _event(values.get("event"))
    filter_args = {p["name"]: values[p["name"]] for p in FILTER_PARAMETERS if p["name"] in values}
    try:
        filters = parse_filters({**filter_args, **_answer_filters()}, questions_of(event))
    except FilterError as exc:
        raise ApiError(400, str(exc)) from None
    limit = int(values.get("limit", DEFAULT_LIMIT))
    page = (
        attendee_select(event, filters)
        # BigInteger: a cursor may stand for an id beyond the column's type on PostgreSQL.
        .where(Attendee.id > literal(decode_cursor(values.get("cursor", "")), BigInteger))
        .order_by(None)
        .order_by(Attendee.id)
        .limit(limit + 1)
    )
    rows = db.session.execute(page).scalars().all()
    shown = rows[:limit]
    return _json_with_etag(
        {
            "data": attendee_resources(db.session, event, shown),
            "next_cursor": encode_cursor(shown[-1].id) if len(rows) > limit else None,
        }
    )


@bp.get("/attendees/<code>")
@token_budget
def attendee(code: str):
    values = _parameters([EVENT_PARAMETER])
    event = _event(values.get("event"))
    found = None
    if len(code) <= CODE_MAX and "\x00" not in code:
        found = db.session.execute(
            select(Attendee).where(Attendee.event_id == event.id, Attendee.code == code)
        ).scalar_one_or_none()
    if found is None:
        raise ApiError(404, f"No registration with the code {code[:CODE_MAX]!r} in {event.slug}.")
    return _json_with_etag(attendee_resources(db.session, event, [found])[0])


@bp.get("/openapi.json")
def openapi():
    server_url = request.script_root + bp.url_prefix
    # The description changes only with the code: kept per address the app is mounted at.
    document = kept(
        "api.openapi",
        server_url,
        lambda: current_app.json.dumps(openapi_document(server_url)).encode(),
        size=8,
        watched=False,
    )
    return Response(document, mimetype="application/json")
