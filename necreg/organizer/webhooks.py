"""Webhook deliveries, for admins: the log of what was told to which receiver (WEBHOOKS),
how each attempt went, and "retry now" for the deliveries that were given up on."""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from sqlalchemy import func, select

from ..auth import organizer_required
from ..extensions import db
from ..models import MAIL_FAILED, WEBHOOK_STATUSES, WebhookDelivery
from ..webhooks import receivers_of, retry_all_failed, retry_now
from . import bp
from .forms import ActionForm

#: Deliveries shown per page, newest first.
PER_PAGE = 50
#: What each status means, as the filter and the table say it.
STATUS_LABELS = {"pending": "Waiting", "sent": "Delivered", "failed": "Given up"}


def _status_filter() -> str:
    status = request.values.get("status", "")
    return status if status in WEBHOOK_STATUSES else ""


@bp.get("/webhooks")
@organizer_required(admin=True)
def webhooks():
    status = _status_filter()
    query = select(WebhookDelivery).order_by(WebhookDelivery.id.desc())
    if status:
        query = query.where(WebhookDelivery.status == status)
    page = db.paginate(query, per_page=PER_PAGE, max_per_page=PER_PAGE, error_out=False)
    counts = dict(
        db.session.execute(
            select(WebhookDelivery.status, func.count()).group_by(WebhookDelivery.status)
        ).all()
    )
    return render_template(
        "organizer/webhooks.html",
        event=None,
        page=page,
        status=status,
        counts=counts,
        labels=STATUS_LABELS,
        receivers=receivers_of(current_app.config),
        action_form=ActionForm(),
    )


def _back(status: str):
    return redirect(url_for(".webhooks", status=status or None), 303)


@bp.post("/webhooks/<int:delivery_id>/retry")
@organizer_required(admin=True)
def retry_webhook(delivery_id: int):
    """Put one failed delivery back in the queue; sent again it changes nothing."""
    if not ActionForm().validate():
        abort(400)
    if db.session.get(WebhookDelivery, delivery_id) is None:
        abort(404)
    queued = retry_now(db.session, delivery_id)
    db.session.commit()
    if queued:
        flash(f"Delivery {delivery_id} is queued again: the mail worker sends it now.", "success")
    else:
        flash(f"Delivery {delivery_id} was not given up on; nothing changed.", "info")
    return _back(_status_filter())


@bp.post("/webhooks/retry-failed")
@organizer_required(admin=True)
def retry_failed_webhooks():
    """Put every failed delivery back in the queue."""
    if not ActionForm().validate():
        abort(400)
    queued = retry_all_failed(db.session)
    db.session.commit()
    flash(f"{queued} deliver{'y is' if queued == 1 else 'ies are'} queued again.", "success")
    return _back(_status_filter() if _status_filter() != MAIL_FAILED else "")
