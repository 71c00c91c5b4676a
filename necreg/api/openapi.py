"""The OpenAPI 3.1 description of API v1, served at /api/v1/openapi.json.

It is also the API's own rule for its query parameters: v1.py checks every parameter against
the schema declared here (``check_parameters``), so what the description says is accepted is
exactly what is accepted; the attendee object's schema is checked against
``resources.attendee_resource`` by the tests. Enumerations come from the same definitions as
the forms (roles, statuses, countries, payment states).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ..attendee_search import MAX_QUERY, PAYMENT_STATES
from ..countries import country_names
from ..models import AGE_BANDS, ATTENDANCE, ATTENDEE_ROLES, CREDENTIALS, ROLES, STATUSES

API_VERSION = "1.0.0"
#: Attendees per page unless ``limit`` says otherwise, and the most ``limit`` may ask for.
DEFAULT_LIMIT = 50
MAX_LIMIT = 200
#: A cursor: 8 bytes in URL-safe base64 without padding (11 characters, the last of which
#: carries 2 bits that are always zero), so that every string of this form is a cursor.
CURSOR_PATTERN = r"^([A-Za-z0-9_-]{10}[AEIMQUYcgkosw048])?$"
#: Text without the NUL character, which no stored text holds and PostgreSQL refuses.
NO_NUL = "^[^\\u0000]*$"
#: A program item's key (program.KEY_RE), with ":waitlisted" for its waiting list; or empty.
PROGRAM_FILTER_PATTERN = r"^([a-z0-9][a-z0-9_-]{0,39}(:waitlisted)?)?$"
#: The search's text: no control character (attendee_search refuses them) but those that
#: Python reads as white space, which the search makes spaces.
NO_CONTROLS = "^[^\\u0000-\\u0008\\u000e-\\u001b\\u007f-\\u0084\\u0086-\\u009f]*$"
#: The longest registration code (Attendee.code).
CODE_MAX = 20

_NULLABLE_STRING = {"type": ["string", "null"]}
_MOMENT = {"type": "string", "format": "date-time", "description": "UTC, to the second."}
_AMOUNT = {
    "type": "string",
    "pattern": r"^-?[0-9]+(\.[0-9]+)?$",
    "description": 'A decimal amount in the event\'s currency, e.g. "450.00".',
}


def _choice(values, *, nullable: bool = False, description: str = "") -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": ["string", "null"] if nullable else "string",
        "enum": [*values, *([None] if nullable else [])],
    }
    if description:
        schema["description"] = description
    return schema


#: The registration as ``resources.attendee_resource`` gives it: every key, required.
ATTENDEE_PROPERTIES: dict[str, dict[str, Any]] = {
    "code": {"type": "string", "description": "The registration code, e.g. NEC-7K3QXA."},
    "event": {"type": "string", "description": "The event's slug."},
    "status": _choice(STATUSES),
    "role": _choice(ATTENDEE_ROLES, description="A companion's role is guest."),
    "first_name": {"type": "string"},
    "last_name": {"type": "string"},
    "badge_name": {"type": "string"},
    "email": {"type": "string", "description": "Empty for a companion."},
    "institution": {"type": "string"},
    "country": {"type": "string", "minLength": 2, "maxLength": 2, "description": "ISO 3166-1."},
    "early_career": {"type": "boolean"},
    "credential": _choice(CREDENTIALS, nullable=True),
    "attendance": _choice(ATTENDANCE),
    "age_band": _choice(AGE_BANDS, nullable=True, description="A companion's; else null."),
    "party_of": {**_NULLABLE_STRING, "description": "A companion's lead's code; else null."},
    "amount_due": _AMOUNT,
    "amount_paid": {**_AMOUNT, "description": "Paid and not refunded."},
    "currency": {**_NULLABLE_STRING, "description": "ISO 4217; null for a free event."},
    "checked_in_at": {**_MOMENT, "type": ["string", "null"]},
    "created_at": _MOMENT,
    "updated_at": _MOMENT,
    "answers": {
        "type": "object",
        "description": (
            "Answers to the event's questions that are not sensitive, by question key: text, "
            'a choice, a list of choices or true/false; the text given with "Other" as '
            "<key>_other."
        ),
        "additionalProperties": {
            "type": ["string", "boolean", "array"],
            "items": {"type": "string"},
        },
    },
}
ATTENDEE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": list(ATTENDEE_PROPERTIES),
    "properties": ATTENDEE_PROPERTIES,
    "additionalProperties": False,
}
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error", "status"],
    "properties": {"error": {"type": "string"}, "status": {"type": "integer"}},
    "additionalProperties": False,
}

_ANY = "Empty: any."
_YES_NO = ["", "yes", "no", "any"]


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema,
            "description": description}  # fmt: skip


#: The query parameters of /attendees and /attendees/{code}: (name, schema, description).
EVENT_PARAMETER = _query(
    "event",
    {"type": "string", "minLength": 1, "maxLength": 64, "pattern": NO_NUL},
    "The event's slug; default: the current event.",
)
FILTER_PARAMETERS: list[dict[str, Any]] = [
    _query(
        "q",
        {"type": "string", "maxLength": MAX_QUERY, "pattern": NO_CONTROLS},
        "Words found in the name, e-mail, institution, code or badge name (every word; letter "
        "case and accents ignored).",
    ),
    _query("role", _choice(["", *ROLES]), _ANY),
    _query("status", _choice(["", *STATUSES]), _ANY),
    _query("early_career", _choice(_YES_NO), "Early-career investigators only, or none. " + _ANY),
    _query("checked_in", _choice(_YES_NO), "Checked in, or not. " + _ANY),
    _query("country", _choice(["", *country_names()]), "ISO 3166-1 code. " + _ANY),
    _query(
        "payment",
        _choice(["", *PAYMENT_STATES]),
        "The party's payment: "
        + ", ".join(f"{key} ({label.lower()})" for key, label in PAYMENT_STATES.items())
        + ". "
        + _ANY,
    ),
    _query(
        "program",
        {"type": "string", "pattern": PROGRAM_FILTER_PATTERN},
        "Signed up for the program item of this key: with a place, or (``<key>:waitlisted``) "
        "on its waiting list. " + _ANY,
    ),
]
PAGE_PARAMETERS: list[dict[str, Any]] = [
    _query(
        "cursor",
        {"type": "string", "pattern": CURSOR_PATTERN},
        "Where the page starts: the next_cursor of the page before. Empty: the first page.",
    ),
    _query(
        "limit",
        {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
        "Attendees per page.",
    ),
]
_IF_NONE_MATCH = {
    "name": "If-None-Match",
    "in": "header",
    "required": False,
    "schema": {"type": "string"},
    "description": "The ETag of an earlier answer: 304, with no body, while it still holds.",
}

_ERRORS = {
    "400": ("A parameter has a value that makes no sense; error says which.", []),
    "401": (
        "No token, or one that is unknown or revoked.",
        [("WWW-Authenticate", {"type": "string"}, "Bearer.")],
    ),
    "404": ("No such event (none is current), or no such attendee in it.", []),
    "429": (
        "This token made too many requests (setting API_RATE_LIMIT).",
        [("Retry-After", {"type": "integer", "minimum": 0}, "Seconds to wait.")],
    ),
}


def _error(code: str) -> dict[str, Any]:
    description, headers = _ERRORS[code]
    answer: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    if headers:
        answer["headers"] = {
            name: {"required": True, "schema": schema, "description": text}
            for name, schema, text in headers
        }
    return answer


_CACHE_HEADERS = {
    "ETag": {
        "required": True,
        "schema": {"type": "string"},
        "description": "Send it back as If-None-Match to be told when nothing changed.",
    },
    "Cache-Control": {"required": True, "schema": {"type": "string"}},
}


def _read_operation(
    operation_id: str,
    summary: str,
    description: str,
    parameters: list[dict[str, Any]],
    schema: dict[str, Any],
) -> dict[str, Any]:
    return {
        "operationId": operation_id,
        "summary": summary,
        "description": description,
        "parameters": [*parameters, _IF_NONE_MATCH],
        "responses": {
            "200": {
                "description": "OK",
                "headers": _CACHE_HEADERS,
                "content": {"application/json": {"schema": schema}},
            },
            "304": {"description": "Not modified (If-None-Match).", "headers": _CACHE_HEADERS},
            **{code: _error(code) for code in _ERRORS},
        },
    }


_LIST_DESCRIPTION = (
    "The event's registrations (every status, companions too), in the order they were made, "
    "with the filters of the organizers' attendee list. Besides the parameters below, "
    "q_<question key>=<choice> keeps those who took that choice of a question with choices "
    "(an unknown question or choice: 400). A page ends with next_cursor, to pass as cursor "
    "for the next page; null on the last. Registrations made while a client pages through "
    "come on later pages."
)

ATTENDEES_PATH = "/attendees"
ATTENDEE_PATH = "/attendees/{code}"
OPENAPI_PATH = "/openapi.json"


def openapi_document(server_url: str) -> dict[str, Any]:
    """The description, with the API's address (``server_url``, e.g. ``/api/v1``)."""
    code_parameter = {
        "name": "code",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "minLength": 1, "maxLength": CODE_MAX, "pattern": NO_NUL},
        "description": "The registration code.",
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "necreg API",
            "version": API_VERSION,
            "description": (
                "Read-only access to the registrations of the NEC Symposium for organizers' "
                "tools. Create a token with `necreg create-api-token NAME` and send it as "
                "`Authorization: Bearer <token>`. Requests are limited per token."
            ),
        },
        "servers": [{"url": server_url}],
        "security": [{"bearerAuth": []}],
        "paths": {
            ATTENDEES_PATH: {
                "get": _read_operation(
                    "listAttendees",
                    "List registrations",
                    _LIST_DESCRIPTION,
                    [EVENT_PARAMETER, *FILTER_PARAMETERS, *PAGE_PARAMETERS],
                    {
                        "type": "object",
                        "required": ["data", "next_cursor"],
                        "properties": {
                            "data": {
                                "type": "array",
                                "items": {"$ref": "#/components/schemas/Attendee"},
                                "maxItems": MAX_LIMIT,
                            },
                            "next_cursor": {
                                "type": ["string", "null"],
                                "pattern": CURSOR_PATTERN,
                            },
                        },
                        "additionalProperties": False,
                    },
                )
            },
            ATTENDEE_PATH: {
                "get": _read_operation(
                    "getAttendee",
                    "One registration",
                    "The registration with this code, in the event.",
                    [code_parameter, EVENT_PARAMETER],
                    {"$ref": "#/components/schemas/Attendee"},
                )
            },
            OPENAPI_PATH: {
                "get": {
                    "operationId": "getOpenApi",
                    "summary": "This description",
                    "security": [],
                    "responses": {
                        "200": {
                            "description": "OpenAPI 3.1",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        }
                    },
                }
            },
        },
        "components": {
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A token from `necreg create-api-token NAME`.",
                }
            },
            "schemas": {"Attendee": ATTENDEE_SCHEMA, "Error": ERROR_SCHEMA},
        },
    }


