"""Check-in at the door (organizers and check-in staff): scan or type a code, see who it is,
undo a wrong scan. The page's script posts each scan for JSON; without it the form posts and
the page after the redirect shows the scan's result, read back from the door's log."""

from __future__ import annotations

import logging

from flask import (
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user
from limits import parse_many
from wtforms.fields.choices import SelectChoice

from ..auth import organizer_required, wants_machine_answer
from ..checkin import (
    ALREADY,
    CANCELLED,
    CHECKED_IN,
    INVALID,
    NOT_SIGNED_UP,
    UNKNOWN,
    WAITLISTED,
    check_in,
    shown_scan,
    undo_check_in,
)
from ..extensions import db, limiter
from ..models import Attendee, Event
from ..pages import current_event_or_404
from ..program import event_program
from . import bp
from .forms import ActionForm, CheckInForm

#: HTTP status of each check-in outcome, for the JSON answer.
CHECK_IN_STATUS = {
    CHECKED_IN: 200,
    ALREADY: 409,
    UNKNOWN: 404,
    CANCELLED: 409,
    WAITLISTED: 409,
    NOT_SIGNED_UP: 409,
    INVALID: 400,
}
#: Session key of the scan whose result the next check-in page shows (once): an id of the
#: organizer's own scan in the door's log, never the result itself.
SHOWN_SCAN = "organizer_shown_scan"
#: The answer of a code tried past CHECK_IN_RATE_LIMIT (JSON ``outcome``).
LIMITED = "limited"
#: What undo says when there was nothing to undo: the same for an id nobody has and for a
#: person who was not checked in, so that no name is read by trying ids.
NOTHING_TO_UNDO = "There was no check-in to undo."

log = logging.getLogger("necreg.security")


def _another_code_allowed() -> bool:
    """Whether the signed-in account may try one more code (CHECK_IN_RATE_LIMIT, counted per
    account wherever it scans from, in the limiter's storage: shared by the workers with
    Redis). Counts this try."""
    if not limiter.enabled:
        return True
    identity = (current_app.config["RATELIMIT_KEY_PREFIX"], "check-in", str(current_user.id))
    limits = parse_many(current_app.config["CHECK_IN_RATE_LIMIT"])
    allowed = True
    try:
        for limit in limits:  # each limit counts the try, even past one that is reached
            allowed = limiter.limiter.hit(limit, *identity) and allowed
    except Exception as exc:  # the storage (Redis) is unreachable: the door goes on
        log.warning("check-in limit not counted (storage: %s)", exc)
        return True
    return allowed


def door_settings(event: Event) -> dict[str, object]:
    """How codes are read (a setting) and times shown at the door of ``event``: on its clock,
    as every time about an event is (DISPLAY_TIMEZONE serves only pages with no event)."""
    return {"prefix": current_app.config["ATTENDEE_CODE_PREFIX"], "tz": event.zone}


@bp.route("/check-in", methods=["GET", "POST"], endpoint="check_in")
@organizer_required()
def check_in_page():
    event = current_event_or_404()
    form = CheckInForm()
    items = {item.key: item for item in event_program(db.session, event.id)}
    tz = event.zone
    form.program.choices = [SelectChoice("", "Registration desk")] + [
        SelectChoice(
            item.key, f"{item.title} ({item.starts_at.astimezone(tz):%a %H:%M}, {item.room})"
        )
        for item in items.values()
    ]
    wants_json = wants_machine_answer()
    if not form.is_submitted():
        form.program.data = request.args.get("program", "")
        scan_id = session.pop(SHOWN_SCAN, None)
        result = None
        if isinstance(scan_id, int):
            result = shown_scan(
                db.session, scan_id, organizer_id=current_user.id, **door_settings(event)
            )
        return render_template(
            "organizer/check_in.html", event=event, form=form, result=result, undo=ActionForm()
        )
    if not _another_code_allowed():
        message = (
            "Too many codes tried from this account (at most "
            f"{current_app.config['CHECK_IN_RATE_LIMIT']}). Please wait a minute."
        )
        log.warning("check-in limit reached: account=%s", current_user.id)
        if wants_json:
            return jsonify(outcome=LIMITED, message=message, code=None, attendee=None), 429
        form.code.errors = [message]
        page = render_template(
            "organizer/check_in.html", event=event, form=form, result=None, undo=ActionForm()
        )
        return page, 429
    if not form.validate():
        message = "; ".join(e for errors in form.errors.values() for e in errors)
        if wants_json:
            return jsonify(outcome=INVALID, message=message, code=None, attendee=None), 400
        return render_template(
            "organizer/check_in.html", event=event, form=form, result=None, undo=ActionForm()
        ), 400
    result = check_in(
        db.session,
        event,
        form.code.data or "",
        organizer_id=current_user.id,
        item=items.get(form.program.data or ""),
        **door_settings(event),
    )
    db.session.commit()
    if wants_json:
        return jsonify(result.as_json()), CHECK_IN_STATUS[result.outcome]
    session[SHOWN_SCAN] = result.scan_id
    # The same door for the next scan.
    return redirect(url_for(".check_in", program=form.program.data or None), 303)


@bp.post("/attendees/<int:attendee_id>/undo-check-in")
@organizer_required()
def undo_check_in_attendee(attendee_id: int):
    """Undo a check-in (staff may: a wrong scan at the door must be put right there). Only a
    check-in undone names the person: an id nobody has and a person not checked in get the
    same answer."""
    event = current_event_or_404()
    if not ActionForm().validate():
        abort(400)
    attendee = db.session.get(Attendee, attendee_id)
    if attendee is not None and attendee.event_id != event.id:
        attendee = None
    done = attendee is not None and undo_check_in(
        db.session, attendee, organizer_id=current_user.id
    )
    db.session.commit()
    if done:
        flash(f"Check-in of {attendee.full_name} ({attendee.code}) undone.", "success")
    else:
        flash(NOTHING_TO_UNDO, "error")
    if current_user.is_admin and attendee is not None and request.form.get("back") != "check-in":
        return redirect(url_for(".attendee", attendee_id=attendee.id), 303)
    return redirect(url_for(".check_in"), 303)
