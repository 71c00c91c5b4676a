"""The dashboard: the public counters and the breakdowns behind them, as a page and as JSON.

Both are computed once per snapshot of the event (every change of a figure moves its
version) and kept while nothing changes; the JSON that the page refreshes itself with answers
304 when the browser already has the figures of the current snapshot.
"""

from __future__ import annotations

from flask import Response, current_app, jsonify, render_template, request
from markupsafe import Markup

from ..auth import organizer_required
from ..countries import country_name
from ..extensions import db
from ..models import Event
from ..pages import current_snapshot, event_heading, organizer_page, program_of, questions_of
from ..speed.memo import kept
from ..stats import (
    COUNTERS,
    DashboardStats,
    DayPart,
    PartCount,
    Snapshot,
    dashboard_stats,
    made_between,
)
from . import bp
from .charts import daily_bars, per_day_rows


def _part_count(event_id: int) -> PartCount:
    """stats.made_between, what it counted in each part of a UTC day kept while that day's
    figure stays the same (the part's key holds the figure).

    Registrations are made at the moment they are stored, so a UTC day whose figure has not
    moved holds the same registrations as when its parts were counted: when the figures
    change, only the day registrations are being made on (and a day whose figure a removal
    moved) is read again. What is kept is what the last count asked for, no more.
    """
    known: dict[DayPart, int] = kept(
        "organizer.dashboard.day_parts", event_id, dict, size=4, watched=False
    )
    count = made_between(db.session, event_id)

    def kept_count(parts: list[DayPart]) -> list[int]:
        found = {part: known.get(part) for part in parts}
        missing = [part for part, n in found.items() if n is None]
        if missing:
            found.update(zip(missing, count(missing), strict=True))
        known.clear()
        known.update(found)
        return [found[part] for part in parts]

    return kept_count


def _figures(snapshot: Snapshot) -> DashboardStats:
    def build() -> DashboardStats:
        event = db.session.get(Event, snapshot.event_id)
        return dashboard_stats(
            db.session,
            event,
            questions_of(snapshot),
            program_of(snapshot),
            count=_part_count(event.id),
        )

    return kept("organizer.dashboard", snapshot, build, watched=False)


def _figures_html(snapshot: Snapshot) -> Markup:
    """The figures as HTML: the same for every organizer until a figure changes, and the
    page's costliest part (a bar and a table row per day), so rendered once per snapshot."""

    def build() -> Markup:
        figures = _figures(snapshot)
        event = db.session.get(Event, snapshot.event_id)
        return Markup(  # noqa: S704 - the output of an autoescaped template
            render_template(
                "organizer/_dashboard_figures.html",
                figures=figures,
                questions=questions_of(snapshot),
                currency=event.currency,
                counters=COUNTERS,
                chart=daily_bars(figures.per_day),
                per_day_rows=per_day_rows,
                country_name=country_name,
            )
        )

    return kept("organizer.dashboard.html", snapshot, build, watched=False)


@bp.get("/")
@organizer_required(admin=True)
def dashboard():
    snapshot = current_snapshot()
    if snapshot is None:
        return render_template("organizer/no_event.html")

    def context() -> dict[str, object]:
        return {
            "event": event_heading(snapshot),
            "figures": _figures(snapshot),
            "figures_html": _figures_html(snapshot),
            "refresh_seconds": current_app.config["STATS_REFRESH_SECONDS"],
        }

    # The whole page, per snapshot and per organizer.
    return organizer_page("organizer.dashboard.page", snapshot, "organizer/dashboard.html", context)


@bp.get("/stats.json")
@organizer_required(admin=True)
def stats_json():
    snapshot = current_snapshot()
    if snapshot is None:
        return jsonify(error="There is no current event.", status=404), 404
    etag = snapshot.etag()
    if request.if_none_match.contains(etag):
        response = Response(status=304)
    else:
        body = kept(
            "organizer.dashboard.json",
            snapshot,
            lambda: current_app.json.dumps(_figures(snapshot).as_json()).encode(),
            watched=False,
        )
        response = Response(body, content_type="application/json")
    # Kept by the browser (only), asked again each time: a 304 while nothing changed.
    response.set_etag(etag)
    response.cache_control.private = True
    response.cache_control.no_cache = True
    return response
