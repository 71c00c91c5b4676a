"""The audit trail: what organizers change and export is recorded (table and security log),
shown to admins at /organizer/audit; refused input records nothing."""

# ruff: noqa: F811 - pytest fixtures imported from organizer_fixtures are used as arguments

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest
from organizer_fixtures import ADMIN_EMAIL, admin_client, csrf_for, make_organizer  # noqa: F401
from sqlalchemy import select

from necreg.audit import MASK, record
from necreg.extensions import db
from necreg.models import AuditEntry, Question

#: The actions these tests are about (signing in may be audited too).
OURS = ("settings.", "code.", "question.", "program.", "export.", "attendee.", "purge")


def entries(app) -> list[tuple[str, str, dict]]:
    with app.app_context():
        query = select(AuditEntry).order_by(AuditEntry.id)
        rows = db.session.execute(query).scalars()
        return [(e.action, e.target, e.details) for e in rows if e.action.startswith(OURS)]


def security_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "necreg.security"]


@pytest.fixture
def logged(caplog):
    caplog.set_level(logging.INFO, logger="necreg.security")
    return caplog


# --- record ------------------------------------------------------------------------------------


def test_record_joins_the_callers_transaction_and_logs_the_same_line(app, make_event, logged):
    make_event()
    with app.app_context():
        record(
            db.session,
            organizer_id=None,
            action="export.badges",
            target="nec-2099",
            details={"when": datetime(2025, 9, 8, 14, tzinfo=UTC), "email": True},
            address="192.0.2.7",
        )
        db.session.rollback()  # the caller's transaction fails: no entry
        assert db.session.execute(select(AuditEntry)).first() is None
        record(db.session, organizer_id=None, action="purge", details={"attendees": 3})
        db.session.commit()
    assert entries(app) == [("purge", "", {"attendees": 3})]
    lines = security_lines(logged)
    assert 'action=export.badges organizer=- target="nec-2099" address=192.0.2.7' in lines[0]
    assert '"when": "2025-09-08T14:00:00Z"' in lines[0] and '"email": true' in lines[0]
    assert "action=purge" in lines[1] and '"attendees": 3' in lines[1]


def test_record_never_keeps_a_secret(app, make_event, logged):
    make_event()
    with app.app_context():
        record(
            db.session,
            organizer_id=None,
            action="export.test",
            details={"password": "hunter2hunter2", "reset_token": "abc123", "text_body": "Hi"},
        )
        db.session.commit()
    assert entries(app)[0][2] == {"password": MASK, "reset_token": MASK, "text_body": MASK}
    line = security_lines(logged)[0]
    assert "hunter2" not in line and "abc123" not in line and "Hi" not in line


# --- What organizers do --------------------------------------------------------------------


def settings_form(client, **over) -> dict:
    form = {
        "csrf_token": csrf_for(client, "/organizer/settings"),
        "sessions": "42", "faculty": "100", "capacity": "", "cap_clinician": "",
        "cap_scientist": "", "cap_family": "", "cap_advocate": "",
        "registration_opens_at": "", "registration_closes_at": "",
        "tagline": "Building a World Without NEC",
        "description": "The world's largest meeting dedicated to NEC.",
        "virtual_capacity": "", "join_url": "", "max_guests": "0", "consent_version": "",
    }  # fmt: skip
    form.update(over)
    return form


def test_settings_changes_are_audited_with_old_and_new(app, admin_client, make_event, logged):
    make_event()
    response = admin_client.post("/organizer/settings", data=settings_form(admin_client))
    assert response.status_code == 303
    assert entries(app) == [("settings.update", "nec-2099", {"sessions": [40, 42]})]
    with app.app_context():
        entry = db.session.execute(
            select(AuditEntry).where(AuditEntry.action == "settings.update")
        ).scalar_one()
        assert entry.organizer.email == ADMIN_EMAIL and entry.address == "127.0.0.1"
    assert any("action=settings.update" in line for line in security_lines(logged))
    # Nothing changed, or a refused change: nothing recorded.
    again = admin_client.post("/organizer/settings", data=settings_form(admin_client))
    assert again.status_code == 303
    refused = admin_client.post(
        "/organizer/settings", data=settings_form(admin_client, sessions="7", max_guests="99")
    )
    assert refused.status_code == 400
    assert len(entries(app)) == 1


