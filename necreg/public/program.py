"""A registrant's program: the workshops they chose (changed from their private page) and
their agenda as a calendar file."""

from __future__ import annotations

from flask import abort, flash, make_response, redirect, request, url_for

from ..certificates import attended as attended_items
from ..certificates import certificates_open
from ..extensions import db
from ..mail.ics import program_calendar
from ..mail.outbox import self_service_url
from ..models import STATUS_CONFIRMED, Attendee, utcnow
from ..pages import program_of
from ..program import ProgramError, agenda_days, choose, signups_of
from ..program import waitlist_position as item_position
from ..support import (
    StatementError,
    SupportError,
    offers_support,
    request_support,
    support_of,
    why_not_ask,
)
from . import bp
from .forms import CancelForm
from .selfservice import PRIVATE, attendee_or_404, registration_page, self_service_limit


def program_view(attendee: Attendee) -> dict[str, object]:
    """What the private page shows of the program: every item with this person's status at
    those they signed up for ({key: "Your place" / "Waiting list, number 3"}), the keys of
    the workshops they chose, in the event's time zone."""
    name = attendee.event.timezone
    zone = attendee.event.zone
    statuses: dict[str, str] = {}
    chosen = []
    program = program_of(attendee.event)
    for item, signup in signups_of(db.session, attendee.id) if program else ():
        chosen.append(item.key)
        position = item_position(db.session, signup)
        statuses[item.key] = (
            "You have a place" if signup.status == STATUS_CONFIRMED
            else f"You are number {position} on its waiting list"
        )  # fmt: skip
    attended_any = bool(program) and bool(attended_items(db.session, attendee.id))
    support = support_of(db.session, attendee)
    return {
        "support": support,
        "support_open": not why_not_ask(attendee, support, utcnow()),
        "certificate_ready": attended_any
        and attendee.is_active
        and certificates_open(attendee.event, utcnow()),
        "program": program,
        "agenda": agenda_days(program, zone),
        "zone": zone,
        "zone_name": name,
        "program_statuses": statuses,
        "chosen_program": chosen,
    }


@bp.post("/registration/<token>/program")
@self_service_limit
def change_program(token: str):
    """Choose the workshops again: new ones get a place or a place in line, dropped ones
    free theirs."""
    attendee = attendee_or_404(token)
    if not CancelForm().validate():
        abort(400)
    if attendee.is_companion:
        abort(404)
    if not attendee.holds_place:
        return registration_page(
            attendee, status=409, program_error="Workshops are chosen once you have a place."
        )
    try:
        changes = choose(db.session, attendee, request.form.getlist("program"))
    except ProgramError as exc:
        db.session.rollback()
        return registration_page(attendee, status=400, program_error=str(exc))
    db.session.commit()
    flash("Your workshops are saved." if changes else "Your workshops are as they were.")
    return redirect(url_for(".registration", token=token, _anchor="program"), 303)


@bp.get("/registration/<token>/agenda.ics")
def agenda_ics(token: str):
    """The person's agenda: the items open to everyone and the workshops they have a place
    at, in UTC (every calendar shows them in its own zone)."""
    attendee = attendee_or_404(token)
    placed = {
        item.key
        for item, signup in signups_of(db.session, attendee.id)
        if signup.status == STATUS_CONFIRMED
    }
    event = attendee.event
    items = [
        {
            "key": spec.key,
            "title": spec.title,
            "starts_at": spec.starts_at,
            "ends_at": spec.ends_at,
            "location": ", ".join(part for part in (spec.room, event.venue) if part),
            "description": f"{event.name}. Your registration: {self_service_url(attendee)}",
        }
        for spec in program_of(event)
        if spec.capacity is None or spec.key in placed
    ]
    calendar = program_calendar(
        uid_suffix=f"{event.slug}-{attendee.code}@necreg",
        items=items,
        stamp=utcnow(),
        name=f"{event.name}: my agenda",
    )
    response = make_response(calendar)
    response.headers.update(PRIVATE)
    response.headers["Content-Type"] = "text/calendar; charset=utf-8"
    response.headers["Content-Disposition"] = f'attachment; filename="{event.slug}-agenda.ics"'
    return response


@bp.post("/registration/<token>/support")
@self_service_limit
def ask_support(token: str):
    """Ask for support (a travel grant, a fee waiver) after registering, while registration
    is open; the statement of a request not yet decided can be rewritten."""
    attendee = attendee_or_404(token)
    if not CancelForm().validate():
        abort(400)
    if attendee.is_companion or not offers_support(attendee.event):
        abort(404)
    try:
        request_support(db.session, attendee, request.form.get("support_statement", ""))
    except SupportError as exc:
        db.session.rollback()
        status = 400 if isinstance(exc, StatementError) else 409
        return registration_page(attendee, status=status, support_error=str(exc))
    db.session.commit()
    flash("Your request for support is with the organizers; their decision comes by e-mail.")
    return redirect(url_for(".registration", token=token, _anchor="support"), 303)
