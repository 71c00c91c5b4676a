"""Errors reported to Sentry (or a compatible service: GlitchTip, a self-hosted Sentry) when
SENTRY_DSN is set; without it nothing is loaded and nothing leaves the machine.

What is sent says what went wrong and where, never who it happened to. Personal data is kept
out twice over: the SDK is told to collect none (``data_collection``, which replaces
``send_default_pii=False`` in sentry-sdk 2.7x: no user, cookies, request bodies or query
strings, no local variables of the stack frames, which would hold attendees' names and
addresses), and ``scrub`` goes through every event before it leaves: the request keeps its
method, its address with the tokens of personal links masked (the link is the key to a
registration) and a few harmless headers, and every text (the error's message, the log lines
before it) has its e-mail addresses, IP addresses, SQL parameters and rows masked.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from flask import Flask

from .logs import current_request_id, mask_tokens

MASK = "[Filtered]"
#: Keys whose values are never sent, wherever they are in an event (names, addresses,
#: secrets). Compared in lower case.
SENSITIVE_KEYS = frozenset(
    (
        "first_name", "last_name", "badge_name", "full_name", "email", "to_address",
        "phone", "address", "institution", "token", "password", "secret", "csrf_token", "otp",
        "cookie", "cookies", "authorization", "session", "data", "query_string", "user",
        "ip_address", "remote_addr", "x-forwarded-for", "x-real-ip", "forwarded",
    )
)  # fmt: skip
#: The request headers sent along: none of them names or locates a person.
KEPT_HEADERS = frozenset(("host", "user-agent", "accept", "content-type", "content-length"))
#: An IPv6 address: eight groups, or fewer around "::" (never a time such as 12:30:45).
_IPV6 = re.compile(
    r"(?<![\w:])(?:(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}"
    r"|(?:[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4})*)?::(?:[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4})*)?)"
    r"(?![\w:])"
)
#: Texts within any string of an event, each replaced by its mask.
MASKED_TEXTS = (
    (re.compile(r"[^\s@<>()\[\]\"',;:]+@[^\s@<>()\[\]\"',;:]+\.[A-Za-z]{2,}"), "[email]"),
    # SQLAlchemy's error message quotes the statement's parameters: the values stored.
    (re.compile(r"\[parameters: [^\n]*"), "[parameters: [Filtered]]"),
    # PostgreSQL's DETAIL quotes the row a constraint refused and a duplicate key's values.
    (re.compile(r"Failing row contains \([^\n]*"), "Failing row contains ([Filtered])"),
    (
        re.compile(r"(Key \([^\n]*?\))=\([^\n]*?\)( already exists| is not present)"),
        r"\1=([Filtered])\2",
    ),
    (re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b"), "[ip]"),
    (_IPV6, "[ip]"),
)

log = logging.getLogger("necreg.error_reports")


def mask_text(text: str) -> str:
    """``text`` with the tokens of personal links, e-mail and IP addresses, SQL parameters
    and database rows masked."""
    text = mask_tokens(text)
    for pattern, replacement in MASKED_TEXTS:
        text = pattern.sub(replacement, text)
    return text


def _scrubbed(value: Any) -> Any:
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {
            key: MASK if str(key).lower() in SENSITIVE_KEYS else _scrubbed(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [_scrubbed(item) for item in value]
    return value


def _scrubbed_request(sent: dict[str, Any]) -> dict[str, Any]:
    request: dict[str, Any] = {}
    if "method" in sent:
        request["method"] = sent["method"]
    if isinstance(sent.get("url"), str):
        request["url"] = mask_text(sent["url"].split("?", 1)[0])
    headers = sent.get("headers")
    if isinstance(headers, dict):
        request["headers"] = {
            name: mask_text(str(value))
            for name, value in headers.items()
            if str(name).lower() in KEPT_HEADERS
        }
    return request


def scrub(event: dict[str, Any], _hint: dict[str, Any] | None = None) -> dict[str, Any]:
    """Sentry's ``before_send`` (and ``before_send_transaction``): ``event`` without personal
    data, tagged with the request id, so that it can be found in the logs."""
    request = event.pop("request", None)
    event.pop("user", None)
    event = _scrubbed(event)
    if isinstance(request, dict):
        event["request"] = _scrubbed_request(request)
    request_id = current_request_id()
    if request_id is not None:
        event.setdefault("tags", {})["request_id"] = request_id
    return event


def _scrubbed_breadcrumb(crumb: dict[str, Any], _hint: dict[str, Any] | None = None):
    return _scrubbed(crumb)


def init_app(app: Flask) -> Any:
    """Start reporting errors to SENTRY_DSN when it is set; return the Sentry client (None
    when not set). The SDK is the process's: the last app made with a DSN sets it."""
    dsn = str(app.config["SENTRY_DSN"])
    if not dsn:
        return None
    import sentry_sdk
    from sentry_sdk.integrations.atexit import AtexitIntegration
    from sentry_sdk.integrations.dedupe import DedupeIntegration
    from sentry_sdk.integrations.excepthook import ExcepthookIntegration
    from sentry_sdk.integrations.flask import FlaskIntegration
    from sentry_sdk.integrations.logging import LoggingIntegration

    sentry_sdk.init(
        dsn=dsn,
        environment=str(app.config["ENV"]),
        # What the SDK collects (``send_default_pii=False`` and more, in the form that
        # replaces it): no user, cookies, bodies, query strings, SQL values or local variables
        # (they would hold attendees' names and addresses), only the harmless headers.
        data_collection={
            "user_info": False,
            "cookies": {"mode": "off"},
            "http_headers": {"request": {"mode": "allowlist", "terms": sorted(KEPT_HEADERS)}},
            "http_bodies": [],
            "url_query_params": {"mode": "off"},
            "database_query_data": False,
            "queues": False,
            "graphql": {"document": False, "variables": False},
            "gen_ai": {"inputs": False, "outputs": False},
            "stack_frame_variables": False,
        },
        # Only these: the others (HTTP clients, Redis, SQLAlchemy...) add breadcrumbs with
        # what they send, and patch libraries for every other user of the process.
        default_integrations=False,
        auto_enabling_integrations=False,
        integrations=[
            FlaskIntegration(),
            # Logged errors become events; the lines before them, breadcrumbs.
            LoggingIntegration(level=logging.INFO, event_level=logging.ERROR),
            # Flask's logging of an error it reports: once, not twice.
            DedupeIntegration(),
            AtexitIntegration(),
            ExcepthookIntegration(),
        ],
        before_send=scrub,
        before_send_transaction=scrub,
        before_breadcrumb=_scrubbed_breadcrumb,
        traces_sample_rate=0.0,
    )
    log.info("errors are reported to Sentry")
    return sentry_sdk.get_client()
