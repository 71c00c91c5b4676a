"""Paying by card in a real browser (issue 13): necreg under gunicorn, localstripe standing
in for Stripe (its API, its Stripe.js and its webhooks), Chromium typing the card. The
registration is confirmed when the webhook arrives, the receipt downloads and reads right,
and the payment page passes axe-core (WCAG 2.2 A/AA)."""

from __future__ import annotations

import re
import shutil
import subprocess
import time

import pytest
from playwright.sync_api import expect
from sqlalchemy import select
from test_browser_fees import charge
from test_card_payments import SECRET, stripe_settings

from browser import axe_violations, needs_chromium, screenshot
from necreg.extensions import db
from necreg.models import STATUS_CONFIRMED, Attendee, Payment
from servers import LocalStripe

pytestmark = needs_chromium


@pytest.fixture(scope="module")
def localstripe():
    server = LocalStripe()
    yield server
    server.stop()


@pytest.fixture
def card_site(tmp_path, localstripe):
    from conftest import serving

    localstripe.flush()
    with serving(tmp_path, workers=1, **stripe_settings(localstripe)) as site:
        # localstripe sends its events to the site, signed with the endpoint's secret.
        hook = {"url": site.url + "/payments/stripe/webhook", "secret": SECRET}
        localstripe.post("/_config/webhooks/necreg", hook)
        charge(site)
        yield site


def register(page, site, email: str) -> str:
    page.goto(site.url + "/register")
    page.get_by_label("First name").first.fill("Ana")
    page.get_by_label("Last name").first.fill("Silva")
    page.get_by_label("E-mail", exact=True).fill(email)
    page.get_by_label("I attend as").select_option("clinician")
    page.get_by_label("Institution").fill("Hospital das Clínicas")
    page.get_by_label("Country").select_option("BR")
    page.get_by_label(re.compile("I agree that my registration")).check()
    page.get_by_role("button", name="Register").click()
    page.wait_for_url(re.compile(r"/registration/[\w-]+$"))
    expect(page.get_by_role("heading", name="Your place is held for you")).to_be_visible()
    return page.url


def type_card(page, number: str) -> None:
    """The card, in localstripe's stand-in for Stripe's card field."""
    card = page.locator("#card-element")
    card.get_by_placeholder("number").fill(number)
    card.get_by_placeholder("exp_month").fill("12")
    card.get_by_placeholder("exp_year").fill("30")
    card.get_by_placeholder("cvc").fill("123")


def confirmed_after_webhook(page) -> None:
    """Reload until the webhook has confirmed the registration (localstripe sends it about
    a second after the payment)."""
    deadline = time.monotonic() + 20
    heading = page.get_by_role("heading", name="You are registered")
    while time.monotonic() < deadline:
        page.reload()
        if heading.count():
            return
        page.wait_for_timeout(300)
    expect(heading).to_be_visible()


def test_a_person_pays_by_card_and_the_webhook_confirms_them(card_site, page, viewport):
    site = card_site
    registration = register(page, site, f"ana-{viewport}@example.org")
    page.get_by_role("link", name="pay your fee").click()
    expect(page.get_by_role("heading", name="Pay by card")).to_be_visible()
    type_card(page, "4242424242424242")
    assert axe_violations(page, exclude="#card-element") == []
    screenshot(page, f"pay-card-{viewport}")
    page.get_by_role("button", name="Pay USD 350.00").click()
    page.wait_for_url(registration)
    expect(page.get_by_role("status")).to_contain_text("your payment is received")
    confirmed_after_webhook(page)
    with site.app.app_context():
        attendee = db.session.execute(select(Attendee)).scalar_one()
        payment = db.session.execute(select(Payment)).scalar_one()
        assert attendee.status == STATUS_CONFIRMED
        assert (payment.method, payment.amount, payment.receipt_number) == ("card", 35000, 1)
        db.engine.dispose()
    receipt = page.request.get(registration + "/receipt.pdf")
    assert receipt.status == 200
    if shutil.which("pdftotext"):
        text = subprocess.run(
            ["pdftotext", "-", "-"], input=receipt.body(), capture_output=True, check=True
        ).stdout.decode()
        assert "1" in text and "Ana Silva" in text and "350.00" in text and "USD" in text


def test_a_card_that_asks_for_3d_secure_is_confirmed_in_the_page(card_site, page):
    site = card_site
    registration = register(page, site, "ben@example.org")
    page.goto(registration + "/pay")
    type_card(page, "4000002500003155")  # a test card that asks for 3-D Secure
    page.get_by_role("button", name="Pay USD 350.00").click()
    page.get_by_role("button", name="Complete authentication").click()
    page.wait_for_url(registration)
    confirmed_after_webhook(page)


def test_a_declined_card_says_why_on_the_page(card_site, page):
    site = card_site
    registration = register(page, site, "cy@example.org")
    page.goto(registration + "/pay")
    type_card(page, "4000000000000341")  # declined when charged
    page.get_by_role("button", name="Pay USD 350.00").click()
    expect(page.locator("#card-refused")).to_contain_text("declined")
    assert axe_violations(page, exclude="#card-element") == []
