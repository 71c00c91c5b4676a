"""A registration's data for the holder of its private link: ``data.json`` (privacy.py)."""

from __future__ import annotations

import json

from flask import Response

from ..extensions import db
from ..privacy import person_data
from . import bp
from .selfservice import PRIVATE, attendee_or_404


@bp.get("/registration/<token>/data.json")
def registration_data(token: str):
    """Everything kept about the registration (and the holder's companions), as a JSON file
    to save; without the organizers' notes. Never cached."""
    attendee = attendee_or_404(token)
    data = person_data(db.session, attendee, internal=False)
    body = json.dumps(data, ensure_ascii=False, indent=2)
    response = Response(body, content_type="application/json; charset=utf-8")
    response.headers.update(PRIVATE)
    filename = f"registration-{attendee.code}.json"
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
