"""What an operator's tools ask: is the process up (/healthz), may it take traffic (/readyz),
and what has it done (/metrics, Prometheus' text).

None of these paths is rate-limited or counted in the request metrics (metrics.py), and
/healthz touches no database: a process that answers it is up, whatever the database does.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Blueprint, Response, current_app, jsonify, request
from sqlalchemy.exc import SQLAlchemyError

from .extensions import db, limiter
from .metrics import exposition
from .resources import resource_dir
from .speed.memo import kept

log = logging.getLogger("necreg.health")

bp = Blueprint("health", __name__)
# Not even under a limit set on every route (RATELIMIT_DEFAULT): monitors ask often, and a
# probe refused with 429 would take a healthy instance out of service.
limiter.exempt(bp)

#: The paths of this module: left out of the request metrics.
PATHS = ("/healthz", "/readyz", "/metrics")
NO_STORE = {"Cache-Control": "no-store"}
#: Headers a proxy adds: a request that carries one came through it, from anywhere.
PROXY_HEADERS = ("X-Forwarded-For", "Forwarded", "X-Real-IP")


@bp.get("/healthz")
def healthz():
    return jsonify(status="ok"), 200, NO_STORE


@bp.get("/readyz")
def readyz():
    reason = not_ready_reason()
    if reason is not None:
        return jsonify(status="not ready", reason=reason), 503, NO_STORE
    return jsonify(status="ready"), 200, NO_STORE


@bp.get("/metrics")
def metrics():
    refusal = metrics_refusal()
    if refusal is not None:
        return refusal
    body, content_type = exposition(db.session)
    return Response(body, content_type=content_type, headers=NO_STORE)


def not_ready_reason() -> str | None:
    """Why the app should not take traffic (None: it may): the database does not answer,
    or its schema is not the one the code's migrations end at. The reason is shown to whoever
    asks, so it names no host or account; the database's own error goes to the log."""
    try:
        with db.engine.connect() as connection:
            current = set(MigrationContext.configure(connection).get_current_heads())
    except SQLAlchemyError as exc:
        log.warning("readyz: the database cannot be reached: %s", exc)
        return "the database cannot be reached"
    # The files do not change while the process runs: read once (a probe asks every few s).
    expected = kept("health.migration_heads", None, migration_heads, watched=False)
    if current != expected:
        at = ", ".join(sorted(current)) or "no migration"
        return (
            f"the database is at {at}, the code at {', '.join(sorted(expected))}: "
            "run `necreg db upgrade`"
        )
    return None


def migration_heads() -> set[str]:
    """The revisions the code's migrations end at, read from their files."""
    config = Config()
    config.set_main_option("script_location", str(resource_dir("migrations")))
    return set(ScriptDirectory.from_config(config).get_heads())


def metrics_refusal() -> Response | None:
    """Why /metrics is not answered to this request (None: it is). With METRICS_TOKEN set,
    the request must carry it as a Bearer token (401 otherwise); without, only a request made
    on this machine's loopback, not through a proxy, is answered (403 otherwise)."""
    token = str(current_app.config["METRICS_TOKEN"])
    if token:
        scheme, _, sent = request.headers.get("Authorization", "").partition(" ")
        # compare_digest: how long the comparison takes says nothing of the token.
        if scheme.lower() == "bearer" and hmac.compare_digest(
            sent.strip().encode(), token.encode()
        ):
            return None
        return Response(
            "/metrics needs METRICS_TOKEN as a Bearer token (Authorization: Bearer ...).\n",
            401,
            {"WWW-Authenticate": 'Bearer realm="metrics"', **NO_STORE},
            content_type="text/plain; charset=utf-8",
        )
    if from_loopback():
        return None
    return Response(
        "/metrics answers only the loopback while METRICS_TOKEN is not set.\n",
        403,
        NO_STORE,
        content_type="text/plain; charset=utf-8",
    )


def from_loopback() -> bool:
    """Whether the request was made on this machine (127.0.0.0/8, ::1), not through a proxy
    on it (which would make every visitor's request look local)."""
    if any(name in request.headers for name in PROXY_HEADERS):
        return False
    try:
        return ipaddress.ip_address(request.remote_addr or "").is_loopback
    except ValueError:  # a Unix socket has no address
        return False
