"""The dashboard: the public counters and the breakdowns behind them, as a page and as JSON."""

from __future__ import annotations

from flask import current_app, jsonify, render_template

from ..auth import organizer_required
from ..countries import country_name
from ..extensions import db
from ..registration import current_event
from ..stats import COUNTERS, dashboard_stats
from . import bp
from .charts import daily_bars


@bp.get("/")
@organizer_required(admin=True)
def dashboard():
    event = current_event(db.session)
    if event is None:
        return render_template("organizer/no_event.html")
    figures = dashboard_stats(db.session, event)
    return render_template(
        "organizer/dashboard.html",
        event=event,
        figures=figures,
        counters=COUNTERS,
        chart=daily_bars(figures.per_day),
        country_name=country_name,
        refresh_seconds=current_app.config["STATS_REFRESH_SECONDS"],
    )


@bp.get("/stats.json")
@organizer_required(admin=True)
def stats_json():
    event = current_event(db.session)
    if event is None:
        return jsonify(error="There is no current event.", status=404), 404
    response = jsonify(dashboard_stats(db.session, event).as_json())
    response.cache_control.no_store = True
    return response
