"""The attendee's side of the site, one module per job: the landing page and the form
(``landing``), the private page of a registration with its party and cancellation
(``selfservice``), and the lost link (``lost_link``).

Every view is registered on the one blueprint ``bp``, so its endpoints are ``public.<view>``.
"""

from flask import Blueprint, current_app

bp = Blueprint("public", __name__)


def threshold() -> int:
    """Below how many places left the pages say how few there are."""
    return int(current_app.config["PLACES_LEFT_THRESHOLD"])


def code_prefix() -> str:
    """What every attendee code starts with (``ATTENDEE_CODE_PREFIX``)."""
    return current_app.config["ATTENDEE_CODE_PREFIX"]


# Importing the modules registers their views on bp.
from . import (  # noqa: E402, F401
    card,
    certificates,
    data,
    interest,
    landing,
    lost_link,
    program,
    selfservice,
)
