"""The outbox page (/organizer/outbox): counts, the list and its search, and retrying failed
e-mails, which the real mail worker then delivers."""

# ruff: noqa: F811 - pytest fixtures imported from organizer_fixtures are used as arguments

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from organizer_fixtures import admin_client, make_organizer, page_csrf, staff_client  # noqa: F401
from sqlalchemy import select

from conftest import count_queries, fresh, saved
from necreg.extensions import db
from necreg.mail.delivery import SMTPBackend
from necreg.mail.outbox import outbox_figures
from necreg.mail.worker import deliver_due
from necreg.models import (
    MAIL_FAILED,
    MAIL_PENDING,
    MAIL_SENT,
    Attendee,
    AuditEntry,
    Event,
    OutboxMessage,
    utcnow,
)
from necreg.organizer import outbox as outbox_view
from necreg.organizer.outbox import age_text
from necreg.privacy import erase
from necreg.registration import Registrant, register
from servers import SMTPServer

SENDER = "NEC Symposium <registration@nec.example>"
PAGE = "/organizer/outbox"


def mail(app, to: str = "someone@example.org", **over: Any) -> OutboxMessage:
    """A message in the outbox (pending, queued a minute ago, unless ``over`` says else)."""
    now = utcnow()
    values: dict[str, Any] = {
        "kind": "link",
        "to_address": to,
        "subject": f"Your registration ({to})",
        "text_body": "BODY-TEXT-NEVER-SHOWN",
        "html_body": "<p>BODY-HTML-NEVER-SHOWN</p>",
        "created_at": now - timedelta(minutes=1),
        "next_attempt_at": now - timedelta(minutes=1),
    }
    values.update(over)
    return saved(app, OutboxMessage(**values))


def failed(app, to: str = "failed@example.org", **over: Any) -> OutboxMessage:
    over = {"status": MAIL_FAILED, "attempts": 8, "last_error": "SMTPRecipientsRefused: 550"} | over
    return mail(app, to, **over)


def sent(app, to: str = "sent@example.org", **over: Any) -> OutboxMessage:
    return mail(app, to, **({"status": MAIL_SENT, "attempts": 1, "sent_at": utcnow()} | over))


def columns(message: OutboxMessage) -> dict[str, Any]:
    return {c.key: getattr(message, c.key) for c in OutboxMessage.__table__.columns}


def rows_shown(html: str) -> list[int]:
    """The ids of the messages listed, in their order."""
    return [int(n) for n in re.findall(r'<tr id="message-(\d+)"', html)]


def audit_actions(app) -> list[tuple[str, str, dict]]:
    with app.app_context():
        entries = db.session.execute(select(AuditEntry).order_by(AuditEntry.id)).scalars()
        return [(e.action, e.target, e.details) for e in entries]


def deliver(app, server: SMTPServer, **options):
    """One round of the real mail worker over SMTP, in an app context of its own."""
    with app.app_context():
        backend = SMTPBackend("127.0.0.1", server.port, timeout=5)
        return deliver_due(db.session, backend, sender=SENDER, **options)


# --- the counts and the list -----------------------------------------------------------------


