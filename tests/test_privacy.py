"""Privacy tools: the retention purge, a person's data (organizer export and data.json), erasure
on request, and the privacy page's periods."""

# ruff: noqa: F811 - pytest fixtures imported from organizer_fixtures are used as arguments

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

import pytest
from organizer_fixtures import (  # noqa: F401
    ADMIN_EMAIL,
    admin_client,
    csrf_for,
    make_organizer,
    staff_client,
)
from sqlalchemy import func, select

from conftest import fresh, saved
from necreg.extensions import db
from necreg.models import (
    Answer,
    Attendee,
    AttendeeChange,
    AuditEntry,
    Event,
    OutboxMessage,
    Payment,
    ProgramItem,
    ProgramSignup,
    Question,
    SupportRequest,
    WebhookDelivery,
    utcnow,
)
from necreg.privacy import ERASED, NOT_SENT, erase, erased_email, purge
from necreg.questions import event_questions
from necreg.stats import dashboard_stats, event_stats

TODAY = datetime.now(UTC).date()


# --- Helpers -------------------------------------------------------------------------------


def ago(days: float) -> datetime:
    return utcnow() - timedelta(days=days)


@pytest.fixture
def past_event(make_event):
    """The current event, held two years ago: past any retention period."""
    return make_event(
        slug="nec-old",
        starts_on=TODAY - timedelta(days=732),
        ends_on=TODAY - timedelta(days=730),
        currency="USD",
    )


def questions_for(app, event) -> dict[str, Question]:
    """A choice question and a sensitive written one."""
    diet = Question(
        event_id=event.id, key="diet", label="Diet", type="choice", position=1,
        choices=[{"value": "veg", "label": "Vegetarian"}, {"value": "any", "label": "Anything"}],
    )  # fmt: skip
    health = Question(
        event_id=event.id, key="story", label="Your child's story", type="textarea",
        sensitive=True, position=2,
    )  # fmt: skip
    return {"diet": saved(app, diet), "story": saved(app, health)}


def person_with_everything(app, make_attendee, event, asked, **over) -> Attendee:
    """A registration with answers, a payment, a support request, a change in its history,
    a program sign-up and e-mails (one delivered, one waiting)."""
    attendee = make_attendee(
        event,
        photo_consent_at=ago(800), photo_consent_version="v2",
        list_consent_at=ago(800), list_consent_version="v2", consent_version="v2",
        **over,
    )  # fmt: skip
    with app.app_context():
        db.session.add_all(
            [
                Answer(attendee_id=attendee.id, question_id=asked["diet"].id, choice="veg"),
                Answer(attendee_id=attendee.id, question_id=asked["story"].id, text="NEC at 3 wk"),
                Payment(
                    event_id=event.id, attendee_id=attendee.id, amount=12000, currency="USD",
                    method="offline", reference=f"Cheque from {attendee.last_name}",
                    paid_at=ago(760), receipt_number=attendee.id,
                ),
                SupportRequest(
                    attendee_id=attendee.id, statement="We lost our jobs", note="Moving story",
                    score=9,
                ),
                AttendeeChange(
                    attendee_id=attendee.id, action="update",
                    changes={"last_name": ["Old", attendee.last_name], "country": ["FR", "US"]},
                ),
                OutboxMessage(
                    attendee_id=attendee.id, kind="confirmation", to_address=attendee.email,
                    subject=f"Welcome {attendee.first_name}", text_body="Dear ...",
                    html_body="<p>Dear ...</p>", status="sent", sent_at=ago(790),
                    attachments=[{"filename": "x.ics", "content_type": "text/calendar",
                                  "content": "BEGIN"}],
                ),
                OutboxMessage(
                    attendee_id=attendee.id, kind="link", to_address=attendee.email,
                    subject="Your link", text_body="Your link is ...", status="pending",
                ),
            ]
        )  # fmt: skip
        db.session.commit()
    return attendee


