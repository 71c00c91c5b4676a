"""Registration codes: the list with how often each was used, and a new code (fees.py)."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from sqlalchemy import select

from ..auth import organizer_required
from ..extensions import db
from ..fees import FeeError, code_summary, create_code
from ..models import DiscountCode
from ..pages import current_event_or_404
from . import bp
from .audit import audit
from .forms import CodeForm, on_clock_of


@bp.route("/codes", methods=["GET", "POST"])
@organizer_required(admin=True)
def codes():
    event = current_event_or_404()
    form = on_clock_of(CodeForm(), event.zone)  # "usable until" on the event's clock
    roles = request.form.getlist("roles") if form.is_submitted() else []

    def page(status: int = 200, error: str = ""):
        rows = db.session.execute(
            select(DiscountCode)
            .where(DiscountCode.event_id == event.id)
            .order_by(DiscountCode.created_at.desc(), DiscountCode.id.desc())
        ).scalars()
        listed = [(row, code_summary(row, event.currency, event.zone)) for row in rows]
        html = render_template(
            "organizer/codes.html", event=event, codes=listed, form=form, roles=roles, error=error
        )
        return html, status

    if not form.is_submitted():
        return page()
    if not form.validate():
        return page(400)
    try:
        row = create_code(
            db.session,
            event,
            form.code.data or "",
            percent=form.percent.data,
            amount=form.amount.data or None,
            max_uses=form.max_uses.data,
            expires_at=form.expires_at.data,
            roles=roles,
            bypass_caps=form.bypass_caps.data,
        )
    except FeeError as exc:
        db.session.rollback()
        return page(400, str(exc))
    what = code_summary(row, event.currency, event.zone)
    audit("code.create", event.slug, {"code": row.code, "what": what})
    db.session.commit()
    flash(f"The code {row.code} is ready: {what}.", "success")
    return redirect(url_for(".codes"), 303)
