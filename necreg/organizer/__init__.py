"""The organizer side of the site, one module per job: signing in (``auth``), the dashboard,
the attendee list and each attendee's page, check-in at the door, exports, the event's
settings, its questions and its registration codes, the e-mail outbox.

Every view is registered on the one blueprint ``bp``, so its endpoints are ``organizer.<view>``.
"""

from flask import Blueprint

bp = Blueprint("organizer", __name__, url_prefix="/organizer")

# Importing the modules registers their views on bp.
from . import (  # noqa: E402, F401
    account,
    attendee,
    attendees,
    audit,
    auth,
    checkin,
    codes,
    dashboard,
    exports,
    fees,
    messages,
    organizers,
    outbox,
    program,
    questions,
    settings,
    support,
    webhooks,
)
