"""Cross-cutting web behaviour: error pages, security headers, what every request must be
(ids the database can hold, no control characters in the address) and template helpers."""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Callable, Iterable
from datetime import date, tzinfo

from flask import Flask, abort, current_app, jsonify, render_template, request
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from markdown_it import MarkdownIt
from markupsafe import Markup
from werkzeug.exceptions import HTTPException, InternalServerError
from werkzeug.routing import IntegerConverter

from .formats import clock_text, local_input, moment_text, zone_name
from .models import (
    AGE_BANDS,
    ATTENDANCE,
    ATTENDEE_ROLES,
    CREDENTIALS,
    PROGRAM_KINDS,
    QUESTION_TYPES,
    ROLES,
    STATUS_LABELS,
    utcnow,
)
from .money import format_amount, format_money
from .pdf_fonts import FontsMissing
from .qr import qr_svg
from .questions import OTHER_TEXT_LABEL, answer_text

# Raw HTML in event text is shown as text, never run: organizers write Markdown only.
_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False})

ERROR_MESSAGES = {
    400: "The request could not be understood. Please go back and try again.",
    403: "You are not allowed to do that.",
    404: "There is no page at this address.",
    405: "This page cannot be used that way.",
    413: "What was sent is too large.",
    500: "Something went wrong on our side. It has been logged; please try again later.",
}

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
#: Sent with every response (no view sets any of them itself; speed/wsgi.py adds them).
SECURITY_HEADERS = (
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
    ("X-Frame-Options", "DENY"),
)
#: The browser features no page of the site uses (Permissions-Policy); the check-in page is
#: let use the camera (CHECK_IN_PATH), for a phone or laptop that reads the QR codes.
DENIED_FEATURES = (
    "accelerometer", "camera", "display-capture", "geolocation", "gyroscope", "magnetometer",
    "microphone", "midi", "usb",
)  # fmt: skip
PERMISSIONS_POLICY = ", ".join(f"{feature}=()" for feature in DENIED_FEATURES)
CHECK_IN_PATH = "/organizer/check-in"
CHECK_IN_PERMISSIONS_POLICY = PERMISSIONS_POLICY.replace("camera=()", "camera=(self)")
#: In production (HTTPS only): browsers never ask this site over plain HTTP again, for a year.
STRICT_TRANSPORT_SECURITY = "max-age=31536000; includeSubDomains"
#: Paths whose answers no browser or proxy may keep (shared computers at the venue): the
#: organizer pages, and the pages a personal link opens (the link is the key).
PRIVATE_PATHS = (
    "/organizer/", "/registration/", "/interest/confirm/", "/unsubscribe/", "/certificates/",
    "/api/registrations/",
)  # fmt: skip
#: The session cookie's name in production (create_app): the __Host- prefix.
SESSION_COOKIE_PRODUCTION = "__Host-necreg_session"
#: The largest id a route's ``<int:...>`` takes: the database's integer columns hold no more.
MAX_ID = 2**31 - 1

security_log = logging.getLogger("necreg.security")


class DatabaseId(IntegerConverter):
    """``<int:...>`` in every route: a number the database's integer ids can hold. A larger
    one is no page (404), as an id that does not exist, not an error from the database."""

    def __init__(self, map, fixed_digits=0, min=None, max=MAX_ID, signed=False) -> None:  # noqa: A002
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


def _has_controls(text: str) -> bool:
    return any(unicodedata.category(ch) == "Cc" for ch in text)


def refuse_control_characters() -> None:
    """No request reaches a view with a control character (a NUL above all, which PostgreSQL
    refuses in a text) in its path (404: no page has such an address) or its query string
    (400): not in a token, a code, a search or a ``next=`` address. The API checks its query
    itself, each parameter with its own message (api/v1.py)."""
    if _has_controls(request.path):
        abort(404)
    if (
        request.query_string
        and not request.path.startswith("/api/")
        and any(
            _has_controls(name) or _has_controls(value)
            for name, value in request.args.items(multi=True)
        )
    ):
        abort(400, "The address holds control characters; please type it again.")


class PolicyHeaders:
    """WSGI middleware: the headers that depend on the path and the setting ENV, added to the
    plain header list as SecurityHeaders (speed/wsgi.py) adds the others.

    - ``Cache-Control: no-store`` under PRIVATE_PATHS, unless the view asked for a check at
      every use itself (``no-cache``: the dashboard's figures, polled with their ETag);
    - ``Permissions-Policy``: no feature (the camera for the check-in page);
    - ``Strict-Transport-Security`` in production.
    """

    def __init__(self, app: Callable, *, production: bool) -> None:
        self.app = app
        self.always = (("Strict-Transport-Security", STRICT_TRANSPORT_SECURITY),) * production

    def __call__(self, environ, start_response) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        private = path.startswith(PRIVATE_PATHS)
        policy = CHECK_IN_PERMISSIONS_POLICY if path == CHECK_IN_PATH else PERMISSIONS_POLICY

        def start(status, headers, exc_info=None):
            if private and not any(
                k.lower() == "cache-control" and "no-cache" in v for k, v in headers
            ):
                headers[:] = [(k, v) for k, v in headers if k.lower() != "cache-control"]
                headers.append(("Cache-Control", "no-store"))
            headers.append(("Permissions-Policy", policy))
            headers.extend(self.always)
            return start_response(status, headers, exc_info)

        return self.app(environ, start)