def test_counts_and_list_with_messages_in_every_state(app, admin_client):
    now = utcnow()
    oldest = mail(app, "waiting@example.org", created_at=now - timedelta(hours=3, minutes=5))
    retrying = mail(
        app,
        "retrying@example.org",
        attempts=2,
        last_error="ConnectionRefusedError: [Errno 111] Connection refused",
        next_attempt_at=now + timedelta(minutes=2),
    )
    gave_up = failed(app, "refused@example.org", last_error="SMTPRecipientsRefused: 550 no such")
    delivered = [sent(app, f"sent{n}@example.org") for n in range(3)]

    response = admin_client.get(PAGE)
    assert response.status_code == 200
    html = response.text
    assert '<span class="tile-figure" id="count-pending">2</span>' in html
    assert '<span class="tile-figure" id="count-failed">1</span>' in html
    assert '<span class="tile-figure" id="count-sent">3</span>' in html
    assert "queued <strong>3 hours</strong> ago" in html

    # Newest first, every state, the bodies never.
    assert rows_shown(html) == [m.id for m in (*reversed(delivered), gave_up, retrying, oldest)]
    assert "NEVER-SHOWN" not in html
    row = html[html.index(f'id="message-{gave_up.id}"') :].split("</tr>")[0]
    assert "refused@example.org" in row and "Your registration (refused@example.org)" in row
    assert "Failed" in row and '<td class="num">8</td>' in row
    assert "SMTPRecipientsRefused: 550 no such" in row and "Retry" in row
    row = html[html.index(f'id="message-{retrying.id}"') :].split("</tr>")[0]
    assert "Pending (retrying)" in row and "Connection refused" in row and "Retry<" not in row
    row = html[html.index(f'id="message-{delivered[0].id}"') :].split("</tr>")[0]
    assert "Delivered" in row and "sent " in row and "Retry<" not in row


def test_oldest_pending_and_its_age(app):
    now = utcnow()
    with app.app_context():
        assert outbox_figures(db.session).oldest_pending_at is None
    sent(app, created_at=now - timedelta(days=9))  # older, but delivered
    mail(app, created_at=now - timedelta(minutes=30))
    first = mail(app, created_at=now - timedelta(days=2))
    with app.app_context():
        figures = outbox_figures(db.session)
    assert (figures.pending, figures.failed, figures.sent) == (2, 0, 1)
    assert figures.oldest_pending_at == first.created_at
    assert age_text(figures.age_of_oldest(now)) == "2 days"


def test_times_are_on_the_clock_of_the_event(app, admin_client, make_event):
    make_event(timezone="America/Chicago")
    queued = datetime(2099, 1, 15, 18, 5, tzinfo=UTC)
    sent(app, created_at=queued, sent_at=queued + timedelta(minutes=1))
    html = admin_client.get(PAGE).text
    assert "2099-01-15 12:05 CST" in html and "sent 2099-01-15 12:06 CST" in html
    assert "Times are America/Chicago." in html


def test_age_text():
    assert age_text(timedelta(seconds=59)) == "less than a minute"
    assert age_text(timedelta(minutes=1)) == "1 minute"
    assert age_text(timedelta(minutes=59, seconds=59)) == "59 minutes"
    assert age_text(timedelta(hours=1, minutes=59)) == "1 hour"
    assert age_text(timedelta(days=3, hours=5)) == "3 days"


def test_an_empty_outbox(admin_client):
    html = admin_client.get(PAGE).text
    assert "Nothing is waiting to be sent." in html and "No messages." in html
    assert "Retry every failed message" not in html


def test_filter_by_status(app, admin_client):
    waiting, gave_up, delivered = mail(app), failed(app), sent(app)
    shown = {
        status: rows_shown(admin_client.get(f"{PAGE}?status={status}").text)
        for status in (MAIL_PENDING, MAIL_FAILED, MAIL_SENT)
    }
    assert shown == {
        MAIL_PENDING: [waiting.id],
        MAIL_FAILED: [gave_up.id],
        MAIL_SENT: [delivered.id],
    }
    assert (
        "No failed messages older than these."
        in admin_client.get(f"{PAGE}?status=failed&before={gave_up.id}").text
    )


