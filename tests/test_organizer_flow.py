"""The issue's "done when", end to end through the client and the command line."""

# ruff: noqa: F811 - pytest fixtures imported from organizer_fixtures are used as arguments

from __future__ import annotations

import csv
import io
import re

from organizer_fixtures import page_csrf, sign_in
from sqlalchemy import select

from conftest import fresh
from necreg.extensions import db
from necreg.models import AttendeeChange


def test_organizer_day(app, runner, make_event, make_attendee):
    event = make_event()
    target = make_attendee(event, first_name="Zoe", last_name="Nunez", role="scientist",
                           institution="Cincinnati Children's Hospital", country="US")  # fmt: skip
    for n in range(5):
        make_attendee(event, institution=f"Other Place {n}", role="clinician")
    make_attendee(event, institution="Far Away", status="cancelled")

    # make run's first step prints an e-mail and a generated password once.
    output = runner.invoke(args=["ensure-organizer", "--email", "admin@example.org"]).output
    email = re.search(r"e-mail:\s+(\S+)", output).group(1)
    password = re.search(r"password:\s+(\S+)", output).group(1)
    admin = app.test_client()
    assert sign_in(admin, email, password).status_code == 303

    # The dashboard's figures are /api/stats's.
    api = admin.get("/api/stats").get_json()
    dashboard = admin.get("/organizer/").text
    for key in ("attendees", "sessions", "faculty", "institutions"):
        assert f'data-stat="{key}">{api[key]}<' in dashboard
    assert api["attendees"] == 6

    # Find the attendee by part of their institution.
    listing = admin.get("/organizer/attendees?q=cincinnati+child").text
    assert re.findall(r">(NEC-[A-Z0-9]{6})</a>", listing) == [target.code]

    # Correct the name; the change is in the audit trail on the attendee page.
    url = f"/organizer/attendees/{target.id}"
    form = {
        "csrf_token": page_csrf(admin, url),
        "first_name": "Zoë",
        "last_name": "Núñez",
        "email": target.email,
        "role": "scientist",
        "institution": target.institution,
        "country": "US",
        "badge_name": "",
    }
    assert admin.post(url, data=form).status_code == 303
    page = admin.get(url).text
    assert "first name: “Zoe” → “Zoë”" in page and "last name: “Nunez” → “Núñez”" in page
    assert f"by {email}" in page

    # A staff account checks them in by code and can do nothing else.
    created = runner.invoke(args=["create-organizer", "door@example.org", "--role", "staff"],
                            input="door password 123\n")  # fmt: skip
    assert created.exit_code == 0, created.output
    staff = app.test_client()
    assert sign_in(staff, "door@example.org", "door password 123").status_code == 303
    token = page_csrf(staff, "/organizer/check-in")
    scan = staff.post("/organizer/check-in", data={"code": target.code, "csrf_token": token},
                      headers={"Accept": "application/json"})  # fmt: skip
    assert scan.status_code == 200 and scan.get_json()["attendee"]["badge_name"] == "Zoë Núñez"
    for path in ("/organizer/", "/organizer/attendees", url, "/organizer/settings",
                 "/organizer/export/badges.csv", "/organizer/stats.json"):  # fmt: skip
        assert staff.get(path).status_code == 403, path
    with app.app_context():
        actions = db.session.execute(
            select(AttendeeChange.action).where(AttendeeChange.attendee_id == target.id)
        ).scalars()
        assert list(actions) == ["update", "check_in"]

    # The badge CSV opens cleanly: UTF-8 (with a BOM for Excel), header, one row per attendee.
    body = admin.get("/organizer/export/badges.csv?excel=yes&status=confirmed").data
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert rows[0][:8] == ["code", "first_name", "last_name", "badge_name", "role",
                           "institution", "country", "early_career"]  # fmt: skip
    assert len(rows) == 1 + 6
    assert [r for r in rows if r[0] == target.code][0][1:4] == ["Zoë", "Núñez", "Zoë Núñez"]
    assert fresh(app, target).checked_in_at is not None
