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
from ..pages import current_snapshot, event_heading
from ..speed.memo import kept
from ..stats import COUNTERS, DashboardStats, Snapshot, dashboard_stats
from . import bp
from .charts import daily_bars, per_day_rows


def _figures(snapshot: Snapshot) -> DashboardStats:
    def build() -> DashboardStats:
        return dashboard_stats(db.session, db.session.get(Event, snapshot.event_id))

    return kept("organizer.dashboard", snapshot, build, watched=False)


def _figures_html(snapshot: Snapshot) -> Markup:
    """The figures as HTML: the same for every organizer until a figure changes, and the
    page's costliest part (a bar and a table row per day), so rendered once per snapshot."""

    def build() -> Markup:
        figures = _figures(snapshot)
        return Markup(  # noqa: S704 - the output of an autoescaped template
            render_template(
                "organizer/_dashboard_figures.html",
                figures=figures,
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
    return render_template(
        "organizer/dashboard.html",
        event=event_heading(snapshot),
        figures=_figures(snapshot),
        figures_html=_figures_html(snapshot),
        refresh_seconds=current_app.config["STATS_REFRESH_SECONDS"],
    )


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
        response = jsonify(_figures(snapshot).as_json())
    # Kept by the browser (only), asked again each time: a 304 while nothing changed.
    response.set_etag(etag)
    response.cache_control.private = True
    response.cache_control.no_cache = True
    return response