# --- the parameters' rule -----------------------------------------------------------------


class ParameterError(ValueError):
    """A query parameter whose value its schema refuses; ``str(exc)`` says which and why."""


def check_parameters(
    args: Mapping[str, list[str]], parameters: list[dict[str, Any]]
) -> dict[str, str]:
    """The values of the declared query ``parameters`` in ``args`` (name -> every value given),
    each checked against its schema (the part of JSON Schema used above); ParameterError for
    the first that fails. An integer comes back as its text."""
    found: dict[str, str] = {}
    for parameter in parameters:
        name, schema = parameter["name"], parameter["schema"]
        values = args.get(name) or []
        if not values:
            continue
        if len(values) > 1:
            raise ParameterError(f"Give {name} once, not {len(values)} times.")
        value = values[0]
        problem = _problem(value, schema)
        if problem:
            raise ParameterError(f"{name} {problem}, not {value[:100]!r}.")
        found[name] = value
    return found


def _problem(value: str, schema: Mapping[str, Any]) -> str | None:
    """What is wrong with ``value`` for ``schema``, or None."""
    if schema["type"] == "integer":
        low, high = schema["minimum"], schema["maximum"]
        if not value.isascii() or not value.isdigit():
            return "must be a whole number"
        if not (len(value) <= len(str(high)) and low <= int(value) <= high):
            return f"must be from {low} to {high}"
        return None
    if "enum" in schema and value not in schema["enum"]:
        shown = [v for v in schema["enum"] if v]
        return "must be one of " + ", ".join(shown[:12]) + (", ..." if len(shown) > 12 else "")
    low, high = schema.get("minLength", 0), schema.get("maxLength")
    if len(value) < low or (high is not None and len(value) > high):
        return f"must have {low} to {high} characters" if high else "must not be empty"
    if "pattern" in schema and not re.search(schema["pattern"], value):
        return "is not of the expected form" + (
            " (it holds a NUL character)" if "\x00" in value else ""
        )
    return None
