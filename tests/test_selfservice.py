"""The self-service page: see, correct (not the e-mail), cancel after a confirmation step;
and "Lost your link?"."""

from __future__ import annotations

import email
import re
from email import policy
from pathlib import Path

from sqlalchemy import func, select

from conftest import csrf_token, fresh, registration_form
from necreg.extensions import db
from necreg.mail.delivery import FileBackend
from necreg.mail.worker import deliver_due
from necreg.models import Attendee, AttendeeChange, OutboxMessage
from necreg.qr import qr_svg


def details_form(**over):
    form = {
        "first_name": "Ada",
        "last_name": "Lovelace",
        "role": "clinician",
        "institution": "Cincinnati Children's",
        "country": "GB",
        "early_career": "y",
        "badge_name": "Dr Ada",
    }
    form.update(over)
    return {k: v for k, v in form.items() if v is not None}


def page_of(attendee: Attendee) -> str:
    return f"/registration/{attendee.token}"


def snapshot(app, attendee: Attendee) -> dict:
    row = fresh(app, attendee)
    columns = ("status", "role", "first_name", "last_name", "email", "institution", "country",
               "early_career", "badge_name", "updated_at")  # fmt: skip
    return {c: getattr(row, c) for c in columns}


def count(app, model, **where) -> int:
    query = select(func.count()).select_from(model)
    for key, value in where.items():
        query = query.where(getattr(model, key) == value)
    with app.app_context():
        return db.session.execute(query).scalar_one()


def test_page_shows_registration_and_prefilled_form_without_email(
    client, make_event, make_attendee
):
    attendee = make_attendee(make_event(), first_name="Grace", institution="UNC")
    response = client.get(page_of(attendee))
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    page = response.get_data(as_text=True)
    assert "You are registered" in page
    assert attendee.code in page
    assert re.search(r"<input[^>]*name=\"first_name\"[^>]*value=\"Grace\"", page)
    assert 'name="email"' not in page
    assert f'href="/registration/{attendee.token}/cancel"' in page


def test_unknown_token_is_404(client, make_event):
    make_event()
    assert client.get("/registration/not-a-token").status_code == 404
    assert client.get("/registration/not-a-token/cancel").status_code == 404
    token = csrf_token(client, "/register")
    response = client.post("/registration/not-a-token/cancel", data={"csrf_token": token})
    assert response.status_code == 404


def test_correcting_details_saves_them_and_records_the_change(
    app, client, make_event, make_attendee
):
    attendee = make_attendee(make_event(), email="ada@example.org")
    token = csrf_token(client, page_of(attendee))
    response = client.post(
        page_of(attendee),
        data=details_form(csrf_token=token, email="evil@example.org"),
    )
    assert response.status_code == 303
    assert response.location == page_of(attendee)
    after = snapshot(app, attendee)
    assert (after["first_name"], after["last_name"], after["country"]) == ("Ada", "Lovelace", "GB")
    assert (after["badge_name"], after["early_career"]) == ("Dr Ada", True)
    assert after["email"] == "ada@example.org"  # never changed from the link
    with app.app_context():
        [change] = db.session.execute(select(AttendeeChange)).scalars().all()
        assert change.action == "update" and change.organizer_id is None
        assert change.changes["first_name"][1] == "Ada"
    assert "Your details are saved." in client.get(page_of(attendee)).get_data(as_text=True)


def test_empty_badge_name_defaults_to_the_name(app, client, make_event, make_attendee):
    attendee = make_attendee(make_event())
    token = csrf_token(client, page_of(attendee))
    client.post(page_of(attendee), data=details_form(csrf_token=token, badge_name=""))
    assert snapshot(app, attendee)["badge_name"] == "Ada Lovelace"


def test_bad_input_is_400_with_messages_and_nothing_stored(app, client, make_event, make_attendee):
    attendee = make_attendee(make_event())
    before = snapshot(app, attendee)
    token = csrf_token(client, page_of(attendee))
    response = client.post(
        page_of(attendee),
        data=details_form(
            csrf_token=token, first_name="  ", country="XX", role="surgeon", badge_name="x" * 101
        ),
    )
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "Please enter your first name." in page
    assert "Please choose a country from the list." in page
    assert "Please choose one of the roles in the list." in page
    assert "Please use at most 100 characters." in page
    assert "Nothing was saved" in page
    assert snapshot(app, attendee) == before
    assert count(app, AttendeeChange) == 0


def test_missing_csrf_token_is_refused(app, client, make_event, make_attendee):
    attendee = make_attendee(make_event())
    before = snapshot(app, attendee)
    response = client.post(page_of(attendee), data=details_form())
    assert response.status_code == 400
    assert snapshot(app, attendee) == before
    response = client.post(f"{page_of(attendee)}/cancel", data={})
    assert response.status_code == 400
    assert snapshot(app, attendee)["status"] == "confirmed"


