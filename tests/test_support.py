"""Support applications (issue 14): asked for on the form, decided in the organizers' queue
against the budget, e-mailed and audited; a fee waiver confirms a place held for payment,
once, however often the decision is sent."""

# ruff: noqa: F811 - pytest fixtures imported from organizer_fixtures are used as arguments

from __future__ import annotations

import threading

import pytest
from organizer_fixtures import admin_client, csrf_for, make_organizer  # noqa: F401
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session
from test_fees import event_file

from conftest import csrf_token, registration_form
from necreg.events import EventFileError, load_event
from necreg.extensions import db
from necreg.models import (
    STATUS_CONFIRMED,
    STATUS_PENDING,
    Attendee,
    AttendeeChange,
    Event,
    OutboxMessage,
    SupportRequest,
)
from necreg.support import SupportError, decide


@pytest.fixture
def event(app):
    app.config.update(PAYMENT_PROVIDER="offline")
    with app.app_context():
        loaded, _ = load_event(db.session, event_file(support_budget="1000"))
        db.session.commit()
        return loaded.id


def apply(client, email: str, statement: str = "I am a NICU nurse from Lagos.", **over):
    form = registration_form(
        csrf_token=csrf_token(client), email=email, role="clinician", early_career="y",
        support_request="y", support_statement=statement, **over,
    )  # fmt: skip
    return client.post("/register", data=form)


def request_of(app, email: str) -> tuple[int, int]:
    with app.app_context():
        attendee = db.session.execute(select(Attendee).where(Attendee.email == email)).scalar_one()
        found = db.session.execute(
            select(SupportRequest).where(SupportRequest.attendee_id == attendee.id)
        ).scalar_one()
        return found.id, attendee.id


def decision_form(admin_client, **values) -> dict:
    return {"csrf_token": csrf_for(admin_client, "/organizer/support"), **values}


def test_the_form_asks_for_support_and_the_queue_shows_it(app, client, admin_client, event):
    assert apply(client, "a@example.org").status_code == 303
    request_id, _ = request_of(app, "a@example.org")
    page = admin_client.get("/organizer/support").get_data(as_text=True)
    assert "I am a NICU nurse from Lagos." in page and "trainee or early-career" in page
    assert "of a budget of <strong>USD 1,000.00</strong>" in page
    too_long = apply(client, "b@example.org", statement="x" * 2001)
    assert too_long.status_code == 400 and "2000 characters" in too_long.get_data(as_text=True)
    with app.app_context():
        assert db.session.execute(select(func.count(Attendee.id))).scalar_one() == 1
    assert request_id


def test_a_waiver_confirms_a_held_place_once_however_often_it_is_sent(
    app, client, admin_client, event
):
    assert apply(client, "a@example.org").status_code == 303
    request_id, attendee_id = request_of(app, "a@example.org")
    with app.app_context():
        assert db.session.get(Attendee, attendee_id).status == STATUS_PENDING
    url = f"/organizer/support/{request_id}"
    for _twice in range(2):
        form = decision_form(admin_client, decision="waiver", note="Welcome!", score="9")
        assert admin_client.post(url, data=form).status_code == 303
    with app.app_context():
        attendee = db.session.get(Attendee, attendee_id)
        assert (attendee.status, attendee.amount_due) == (STATUS_CONFIRMED, 0)
        mails = (
            db.session.execute(select(OutboxMessage).where(OutboxMessage.kind == "support"))
            .scalars()
            .all()
        )
        assert len(mails) == 1 and "your registration fee for" in mails[0].text_body
        assert "Your place is confirmed" in mails[0].text_body and "Welcome!" in mails[0].text_body
        audit = (
            db.session.execute(
                select(AttendeeChange.action).where(AttendeeChange.attendee_id == attendee_id)
            )
            .scalars()
            .all()
        )
        assert audit.count("support") == 1 and audit.count("paid") == 1


def test_an_award_must_fit_the_budget_and_nothing_is_stored_when_refused(
    app, client, admin_client, event
):
    apply(client, "a@example.org")
    apply(client, "b@example.org")
    first, _ = request_of(app, "a@example.org")
    second, _ = request_of(app, "b@example.org")
    form = decision_form(admin_client, decision="award", award="800")
    assert admin_client.post(f"/organizer/support/{first}", data=form).status_code == 303
    form = decision_form(admin_client, decision="award", award="300")
    refused = admin_client.post(f"/organizer/support/{second}", data=form)
    assert refused.status_code == 400
    assert "more than the budget has left (USD 200.00)" in refused.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(SupportRequest, second).decision == ""
        with pytest.raises(SupportError, match="Choose one of"):
            decide(db.session, db.session.get(SupportRequest, second), "maybe")
    page = admin_client.get("/organizer/support").get_data(as_text=True)
    assert "<strong>USD 200.00</strong> left" in page


