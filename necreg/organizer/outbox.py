"""The e-mail outbox, for admins: how many messages wait, failed or were delivered, how long
the oldest has waited, each message's attempts and last error, found by status or by part of
the recipient's address; and "retry" for the messages the mail worker gave up on.

What the page reads is bounded however large the outbox grows (mail/outbox.py says how):
the counts are one grouped query, the oldest pending message one more, and a page of the
list one query, without the bodies.
"""

from __future__ import annotations

from datetime import timedelta

from flask import abort, flash, redirect, render_template, request, url_for

from ..auth import organizer_required
from ..extensions import db
from ..formats import has_control_characters
from ..mail.outbox import (
    RETRY_ERASED,
    RETRY_QUEUED,
    outbox_figures,
    outbox_listing,
    retry_all_failed,
    retry_message,
)
from ..models import MAIL_FAILED, MAIL_PENDING, MAIL_SENT, MAX_LENGTHS
from . import bp
from .audit import audit
from .forms import ActionForm

#: Messages shown per page, newest first; "Older" shows the next ones.
PER_PAGE = 50
#: The largest id a page may start before (the column is a 32-bit integer).
MAX_ID = 2**31 - 1
#: What each status means, as the counts, the filter and the table say it.
STATUS_LABELS = {MAIL_PENDING: "Pending", MAIL_FAILED: "Failed", MAIL_SENT: "Delivered"}
#: Why a message cannot be sent again once its content is gone.
ERASED_WHY = "the recipient's data was erased, or OUTBOX_RETENTION_DAYS passed"


class BadFilter(ValueError):
    """A status or a search the page cannot use; the message says why."""


def _filters() -> tuple[str, str, int | None]:
    """The ``status``, ``recipient`` and ``before`` arguments, checked; BadFilter if wrong."""
    status = request.args.get("status", "")
    if status and status not in STATUS_LABELS:
        raise BadFilter("Choose a status from the list: pending, failed or delivered.")
    recipient = request.args.get("recipient", "").strip()
    if len(recipient) > MAX_LENGTHS["email"]:
        raise BadFilter(f"An address is at most {MAX_LENGTHS['email']} characters long.")
    if has_control_characters(recipient):  # a NUL is refused before (web.py), not these
        raise BadFilter("The address holds invisible formatting characters; please type it again.")
    raw = request.args.get("before", "")
    before = None
    if raw:
        if not raw.isascii() or not raw.isdigit() or not 0 < int(raw) <= MAX_ID:
            raise BadFilter("“before” must be a message number.")
        before = int(raw)
    return status, recipient, before


def age_text(age: timedelta) -> str:
    """A wait as people say it: "less than a minute", "5 minutes", "3 hours", "2 days"."""
    minutes = int(age.total_seconds()) // 60
    for size, unit in ((24 * 60, "day"), (60, "hour"), (1, "minute")):
        if minutes >= size:
            count = minutes // size
            return f"{count} {unit}{'' if count == 1 else 's'}"
    return "less than a minute"


@bp.get("/outbox")
@organizer_required(admin=True)
def outbox():
    figures = outbox_figures(db.session)
    try:
        status, recipient, before = _filters()
    except BadFilter as exc:
        failure, rows, older = str(exc), [], None
        status, recipient, before = "", request.args.get("recipient", "")[:300], None
    else:
        failure = None
        rows = outbox_listing(
            db.session, status=status, recipient=recipient, before=before, limit=PER_PAGE + 1
        )
        older = rows[PER_PAGE - 1].id if len(rows) > PER_PAGE else None
    age = figures.age_of_oldest()
    return render_template(
        "organizer/outbox.html",
        event=None,
        figures=figures,
        oldest_age=age_text(age) if age is not None else None,
        rows=rows[:PER_PAGE],
        status=status,
        recipient=recipient,
        before=before,
        older=older,
        failure=failure,
        labels=STATUS_LABELS,
        action_form=ActionForm(),
    ), (400 if failure else 200)


def _back():
    """To the list as it was shown (its filters and page are in the form's address)."""
    try:
        status, recipient, before = _filters()
    except BadFilter:
        status, recipient, before = "", "", None
    return redirect(
        url_for(".outbox", status=status or None, recipient=recipient or None, before=before), 303
    )


@bp.post("/outbox/<int:outbox_id>/retry")
@organizer_required(admin=True)
def retry_outbox_message(outbox_id: int):
    """Put one failed message back in the queue; a message pending or delivered already is
    left as it is, and so is one whose content was erased."""
    if not ActionForm().validate():
        abort(400)
    retry = retry_message(db.session, outbox_id)
    if retry is None:
        abort(404)
    if retry.outcome == RETRY_QUEUED:
        audit(
            "outbox.retry",
            f"message {outbox_id}",
            {"kind": retry.kind, "attempts_before": retry.attempts},
        )
        db.session.commit()
        flash(f"Message {outbox_id} is queued again: the mail worker sends it now.", "success")
    elif retry.outcome == RETRY_ERASED:
        flash(
            f"Message {outbox_id} cannot be sent again: its content was erased ({ERASED_WHY}).",
            "error",
        )
    else:
        state = "pending already" if retry.status == MAIL_PENDING else "delivered already"
        flash(f"Message {outbox_id} is {state}; nothing changed.", "info")
    return _back()


@bp.post("/outbox/retry-failed")
@organizer_required(admin=True)
def retry_failed_outbox():
    """Put every failed message back in the queue (but those whose content was erased)."""
    if not ActionForm().validate():
        abort(400)
    queued, erased = retry_all_failed(db.session)
    if queued:
        audit("outbox.retry_failed", "every failed message", {"messages": queued})
    db.session.commit()
    if queued:
        said = f"{queued} failed message{' is' if queued == 1 else 's are'} queued again."
        if erased:
            said += f" {erased} more cannot be sent again: their content was erased ({ERASED_WHY})."
    elif erased:
        said = (
            f"Nothing was queued again: the {erased} failed message{'' if erased == 1 else 's'} "
            f"cannot be sent again, their content was erased ({ERASED_WHY})."
        )
    else:
        said = "No message has failed; nothing changed."
    flash(said, "success" if queued else "info")
    try:
        status, recipient, _before = _filters()
    except BadFilter:
        status, recipient = "", ""
    # The failed ones are pending now: the list shows them where they went.
    status = "" if status == MAIL_FAILED else status
    return redirect(url_for(".outbox", status=status or None, recipient=recipient or None), 303)