def test_search_finds_part_of_the_address_in_any_case_and_nothing_else(app, admin_client):
    alice = mail(app, "Alice.Smith@Example.ORG")
    bob = failed(app, "bob.smithson@example.org")
    carol = sent(app, "carol@other.net")
    mail(app, "dave_100%@other.net")

    def found(recipient: str, **more: str) -> list[int]:
        response = admin_client.get(PAGE, query_string={"recipient": recipient, **more})
        assert response.status_code == 200
        return rows_shown(response.text)

    assert found("alice.smith@example.org") == [alice.id]
    assert found("SMITH") == [bob.id, alice.id]
    assert found("ice.sm") == [alice.id]
    assert found("Other.NET") == [carol.id + 1, carol.id]
    assert found("smith", status=MAIL_FAILED) == [bob.id]
    assert found("nobody") == []
    # LIKE's wildcards are searched for as themselves.
    assert found("%") == [carol.id + 1]
    assert found("e_1") == [carol.id + 1]
    assert found("b_b") == []
    assert (
        "No messages to an address containing “nobody”."
        in admin_client.get(PAGE, query_string={"recipient": "nobody"}).text
    )


def test_older_and_newest_pages(app, admin_client, monkeypatch):
    monkeypatch.setattr(outbox_view, "PER_PAGE", 3)
    ids = [mail(app, f"p{n}@example.org").id for n in range(7)]
    newest = admin_client.get(PAGE).text
    assert rows_shown(newest) == ids[:3:-1]
    older = re.search(r'href="([^"]+)" rel="next">Older', newest).group(1).replace("&amp;", "&")
    second = admin_client.get(older).text
    assert rows_shown(second) == ids[3:0:-1]
    older = re.search(r'href="([^"]+)" rel="next">Older', second).group(1).replace("&amp;", "&")
    last = admin_client.get(older).text
    assert rows_shown(last) == ids[:1]
    assert 'rel="next"' not in last and ">Newest</a>" in last
    # The search and the status stay with the pages.
    page = admin_client.get(PAGE, query_string={"recipient": "example", "status": "pending"}).text
    assert "recipient=example" in re.search(r'href="([^"]+)" rel="next"', page).group(1)


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ({"status": "bounced"}, "Choose a status from the list"),
        ({"recipient": "a" * 255}, "at most 254 characters"),
        ({"recipient": "bob\u202e"}, "invisible formatting"),
        ({"before": "ten"}, "must be a message number"),
        ({"before": str(2**31)}, "must be a message number"),
    ],
)
def test_a_bad_filter_gets_a_clear_message(app, admin_client, query, says):
    mail(app)
    response = admin_client.get(PAGE, query_string=query)
    assert response.status_code == 400
    assert says in response.text
    assert rows_shown(response.text) == []
    assert 'id="count-pending">1<' in response.text  # the counts are still shown


def test_the_page_reads_a_fixed_number_of_queries_without_the_bodies(app, admin_client):
    for n in range(3):
        failed(app, f"f{n}@example.org")
    mail(app)
    admin_client.get(PAGE)

    def statements() -> list[str]:
        with count_queries(app) as seen:
            assert admin_client.get(f"{PAGE}?recipient=example").status_code == 200
        return [s for s in seen if "outbox_messages" in s]

    few = statements()
    for n in range(60):
        (mail if n % 2 else sent)(app, f"m{n}@example.org")
    many = statements()
    # The grouped counts, the oldest pending message, one page of the list.
    assert len(many) == len(few) == 3
    counts, oldest, listing = many
    assert "GROUP BY outbox_messages.status" in counts
    assert "min(outbox_messages.created_at)" in oldest and "GROUP BY" not in oldest
    assert "LIMIT" in listing  # one page, found by id (before=), not by skipping rows
    for statement in many:
        # The bodies are only compared with '' (were they erased?), never read.
        rest = re.sub(r"outbox_messages\.(text|html)_body\s*=\s*\S+", "", statement)
        assert "_body" not in rest and "attachments" not in rest


def test_admins_have_a_link_to_the_outbox_staff_do_not(admin_client, staff_client):
    assert 'href="/organizer/outbox"' in admin_client.get("/organizer/account").text
    assert 'href="/organizer/outbox"' not in staff_client.get("/organizer/account").text
    assert staff_client.get(PAGE).status_code == 403


# --- retrying --------------------------------------------------------------------------------


