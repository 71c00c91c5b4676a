"""The attendee's self-service pages in a real browser: the registration with its QR code,
correcting a detail, cancelling through the confirmation step, "Lost your link?", and
WCAG 2.2 A/AA (axe-core) on each of them."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from browser import axe_violations, needs_chromium, screenshot
from necreg.extensions import db
from necreg.models import Attendee, AttendeeChange, Event, OutboxMessage

pytestmark = needs_chromium


def assert_accessible(page, where: str = "") -> None:
    """axe finds nothing, once the page has its styles (a form post answers with a new page
    whose elements ``expect`` can see before its stylesheet has loaded)."""
    page.wait_for_load_state("load")
    assert axe_violations(page) == [], where or page.url


CODE = "NEC-GRC234"


def add_attendee(site, code: str = CODE, status: str = "confirmed") -> str:
    """A registration; returns the token of its self-service link."""
    with site.app.app_context():
        event = db.session.execute(select(Event)).scalar_one()
        attendee = Attendee(
            event_id=event.id, code=code, status=status, role="clinician", first_name="Grace",
            last_name="Hopper", email=f"{code.lower()}@example.org",
            institution="UNC Children's", country="US", badge_name="Dr Grace Hopper",
        )  # fmt: skip
        db.session.add(attendee)
        db.session.commit()
        token = attendee.token
        db.engine.dispose()
    return token


def stored(site) -> Attendee:
    with site.app.app_context():
        attendee = db.session.execute(select(Attendee).filter_by(code=CODE)).scalar_one()
        db.session.expunge(attendee)
        db.engine.dispose()
    return attendee


def test_see_correct_and_cancel_a_registration(site, page, viewport):
    token = add_attendee(site)
    page.goto(f"{site.url}/registration/{token}")
    expect(page.get_by_role("heading", level=1)).to_have_text("You are registered")
    expect(page.locator(".code")).to_have_text(CODE)
    qr = page.get_by_role("img", name=f"QR code of {CODE}")
    expect(qr).to_be_visible()
    box = qr.bounding_box()
    assert box["width"] >= 150 and box["width"] == box["height"]  # large and square to scan
    details = page.locator(".details")
    expect(details).to_contain_text("Grace Hopper")
    expect(details).to_contain_text("UNC Children's")
    assert page.get_by_label("E-mail").count() == 0  # the e-mail cannot be changed here
    screenshot(page, f"selfservice-{viewport}")

    # Correct the institution and the badge name through the form.
    institution = page.get_by_label("Institution or organisation")
    assert institution.input_value() == "UNC Children's"
    institution.fill("")
    institution.press_sequentially("Cincinnati Children's")
    page.get_by_label("Name on your badge").fill("Grace")
    page.get_by_role("button", name="Save my details").click()
    expect(page.get_by_role("status")).to_have_text("Your details are saved.")
    expect(details).to_contain_text("Cincinnati Children's")
    badge_name = details.locator("dt:text-is('Name on badge') + dd")
    expect(badge_name).to_have_text("Grace")
    attendee = stored(site)
    assert (attendee.institution, attendee.badge_name) == ("Cincinnati Children's", "Grace")

    # An invalid correction is refused with a summary that leads to the field.
    first = page.get_by_label("First name", exact=True)
    first.fill("")
    page.get_by_role("button", name="Save my details").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("Nothing was saved")
    assert first.get_attribute("aria-invalid") == "true"
    alert.get_by_role("link").click()
    assert page.evaluate("() => document.activeElement.id") == "first_name"
    assert stored(site).first_name == "Grace"

    # Cancel: a confirmation step first; going back changes nothing.
    page.get_by_role("link", name="Cancel my registration").click()
    page.wait_for_url(re.compile(r"/cancel$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Are you sure?")
    assert stored(site).status == "confirmed"
    page.get_by_role("link", name="Back to my registration").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("You are registered")
    page.get_by_role("link", name="Cancel my registration").click()
    page.get_by_role("button", name="Yes, cancel my registration").click()
    page.wait_for_url(re.compile(rf"/registration/{token}$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("This registration is cancelled")
    expect(page.get_by_role("status")).to_contain_text("Your registration is cancelled.")
    expect(page.get_by_role("img", name=f"QR code of {CODE}")).to_have_count(0)
    assert page.get_by_role("button", name="Save my details").count() == 0
    assert stored(site).status == "cancelled"
    with site.app.app_context():
        actions = db.session.execute(select(AttendeeChange.action)).scalars().all()
        db.engine.dispose()
    assert actions == ["update", "cancel"]


@pytest.mark.parametrize("viewport", ["desktop"])
def test_selfservice_pages_pass_axe(site, page, viewport):
    token = add_attendee(site)
    page.goto(f"{site.url}/registration/{token}")
    assert_accessible(page)
    page.get_by_label("Last name", exact=True).fill("")
    page.get_by_role("button", name="Save my details").click()
    expect(page.get_by_role("alert")).to_be_visible()
    assert_accessible(page)

    page.goto(f"{site.url}/registration/{token}/cancel")
    expect(page.get_by_role("heading", level=1)).to_have_text("Are you sure?")
    assert_accessible(page)
    screenshot(page, "selfservice-cancel-desktop")
    page.get_by_role("button", name="Yes, cancel my registration").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("This registration is cancelled")
    assert_accessible(page)

    waiting = add_attendee(site, "NEC-WTG234", status="waitlisted")
    page.goto(f"{site.url}/registration/{waiting}")
    expect(page.get_by_role("heading", level=1)).to_have_text("You are on the waiting list")
    assert_accessible(page)
    page.get_by_role("link", name="Leave the waiting list").click()
    expect(page.get_by_role("button", name="Yes, leave the waiting list")).to_be_visible()
    assert_accessible(page)


def test_lost_link(site, page, viewport):
    add_attendee(site)
    page.goto(site.url + "/registration/lost-link")
    expect(page.get_by_role("heading", level=1)).to_have_text("Lost your link?")
    assert_accessible(page)
    email = page.get_by_label("E-mail", exact=True)
    email.press_sequentially("grace.example.org")  # the mistake: no @
    page.get_by_role("button", name="Send me my link").click()
    expect(page.get_by_role("alert")).to_contain_text("E-mail")
    assert email.get_attribute("aria-invalid") == "true"
    assert_accessible(page)
    screenshot(page, f"lost-link-error-{viewport}")
    email.fill("")
    email.press_sequentially(CODE.upper() + "@Example.org")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/registration/lost-link/sent$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Check your e-mail")
    assert_accessible(page)
    with site.app.app_context():
        sent = db.session.execute(select(OutboxMessage.kind, OutboxMessage.to_address)).all()
        db.engine.dispose()
    assert sent == [("link", f"{CODE.lower()}@example.org")]
