"""Messages to chosen attendees: the list's filters choose, a real recipient previews, a test
goes to the sender, the count is checked before sending, delivery through the outbox and a real
SMTP server, placeholders filled and never Markdown, unsubscribes honoured (for these messages
only), and the log with its counts."""

# ruff: noqa: F811 - pytest fixtures imported from organizer_fixtures are used as arguments
from __future__ import annotations

import re

import pytest
from organizer_fixtures import (  # noqa: F401
    ADMIN_EMAIL,
    admin_client,
    csrf_for,
    make_organizer,
    staff_client,
)
from sqlalchemy import func, select

from necreg.extensions import db
from necreg.mail.delivery import SMTPBackend
from necreg.mail.lists import ATTENDEE, unsubscribe_url
from necreg.mail.worker import deliver_due
from necreg.messages import MessageError, check_draft, fill_html
from necreg.models import Attendee, Event, MailOptOut, OrganizerMessage, OutboxMessage, utcnow
from necreg.registration import cancel

BODY = "Dear {first_name} {last_name},\n\nyour code is **{code}**. [Your registration]({link})"
FAMILIES_NOT_IN = "/organizer/messages?role=family&checked_in=no"


@pytest.fixture
def people(app, make_event, make_attendee):
    """Families in and not yet in, a clinician not yet in, a cancelled family and a companion."""
    event = make_event()
    with app.app_context():
        event = db.session.get(Event, event.id)
        made = {
            "ana": make_attendee(event, role="family", first_name="Ana", email="ana@example.org"),
            "ben": make_attendee(event, role="family", first_name="Ben", email="ben@example.org"),
            "cy": make_attendee(
                event, role="family", checked_in_at=utcnow(), email="cy@example.org"
            ),
            "dee": make_attendee(event, role="clinician", email="dee@example.org"),
            "eve": make_attendee(event, role="family", email="eve@example.org"),
        }
        cancel(db.session, db.session.get(Attendee, made["eve"].id))
        lead = db.session.get(Attendee, made["ana"].id)
        make_attendee(event, role="guest", party_id=lead.id, email="", first_name="Kid")
        db.session.commit()
        return {name: (a.id, a.code) for name, a in made.items()}


def post(client, path: str, **form):
    return client.post(path, data={"csrf_token": csrf_for(client, path), **form})


def outbox(app, **where) -> list[OutboxMessage]:
    with app.app_context():
        query = select(OutboxMessage).filter_by(kind="message", **where).order_by(OutboxMessage.id)
        return list(db.session.execute(query).scalars())


