"""Log lines an operator can follow: each carries the id of the request it was written in, and
with LOG_FORMAT = "json" each is one JSON object, for a log collector.

The request id is the client's ``X-Request-ID`` when it is a sane one (a proxy or load
balancer in front usually sets it, so one id follows the request through every log), else one
made here; the response carries it back in ``X-Request-ID``, and gunicorn's access log takes it
from there (gunicorn.conf.py).
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
from collections.abc import Callable, Iterable
from contextvars import ContextVar

from flask import Flask
from flask.logging import default_handler

#: The header a request id comes in and goes back out in (the usual name, nginx's and AWS's).
REQUEST_ID_HEADER = "X-Request-ID"
#: A client's id is taken only if it is short and made of these characters: it goes into
#: every log line and a response header, where anything else could forge or break a line.
SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
#: Where the id of the request being served is kept (per thread, per task), for the loggers.
_request_id: ContextVar[str | None] = ContextVar("necreg_request_id", default=None)
#: Its key in the WSGI environ, for code that has the environ (a view: ``request.environ``).
ENVIRON_KEY = "necreg.request_id"
LOG_FORMATS = ("text", "json")
#: What the app writes to: the loggers of its modules (necreg.*) are children of this one.
APP_LOGGER = "necreg"

#: The secret part of the paths that a personal link opens (the link is the key to a
#: registration, an unsubscription, a certificate): kept out of gunicorn's access log
#: (gunicorn.conf.py) and of error reports (error_reports.py).
TOKEN_IN_PATH = re.compile(
    r"(/(?:registration|interest/confirm|unsubscribe|certificates|api/registrations"
    r"|organizer/set-password)/)"
    r"(?!lost-link(?:[/?#\s]|$))[^/?#\s]+"
)
MASK = "<masked>"


def mask_tokens(text):
    """``text`` (a request line, a path, a Referer) with every token of TOKEN_IN_PATH masked."""
    return TOKEN_IN_PATH.sub(r"\1" + MASK, text) if isinstance(text, str) else text


def current_request_id() -> str | None:
    """The id of the request being served in this thread, or None outside a request."""
    return _request_id.get()


def request_id_from(sent: str | None) -> str:
    """``sent`` (the client's X-Request-ID) if it is sane, else a new id: 128 random bits in
    32 hex digits, as ``uuid4().hex`` looks, without building a UUID (a fifth of the cost, on
    every request)."""
    if sent and SANE_REQUEST_ID.fullmatch(sent):
        return sent
    return os.urandom(16).hex()


class RequestId:
    """WSGI middleware: gives each request its id (``request_id_from``), kept for the loggers
    while the app answers, and sends it back in the ``X-Request-ID`` response header.

    Plain WSGI, outermost, so that every answer carries it, the ones given before Flask
    (speed/wsgi.py) and the error pages too.
    """

    def __init__(self, app: Callable) -> None:
        self.app = app

    def __call__(self, environ, start_response) -> Iterable[bytes]:
        request_id = environ[ENVIRON_KEY] = request_id_from(environ.get("HTTP_X_REQUEST_ID"))
        header = (REQUEST_ID_HEADER, request_id)

        def start(status, headers, exc_info=None):
            headers.append(header)
            return start_response(status, headers, exc_info)

        token = _request_id.set(request_id)
        try:
            return self.app(environ, start)
        finally:
            # A streamed body is written after this; its lines (rare) go without an id rather
            # than with a stale one in the lines written between requests.
            _request_id.reset(token)


class TextFormatter(logging.Formatter):
    """One readable line: time, level, logger, [request id], message (a traceback after it)."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        record.request_id = request_id_of(record) or "-"
        return super().format(record)


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line: ``time`` (UTC, ISO 8601, milliseconds),
    ``level``, ``logger``, ``message``, ``request_id`` (null outside a request), and
    ``exception`` (the traceback) or ``stack`` when the record has one."""

    def format(self, record: logging.LogRecord) -> str:
        moment = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        line = {
            "time": f"{moment}.{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": request_id_of(record),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False, default=str)


#: gunicorn's access log record: its args are the line's atoms, the response's headers among
#: them (the id is no longer the current one: the line is written after the answer).
_ACCESS_REQUEST_ID = "{x-request-id}o"


def request_id_of(record: logging.LogRecord) -> str | None:
    """The request id of ``record``: its own (``extra={"request_id": ...}``), the one its
    response was sent with (gunicorn's access log), or the one of the request being served."""
    own = getattr(record, "request_id", None)
    if own is None and isinstance(record.args, dict) and _ACCESS_REQUEST_ID in record.args:
        own = dict.get(record.args, _ACCESS_REQUEST_ID)
    return own or _request_id.get()


def formatter_for(log_format: str) -> logging.Formatter:
    if log_format not in LOG_FORMATS:
        raise ValueError(f'LOG_FORMAT must be "text" or "json", not {log_format!r}')
    return JsonFormatter() if log_format == "json" else TextFormatter()


class _StandardError(logging.StreamHandler):
    """A handler writing to whatever ``sys.stderr`` is when a record comes (gunicorn and
    the test runner replace it after the app is made)."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


#: The one handler of the app's loggers, whatever the number of apps made in the process.
handler: logging.Handler = _StandardError()


def init_app(app: Flask) -> None:
    """Write the app's log lines (logger "necreg" and its children) through ``handler`` in the
    app's LOG_FORMAT, instead of Flask's default handler; records still go on to the root
    logger's handlers (none under gunicorn; the test runner's in tests).

    Logging is the process's, not the app's: the last app made sets the format (one app per
    process outside the tests)."""
    handler.setFormatter(formatter_for(str(app.config["LOG_FORMAT"])))
    logger = logging.getLogger(APP_LOGGER)
    logger.removeHandler(default_handler)
    if handler not in logger.handlers:
        logger.addHandler(handler)
    # The development server's request lines, as the app's are.
    werkzeug = logging.getLogger("werkzeug")
    if handler not in werkzeug.handlers:
        werkzeug.addHandler(handler)
    format_gunicorn_logs(str(app.config["LOG_FORMAT"]))


#: gunicorn's loggers: its error log (the master's and workers' own lines) and access log.
GUNICORN_LOGGERS = ("gunicorn.error", "gunicorn.access")


def format_gunicorn_logs(log_format: str) -> None:
    """With "json", gunicorn's own lines as JSON too (its handlers, set up before the app is
    loaded; gunicorn.conf.py calls this again when a reload sets them up anew). With "text"
    they keep gunicorn's format; the access log's carries the request id (gunicorn.conf.py)."""
    if log_format != "json":
        return
    for name in GUNICORN_LOGGERS:
        for gunicorn_handler in logging.getLogger(name).handlers:
            gunicorn_handler.setFormatter(JsonFormatter())