def test_a_support_budget_is_money_in_the_event_currency(app):
    with app.app_context(), pytest.raises(EventFileError, match="support_budget"):
        load_event(db.session, event_file(support_budget="lots"))


def test_on_postgresql_a_waiver_sent_twice_at_once_is_applied_once(
    app, client, database_url, is_postgres, event
):
    if not is_postgres:
        pytest.skip("needs PostgreSQL: set NECREG_TEST_DATABASE_URL")
    apply(client, "a@example.org")
    request_id, attendee_id = request_of(app, "a@example.org")
    engine = create_engine(database_url, pool_size=4, max_overflow=0)
    barrier = threading.Barrier(2)
    outcomes: list[bool] = []

    def deciding() -> None:
        with app.app_context(), Session(engine) as session:
            session.connection()
            barrier.wait(timeout=30)
            outcomes.append(decide(session, session.get(SupportRequest, request_id), "waiver"))
            session.commit()

    threads = [threading.Thread(target=deciding) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    engine.dispose()
    assert sorted(outcomes) == [False, True]
    with app.app_context():
        assert db.session.get(Attendee, attendee_id).status == STATUS_CONFIRMED
        kinds = db.session.execute(select(OutboxMessage.kind)).scalars().all()
        assert kinds.count("support") == 1
        assert db.session.get(Event, event).support_budget == 100000


def test_the_private_page_asks_for_support_while_registration_is_open(app, client, event):
    form = registration_form(csrf_token=csrf_token(client), email="a@example.org")
    assert client.post("/register", data=form).status_code == 303
    with app.app_context():
        token = db.session.execute(select(Attendee.token)).scalar_one()
    path = f"/registration/{token}"
    assert "Ask for support" in client.get(path).get_data(as_text=True)
    too_long = {"csrf_token": csrf_token(client, path), "support_statement": "x" * 2001}
    refused = client.post(f"{path}/support", data=too_long)
    assert refused.status_code == 400 and "2000 characters" in refused.get_data(as_text=True)
    asked = {"csrf_token": csrf_token(client, path), "support_statement": "A parent of a NEC baby."}
    assert client.post(f"{path}/support", data=asked).status_code == 303
    page = client.get(path).get_data(as_text=True)
    assert "is with the organizers" in page and "A parent of a NEC baby." in page
    with app.app_context():
        assert db.session.execute(select(func.count(SupportRequest.id))).scalar_one() == 1


def test_without_a_support_budget_support_is_not_offered(app, client):
    with app.app_context():
        load_event(db.session, event_file())
        db.session.commit()
    assert "Support to come" not in client.get("/register").get_data(as_text=True)
    form = registration_form(
        csrf_token=csrf_token(client), email="a@example.org", support_request="y"
    )
    assert client.post("/register", data=form).status_code == 303
    with app.app_context():
        assert db.session.execute(select(func.count(SupportRequest.id))).scalar_one() == 0


def test_support_is_asked_for_only_while_registration_is_open_and_with_a_clean_statement(
    app, client, event
):
    from datetime import UTC, datetime, timedelta

    refused = apply(client, "a@example.org", statement="Line one\x00hidden")
    assert refused.status_code == 400
    assert "characters that cannot be stored" in refused.get_data(as_text=True)
    form = registration_form(csrf_token=csrf_token(client), email="b@example.org")
    assert client.post("/register", data=form).status_code == 303
    with app.app_context():
        assert db.session.execute(select(func.count(Attendee.id))).scalar_one() == 1
        token = db.session.execute(select(Attendee.token)).scalar_one()
        db.session.get(Event, event).registration_closes_at = datetime.now(UTC) - timedelta(
            minutes=1
        )
        db.session.commit()
    path = f"/registration/{token}"
    assert "Ask for support" not in client.get(path).get_data(as_text=True)
    late = {"csrf_token": csrf_token(client, path), "support_statement": "Please."}
    closed = client.post(f"{path}/support", data=late)
    assert closed.status_code == 409
    assert "while registration is open" in closed.get_data(as_text=True)
    with app.app_context():
        assert db.session.execute(select(func.count(SupportRequest.id))).scalar_one() == 0