def figures(app, client, event) -> tuple[dict, dict, dict]:
    """The public counters, the dashboard's figures and /api/stats (for the current event)."""
    with app.app_context():
        current = db.session.get(Event, event.id)
        questions = event_questions(db.session, event.id)
        public = event_stats(db.session, current).as_json()
        dashboard = dashboard_stats(db.session, current, questions).as_json()
    response = client.get("/api/stats")
    assert response.status_code == 200
    return public, dashboard, response.get_json()


#: Tables that a signed-in organizer's requests write to whatever they do.
VOLATILE = {"organizer_sessions"}


def every_row(app) -> dict[str, list]:
    """Every row of every table, for "nothing changed"."""
    with app.app_context():
        dump = {}
        for table in db.metadata.sorted_tables:
            if table.name in VOLATILE:
                continue
            order = list(table.primary_key.columns) or list(table.columns)
            dump[table.name] = [tuple(row) for row in db.session.execute(
                select(table).order_by(*order)
            )]  # fmt: skip
        return dump


@pytest.fixture
def scene(app, make_attendee, past_event):
    """The past event with: two confirmed at one institution (one with a companion), one
    alone at hers, one waitlisted and one cancelled; and an event to come, untouched."""
    asked = questions_for(app, past_event)
    people = {
        "shared1": person_with_everything(app, make_attendee, past_event, asked,
                                          institution="Shared Hospital"),
        "shared2": person_with_everything(app, make_attendee, past_event, asked,
                                          institution=" Shared Hospital", role="family"),
        "alone": person_with_everything(app, make_attendee, past_event, asked,
                                        institution="Only Here", early_career=True,
                                        checked_in_at=ago(731)),
        "waiting": make_attendee(past_event, status="waitlisted", institution="Wait U"),
        "gone": make_attendee(past_event, status="cancelled", cancelled_at=ago(740)),
    }  # fmt: skip
    people["guest"] = make_attendee(
        past_event, role="guest", email="", party_id=people["shared1"].id, age_band="adult",
        institution="Guest Inst",
    )  # fmt: skip
    future = saved(
        app,
        Event(
            slug="nec-next", name="Next", starts_on=TODAY + timedelta(days=300),
            ends_on=TODAY + timedelta(days=302), is_current=False,
        ),
    )  # fmt: skip
    people["future"] = make_attendee(future, institution="Future Inst")
    return past_event, people


# --- The purge -----------------------------------------------------------------------------


def test_purge_anonymises_past_attendees_and_keeps_every_figure(app, client, runner, scene):
    event, people = scene
    before = figures(app, client, event)
    assert before[0]["institutions"] == 3 and before[0]["attendees"] == 4
    assert before[1]["answers"]["diet"]["veg"] == 3
    old_tokens = {name: fresh(app, a).token for name, a in people.items()}

    result = runner.invoke(args=["purge"])

    assert result.exit_code == 0, result.output
    assert "Anonymised 6 attendee(s) of nec-old." in result.output
    assert figures(app, client, event) == before
    for name in ("shared1", "shared2", "alone", "waiting", "gone"):
        erased = fresh(app, people[name])
        assert (erased.first_name, erased.last_name, erased.badge_name) == (
            "Erased", "registration", "Erased"
        )  # fmt: skip
        assert erased.email == erased_email(erased.id)
        assert erased.institution == "" and erased.erased_at is not None
        assert erased.token != old_tokens[name]
        assert erased.photo_consent_at is None and erased.list_consent_at is None
        # What is not identifying on its own stays.
        assert (erased.status, erased.role, erased.country) == (
            people[name].status, people[name].role, people[name].country
        )  # fmt: skip
        assert client.get(f"/registration/{old_tokens[name]}").status_code == 404
    guest = fresh(app, people["guest"])
    assert guest.email == "" and guest.first_name == "Erased" and guest.institution == ""
    assert fresh(app, people["alone"]).checked_in_at is not None
    assert fresh(app, people["alone"]).early_career is True
    future = fresh(app, people["future"])
    assert future.erased_at is None and future.institution == "Future Inst"
    assert client.get(f"/registration/{old_tokens['future']}").status_code == 200
    with app.app_context():
        ids = [people[n].id for n in ("shared1", "shared2", "alone")]
        assert db.session.scalar(select(func.count(Answer.id))) == 0
        payments = db.session.execute(select(Payment).order_by(Payment.id)).scalars().all()
        assert [(p.amount, p.reference) for p in payments] == [(12000, "")] * 3
        support = db.session.execute(select(SupportRequest)).scalars().all()
        assert {(s.statement, s.note, s.score) for s in support} == {("", "", 9)}
        history = db.session.execute(
            select(AttendeeChange).where(
                AttendeeChange.attendee_id.in_(ids), AttendeeChange.action == "update"
            )
        ).scalars()
        for change in history:
            assert change.changes == {"last_name": [ERASED, ERASED], "country": ["FR", "US"]}
        mail = db.session.execute(select(OutboxMessage)).scalars().all()
        assert all(m.text_body == m.html_body == "" and m.attachments == [] for m in mail)
        assert all(m.subject == ERASED and "example.org" not in m.to_address for m in mail)
        waiting = [m for m in mail if m.kind == "link"]
        assert {(m.status, m.last_error) for m in waiting} == {("failed", NOT_SENT)}
        searched = db.session.execute(
            select(Attendee.search_text).where(Attendee.id.in_(ids))
        ).scalars()
        assert all("shared" not in text and "first" not in text for text in searched)


