"""Support applications (travel grants, fee waivers): the queue with each applicant's role,
career stage and statement, a score and a decision per request, the budget (support.py)."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from ..auth import organizer_required
from ..extensions import db
from ..models import SUPPORT_DECISIONS, Attendee, SupportRequest
from ..pages import current_event_or_404
from ..support import SupportError, budget_of, decide, requests_of
from . import bp
from .forms import ActionForm


def _page(status: int = 200, error: str = "", failed: int | None = None):
    event = current_event_or_404()
    html = render_template(
        "organizer/support.html",
        event=event,
        requests=requests_of(db.session, event),
        budget=budget_of(db.session, event),
        decisions=SUPPORT_DECISIONS,
        action_form=ActionForm(),
        error=error,
        failed=failed,
        sent=request.form if failed is not None else {},
    )
    return html, status


@bp.get("/support")
@organizer_required(admin=True)
def support():
    return _page()


@bp.post("/support/<int:request_id>")
@organizer_required(admin=True)
def decide_support(request_id: int):
    """Record a decision; the same decision sent again changes nothing."""
    event = current_event_or_404()
    found = db.session.get(SupportRequest, request_id)
    applicant = db.session.get(Attendee, found.attendee_id) if found is not None else None
    if found is None or applicant is None or applicant.event_id != event.id:
        abort(404)
    if not ActionForm().validate():
        abort(400)
    raw_score = request.form.get("score", "").strip()
    try:
        score = int(raw_score) if raw_score else None
        done = decide(
            db.session,
            found,
            request.form.get("decision", ""),
            award=request.form.get("award", ""),
            note=request.form.get("note", ""),
            score=score,
            organizer_id=current_user.id,
        )
    except ValueError as exc:  # SupportError, or a score that is not a number
        db.session.rollback()
        message = str(exc) if isinstance(exc, SupportError) else "A score is a number, 0 to 10."
        return _page(400, message, failed=request_id)
    db.session.commit()
    label = SUPPORT_DECISIONS[found.decision]
    flash(
        f"{applicant.full_name}: {label.lower()} recorded and e-mailed."
        if done
        else f"{applicant.full_name}: that decision was recorded already; nothing changed.",
        "success",
    )
    return redirect(url_for(".support", _anchor=f"request-{request_id}"), 303)