def register_one(app, event: Event) -> None:
    with app.app_context():
        register(
            db.session,
            db.session.get(Event, event.id),
            Registrant(
                first_name="Ada", last_name="Test", email="Ada.Test@Example.org",
                role="clinician", country="US",
            ),
            code_prefix="NEC",
        )  # fmt: skip
        db.session.commit()


def only_message(app) -> OutboxMessage:
    with app.app_context():
        message = db.session.execute(select(OutboxMessage)).scalar_one()
        db.session.expunge(message)
        return message


def test_a_failed_message_retried_is_delivered_by_the_mail_worker(
    app, admin_client, make_event, smtp_server
):
    register_one(app, make_event())
    down = SMTPServer()  # never started: the mail server is down
    assert deliver(app, down, max_attempts=1).failed == 1
    message = only_message(app)
    assert (message.status, message.attempts) == (MAIL_FAILED, 1)
    # Given up: the worker leaves it alone, even much later and with the server back.
    assert deliver(app, smtp_server, now=utcnow() + timedelta(days=1)).attempted == 0

    page = admin_client.get(f"{PAGE}?status=failed&recipient=ada.test").text
    assert rows_shown(page) == [message.id] and "Connection refused" in page
    token = page_csrf(admin_client, PAGE)
    url = f"/organizer/outbox/{message.id}/retry?status=failed&recipient=ada.test"
    response = admin_client.post(url, data={"csrf_token": token})
    assert response.status_code == 303
    assert response.location == f"{PAGE}?status=failed&recipient=ada.test"
    assert "is queued again: the mail worker sends it now." in admin_client.get(PAGE).text

    retried = fresh(app, message)
    assert (retried.status, retried.attempts, retried.claimed_until) == (MAIL_PENDING, 0, None)
    assert retried.next_attempt_at <= utcnow()
    assert [a for a in audit_actions(app) if a[0].startswith("outbox.")] == [
        ("outbox.retry", f"message {message.id}", {"kind": "confirmation", "attempts_before": 1})
    ]

    done = deliver(app, smtp_server)
    assert done.sent == 1
    [received] = smtp_server.inbox.received
    assert received["To"] == "Ada.Test@Example.org" and received["Subject"] == message.subject
    delivered = fresh(app, message)
    assert (delivered.status, delivered.last_error) == (MAIL_SENT, "")


def test_retrying_a_message_not_failed_changes_nothing_and_says_so(app, admin_client):
    waiting, delivered = mail(app), sent(app)
    token = page_csrf(admin_client, PAGE)
    for message, says in ((waiting, "pending already"), (delivered, "delivered already")):
        before = columns(fresh(app, message))
        response = admin_client.post(
            f"/organizer/outbox/{message.id}/retry", data={"csrf_token": token}
        )
        assert response.status_code == 303
        assert f"Message {message.id} is {says}; nothing changed." in admin_client.get(PAGE).text
        assert columns(fresh(app, message)) == before
    assert audit_actions(app) == []
    response = admin_client.post("/organizer/outbox/999999/retry", data={"csrf_token": token})
    assert response.status_code == 404


