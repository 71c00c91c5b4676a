"""Downloads of the attendees the list's filters select: the badge CSV and printable badges;
and the attendee directory to share with attendees."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterable

from flask import Response, abort, flash, redirect, request, stream_with_context, url_for

from ..attendee_search import AttendeeFilters, FilterError, parse_filters
from ..auth import organizer_required
from ..badges import (
    exported_questions,
    for_printing,
    iter_badge_csv,
    iter_badges,
    iter_credits_csv,
    iter_directory_csv,
    iter_payments_csv,
)
from ..badges_pdf import LAYOUTS, write_badges
from ..extensions import db
from ..formats import is_yes
from ..models import Event, utcnow
from ..pages import current_event_or_404, questions_of
from ..pdf_fonts import FontsMissing
from . import bp
from .audit import audit

log = logging.getLogger(__name__)


def download(body: bytes | Iterable[str], filename: str, mimetype: str) -> Response:
    """A file to save (not to show), never kept by a cache; an iterable body is streamed.
    ``mimetype`` is the whole Content-Type, e.g. ``text/csv; charset=utf-8``."""
    if not isinstance(body, bytes):
        body = stream_with_context(body)
    response = Response(body, content_type=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"
    return response


def _refused(message: str) -> Response:
    return Response(message + "\n", 400, mimetype="text/plain")


def _requested_filters(event: Event) -> AttendeeFilters:
    """The attendee list's filters from the query string; a wrong one ends the request with 400
    and what is wrong, as text."""
    try:
        return parse_filters(request.args, questions_of(event))
    except FilterError as exc:
        abort(_refused(str(exc)))


#: The badge exports' options that are not filters.
_OPTIONS = ("email", "excel", "sensitive", "layout")


def _audited(action: str, event: Event, **details: object) -> None:
    """Record the export in the audit trail (with the filters of the query string) and
    commit it before the file is made."""
    filters = {
        key: values[0] if len(values) == 1 else values
        for key, values in request.args.lists()
        if key not in _OPTIONS
    }
    audit(action, event.slug, {**details, "filters": filters})
    db.session.commit()


def _csv_download(name: str, event: Event, chunks: Iterable[str]) -> Response:
    """A CSV to save: ``<name>-<event>-<when>.csv``."""
    return download(chunks, f"{name}-{event.slug}-{_stamp()}.csv", "text/csv; charset=utf-8")


def _stamp() -> str:
    """When a file was made, for its name: 20250907-0912 (UTC)."""
    return utcnow().strftime("%Y%m%d-%H%M")


@bp.get("/export/badges.csv")
@organizer_required(admin=True)
def export_badges():
    event = current_event_or_404()
    filters = _requested_filters(event)
    include_email = is_yes(request.args.get("email"))
    include_sensitive = is_yes(request.args.get("sensitive"))
    _audited("export.badges", event, format="csv", email=include_email, sensitive=include_sensitive)
    chunks = iter_badge_csv(
        db.session,
        event,
        filters,
        include_email=include_email,
        excel=is_yes(request.args.get("excel")),
        questions=exported_questions(questions_of(event), include_sensitive=include_sensitive),
    )
    filename = f"badges-{event.slug}-{_stamp()}.csv"
    return download(chunks, filename, "text/csv; charset=utf-8")


@bp.get("/export/badges.pdf")
@organizer_required(admin=True)
def export_badges_pdf():
    """Printable badges with QR codes; ``layout`` is one of LAYOUTS (default A4)."""
    event = current_event_or_404()
    filters = _requested_filters(event)
    layout = request.args.get("layout", "a4")
    if layout not in LAYOUTS:
        return _refused(f"Unknown layout {layout!r}; use one of {', '.join(LAYOUTS)}.")
    _audited("export.badges", event, format="pdf", layout=layout, email=False, sensitive=False)
    out = io.BytesIO()
    badges = iter_badges(db.session, event, for_printing(filters))
    try:
        write_badges(badges, out, layout=layout, event_name=event.name)
    except FontsMissing as exc:
        # The server lacks a font: say which, and how to fix it, on the list it came from.
        log.error("badge PDF not made: %s", exc)
        flash(f"The badge PDF cannot be made on this server. {exc}", "error")
        kept = {key: request.args.getlist(key) for key in request.args if key not in _OPTIONS}
        return redirect(url_for(".attendees", **kept))
    filename = f"badges-{event.slug}-{layout}-{_stamp()}.pdf"
    return download(out.getvalue(), filename, "application/pdf")


@bp.get("/export/directory.csv")
@organizer_required(admin=True)
def export_directory():
    """The attendee directory to share with attendees: only those who agreed to appear."""
    event = current_event_or_404()
    _audited("export.directory", event, email=False)
    return _csv_download("directory", event, iter_directory_csv(db.session, event))


@bp.get("/export/credits.csv")
@organizer_required(admin=True)
def export_credits():
    """The CME office's CSV: who attended which program items, and their credits."""
    event = current_event_or_404()
    _audited("export.credits", event, email=True)
    return _csv_download("credits", event, iter_credits_csv(db.session, event))


@bp.get("/export/payments.csv")
@organizer_required(admin=True)
def export_payments():
    """The treasurer's CSV: payments with their receipts, and who still owes."""
    event = current_event_or_404()
    _audited("export.payments", event, email=False)
    return _csv_download("payments", event, iter_payments_csv(db.session, event))
