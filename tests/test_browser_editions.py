"""Between editions in a real browser (issue 15), axe-core on each new page: an organizer
previews a message to the families not checked in; then the meeting is the 2025 one, held:
its page presents it, a visitor signs up to hear about the next one and confirms the address
through the link mailed, and the earlier editions are listed."""

from __future__ import annotations

import re

from playwright.sync_api import expect
from sqlalchemy import select
from test_browser_organizer import assert_accessible, seed, sign_in

from browser import needs_chromium, screenshot
from necreg.events import load_event, read_event_file
from necreg.extensions import db
from necreg.models import InterestSignup, OutboxMessage
from necreg.resources import resource_dir

pytestmark = needs_chromium


def test_organizer_previews_a_message_and_a_visitor_stays_tuned(site, page):
    seed(site)
    sign_in(page, site)
    page.goto(site.url + "/organizer/messages?role=family&checked_in=no")
    expect(page.get_by_role("heading", name="Messages to attendees")).to_be_visible()
    page.get_by_label("Subject", exact=True).fill("Before the symposium, {first_name}")
    page.get_by_label("Message", exact=True).fill("Dear {first_name},\n\nyour code is **{code}**.")
    page.get_by_role("button", name="Preview").click()
    expect(page.get_by_role("heading", name=re.compile("^As .+ gets it$"))).to_be_visible()
    assert_accessible(page, "messages with a preview")
    screenshot(page, "messages-preview")

    with site.app.app_context():  # the 2025 meeting, held, becomes the current event
        load_event(db.session, read_event_file(resource_dir("events") / "nec-symposium.toml"))
        db.session.commit()
        db.engine.dispose()
    page.goto(site.url + "/")
    expect(page.get_by_text("The NEC Symposium was presented in Chicago")).to_be_visible()
    assert_accessible(page, "the meeting as presented")
    screenshot(page, "landing-presented")
    page.get_by_role("link", name="Stay tuned for future meetings").click()
    page.get_by_role("button", name="Keep me posted").click()  # empty: each field says why
    expect(page.get_by_role("alert")).to_contain_text("Please enter your name.")
    assert_accessible(page, "the interest form with errors")
    page.get_by_label("Your name").fill("Ana Silva")
    page.get_by_label("E-mail", exact=True).fill("ana@example.org")
    page.get_by_label(re.compile("I agree to be e-mailed")).check()
    page.get_by_role("button", name="Keep me posted").click()
    expect(page.get_by_role("heading", name="Check your e-mail")).to_be_visible()
    assert_accessible(page, "interest sign-up sent")

    with site.app.app_context():
        body = db.session.execute(
            select(OutboxMessage.text_body).where(OutboxMessage.kind == "interest_confirm")
        ).scalar_one()
        db.engine.dispose()
    link = re.search(r"http://\S+(/interest/confirm/\S+)", body).group(1)
    page.goto(site.url + link)
    assert_accessible(page, "confirm the address")
    page.get_by_role("button", name="Confirm my address").click()
    expect(page.get_by_role("heading", name="You are on the list")).to_be_visible()
    with site.app.app_context():
        signup = db.session.execute(select(InterestSignup)).scalar_one()
        assert signup.confirmed_at is not None
        db.engine.dispose()

    page.goto(site.url + "/editions")
    expect(page.get_by_role("link", name=re.compile("NEC Symposium Chicago"))).to_be_visible()
    assert_accessible(page, "earlier editions")