def test_a_message_whose_content_was_erased_cannot_be_retried(
    app, admin_client, make_event, make_attendee
):
    event = make_event()
    attendee = make_attendee(event)
    mail(app, attendee.email, attendee_id=attendee.id)
    with app.app_context():
        erase(db.session, db.session.get(Attendee, attendee.id))
        db.session.commit()
    with app.app_context():
        [erased] = db.session.execute(
            select(OutboxMessage).where(OutboxMessage.kind == "link")
        ).scalars()
        statuses = list(db.session.execute(select(OutboxMessage.status)).scalars())
        db.session.expunge(erased)
    assert erased.status == MAIL_FAILED and erased.text_body == ""  # what erasure leaves
    # Its cancellation too: every message of the person.
    assert statuses == [MAIL_FAILED] * len(statuses)

    html = admin_client.get(PAGE).text
    assert "Cannot be sent again: its content was erased." in html
    assert f'action="/organizer/outbox/{erased.id}/retry' not in html
    token = page_csrf(admin_client, PAGE)
    before = columns(fresh(app, erased))
    admin_client.post(f"/organizer/outbox/{erased.id}/retry", data={"csrf_token": token})
    says = admin_client.get(PAGE).text
    assert f"Message {erased.id} cannot be sent again: its content was erased" in says
    admin_client.post("/organizer/outbox/retry-failed", data={"csrf_token": token})
    says = admin_client.get(PAGE).text
    assert (
        f"Nothing was queued again: the {len(statuses)} failed messages cannot be sent again, "
        "their content was erased" in says
    )
    assert columns(fresh(app, erased)) == before
    assert [a for a in audit_actions(app) if a[0].startswith("outbox.")] == []


def test_retry_every_failed_message(app, admin_client):
    gave_up = [failed(app, f"f{n}@example.org") for n in range(3)]
    erased = failed(app, "erased-9@invalid", text_body="", html_body="", attachments=[])
    waiting, delivered = mail(app), sent(app)
    untouched = {m.id: columns(fresh(app, m)) for m in (erased, waiting, delivered)}
    token = page_csrf(admin_client, PAGE)
    assert "Retry every failed message (4)" in admin_client.get(PAGE).text

    response = admin_client.post(
        "/organizer/outbox/retry-failed?status=failed", data={"csrf_token": token}
    )
    assert response.status_code == 303 and response.location == PAGE  # they are pending now
    html = admin_client.get(PAGE).text
    assert "3 failed messages are queued again. 1 more cannot be sent again" in html
    for message in gave_up:
        now = fresh(app, message)
        assert (now.status, now.attempts, now.claimed_until) == (MAIL_PENDING, 0, None)
    for message in (erased, waiting, delivered):
        assert columns(fresh(app, message)) == untouched[message.id]
    assert audit_actions(app)[-1][:3] == (
        "outbox.retry_failed",
        "every failed message",
        {"messages": 3},
    )


def test_retry_needs_an_admin_and_the_csrf_token(app, admin_client, staff_client, client):
    message = failed(app)
    before = columns(fresh(app, message))
    retry, every = f"/organizer/outbox/{message.id}/retry", "/organizer/outbox/retry-failed"
    for url in (retry, every):
        assert admin_client.post(url).status_code == 400  # no CSRF token
        assert admin_client.post(url, data={"csrf_token": "forged"}).status_code == 400
        staff_token = page_csrf(staff_client, "/organizer/account")
        assert staff_client.post(url, data={"csrf_token": staff_token}).status_code == 403
        response = client.post(url)
        assert response.status_code in {302, 400}
    assert columns(fresh(app, message)) == before
    assert audit_actions(app) == []


def test_postgresql_searches_recipients_with_the_trigram_index(app, is_postgres):
    if not is_postgres:
        pytest.skip("PostgreSQL's indexes")
    from sqlalchemy import text

    from necreg.mail.outbox import outbox_listing_select
    from necreg.trigrams import trigram_schema

    with app.app_context():
        if trigram_schema(db.session.connection()) is None:
            pytest.skip("pg_trgm cannot be installed in this database")
        # A tiny table is read whole; without sequential scans (and walks of the id order)
        # the plan shows the index a large outbox would use.
        db.session.execute(text("SET LOCAL enable_seqscan = off"))
        db.session.execute(text("SET LOCAL enable_indexscan = off"))
        compiled = outbox_listing_select(recipient="Ana.Silva").compile(dialect=db.engine.dialect)
        rows = db.session.connection().exec_driver_sql(f"EXPLAIN {compiled}", compiled.params)
        found = "\n".join(row[0] for row in rows)
        assert "Bitmap Index Scan on ix_outbox_messages_to_address_trgm" in found, found
