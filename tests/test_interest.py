# ruff: noqa: F811 - pytest fixtures imported from organizer_fixtures are used as arguments
"""The interest list: sign up, confirm the address (double opt-in), be told once per edition
that registration opened (through a real SMTP server), unsubscribe in one click (RFC 8058)."""

from __future__ import annotations

import re
from datetime import date

from organizer_fixtures import admin_client, csrf_for, make_organizer  # noqa: F401
from sqlalchemy import func, select

from conftest import csrf_token
from necreg.extensions import db
from necreg.interest import notify_opened, sign_up
from necreg.mail.delivery import SMTP_POLICY, SMTPBackend, build_message
from necreg.mail.worker import deliver_due
from necreg.models import Event, InterestNotice, InterestSignup, OutboxMessage

PAST = {"slug": "nec-2025", "starts_on": date(2025, 9, 7), "ends_on": date(2025, 9, 10)}


def outbox(app, kind: str) -> list[OutboxMessage]:
    with app.app_context():
        query = select(OutboxMessage).where(OutboxMessage.kind == kind).order_by(OutboxMessage.id)
        return list(db.session.execute(query).scalars())


def signups(app) -> list[InterestSignup]:
    with app.app_context():
        return list(
            db.session.execute(select(InterestSignup).order_by(InterestSignup.id)).scalars()
        )


def sign_up_on_page(client, email: str, name: str = "Ana Silva", consent: str = "y"):
    form = {"csrf_token": csrf_token(client, "/interest"), "name": name, "email": email}
    if consent:
        form["consent"] = consent
    return client.post("/interest", data=form)


def confirm_link(message: OutboxMessage) -> str:
    return re.search(r"http://[^/]+(/interest/confirm/\S+)", message.text_body).group(1)


def test_signing_up_mails_a_link_and_only_the_link_confirms(app, client, make_event):
    make_event(**PAST)
    answer = sign_up_on_page(client, "Ana@Example.org")
    assert answer.status_code == 303 and answer.location.endswith("/interest/sent")
    (message,) = outbox(app, "interest_confirm")
    assert message.to_address == "Ana@example.org" and "Hello Ana Silva" in message.text_body
    (signup,) = signups(app)
    assert signup.confirmed_at is None and signup.consent_version == "interest-1"
    link = confirm_link(message)
    page = client.get(link)  # a mail scanner opening the link confirms nothing
    assert page.status_code == 200 and "Confirm my address" in page.get_data(as_text=True)
    assert signups(app)[0].confirmed_at is None
    done = client.post(link, data={"csrf_token": csrf_token(client, link)})
    assert done.status_code == 200 and "You are on the list" in done.get_data(as_text=True)
    assert signups(app)[0].confirmed_at is not None
    assert client.get("/interest/confirm/not-a-token").status_code == 404


def test_the_answer_is_the_same_for_known_addresses_and_says_nothing(app, client, make_event):
    make_event(**PAST)
    first = sign_up_on_page(client, "ana@example.org")
    with app.app_context():
        db.session.execute(select(InterestSignup)).scalar_one().confirmed_at = func.now()
        db.session.commit()
    again = sign_up_on_page(client, "ANA@example.org", name="Someone Else")
    assert (again.status_code, again.location) == (first.status_code, first.location)
    assert len(outbox(app, "interest_confirm")) == 1  # a confirmed address is not mailed again
    assert [s.name for s in signups(app)] == ["Ana Silva"]  # nor changed by someone else


def test_bad_input_is_refused_and_nothing_is_stored(app, client, make_event):
    make_event(**PAST)
    for email, name, consent, message in [
        ("not-an-address", "Ana", "y", "@-sign"),
        ("ana@example.org", "", "y", "Please enter your name."),
        ("ana@example.org", "Ana", "", "Please agree"),
        ("ana@example.org", "Ana\x07", "y", "control"),
    ]:
        answer = sign_up_on_page(client, email, name=name, consent=consent)
        assert answer.status_code == 400, (email, name, consent)
        assert message in answer.get_data(as_text=True) or message == "control"
    assert signups(app) == [] and outbox(app, "interest_confirm") == []


def test_sign_ups_are_limited_per_address(app, client, make_event):
    make_event(**PAST)
    app.config["INTEREST_RATE_LIMIT"] = "2 per hour"
    assert sign_up_on_page(client, "a@example.org").status_code == 303
    assert sign_up_on_page(client, "b@example.org").status_code == 303
    refused = sign_up_on_page(client, "c@example.org")
    assert refused.status_code == 429 and "too often" in refused.get_data(as_text=True)
    assert [s.email for s in signups(app)] == ["a@example.org", "b@example.org"]


def _confirmed(app, event_id: int, *people: str) -> None:
    with app.app_context():
        event = db.session.get(Event, event_id)
        for email in people:
            sign_up(db.session, event, email=email, name=email.split("@")[0].title())
        db.session.flush()
        for signup in db.session.execute(select(InterestSignup)).scalars():
            signup.confirmed_at = signup.created_at
        db.session.commit()