def test_codes_are_audited(app, admin_client, make_event):
    make_event(currency="USD")
    form = {"csrf_token": csrf_for(admin_client, "/organizer/codes"), "code": "faculty",
            "percent": "100"}  # fmt: skip
    assert admin_client.post("/organizer/codes", data=form).status_code == 303
    refused = {**form, "csrf_token": csrf_for(admin_client, "/organizer/codes"), "code": "X"}
    assert admin_client.post("/organizer/codes", data=refused).status_code == 400
    [(action, target, details)] = entries(app)
    assert (action, target, details["code"]) == ("code.create", "nec-2099", "FACULTY")
    assert "100%" in details["what"] or "free" in details["what"].lower()


def test_question_changes_are_audited(app, admin_client, make_event):
    make_event()
    form = {
        "csrf_token": csrf_for(admin_client, "/organizer/questions"),
        "key": "diet", "label": "Diet", "type": "choice", "choices": "Vegetarian\nAnything",
    }  # fmt: skip
    assert admin_client.post("/organizer/questions", data=form).status_code == 303
    with app.app_context():
        question = db.session.execute(select(Question)).scalar_one()
    path = f"/organizer/questions/{question.id}"
    changed = {**form, "csrf_token": csrf_for(admin_client, path), "label": "Dietary needs"}
    assert admin_client.post(path, data=changed).status_code == 303
    retire = {"csrf_token": csrf_for(admin_client, "/organizer/questions")}
    assert admin_client.post(f"{path}/retire", data=retire).status_code == 303
    refused = {**form, "csrf_token": csrf_for(admin_client, "/organizer/questions"), "type": "x"}
    assert admin_client.post("/organizer/questions", data=refused).status_code == 400
    assert entries(app) == [
        ("question.add", "nec-2099", {"key": "diet", "label": "Diet"}),
        ("question.change", "nec-2099",
         {"key": "diet", "changes": {"label": ["Diet", "Dietary needs"]}}),
        ("question.retire", "nec-2099", {"key": "diet"}),
    ]  # fmt: skip


def test_program_changes_are_audited(app, admin_client, make_event):
    make_event()
    new = {
        "csrf_token": csrf_for(admin_client, "/organizer/program"), "key": "ws-1",
        "title": "Ultrasound", "kind": "workshop", "starts_at": "2099-09-08T14:00",
        "ends_at": "2099-09-08T15:00", "room": "A", "capacity": "10", "credits": "1",
        "speakers": "",
    }  # fmt: skip
    assert admin_client.post("/organizer/program", data=new).status_code == 303
    path = "/organizer/program/ws-1"
    changed = {**new, "csrf_token": csrf_for(admin_client, path), "room": "B"}
    assert admin_client.post(path, data=changed).status_code == 303
    refused = {**changed, "csrf_token": csrf_for(admin_client, path), "ends_at": "soon"}
    assert admin_client.post(path, data=refused).status_code == 400
    remove = {"csrf_token": csrf_for(admin_client, "/organizer/program")}
    assert admin_client.post(f"{path}/remove", data=remove).status_code == 303
    assert entries(app) == [
        ("program.add", "nec-2099", {"key": "ws-1", "title": "Ultrasound"}),
        ("program.change", "nec-2099", {"key": "ws-1", "changes": {"room": ["A", "B"]}}),
        ("program.remove", "nec-2099",
         {"key": "ws-1", "title": "Ultrasound", "outcome": "deleted"}),
    ]  # fmt: skip


