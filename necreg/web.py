"""Cross-cutting web behaviour: error pages, security headers and template helpers."""

from __future__ import annotations

from datetime import date

from flask import Flask, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from markdown_it import MarkdownIt
from markupsafe import Markup
from werkzeug.exceptions import HTTPException, InternalServerError

from .formats import moment_text
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
    from .fees import price_terms
    from .program import credits_text

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
    app.jinja_env.globals["moment_text"] = moment_text
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
        body, status = _error_response(code, ERROR_MESSAGES.get(code, exc.description or exc.name))
        # What the error says in its own headers stays (a 405's Allow, a 401's WWW-Authenticate).
        kept = [(k, v) for k, v in exc.get_headers() if k.lower() != "content-type"]
        return body, status, kept

    @app.errorhandler(InternalServerError)
    def server_error(exc: InternalServerError):
        # Flask has already logged the original exception with its traceback.
        return _error_response(500, ERROR_MESSAGES[500])