def test_the_next_edition_is_announced_once_to_each_confirmed_address(
    app, runner, make_event, smtp_server, tmp_path
):
    past = make_event(**PAST)
    _confirmed(app, past.id, "ana@example.org", "ben@example.org", "cy@example.org")
    with app.app_context():  # one never confirmed, one unsubscribed: neither is told
        sign_up(db.session, db.session.get(Event, past.id), email="dan@example.org", name="Dan")
        cy = db.session.execute(
            select(InterestSignup).where(InterestSignup.email == "cy@example.org")
        ).scalar_one()
        cy.unsubscribed_at = cy.created_at
        db.session.commit()
    refused = runner.invoke(args=["notify-interest"])  # the 2025 meeting is over
    assert refused.exit_code == 1 and "is not open" in refused.output
    assert outbox(app, "interest_open") == []

    edition = tmp_path / "nec-2099.toml"  # the next edition, open: it takes the home page
    edition.write_text(
        'slug = "nec-2099"\nname = "NEC Symposium"\nstarts_on = 2099-09-07\n'
        'ends_on = 2099-09-10\ntimezone = "America/New_York"\ncurrent = true\n'
    )
    assert runner.invoke(args=["load-event", str(edition)]).exit_code == 0
    first = runner.invoke(args=["notify-interest"])  # the current event
    assert first.exit_code == 0 and "Queued 2 message(s)" in first.output
    again = runner.invoke(args=["notify-interest", "--event", "nec-2099"])
    assert again.exit_code == 0 and "Queued 0 message(s)" in again.output
    with app.app_context():
        assert (
            db.session.execute(select(func.count()).select_from(InterestNotice)).scalar_one() == 2
        )
        deliver_due(
            db.session, SMTPBackend("127.0.0.1", smtp_server.port, timeout=5), sender="r@x.org"
        )
    received = [m for m in smtp_server.inbox.received if "is open" in m["Subject"]]
    assert sorted(m["To"] for m in received) == ["ana@example.org", "ben@example.org"]
    for mail in received:
        assert mail["Subject"] == "Registration for NEC Symposium is open"
        assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        url = re.fullmatch(r"<(http://\S+/unsubscribe/\S+)>", mail["List-Unsubscribe"]).group(1)
        assert url in mail.get_body(("plain",)).get_content()


def test_one_click_unsubscribe_needs_no_form_and_a_look_unsubscribes_nothing(
    app, client, make_event
):
    event = make_event()
    _confirmed(app, event.id, "ana@example.org")
    with app.app_context():
        assert notify_opened(db.session, db.session.get(Event, event.id)) == 1
        db.session.commit()
    (message,) = outbox(app, "interest_open")
    # As it goes out: the link on one line, as mail programs read it (not in encoded words).
    raw = build_message(message, "r@example.org").as_bytes(policy=SMTP_POLICY)
    assert re.search(rb"\r\nList-Unsubscribe: <http://\S+/unsubscribe/\S+>\r\n", raw)
    assert b"\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n" in raw
    path = re.search(r"<http://[^/]+(/unsubscribe/\S+)>", message.headers["List-Unsubscribe"])[1]
    assert client.get(path).status_code == 200
    assert signups(app)[0].unsubscribed_at is None
    # What a mail program sends (RFC 8058): no session, no CSRF token.
    done = client.post(path, data={"List-Unsubscribe": "One-Click"})
    assert done.status_code == 200 and "off the interest list" in done.get_data(as_text=True)
    assert signups(app)[0].unsubscribed_at is not None
    assert client.post(path[:-3] + "xyz").status_code == 404
    # Signing up again needs a new confirmation, and the old link is dead.
    sign_up_on_page(client, "ana@example.org")
    assert signups(app)[0].unsubscribed_at is None and signups(app)[0].confirmed_at is None
    assert len(outbox(app, "interest_confirm")) == 2


def test_the_organizers_button_tells_the_list_once(app, make_event, admin_client):
    client = admin_client
    event = make_event()  # open
    _confirmed(app, event.id, "ana@example.org", "ben@example.org")
    page = client.get("/organizer/messages").get_data(as_text=True)
    assert "2 confirmed addresses" in page and "2 not yet told" in page
    for _ in range(2):  # twice: the second tells nobody
        token = csrf_for(client, "/organizer/messages")
        answer = client.post("/organizer/messages/interest", data={"csrf_token": token})
        assert answer.status_code == 303
    assert sorted(m.to_address for m in outbox(app, "interest_open")) == [
        "ana@example.org",
        "ben@example.org",
    ]
    page = client.get("/organizer/messages").get_data(as_text=True)
    assert "0 not yet told" in page and "Tell them registration is open" not in page
