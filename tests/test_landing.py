"""The landing page: the event's content, its four live counters and a call to register."""

import re
from datetime import UTC, datetime, timedelta

from necreg.stats import COUNTERS


def counter_values(html: str) -> dict[str, int]:
    return {
        key: int(value) for key, value in re.findall(r'data-counter="(\w+)">(\d+)</span>', html)
    }


def test_landing_shows_the_event_and_its_counters(client, make_event, make_attendee):
    event = make_event(
        testimonials=[{"quote": "Transformational.", "name": "Jennifer Canvasser", "title": "NEC"}]
    )
    make_attendee(event, role="clinician", institution="UNC Children's")
    make_attendee(event, role="family", institution="unc children's ")  # same institution
    make_attendee(event, role="scientist", institution="Cincinnati Children's")
    make_attendee(event, role="advocate", institution="")
    make_attendee(event, status="cancelled", institution="Elsewhere")
    make_attendee(event, status="waitlisted", institution="Waiting Hospital")

    response = client.get("/")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "NEC Symposium" in html
    assert "Building a World Without NEC" in html
    assert "September 7-10, 2099" in html
    assert "Chicago" in html
    assert "Transformational." in html and "Jennifer Canvasser" in html
    for _key, label in COUNTERS:
        assert label in html
    assert counter_values(html) == {
        "attendees": 4,
        "sessions": 40,
        "faculty": 100,
        "institutions": 2,
    }
    assert html.count('<span aria-hidden="true">+</span>') == 4
    assert 'href="/register"' in html


def test_landing_renders_markdown_but_never_raw_html(client, make_event):
    make_event(description="**Bold** words\n\n<script>alert(1)</script>")
    html = client.get("/").get_data(as_text=True)
    assert "<strong>Bold</strong>" in html
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;" in html


def test_no_external_resources(client, make_event):
    make_event()
    html = client.get("/").get_data(as_text=True)
    assert not re.search(r'(src|href)="(https?:)?//', html)
    with client.get("/static/css/site.css") as response:
        css = response.get_data(as_text=True)
    assert "url(http" not in css and "@import" not in css
    with client.get("/static/js/counters.js") as response:
        assert response.status_code == 200
        assert "If-None-Match" in response.get_data(as_text=True)


def test_closed_registration_is_said_on_the_landing_page(client, make_event):
    make_event(registration_closes_at=datetime.now(UTC) - timedelta(days=1))
    html = client.get("/").get_data(as_text=True)
    assert "Registration is closed" in html
    assert "Register now" not in html


def test_without_a_current_event_the_site_says_so(client, make_event):
    make_event(is_current=False)
    response = client.get("/")
    assert response.status_code == 200
    assert "No event yet" in response.get_data(as_text=True)
    assert client.get("/register").status_code == 404
    assert client.get("/api/stats").status_code == 404


def test_security_headers(client, make_event):
    make_event()
    response = client.get("/")
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"


def test_privacy_notice(client, make_event):
    make_event()
    response = client.get("/privacy")
    assert response.status_code == 200
    assert "Privacy notice" in response.get_data(as_text=True)


def test_the_page_etag_is_the_api_etag_so_the_first_poll_is_a_304(client, make_event):
    make_event()
    html = client.get("/").get_data(as_text=True)
    etag = re.search(r'data-etag="([^"]+)"', html).group(1)
    response = client.get("/api/stats", headers={"If-None-Match": f'"{etag}"'})
    assert response.status_code == 304
