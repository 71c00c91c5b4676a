"""The outbox page in a real browser against gunicorn (issue 17): an admin finds a failed
message by part of its address, retries it, and axe (WCAG 2.2 A/AA) finds nothing on the
page, its search, its refusal of a bad search and its answer to a retry, on a phone and a
desktop."""

from __future__ import annotations

from datetime import timedelta

from playwright.sync_api import expect
from sqlalchemy import select
from test_browser_organizer import ADMIN, PASSWORD, assert_accessible, sign_in, type_into

from browser import needs_chromium
from necreg.auth import create_organizer
from necreg.extensions import db
from necreg.models import MAIL_FAILED, MAIL_PENDING, MAIL_SENT, OutboxMessage, utcnow

pytestmark = needs_chromium


def seed(site) -> None:
    now = utcnow()

    def message(to: str, status: str, **more) -> OutboxMessage:
        values = {
            "kind": "confirmation", "to_address": to, "subject": f"Your registration ({to})",
            "text_body": "Hello", "html_body": "<p>Hello</p>", "status": status,
            "created_at": now - timedelta(hours=2), "next_attempt_at": now,
        }  # fmt: skip
        return OutboxMessage(**(values | more))

    with site.app.app_context():
        create_organizer(db.session, ADMIN, PASSWORD, role="admin")
        db.session.add_all(
            [
                message("waiting@example.org", MAIL_PENDING),
                message(
                    "Refused.Person@Example.org",
                    MAIL_FAILED,
                    attempts=8,
                    last_error="SMTPRecipientsRefused: 550 5.1.1 mailbox unavailable",
                ),
                message(
                    "erased-7@invalid",
                    MAIL_FAILED,
                    attempts=0,
                    text_body="",
                    html_body="",
                    last_error="Not sent: the recipient's data was erased.",
                ),
                message("delivered@example.org", MAIL_SENT, attempts=1, sent_at=now),
            ]  # fmt: skip
        )
        db.session.commit()
        db.engine.dispose()


def test_an_admin_finds_and_retries_a_failed_message(site, page):
    seed(site)
    sign_in(page, site)
    page.get_by_role("link", name="Outbox").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Outbox")
    expect(page.locator("#count-failed")).to_have_text("2")
    expect(page.locator("#oldest-pending")).to_contain_text("2 hours")
    assert_accessible(page, "outbox page")

    type_into(page, "Recipient", "refused.PERSON")
    page.get_by_role("button", name="Show", exact=True).click()
    rows = page.locator("tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("mailbox unavailable")
    assert_accessible(page, "outbox page, searched")

    rows.first.get_by_role("button", name="Retry").click()
    expect(page.get_by_role("status")).to_contain_text("is queued again")
    expect(page.locator("#count-failed")).to_have_text("1")
    expect(page.get_by_label("Recipient", exact=True)).to_have_value("refused.PERSON")
    assert_accessible(page, "outbox page after a retry")
    with site.app.app_context():
        statuses = db.session.execute(
            select(OutboxMessage.status).where(OutboxMessage.to_address.like("Refused%"))
        ).scalars()
        assert list(statuses) == [MAIL_PENDING]
        db.engine.dispose()

    page.goto(site.url + "/organizer/outbox?status=bounced")
    expect(page.get_by_role("alert")).to_contain_text("Choose a status from the list")
    assert_accessible(page, "outbox page refusing a status")
