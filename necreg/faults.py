"""When the database cannot be reached: answer 503 with Retry-After, never a 500.

A request that meets a lost or refused database connection (PostgreSQL restarting, a failover,
a network cut) has had its transaction rolled back by the database, so nothing of it is
stored: the honest answer is "try again shortly". The pool checks each connection before use
(database.py: psycopg's socket is polled, other drivers are pinged), so the workers recover by
themselves once the database is back; nothing needs a restart.
"""

from __future__ import annotations

import logging

from flask import Flask, jsonify, render_template, request
from sqlalchemy.exc import DBAPIError, OperationalError

from .extensions import db

log = logging.getLogger("necreg.faults")

#: Seconds a client is asked to wait before trying again.
RETRY_AFTER_SECONDS = 5
MESSAGE = (
    "The service cannot reach its database just now; nothing was saved. "
    "Please try again in a few seconds."
)


def unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database could not be reached (not a query's own error)."""
    if isinstance(exc, OperationalError):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


def init_app(app: Flask) -> None:
    @app.errorhandler(DBAPIError)
    def database_unreachable(exc: DBAPIError):
        if not unreachable(exc):
            raise exc  # a query's own error: the 500 handler logs it with its traceback
        log.warning("database unreachable on %s %s: %s", request.method, request.path, exc.orig)
        try:
            db.session.rollback()
        except DBAPIError:  # the connection is gone: the pool drops it
            db.session.close()
        headers = {"Retry-After": str(RETRY_AFTER_SECONDS), "Cache-Control": "no-store"}
        if request.path.startswith("/api/"):
            body = jsonify(error=MESSAGE, status=503)
        else:
            body = render_template("errors/error.html", code=503, message=MESSAGE)
        return body, 503, headers