def render_markdown(text: str) -> Markup:
    return Markup(_markdown.render(text or ""))  # noqa: S704 - html=False escapes raw HTML


def date_range(start: date, end: date) -> str:
    """'September 7-10, 2025', 'August 30 - September 2, 2025', or one day."""
    if start == end:
        return f"{start:%B} {start.day}, {start.year}"
    if (start.year, start.month) == (end.year, end.month):
        return f"{start:%B} {start.day}-{end.day}, {start.year}"
    if start.year == end.year:
        return f"{start:%B} {start.day} - {end:%B} {end.day}, {end.year}"
    return f"{start:%B} {start.day}, {start.year} - {end:%B} {end.day}, {end.year}"


def _wants_json() -> bool:
    return request.path.startswith("/api/")


def _error_response(code: int, message: str):
    if _wants_json():
        return jsonify(error=message, status=code), code
    return render_template("errors/error.html", code=code, message=message), code


def init_app(app: Flask) -> None:
    # fees and program read the database module, which imports this one
    from .config import display_timezone
    from .extensions import db
    from .fees import price_terms
    from .program import credits_text
    from .registration import current_event

    def shown_zone() -> tzinfo:
        """The time zone of a page that is about no one event (accounts, the audit log, the
        webhooks' deliveries): the current event's, as everywhere else, or the setting
        DISPLAY_TIMEZONE while there is no event."""
        event = current_event(db.session)
        if event is not None:
            return event.zone
        return display_timezone(current_app.config["DISPLAY_TIMEZONE"])

    app.url_map.converters["int"] = DatabaseId  # before any route is added
    app.before_request(refuse_control_characters)
    app.jinja_env.filters["markdown"] = render_markdown
    app.jinja_env.globals["date_range"] = date_range
    app.jinja_env.globals["ROLES"] = ROLES
    app.jinja_env.globals["AGE_BANDS"] = AGE_BANDS
    app.jinja_env.globals["ATTENDANCE"] = ATTENDANCE
    app.jinja_env.globals["STATUS_LABELS"] = STATUS_LABELS
    app.jinja_env.globals["CREDENTIALS"] = CREDENTIALS
    app.jinja_env.globals["QUESTION_TYPES"] = QUESTION_TYPES
    app.jinja_env.globals["format_money"] = format_money
    app.jinja_env.globals["format_amount"] = format_amount
    # Times are stored in UTC and shown on the clock of the event's time zone (its file's
    # ``timezone``), named by its abbreviation: moment_text in sentences, clock_text in tables.
    app.jinja_env.globals["moment_text"] = moment_text
    app.jinja_env.globals["clock_text"] = clock_text
    app.jinja_env.globals["local_input"] = local_input
    app.jinja_env.globals["zone_name"] = zone_name
    app.jinja_env.globals["shown_zone"] = shown_zone
    app.jinja_env.globals["PROGRAM_KINDS"] = PROGRAM_KINDS
    app.jinja_env.globals["credits_text"] = credits_text
    app.jinja_env.globals["price_terms"] = price_terms
    app.jinja_env.filters["role_label"] = lambda role: ATTENDEE_ROLES.get(role, role)
    app.jinja_env.globals["age_band_label"] = lambda band: AGE_BANDS.get(band or "", "")
    app.jinja_env.globals["now_utc"] = utcnow
    app.jinja_env.globals["qr_svg"] = qr_svg
    app.jinja_env.globals["other_text_label"] = OTHER_TEXT_LABEL
    app.jinja_env.globals["answer_text"] = answer_text

    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError):
        return _error_response(
            400,
            "This form has expired or was not sent from this site "
            f"({exc.description}). Please reload the page and try again.",
        )

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        code = exc.code or 500
        if code == 403:
            log_forbidden()
        # A description given where the error was raised says more than the general message.
        own = exc.description if exc.description != type(exc).description else None
        message = own or ERROR_MESSAGES.get(code, exc.description or exc.name)
        body, status = _error_response(code, message)
        # What the error says in its own headers stays (a 405's Allow, a 401's WWW-Authenticate).
        kept = [(k, v) for k, v in exc.get_headers() if k.lower() != "content-type"]
        return body, status, kept

    @app.errorhandler(FontsMissing)
    def fonts_missing(exc: FontsMissing):
        # The operator's fix (which file, where) goes to the log; organizers see it too, the
        # public a plain message.
        app.logger.error("a PDF could not be made: %s", exc)
        if request.path.startswith("/organizer/"):
            return _error_response(503, f"This PDF cannot be made: {exc}")
        return _error_response(
            503,
            "This document cannot be made right now: the server lacks a font it needs."
            " It has been logged; please try again later.",
        )

    @app.errorhandler(InternalServerError)
    def server_error(exc: InternalServerError):
        # Flask has already logged the original exception with its traceback.
        return _error_response(500, ERROR_MESSAGES[500])


def log_forbidden() -> None:
    """A refused request (403) in the security log: where, who (an organizer's id, or
    anonymous) and from which address."""
    account = current_user.id if current_user.is_authenticated else "anonymous"
    security_log.warning(
        "403 forbidden: path=%s account=%s address=%s", request.path, account, request.remote_addr
    )