def test_moving_into_a_full_role_is_refused_at_the_field(app, client, make_event, make_attendee):
    event = make_event(capacity_by_role={"family": 1})
    make_attendee(event, role="family")
    attendee = make_attendee(event, role="clinician")
    before = snapshot(app, attendee)
    page = client.get(page_of(attendee)).get_data(as_text=True)
    assert "Patient-family (full: joins the waiting list)" in page
    token = csrf_token(client, page_of(attendee))
    response = client.post(page_of(attendee), data=details_form(csrf_token=token, role="family"))
    assert response.status_code == 409
    assert "There is no free place for the role Patient-family." in response.get_data(as_text=True)
    assert snapshot(app, attendee) == before
    assert count(app, AttendeeChange) == 0


def test_cancel_asks_first_then_cancels_promotes_and_mails(app, client, make_event, make_attendee):
    event = make_event(capacity=1)
    attendee = make_attendee(event)
    waiting = make_attendee(event, status="waitlisted")
    response = client.get(f"{page_of(attendee)}/cancel")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Are you sure?" in page
    assert 'method="post"' in page and "Yes, cancel my registration" in page
    assert snapshot(app, attendee)["status"] == "confirmed"  # asking changes nothing

    token = csrf_token(client, f"{page_of(attendee)}/cancel")
    response = client.post(f"{page_of(attendee)}/cancel", data={"csrf_token": token})
    assert response.status_code == 303
    assert response.location == page_of(attendee)
    assert snapshot(app, attendee)["status"] == "cancelled"
    assert snapshot(app, waiting)["status"] == "confirmed"
    assert count(app, OutboxMessage, kind="cancelled", attendee_id=attendee.id) == 1
    assert count(app, OutboxMessage, kind="promoted", attendee_id=waiting.id) == 1

    page = client.get(page_of(attendee)).get_data(as_text=True)
    assert "This registration is cancelled" in page
    assert "Your registration is cancelled." in page
    assert 'name="first_name"' not in page  # no form for a cancelled registration


def test_a_cancelled_registration_stays_cancelled(app, client, make_event, make_attendee):
    event = make_event()
    attendee = make_attendee(event, status="cancelled")
    page = client.get(f"{page_of(attendee)}/cancel").get_data(as_text=True)
    assert "already cancelled" in page and 'method="post"' not in page
    token = csrf_token(client, "/register")
    response = client.post(f"{page_of(attendee)}/cancel", data={"csrf_token": token})
    assert response.status_code == 303
    response = client.post(page_of(attendee), data=details_form(csrf_token=token))
    assert response.status_code == 409
    after = snapshot(app, attendee)
    assert after["status"] == "cancelled" and after["first_name"] != "Ada"
    assert count(app, OutboxMessage) == 0 and count(app, AttendeeChange) == 0


def test_waiting_person_sees_position_and_can_leave_the_list(
    app, client, make_event, make_attendee
):
    event = make_event(capacity=1)
    make_attendee(event)
    first = make_attendee(event, status="waitlisted")
    second = make_attendee(event, status="waitlisted")
    page = client.get(page_of(second)).get_data(as_text=True)
    assert "You are number <strong>2</strong> on the waiting list" in page
    assert "Leave the waiting list" in page
    token = csrf_token(client, f"{page_of(first)}/cancel")
    client.post(f"{page_of(first)}/cancel", data={"csrf_token": token})
    assert snapshot(app, first)["status"] == "cancelled"
    assert client.get(f"/api/registrations/{second.token}").get_json()["waitlist_position"] == 1
    assert count(app, OutboxMessage, kind="promoted") == 0


# --- lost link -----------------------------------------------------------------------------


def test_lost_link_sends_the_link_to_a_registered_address(app, client, make_event, make_attendee):
    app.config["SITE_URL"] = "https://reg.example.org"
    attendee = make_attendee(make_event(), email="Ada@Example.org")
    assert "Lost your link?" in client.get("/register").get_data(as_text=True)
    token = csrf_token(client, "/registration/lost-link")
    response = client.post(
        "/registration/lost-link", data={"csrf_token": token, "email": "ada@example.org"}
    )
    assert response.status_code == 303
    assert response.location == "/registration/lost-link/sent"
    with app.app_context():
        [message] = db.session.execute(select(OutboxMessage)).scalars().all()
        assert message.kind == "link"
        assert message.to_address == "Ada@Example.org"  # the address registered, not the typed one
        assert f"https://reg.example.org/registration/{attendee.token}" in message.text_body


def test_lost_link_answers_the_same_for_an_unknown_address(app, client, make_event, make_attendee):
    make_attendee(make_event(), email="ada@example.org")
    token = csrf_token(client, "/registration/lost-link")
    known = client.post(
        "/registration/lost-link", data={"csrf_token": token, "email": "ada@example.org"}
    )
    unknown = client.post(
        "/registration/lost-link", data={"csrf_token": token, "email": "nobody@example.org"}
    )
    assert (known.status_code, known.location) == (unknown.status_code, unknown.location)
    assert count(app, OutboxMessage) == 1  # only the registered address gets mail
    page = client.get(unknown.location).get_data(as_text=True)
    assert "If this address is registered" in page


