"""What the views of every area need of the current event: its snapshot and heading (kept
while nothing changes), the event itself, or one of its attendees; else 404."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from typing import Any, TypeVar

from flask import abort, render_template, request, session
from flask_login import current_user
from flask_wtf.csrf import generate_csrf
from sqlalchemy.orm import Session

from .extensions import db
from .fees import PriceSpec, event_prices
from .models import Attendee, Event, utcnow
from .program import ItemSpec, program_specs
from .questions import QuestionSpec, event_questions
from .registration import current_event
from .speed.memo import kept
from .stats import EventHeading, Snapshot, read_event_heading, read_snapshot, snapshot_at

T = TypeVar("T")


def current_snapshot() -> Snapshot | None:
    """The current event's snapshot now; without a query while the database has not changed."""
    return snapshot_at(kept("snapshot", None, lambda: read_snapshot(db.session)), utcnow())


def event_heading(snapshot: Snapshot) -> EventHeading:
    """The current event's name and hosts, read once per snapshot (an organizer's change to
    the event changes its ``updated_at``)."""
    return kept(
        "event_heading",
        snapshot,
        lambda: read_event_heading(db.session, snapshot.event_id),
        watched=False,
    )


def _per_version(name: str, event: Event | Snapshot, read: Callable[[Session, int], T]) -> T:
    """What ``read`` gives of an event (given as the Event or its Snapshot), read once per
    version of the event: whatever changes it changes the event's ``updated_at`` in the same
    transaction."""
    event_id = event.event_id if isinstance(event, Snapshot) else event.id
    return kept(
        name, (event_id, event.updated_at), lambda: read(db.session, event_id), watched=False
    )


def questions_of(event: Event | Snapshot) -> tuple[QuestionSpec, ...]:
    """The questions an event asks."""
    return _per_version("questions", event, event_questions)


def prices_of(event: Event | Snapshot) -> tuple[PriceSpec, ...]:
    """The event's prices."""
    return _per_version("prices", event, event_prices)


def program_of(event: Event | Snapshot) -> tuple[ItemSpec, ...]:
    """The event's program, in time order."""
    return _per_version("program", event, program_specs)


def current_event_or_404() -> Event:
    event = current_event(db.session)
    if event is None:
        abort(404)
    return event


def event_attendee_or_404(attendee_id: int) -> Attendee:
    """The attendee with this id, if they registered for the current event."""
    event = current_event_or_404()
    attendee = db.session.get(Attendee, attendee_id)
    if attendee is None or attendee.event_id != event.id:
        abort(404)
    return attendee


#: Stands for the visitor's CSRF token in a page rendered once for many visitors
#: (``with_visitor_csrf`` puts each one's own in).
CSRF_SLOT = "csrf-token-of-this-visitor"


def with_visitor_csrf(page: str) -> str:
    """A page rendered with CSRF_SLOT for its CSRF tokens, with this visitor's token."""
    return page.replace(CSRF_SLOT, generate_csrf())


def organizer_page(
    name: str,
    key: Hashable,
    template: str,
    context: Callable[[], dict[str, Any]],
    *,
    slots: Mapping[str, str] | None = None,
) -> str:
    """An organizer page, ``template`` rendered with ``context()``, kept per ``key`` and per
    signed-in organizer (the layout names them) under ``name``, whatever the change watch
    says: ``key`` must name all it shows. Each request's CSRF token is put in (the sign-out
    form's), then ``slots``: a placeholder the context rendered -> this request's HTML in its
    place (e.g. a list's rows read afresh). Not kept while a flashed message waits."""

    def render() -> str:
        return render_template(template, csrf_token=lambda: CSRF_SLOT, **context())

    if session.get("_flashes"):  # a message to show once: not a page to keep
        page = render()
    else:
        user = current_user
        whose = (request.script_root, key, user.id, user.email, user.role)
        page = kept(name, whose, render, size=16, watched=False)
    # The token first: what goes into the slots is this request's, and is not searched.
    page = with_visitor_csrf(page)
    for slot, html in (slots or {}).items():
        page = page.replace(slot, html, 1)
    return page