def test_exports_are_audited_with_their_filters_and_whether_emails_went(
    app, admin_client, make_event, make_attendee, logged
):
    make_attendee(make_event())
    for path in (
        "/organizer/export/badges.csv?email=yes&sensitive=yes&role=clinician",
        "/organizer/export/badges.csv?q=unc",
        "/organizer/export/directory.csv",
        "/organizer/export/payments.csv",
        "/organizer/export/credits.csv",
    ):
        response = admin_client.get(path)
        assert response.status_code == 200, path
        response.get_data()
    refused = admin_client.get("/organizer/export/badges.csv?role=pope")
    assert refused.status_code == 400
    assert admin_client.get("/organizer/export/badges.pdf?layout=huge").status_code == 400
    assert entries(app) == [
        ("export.badges", "nec-2099",
         {"format": "csv", "email": True, "sensitive": True, "filters": {"role": "clinician"}}),
        ("export.badges", "nec-2099",
         {"format": "csv", "email": False, "sensitive": False, "filters": {"q": "unc"}}),
        ("export.directory", "nec-2099", {"email": False, "filters": {}}),
        ("export.payments", "nec-2099", {"email": False, "filters": {}}),
        ("export.credits", "nec-2099", {"email": True, "filters": {}}),
    ]  # fmt: skip
    exports = [line for line in security_lines(logged) if "action=export." in line]
    assert len(exports) == 5 and all("organizer=" in line for line in exports)


def test_the_command_line_export_is_audited_without_an_organizer(
    app, runner, make_event, make_attendee, tmp_path
):
    make_attendee(make_event())
    result = runner.invoke(args=["export-badges", "--email", "--role", "clinician"])
    assert result.exit_code == 0, result.output
    refused = runner.invoke(args=["export-badges", "--role", "pope"])
    assert refused.exit_code != 0
    assert runner.invoke(args=["export-badges", "--pdf"]).exit_code != 0  # no --out
    with app.app_context():
        entry = db.session.execute(select(AuditEntry)).scalar_one()
        assert (entry.action, entry.organizer_id, entry.target) == (
            "export.badges",
            None,
            "nec-2099",
        )
        assert entry.details == {
            "format": "csv", "email": True, "sensitive": False,
            "filters": {"role": "clinician"}, "via": "command line",
        }  # fmt: skip


# --- The page ------------------------------------------------------------------------------


def test_admins_see_the_trail_newest_first(app, admin_client, make_event, make_organizer):
    make_event()
    other = make_organizer("other@example.org")
    with app.app_context():
        record(db.session, organizer_id=None, action="purge", details={"attendees": 5})
        record(
            db.session, organizer_id=other.id, action="export.badges", target="nec-2099",
            details={"email": True, "filters": {"role": "family"}}, address="203.0.113.9",
        )  # fmt: skip
        db.session.commit()
    page = admin_client.get("/organizer/audit").get_data(as_text=True)
    assert page.index("export.badges") < page.index("<code>purge</code>")
    assert "other@example.org" in page and "203.0.113.9" in page
    assert "the command line or the system" in page
    assert 'role = "family"' in page
    only = admin_client.get("/organizer/audit?action=purge").get_data(as_text=True)
    assert "<code>purge</code>" in only and "<code>export.badges</code>" not in only


def test_the_trail_pages_back_in_time(app, admin_client, make_event):
    make_event()
    with app.app_context():
        for n in range(60):
            record(db.session, organizer_id=None, action="purge", target=f"run-{n:02d}")
        db.session.commit()
    first = admin_client.get("/organizer/audit").get_data(as_text=True)
    assert "run-59" in first and "run-10" in first and "run-09" not in first
    older = first.split('rel="next"')[0].rsplit('href="', 1)[1].split('"')[0].replace("&amp;", "&")
    second = admin_client.get(older).get_data(as_text=True)
    assert "run-09" in second and "run-00" in second and "run-10" not in second
    assert 'rel="next"' not in second


@pytest.mark.parametrize(
    "query",
    ["before=abc", "before=0", f"before={2**40}", "before=%00", "action=nope", "action=%00"],
)
def test_wrong_arguments_are_refused(admin_client, make_event, query):
    make_event()
    assert admin_client.get(f"/organizer/audit?{query}").status_code == 400