def test_lost_link_bad_input_is_400_and_sends_nothing(app, client, make_event, make_attendee):
    make_attendee(make_event(), email="ada@example.org")
    token = csrf_token(client, "/registration/lost-link")
    response = client.post(
        "/registration/lost-link", data={"csrf_token": token, "email": "not an address"}
    )
    assert response.status_code == 400
    assert "This e-mail address does not look right" in response.get_data(as_text=True)
    response = client.post("/registration/lost-link", data={"csrf_token": token, "email": ""})
    assert response.status_code == 400
    assert "Please enter your e-mail address." in response.get_data(as_text=True)
    response = client.post("/registration/lost-link", data={"email": "ada@example.org"})
    assert response.status_code == 400  # no CSRF token
    assert count(app, OutboxMessage) == 0


# --- end to end: from the e-mail's link ----------------------------------------------------

LINK_RE = re.compile(r"http://127\.0\.0\.1:5000(/registration/[A-Za-z0-9_-]+)")


def test_fix_details_and_cancel_from_the_link_in_the_email(app, client, make_event, tmp_path):
    make_event()
    form = registration_form(csrf_token=csrf_token(client), email="zoe@example.org")
    assert client.post("/register", data=form).status_code == 303
    backend = FileBackend(tmp_path / "outbox")
    with app.app_context():
        assert deliver_due(db.session, backend, sender="reg@example.org").sent == 1
    [eml] = list((tmp_path / "outbox").glob("*-confirmation.eml"))
    message = email.message_from_bytes(eml.read_bytes(), policy=policy.default)
    path = LINK_RE.search(message.get_body(("plain",)).get_content()).group(1)

    other = client
    token = csrf_token(other, path)
    response = other.post(path, data=details_form(csrf_token=token, last_name="Núñez"))
    assert response.status_code == 303
    token = csrf_token(other, f"{path}/cancel")
    assert other.post(f"{path}/cancel", data={"csrf_token": token}).status_code == 303
    with app.app_context():
        attendee = db.session.execute(select(Attendee)).scalar_one()
        assert (attendee.last_name, attendee.status) == ("Núñez", "cancelled")
        deliver_due(db.session, backend, sender="reg@example.org")
    assert len(list(Path(tmp_path / "outbox").glob("*-cancelled.eml"))) == 1


def test_registration_error_summary_follows_the_page_order(app, client, make_event):
    make_event()
    form = registration_form(csrf_token=csrf_token(client), first_name="", email="", consent=None)
    response = client.post("/register", data=form)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    summary = page[page.index('id="error-summary"') :]
    positions = [summary.index(f'href="#{name}"') for name in ("first_name", "email", "consent")]
    assert positions == sorted(positions)
    assert count(app, Attendee) == 0


def test_the_page_of_a_confirmed_registration_carries_its_qr_code(
    client, make_event, make_attendee
):
    event = make_event(capacity=1)
    confirmed = make_attendee(event)
    waiting = make_attendee(event, status="waitlisted")
    html = client.get(f"/registration/{confirmed.token}").get_data(as_text=True)
    assert f'aria-label="QR code of {confirmed.code}"' in html
    assert str(qr_svg(confirmed.code)) in html  # the same code as the e-mail and the badge
    html = client.get(f"/registration/{waiting.token}").get_data(as_text=True)
    assert "QR code of" not in html  # no check-in while waiting


def test_lost_link_is_rate_limited_per_address_and_per_email(
    app, client, make_event, make_attendee
):
    """Nobody can fill a stranger's inbox with links, from one place or from many."""
    app.config["LOST_LINK_RATE_LIMIT"] = "2 per hour"
    make_attendee(make_event(), email="ada@example.org")
    token = csrf_token(client, "/registration/lost-link")

    def ask(email: str, addr: str):
        return client.post(
            "/registration/lost-link",
            data={"csrf_token": token, "email": email},
            environ_base={"REMOTE_ADDR": addr},
        )

    assert [ask("ada@example.org", f"10.9.0.{n}").status_code for n in range(2)] == [303, 303]
    refused = ask("ADA@example.org", "10.9.0.9")  # the same address from a third place
    assert refused.status_code == 429
    page = refused.get_data(as_text=True)
    assert "Links were asked for too often" in page
    assert "at most 2 per 1 hour" in page
    assert count(app, OutboxMessage) == 2
    # Per client address: an unknown address is limited the same way, so the answer tells
    # nothing about who is registered.
    assert [ask(f"x{n}@example.org", "10.9.1.1").status_code for n in range(3)] == [303, 303, 429]
    assert count(app, OutboxMessage) == 2
