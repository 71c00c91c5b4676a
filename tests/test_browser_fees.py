"""Fees in a real browser: the form says which price applies as the person chooses, a code
is taken, and the form with its fees passes axe-core (WCAG 2.2 A/AA)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select
from test_fees import PRICES

from browser import axe_violations, needs_chromium, screenshot
from necreg.extensions import db
from necreg.fees import create_code, price_definitions, sync_prices
from necreg.models import Attendee, Event, utcnow

pytestmark = needs_chromium


def charge(site) -> None:
    with site.app.app_context():
        event = db.session.execute(select(Event)).scalar_one()
        event.currency, event.virtual = "USD", True
        sync_prices(db.session, event, price_definitions(PRICES, "USD"))
        create_code(db.session, event, "FACULTY", percent=100)
        event.updated_at = utcnow()
        db.session.commit()
        db.engine.dispose()


def test_the_fee_follows_the_choices_and_a_code_waives_it(site, page, viewport):
    charge(site)
    page.goto(site.url + "/")
    expect(page.get_by_role("heading", name="Registration fees")).to_be_visible()
    page.goto(site.url + "/register")
    fee = page.locator("#fee-output")
    expect(fee).to_have_text("choose how you attend to see it")
    page.get_by_label("I attend as").select_option("family")
    expect(fee).to_have_text(re.compile("^Patient-families, free"))
    page.get_by_label("I attend as").select_option("clinician")
    expect(fee).to_have_text(re.compile("^Early bird, USD 350.00"))
    page.get_by_label("I am a trainee or early-career investigator").check()
    expect(fee).to_have_text(re.compile("^Trainee, USD 150.00"))
    page.get_by_label("I am a trainee or early-career investigator").uncheck()
    assert axe_violations(page) == []
    screenshot(page, f"fees-form-{viewport}")

    page.get_by_label("First name").first.fill("Ana")
    page.get_by_label("Last name").first.fill("Silva")
    page.get_by_label("E-mail", exact=True).fill("ana@example.org")
    page.get_by_label("Country").select_option("BR")
    page.get_by_label("Registration code").fill("faculti")  # a typo: refused at the field
    page.get_by_label(re.compile("I agree that my registration")).check()
    page.get_by_role("button", name="Register").click()
    expect(page.get_by_role("alert")).to_contain_text("This code is not valid for this event.")
    assert axe_violations(page) == []
    page.get_by_label("Registration code").fill("faculty")
    page.get_by_label(re.compile("I agree that my registration")).check()
    page.get_by_role("button", name="Register").click()
    page.wait_for_url(re.compile(r"/registration/[\w-]+$"))
    expect(page.locator("dl.details")).to_contain_text("free (Early bird)")
    with site.app.app_context():
        owed = db.session.execute(select(Attendee.amount_due)).scalar_one()
        db.engine.dispose()
    assert owed == 0


@pytest.fixture
def offline_site(tmp_path):
    """The site with fees paid offline, as an operator sets it in the config file."""
    from conftest import serving

    instructions = "Bank transfer to the NEC Society\nReference: your code"
    with serving(
        tmp_path, workers=1, PAYMENT_PROVIDER="offline", PAYMENT_INSTRUCTIONS=instructions
    ) as site:
        yield site


def test_the_pay_page_says_how_to_pay_and_passes_axe(offline_site, page):
    site = offline_site
    charge(site)
    page.goto(site.url + "/register")
    page.get_by_label("First name").first.fill("Ana")
    page.get_by_label("Last name").first.fill("Silva")
    page.get_by_label("E-mail", exact=True).fill("ana@example.org")
    page.get_by_label("I attend as").select_option("clinician")
    page.get_by_label("Country").select_option("BR")
    page.get_by_label(re.compile("I agree that my registration")).check()
    page.get_by_role("button", name="Register").click()
    page.wait_for_url(re.compile(r"/registration/[\w-]+$"))
    page.get_by_role("link", name="how to pay").click()
    expect(page.get_by_role("heading", name="How to pay")).to_be_visible()
    expect(page.locator(".instructions")).to_contain_text("Bank transfer to the NEC Society")
    assert axe_violations(page) == []