def test_purge_dry_run_changes_nothing(app, runner, scene):
    before = every_row(app)
    result = runner.invoke(args=["purge", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "Would anonymise 6 attendee(s) of nec-old." in result.output
    assert "Would empty 3 delivered e-mail(s)." in result.output
    assert "Dry run: nothing was changed." in result.output
    assert every_row(app) == before


def test_purge_is_idempotent_and_audited(app, client, runner, scene, caplog):
    event, people = scene
    caplog.set_level(logging.INFO, logger="necreg.security")
    assert runner.invoke(args=["purge"]).exit_code == 0
    after_first = every_row(app)
    shown = figures(app, client, event)
    again = runner.invoke(args=["purge"])
    assert again.exit_code == 0
    assert "Anonymised no attendee." in again.output
    assert "Emptied 0 delivered e-mail(s)." in again.output
    assert figures(app, client, event) == shown
    after_second = every_row(app)
    for table in ("attendees", "answers", "payments", "outbox_messages", "attendee_changes"):
        assert after_second[table] == after_first[table], table
    with app.app_context():
        entries = db.session.execute(select(AuditEntry).order_by(AuditEntry.id)).scalars().all()
        assert [(e.action, e.organizer_id) for e in entries] == [("purge", None)] * 2
        assert entries[0].details["attendees"] == 6
        assert entries[0].details["by_event"] == {"nec-old": 6}
        assert entries[0].details["still_counted"] == 4
        assert entries[0].details["retention_days"] == 365
        assert entries[1].details["attendees"] == 0
    logged = [r.getMessage() for r in caplog.records if r.name == "necreg.security"]
    assert any("action=purge" in line and '"attendees": 6' in line for line in logged)


def test_purge_follows_the_retention_setting(app, runner, make_event, make_attendee):
    event = make_event(starts_on=TODAY - timedelta(days=102), ends_on=TODAY - timedelta(days=100))
    held = make_attendee(event, institution="Kept Inst")
    assert "Anonymised no attendee." in runner.invoke(args=["purge"]).output
    assert fresh(app, held).erased_at is None
    app.config["RETENTION_DAYS_AFTER_EVENT"] = 99
    assert "Anonymised 1 attendee(s)" in runner.invoke(args=["purge"]).output
    assert fresh(app, held).erased_at is not None


def test_purge_anonymises_cancellations_older_than_the_period_only(
    app, client, runner, make_event, make_attendee
):
    event = make_event()  # still to come
    old = make_attendee(event, status="cancelled", cancelled_at=ago(366), institution="A")
    recent = make_attendee(event, status="cancelled", cancelled_at=ago(364), institution="B")
    active = make_attendee(event, institution="C")
    before = figures(app, client, event)
    result = runner.invoke(args=["purge"])
    assert "Anonymised 1 attendee(s) of nec-2099." in result.output
    assert fresh(app, old).erased_at is not None
    assert fresh(app, recent).erased_at is None and fresh(app, recent).institution == "B"
    assert fresh(app, active).erased_at is None
    assert figures(app, client, event) == before


def test_purge_empties_old_delivered_mail_and_webhook_bodies(app, runner, make_event):
    make_event()

    def mail(status: str, sent_days: float | None) -> OutboxMessage:
        return saved(
            app,
            OutboxMessage(
                kind="link", to_address="a@example.org", subject=f"{status} {sent_days}",
                text_body="body", html_body="<p>body</p>", status=status,
                sent_at=None if sent_days is None else ago(sent_days),
                attachments=[{"filename": "a", "content_type": "text/plain", "content": "x"}],
            ),
        )  # fmt: skip

    def hook(status: str, sent_days: float | None) -> WebhookDelivery:
        return saved(
            app,
            WebhookDelivery(
                url="https://example.org/h", event_type="registration.created",
                body='{"data": {"email": "a@example.org"}}', status=status,
                sent_at=None if sent_days is None else ago(sent_days),
            ),
        )  # fmt: skip

    old, recent = mail("sent", 31), mail("sent", 29)
    waiting, failed = mail("pending", None), mail("failed", None)
    old_hook, recent_hook, pending_hook = hook("sent", 31), hook("sent", 29), hook("pending", None)
    dry = runner.invoke(args=["purge", "--dry-run"])
    assert "Would empty 1 delivered e-mail(s)." in dry.output
    assert "Would empty 1 sent webhook delivery body(ies)." in dry.output
    assert fresh(app, old).text_body == "body"
    result = runner.invoke(args=["purge"])
    assert "Emptied 1 delivered e-mail(s)." in result.output
    emptied = fresh(app, old)
    assert (emptied.text_body, emptied.html_body, emptied.attachments) == ("", "", [])
    assert emptied.subject == "sent 31" and emptied.sent_at is not None  # the log stays
    for kept in (recent, waiting, failed):
        assert fresh(app, kept).text_body == "body"
    assert fresh(app, old_hook).body == ""
    assert fresh(app, recent_hook).body != "" and fresh(app, pending_hook).body != ""
    app.config["OUTBOX_RETENTION_DAYS"] = 7
    assert "Emptied 1 delivered e-mail(s)." in runner.invoke(args=["purge"]).output
    assert fresh(app, recent).text_body == ""


def test_purge_keeps_the_one_active_address_per_event_rule(app, make_event, make_attendee):
    """Two erased registrations of one event get different placeholders (the unique index
    on active addresses holds), and a new registration with a freed address is possible."""
    event = make_event(starts_on=TODAY - timedelta(days=500), ends_on=TODAY - timedelta(days=499))
    a = make_attendee(event, email="same@example.org")
    b = make_attendee(event, email="other@example.org")
    with app.app_context():
        report = purge(db.session, retention_days=365, outbox_days=30)
        db.session.commit()
    assert report.attendees == 2 and report.counted == 2
    assert {fresh(app, a).email, fresh(app, b).email} == {erased_email(a.id), erased_email(b.id)}


# --- A person's data -----------------------------------------------------------------------


@pytest.fixture
def lead_with_everything(app, make_event, make_attendee):
    event = make_event(currency="USD")
    asked = questions_for(app, event)
    lead = person_with_everything(app, make_attendee, event, asked, institution="Lead Inst")
    companion = make_attendee(
        event, role="guest", email="", party_id=lead.id, age_band="child", first_name="Kiddo"
    )
    start = datetime(2099, 9, 8, 14, tzinfo=UTC)
    item = saved(
        app,
        ProgramItem(
            event_id=event.id, key="ws-1", title="Feeding workshop", kind="workshop",
            starts_at=start, ends_at=start + timedelta(hours=1), capacity=5,
        ),
    )  # fmt: skip
    saved(app, ProgramSignup(item_id=item.id, attendee_id=lead.id, status="confirmed"))
    stranger = make_attendee(event, email="stranger@example.org", first_name="Stranger")
    return event, lead, companion, stranger


def test_organizer_exports_a_persons_data_and_it_is_audited(
    app, admin_client, lead_with_everything
):
    _event, lead, companion, stranger = lead_with_everything
    response = admin_client.get(f"/organizer/attendees/{lead.id}/data.json")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert "attachment" in response.headers["Content-Disposition"]
    data = json.loads(response.get_data())
    registration = data["registration"]
    assert registration["email"] == lead.email and registration["institution"] == "Lead Inst"
    assert "token" not in registration and "search_text" not in registration
    assert lead.token not in response.get_data(as_text=True)
    assert data["consents"]["photos"]["version"] == "v2"
    assert data["consents"]["registration"]["version"] == "v2"
    assert {(a["question"], a["choice"], a["text"]) for a in data["answers"]} == {
        ("diet", "veg", None), ("story", None, "NEC at 3 wk")
    }  # fmt: skip
    assert data["payments"][0]["amount"] == "120.00"
    assert data["payments"][0]["reference"] == f"Cheque from {lead.last_name}"
    assert data["program_signups"] == [
        {"item": "ws-1", "title": "Feeding workshop", "status": "confirmed",
         "at": data["program_signups"][0]["at"]}
    ]  # fmt: skip
    assert {m["subject"] for m in data["messages"]} == {f"Welcome {lead.first_name}", "Your link"}
    assert all("body" not in key for m in data["messages"] for key in m)
    assert data["history"][0]["changes"]["last_name"] == ["Old", lead.last_name]
    assert data["support_request"]["note"] == "Moving story"  # internal: organizers see it
    assert [c["registration"]["first_name"] for c in data["companions"]] == [companion.first_name]
    assert stranger.email not in response.get_data(as_text=True)
    with app.app_context():
        entry = db.session.execute(
            select(AuditEntry).where(AuditEntry.action == "attendee.export")
        ).scalar_one()
        assert (entry.action, entry.target, entry.organizer.email) == (
            "attendee.export", lead.code, ADMIN_EMAIL
        )  # fmt: skip
        assert entry.address == "127.0.0.1"


def test_holder_downloads_their_data_without_internal_notes(
    app, client, lead_with_everything, make_organizer
):
    _event, lead, companion, stranger = lead_with_everything
    organizer = make_organizer("someone@example.org")
    with app.app_context():
        db.session.add(
            AttendeeChange(attendee_id=lead.id, organizer_id=organizer.id, action="update")
        )
        db.session.commit()
    response = client.get(f"/registration/{lead.token}/data.json")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Robots-Tag"] == "noindex"
    body = response.get_data(as_text=True)
    data = json.loads(body)
    assert data["registration"]["code"] == lead.code
    assert data["support_request"]["statement"] == "We lost our jobs"
    assert "note" not in data["support_request"] and "score" not in data["support_request"]
    assert "Moving story" not in body
    assert "someone@example.org" not in body
    assert data["history"][-1]["by"] == "an organizer"
    assert [c["registration"]["code"] for c in data["companions"]] == [companion.code]
    assert stranger.email not in body and stranger.code not in body
    # A companion's own link gives the companion's data only, and its lead's code.
    own = client.get(f"/registration/{companion.token}/data.json").get_json()
    assert own["party_lead"] == {"code": lead.code} and "companions" not in own
    assert lead.email not in json.dumps(own)
    assert client.get("/registration/not-a-token/data.json").status_code == 404
    with app.app_context():
        assert db.session.scalar(select(func.count(AuditEntry.id))) == 0


def test_private_page_links_to_the_data(client, make_event, make_attendee):
    attendee = make_attendee(make_event())
    page = client.get(f"/registration/{attendee.token}").get_data(as_text=True)
    assert f'href="/registration/{attendee.token}/data.json"' in page
    assert "Download your data" in page


# --- Erasure on request --------------------------------------------------------------------


def erase_form(client, attendee_id: int, **over) -> dict:
    form = {"csrf_token": csrf_for(client, f"/organizer/attendees/{attendee_id}"), "confirm": "yes"}
    form.update(over)
    return {k: v for k, v in form.items() if v is not None}


def test_erasing_needs_the_confirmation_and_a_csrf_token(
    app, admin_client, make_event, make_attendee
):
    attendee = make_attendee(make_event())
    before = every_row(app)
    path = f"/organizer/attendees/{attendee.id}/erase"
    unticked = admin_client.post(path, data=erase_form(admin_client, attendee.id, confirm=None))
    assert unticked.status_code == 303
    page = admin_client.get(unticked.location).get_data(as_text=True)
    assert "Nothing erased" in page
    assert admin_client.post(path, data={"confirm": "yes"}).status_code == 400
    assert every_row(app) == before


def test_staff_can_neither_erase_nor_export(app, staff_client, make_event, make_attendee):
    attendee = make_attendee(make_event())
    before = every_row(app)
    path = f"/organizer/attendees/{attendee.id}"
    assert staff_client.get(f"{path}/data.json").status_code == 403
    csrf = csrf_for(staff_client, "/organizer/check-in")
    assert (
        staff_client.post(f"{path}/erase", data={"csrf_token": csrf, "confirm": "yes"}).status_code
        == 403
    )
    assert every_row(app) == before


def test_erasing_an_active_attendee_of_a_coming_event_frees_the_place(
    app, client, admin_client, make_event, make_attendee
):
    event = make_event(capacity=1)
    attendee = make_attendee(event, institution="Gone Inst", email="gone@example.org")
    waiting = make_attendee(event, status="waitlisted", institution="Next Inst")
    token = attendee.token
    response = admin_client.post(
        f"/organizer/attendees/{attendee.id}/erase", data=erase_form(admin_client, attendee.id)
    )
    assert response.status_code == 303
    page = admin_client.get(response.location).get_data(as_text=True)
    assert "Erased: 1 registration(s), cancelled first" in page
    assert "promoted from the waiting list: 1" in page
    assert "data was erased on" in page
    erased = fresh(app, attendee)
    assert erased.status == "cancelled" and erased.erased_at is not None
    assert erased.email == erased_email(erased.id) and erased.institution == ""
    assert fresh(app, waiting).status == "confirmed"
    public = figures(app, client, event)[0]
    assert public["attendees"] == 1 and public["institutions"] == 1  # Next Inst, not Gone Inst
    assert client.get(f"/registration/{token}").status_code == 404
    assert client.get(f"/registration/{token}/data.json").status_code == 404
    with app.app_context():
        entry = db.session.execute(
            select(AuditEntry).where(AuditEntry.action == "attendee.erase")
        ).scalar_one()
        assert (entry.action, entry.target) == ("attendee.erase", attendee.code)
        assert entry.details == {"erased": [attendee.code], "cancelled": True, "promoted": 1}
        assert entry.organizer.email == ADMIN_EMAIL
        # The cancellation e-mail to the erased person is never sent, and holds nothing.
        mail = (
            db.session.execute(
                select(OutboxMessage).where(OutboxMessage.attendee_id == attendee.id)
            )
            .scalars()
            .all()
        )
        assert mail and all(m.status == "failed" and m.text_body == "" for m in mail)
        assert all("gone@example.org" not in m.to_address for m in mail)
        history = (
            db.session.execute(
                select(AttendeeChange.action).where(AttendeeChange.attendee_id == attendee.id)
            )
            .scalars()
            .all()
        )
        assert history[-1] == "erase" and "cancel" in history


def test_erasing_a_lead_erases_the_companions(app, admin_client, make_event, make_attendee):
    event = make_event()
    lead = make_attendee(event)
    companion = make_attendee(event, role="guest", email="", party_id=lead.id, age_band="adult")
    other = make_attendee(event)
    admin_client.post(
        f"/organizer/attendees/{lead.id}/erase", data=erase_form(admin_client, lead.id)
    )
    for member in (lead, companion):
        erased = fresh(app, member)
        assert erased.erased_at is not None and erased.status == "cancelled"
        assert erased.first_name == "Erased"
    assert fresh(app, other).erased_at is None and fresh(app, other).status == "confirmed"


def test_erasing_a_companion_erases_only_the_companion(
    app, admin_client, make_event, make_attendee
):
    event = make_event()
    lead = make_attendee(event)
    companion = make_attendee(event, role="guest", email="", party_id=lead.id, age_band="adult")
    admin_client.post(
        f"/organizer/attendees/{companion.id}/erase", data=erase_form(admin_client, companion.id)
    )
    assert fresh(app, companion).erased_at is not None
    kept = fresh(app, lead)
    assert kept.erased_at is None and kept.status == "confirmed" and kept.first_name != "Erased"


def test_erasing_an_attendee_of_a_meeting_held_keeps_them_counted(
    app, client, admin_client, past_event, make_attendee
):
    asked = questions_for(app, past_event)
    attendee = person_with_everything(app, make_attendee, past_event, asked, institution="Solo")
    make_attendee(past_event, institution="Other")
    before = figures(app, client, past_event)
    assert before[0]["institutions"] == 2
    response = admin_client.post(
        f"/organizer/attendees/{attendee.id}/erase", data=erase_form(admin_client, attendee.id)
    )
    assert response.status_code == 303
    erased = fresh(app, attendee)
    assert erased.status == "confirmed" and erased.erased_at is not None
    assert erased.institution == ""
    assert figures(app, client, past_event) == before


def test_an_erased_registration_can_no_longer_be_changed(
    app, admin_client, past_event, make_attendee
):
    attendee = make_attendee(past_event)
    path = f"/organizer/attendees/{attendee.id}"
    admin_client.post(f"{path}/erase", data=erase_form(admin_client, attendee.id))
    erased = every_row(app)
    page = admin_client.get(path).get_data(as_text=True)
    assert "Correct details" not in page and "Cancel registration" not in page
    assert "Export this person" in page and 'name="confirm"' not in page
    form = {
        "csrf_token": csrf_for(admin_client, path), "first_name": "Back", "last_name": "Again",
        "email": "back@example.org", "role": "clinician", "country": "US", "badge_name": "B",
    }  # fmt: skip
    refused = admin_client.post(path, data=form)
    assert refused.status_code == 409 and "can no longer be changed" in refused.get_data(
        as_text=True
    )
    csrf = {"csrf_token": csrf_for(admin_client, path)}
    for action in ("cancel", "restore"):
        assert admin_client.post(f"{path}/{action}", data=csrf).status_code == 303
    again = admin_client.post(f"{path}/erase", data=erase_form(admin_client, attendee.id))
    assert "erased already" in admin_client.get(again.location).get_data(as_text=True)
    after = every_row(app)
    assert after["attendees"] == erased["attendees"]
    with app.app_context():
        erasures = select(func.count()).where(AuditEntry.action == "attendee.erase")
        assert db.session.scalar(erasures) == 1  # the refusal is not an erasure


def test_erasure_empties_the_webhook_bodies_sent_about_the_person(app, make_event, make_attendee):
    event = make_event()
    person, other = make_attendee(event), make_attendee(event)

    def hook(attendee: Attendee, status: str) -> WebhookDelivery:
        data = {"data": {"code": attendee.code, "email": attendee.email}}
        return saved(
            app,
            WebhookDelivery(
                url="https://example.org/h", event_type="registration.created",
                body=json.dumps(data, separators=(",", ":")), status=status,
                sent_at=ago(1) if status == "sent" else None,
            ),
        )  # fmt: skip

    sent, waiting, others = hook(person, "sent"), hook(person, "pending"), hook(other, "sent")
    with app.app_context():
        done = erase(db.session, db.session.get(Attendee, person.id))
        db.session.commit()
        assert done.cancelled and [a.id for a in done.erased] == [person.id]
    assert fresh(app, sent).body == ""
    assert person.email in fresh(app, waiting).body  # on its way; the erasure's update follows
    assert other.email in fresh(app, others).body


# --- The privacy page ------------------------------------------------------------------------


def test_privacy_page_states_the_periods_and_how_to_get_and_erase_data(app, client, make_event):
    make_event()
    app.config.update(RETENTION_DAYS_AFTER_EVENT=200, OUTBOX_RETENTION_DAYS=14)
    page = client.get("/privacy").get_data(as_text=True)
    assert "erased 200 days after the meeting is over" in page
    assert "kept for 14 days after they are delivered" in page
    assert "Download your data" in page
    assert "To have your data erased sooner" in page