def test_a_message_to_families_not_checked_in_reaches_exactly_them(
    app, admin_client, people, smtp_server
):
    page = admin_client.get(FAMILIES_NOT_IN).get_data(as_text=True)
    assert "<strong>2</strong> people get this message" in page
    assert "Role: Patient-family" in page and "Not checked in" in page
    sent = post(
        admin_client, FAMILIES_NOT_IN, subject="See you, {first_name}", body=BODY, action="send",
        expected="2",
    )  # fmt: skip
    assert sent.status_code == 303
    with app.app_context():
        message = db.session.execute(select(OrganizerMessage)).scalar_one()
        message_id = message.id
        assert (message.recipients, message.unsubscribed) == (2, 0)
        assert message.recipients_filter == {"role": "family", "checked_in": "no"}
        assert message.organizer.email == ADMIN_EMAIL  # the audit entry: who sent what to whom
        deliver_due(
            db.session, SMTPBackend("127.0.0.1", smtp_server.port, timeout=5), sender="r@x.org"
        )
    received = {m["To"]: m for m in smtp_server.inbox.received if "See you" in m["Subject"]}
    assert set(received) == {"ana@example.org", "ben@example.org"}
    ana = received["ana@example.org"]
    assert ana["Subject"] == "See you, Ana"
    text = ana.get_body(("plain",)).get_content()
    html = ana.get_body(("html",)).get_content()
    ana_code = people["ana"][1]
    assert "Dear Ana Last" in text and f"your code is **{ana_code}**" in text
    assert f"<strong>{ana_code}</strong>" in html and "/registration/" in html
    assert ana["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "/unsubscribe/" in ana["List-Unsubscribe"]
    log = admin_client.get(f"/organizer/messages/{message_id}").get_data(as_text=True)
    assert "2 delivered" in log and "0 failed" in log


def test_the_count_is_checked_again_when_sending(app, admin_client, people):
    answer = post(
        admin_client, FAMILIES_NOT_IN, subject="Hi", body="Hello", action="send", expected="5"
    )
    assert answer.status_code == 400 and "would now reach 2, not 5" in answer.get_data(as_text=True)
    assert outbox(app) == []
    with app.app_context():
        assert db.session.execute(select(func.count(OrganizerMessage.id))).scalar_one() == 0


def test_preview_shows_a_real_recipient_and_a_test_goes_to_the_sender_only(
    app, admin_client, people
):
    preview = post(
        admin_client, FAMILIES_NOT_IN, subject="Hi {first_name}", body=BODY, action="preview"
    )
    page = preview.get_data(as_text=True)
    assert preview.status_code == 200 and "Subject:</strong> Hi Ana" in page
    assert f"<strong>{people['ana'][1]}</strong>" in page
    assert outbox(app) == []
    test = post(admin_client, FAMILIES_NOT_IN, subject="Hi {first_name}", body=BODY, action="test")
    assert test.status_code == 200 and f"on its way to {ADMIN_EMAIL}" in test.get_data(as_text=True)
    (mail,) = outbox(app)
    assert (mail.to_address, mail.subject, mail.message_id) == (ADMIN_EMAIL, "[Test] Hi Ana", None)
    with app.app_context():
        assert db.session.execute(select(func.count(OrganizerMessage.id))).scalar_one() == 0


@pytest.mark.parametrize(
    ("subject", "body", "error"),
    [
        ("", "Hello", "Please write a subject."),
        ("Hi", "  ", "Please write the message."),
        ("Hi", "Dear {name}", "Unknown placeholder {name}"),
        ("Hi\x07", "Hello", "control characters"),
    ],
)
def test_a_wrong_message_is_refused_and_nothing_is_queued(
    app, admin_client, people, subject, body, error
):
    answer = post(
        admin_client, FAMILIES_NOT_IN, subject=subject, body=body, action="send", expected="2"
    )
    assert answer.status_code == 400 and error in answer.get_data(as_text=True)
    assert outbox(app) == []


def test_a_wrong_filter_says_so_and_sends_nothing(app, admin_client, people):
    answer = post(
        admin_client, "/organizer/messages?role=pilot", subject="Hi", body="x", action="send"
    )
    assert answer.status_code == 400 and "Unknown role" in answer.get_data(as_text=True)
    assert outbox(app) == []


def test_names_are_never_markdown_or_html():
    html = fill_html("Hello {first_name}", {"first_name": "[click](https://evil.example) <b>x</b>"})
    assert "<a " not in html and "<b>" not in html and "&lt;b&gt;" in html
    assert "[click](https://evil.example)" in html
    assert check_draft("Hi", "{link").body == "{link"  # not a placeholder: kept as written
    with pytest.raises(MessageError, match="Unknown placeholder {Link}"):
        check_draft("Hi", "{Link}")


def test_unsubscribed_people_are_skipped_but_still_get_their_own_mail(app, admin_client, people):
    with app.app_context():
        path = unsubscribe_url(ATTENDEE, people["ben"][0]).split("5000", 1)[-1]
    client = app.test_client()
    assert client.post(path, data={"List-Unsubscribe": "One-Click"}).status_code == 200
    with app.app_context():
        assert db.session.get(MailOptOut, "ben@example.org") is not None
    page = admin_client.get(FAMILIES_NOT_IN).get_data(as_text=True)
    assert (
        "<strong>1</strong> person gets this message" in page
        and "<strong>1</strong> more match" in page
    )
    post(admin_client, FAMILIES_NOT_IN, subject="Hi", body="Hello", action="send", expected="1")
    assert [m.to_address for m in outbox(app)] == ["ana@example.org"]
    with app.app_context():  # transactional mail is not affected by the opt-out
        cancel(db.session, db.session.get(Attendee, people["ben"][0]))
        db.session.commit()
        kinds = db.session.execute(
            select(OutboxMessage.kind).where(OutboxMessage.to_address == "ben@example.org")
        ).scalars()
        assert "cancelled" in list(kinds)


def test_only_admins_write_to_attendees(app, staff_client, people):
    assert staff_client.get(FAMILIES_NOT_IN).status_code == 403
    assert staff_client.post(FAMILIES_NOT_IN, data={"action": "send"}).status_code in (400, 403)
    assert outbox(app) == []


def test_the_attendee_list_links_to_writing_to_those_shown(admin_client, people):
    page = admin_client.get("/organizer/attendees?role=family&checked_in=no").get_data(as_text=True)
    assert re.search(r'href="/organizer/messages\?[^"]*role=family', page)


def test_a_workshop_waiting_list_is_written_to_like_any_other_choice(app, admin_client, people):
    from datetime import timedelta

    from necreg.models import ProgramItem, ProgramSignup

    with app.app_context():
        event = db.session.execute(select(Event)).scalar_one()
        start = utcnow() + timedelta(days=30)
        item = ProgramItem(
            event_id=event.id, key="ws-feeding", title="Feeding protocols", kind="workshop",
            starts_at=start, ends_at=start + timedelta(hours=2), capacity=1,
        )  # fmt: skip
        db.session.add(item)
        db.session.flush()
        for name, status in (("ana", "confirmed"), ("ben", "waitlisted"), ("dee", "waitlisted")):
            db.session.add(
                ProgramSignup(item_id=item.id, attendee_id=people[name][0], status=status)
            )
        db.session.commit()
    listing = admin_client.get("/organizer/attendees").get_data(as_text=True)
    assert '<option value="ws-feeding:waitlisted">Waiting list of Feeding protocols' in listing
    page = admin_client.get("/organizer/messages?program=ws-feeding:waitlisted")
    assert "<strong>2</strong> people get" in page.get_data(as_text=True)
    assert "Waiting list of ws-feeding" in page.get_data(as_text=True)
    placed = admin_client.get("/organizer/messages?program=ws-feeding").get_data(as_text=True)
    assert "<strong>1</strong> person gets" in placed
    wrong = admin_client.get("/organizer/messages?program=ws-feeding:maybe")
    assert wrong.status_code == 400 and "program must be" in wrong.get_data(as_text=True)
