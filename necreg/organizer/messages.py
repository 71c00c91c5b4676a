"""Messages to the attendees organizers choose (messages.py): write, preview for a real
recipient, test-send to oneself, send; the log of messages sent; and the interest list's
"registration is open" notice (interest.py)."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from ..attendee_search import PAYMENT_STATES, AttendeeFilters, FilterError, parse_filters
from ..auth import organizer_required
from ..countries import country_name
from ..extensions import db
from ..interest import InterestError, list_figures, notify_opened
from ..messages import (
    PLACEHOLDERS,
    MessageError,
    Recipients,
    check_draft,
    deliveries,
    recipients,
    render_for,
    send,
    send_test,
)
from ..models import ROLES, STATUS_LABELS, OrganizerMessage
from ..pages import current_event_or_404, questions_of
from . import bp
from .forms import ActionForm, MessageForm

#: Messages listed in the log.
LOG_LENGTH = 50


def describe(filters: AttendeeFilters) -> list[str]:
    """The filters in words, e.g. ["Role: Patient-family", "Not checked in"]."""
    words = []
    if filters.q:
        words.append(f"Matching “{filters.q}”")
    if filters.role:
        words.append(f"Role: {ROLES[filters.role]}")
    words.append(f"Status: {STATUS_LABELS[filters.status]}" if filters.status else "Not cancelled")
    if filters.early_career is not None:
        words.append("Early career" if filters.early_career else "Not early career")
    if filters.checked_in is not None:
        words.append("Checked in" if filters.checked_in else "Not checked in")
    if filters.country:
        words.append(f"Country: {country_name(filters.country)}")
    if filters.payment:
        words.append(f"Payment: {PAYMENT_STATES[filters.payment]}")
    words.extend(f"Answered {key}: {choice}" for key, choice in filters.answers)
    if filters.program is not None:
        key, status = filters.program
        words.append(f"Waiting list of {key}" if status == "waitlisted" else f"A place at {key}")
    return words


@bp.route("/messages", methods=["GET", "POST"])
@organizer_required(admin=True)
def messages():
    """Write to the attendees the query's filters (those of the attendee list) choose."""
    event = current_event_or_404()
    form = MessageForm()
    try:
        filters, filter_error = parse_filters(request.args, questions_of(event)), ""
    except FilterError as exc:
        filters, filter_error = AttendeeFilters(), str(exc)
    chosen = Recipients([], []) if filter_error else recipients(db.session, event, filters)
    preview, error = None, filter_error
    if form.is_submitted() and not filter_error:
        if not form.validate():
            abort(400)
        action = request.form.get("action", "")
        try:
            draft = check_draft(form.subject.data or "", form.body.data or "")
            if action == "send":
                message = send(
                    db.session,
                    event,
                    draft,
                    filters,
                    organizer_id=current_user.id,
                    expected=form.expected.data,
                )
                db.session.commit()
                flash(f"Your message is on its way to {message.recipients} people.", "success")
                return redirect(url_for(".message", message_id=message.id), 303)
            if not chosen.people:
                raise MessageError("Nobody would receive this message: change the filters.")
            preview = render_for(draft, chosen.people[0])
            if action == "test":
                send_test(db.session, event, draft, chosen.people[0], to_address=current_user.email)
                db.session.commit()
                flash(f"A test is on its way to {current_user.email}.", "success")
            elif action != "preview":
                abort(400)
        except MessageError as exc:
            db.session.rollback()
            error = str(exc)
    log = list(
        db.session.execute(
            select(OrganizerMessage)
            .where(OrganizerMessage.event_id == event.id)
            .order_by(OrganizerMessage.sent_at.desc(), OrganizerMessage.id.desc())
            .limit(LOG_LENGTH)
        ).scalars()
    )
    html = render_template(
        "organizer/messages.html",
        event=event,
        form=form,
        filters=filters,
        described=describe(filters),
        chosen=chosen,
        preview=preview,
        example=chosen.people[0] if chosen.people else None,
        error=error,
        placeholders=PLACEHOLDERS,
        log=log,
        delivered=deliveries(db.session, [m.id for m in log]),
        interest=list_figures(db.session, event),
        action_form=ActionForm(),
    )
    return html, 400 if error else 200


@bp.get("/messages/<int:message_id>")
@organizer_required(admin=True)
def message(message_id: int):
    """One message sent: its text, to whom, and how far its e-mails went."""
    event = current_event_or_404()
    sent = db.session.get(OrganizerMessage, message_id)
    if sent is None or sent.event_id != event.id:
        abort(404)
    filters = parse_filters(sent.recipients_filter)
    return render_template(
        "organizer/message.html",
        event=event,
        sent=sent,
        described=describe(filters),
        list_args=filters.as_args(),
        delivery=deliveries(db.session, [sent.id])[sent.id],
    )


@bp.post("/messages/interest")
@organizer_required(admin=True)
def notify_interest():
    """Tell the interest list that registration is open (once per address and event)."""
    event = current_event_or_404()
    if not ActionForm().validate():
        abort(400)
    try:
        told = notify_opened(db.session, event)
    except InterestError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(url_for(".messages"), 303)
    db.session.commit()
    flash(f"{told} people on the interest list are told that registration is open.", "success")
    return redirect(url_for(".messages"), 303)
