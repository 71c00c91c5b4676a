"""The dashboard: public counters as /api/stats says them, breakdowns, chart and refresh."""

# ruff: noqa: F811 - pytest fixtures imported from organizer_fixtures are used as arguments

from __future__ import annotations

import re
from datetime import UTC, date, datetime

from organizer_fixtures import admin_client, make_organizer  # noqa: F401

from necreg.extensions import db
from necreg.models import Attendee, utcnow
from necreg.stats import dashboard_stats, event_stats


def _people(event, make_attendee):
    day1 = datetime(2025, 5, 1, 10, tzinfo=UTC)
    day3 = datetime(2025, 5, 3, 23, 30, tzinfo=UTC)
    make_attendee(event, role="clinician", institution="UNC Children's", country="US",
                  created_at=day1, early_career=True)  # fmt: skip
    make_attendee(event, role="clinician", institution=" unc children's ", country="US",
                  created_at=day1, checked_in_at=day3)  # fmt: skip
    make_attendee(event, role="scientist", institution="Charité", country="DE", created_at=day3)
    make_attendee(event, role="family", institution="", country="DE", created_at=day3,
                  status="waitlisted")  # fmt: skip
    make_attendee(event, role="advocate", institution="Gone", country="FR", created_at=day3,
                  status="cancelled")  # fmt: skip


def test_dashboard_stats_breakdowns(app, make_event, make_attendee):
    with app.app_context():
        event = make_event()
        _people(event, make_attendee)
        figures = dashboard_stats(db.session, event)
        assert figures.public == event_stats(db.session, event)
        assert figures.by_status == {
            "confirmed": 3,
            "pending_payment": 0,
            "waitlisted": 1,
            "cancelled": 1,
        }
        assert figures.public.by_role == {
            "clinician": 2,
            "scientist": 1,
            "family": 0,
            "advocate": 0,
        }
        assert (figures.early_career, figures.checked_in) == (1, 1)
        assert figures.top_institutions[0] == ("UNC Children's", 2)
        assert figures.top_institutions[1] == ("Charité", 1)
        assert figures.top_countries == [("US", 2), ("DE", 1)]
        assert figures.per_day == [(date(2025, 5, 1), 2), (date(2025, 5, 3), 3)]


def test_dashboard_page_matches_api_stats(admin_client, make_event, make_attendee):
    event = make_event()
    _people(event, make_attendee)
    api = admin_client.get("/api/stats").get_json()
    page = admin_client.get("/organizer/").get_data(as_text=True)
    for key in ("attendees", "sessions", "faculty", "institutions"):
        assert re.search(rf'data-stat="{key}">{api[key]}<', page), key
    for role, n in api["by_role"].items():
        assert f'data-stat="by_role.{role}">{n}<' in page
    assert 'data-stat="by_status.waitlisted">1<' in page
    assert 'data-stat="checked_in">1<' in page
    assert "Charité" in page and "Germany" in page
    # The chart is inline SVG with an accessible name and a table fallback; 3 days, one empty.
    assert '<svg viewBox="0 0 720 220" role="img" aria-labelledby="chart-svg-title"' in page
    assert page.count('class="chart-bar"') == 3
    assert '<td>2025-05-03</td><td class="num">3</td>' in page
    assert "<script>" not in page and "style=" not in page
    assert "js/organizer-dashboard.js" in page


def test_stats_json_is_the_api_stats_plus_breakdowns(admin_client, make_event, make_attendee):
    event = make_event()
    _people(event, make_attendee)
    api = admin_client.get("/api/stats").get_json()
    figures = admin_client.get("/organizer/stats.json")
    assert figures.status_code == 200
    assert figures.headers["Cache-Control"] == "private, no-cache"  # kept, asked again each time
    data = figures.get_json()
    assert {k: data[k] for k in api} == api
    assert data["by_status"]["cancelled"] == 1
    assert data["per_day"] == [["2025-05-01", 2], ["2025-05-03", 3]]


def test_dashboard_without_event(admin_client):
    assert "No current event" in admin_client.get("/organizer/").get_data(as_text=True)
    assert admin_client.get("/organizer/stats.json").status_code == 404


def test_dashboard_figures_follow_every_change_to_a_registration(
    app, admin_client, make_event, make_attendee
):
    """The figures are reused while nothing changed, and recomputed after any change, even
    one that no public counter shows (a check-in, a waiting person leaving)."""
    event = make_event()
    person = make_attendee(event)
    waiting = make_attendee(event, status="waitlisted")
    first = admin_client.get("/organizer/stats.json").get_json()
    assert (first["checked_in"], first["by_status"]["waitlisted"]) == (0, 1)
    with app.app_context():
        db.session.get(Attendee, person.id).checked_in_at = utcnow()
        db.session.get(Attendee, waiting.id).status = "cancelled"
        db.session.commit()
    after = admin_client.get("/organizer/stats.json").get_json()
    assert (after["checked_in"], after["by_status"]["waitlisted"]) == (1, 0)
    assert after["attendees"] == first["attendees"] == 1


def test_the_dashboard_json_answers_304_until_a_figure_changes(
    app, admin_client, make_event, make_attendee
):
    event = make_event()
    person = make_attendee(event)
    first = admin_client.get("/organizer/stats.json")
    etag = first.headers["ETag"]
    assert "no-cache" in first.headers["Cache-Control"]
    assert "private" in first.headers["Cache-Control"]
    again = admin_client.get("/organizer/stats.json", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.get_data() == b""
    with app.app_context():
        db.session.get(Attendee, person.id).checked_in_at = utcnow()  # no public figure moves
        db.session.commit()
    moved = admin_client.get("/organizer/stats.json", headers={"If-None-Match": etag})
    assert moved.status_code == 200
    assert moved.headers["ETag"] != etag
    assert moved.get_json()["checked_in"] == 1


def test_the_dashboard_reads_its_figures_once_per_change(
    app, admin_client, make_event, make_attendee
):
    """Figures come from the tallies the database keeps, computed once and kept while nothing
    changes: a page asked for again reads nothing but the sign-in."""
    from conftest import count_queries

    event = make_event()
    make_attendee(event)
    assert admin_client.get("/organizer/").status_code == 200
    with count_queries(app) as statements:
        assert admin_client.get("/organizer/").status_code == 200
    # At most the snapshot, when another process changed something meanwhile: no figure.
    assert not any("GROUP BY" in s for s in statements)
    assert not any("FROM attendees" in s for s in statements)


def test_a_kept_dashboard_page_carries_each_request_its_own_sign_out_token(
    admin_client, make_event, make_attendee
):
    from necreg.pages import CSRF_SLOT

    make_attendee(make_event())
    pages = [admin_client.get("/organizer/").get_data(as_text=True) for _ in range(2)]
    tokens = []
    for page in pages:
        assert CSRF_SLOT not in page
        found = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert found is not None
        tokens.append(found.group(1))
    # The second page came from memory; its token still signs this organizer out.
    out = admin_client.post("/organizer/logout", data={"csrf_token": tokens[1]})
    assert out.status_code in (302, 303)
    assert admin_client.get("/organizer/").status_code in (302, 303)  # signed out
