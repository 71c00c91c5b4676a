"""A household in a real browser: a parent registers with a child and an infant, sees three
codes, and the counters move by the places taken; the form with every question type and two
companions passes axe-core (WCAG 2.2 A/AA)."""

from __future__ import annotations

import re

from playwright.sync_api import expect
from sqlalchemy import select
from test_browser_questions import ask_questions

from browser import axe_violations, needs_chromium, screenshot
from necreg.extensions import db
from necreg.models import Attendee, Event, utcnow

pytestmark = needs_chromium


def welcome_families(site, **settings) -> None:
    with site.app.app_context():
        event = db.session.execute(select(Event)).scalar_one()
        event.max_guests, event.infants_count, event.virtual = 4, False, True
        for key, value in settings.items():
            setattr(event, key, value)
        event.updated_at = utcnow()
        db.session.commit()
        db.engine.dispose()


def fill_parent(page, site, first: str, last: str) -> None:
    """Open the form and fill in a patient-family registrant's own fields."""
    page.goto(site.url + "/register")
    page.get_by_label("First name").first.fill(first)
    page.get_by_label("Last name").first.fill(last)
    page.get_by_label("E-mail", exact=True).fill(f"{first.lower()}@example.org")
    page.get_by_label("I attend as").select_option("family")
    page.get_by_label("Country").select_option("US")


def fill_companion(page, number: int, first: str, last: str, band: str) -> None:
    group = page.get_by_role("group", name=f"Companion {number}", exact=True)
    group.get_by_label("First name").fill(first)
    group.get_by_label("Last name").fill(last)
    group.get_by_label("Age").select_option(band)


def test_a_parent_registers_with_a_child_and_an_infant(site, page, viewport):
    welcome_families(site)
    ask_questions(site)
    page.goto(site.url + "/")
    before = int(page.locator("[data-counter='attendees']").first.inner_text())
    fill_parent(page, site, "Zoë", "Núñez")
    page.get_by_role("group", name="I will attend").get_by_label("In person").check()
    fill_companion(page, 1, "Ava", "Núñez", "child")
    fill_companion(page, 2, "Noah", "Núñez", "infant")
    dietary = page.get_by_role("group", name="Dietary requirements")
    dietary.get_by_role("radio", name="Vegan").check()
    page.get_by_label(re.compile("Children coming")).fill("2")
    # The form with every question type and two companions: no WCAG 2.2 A/AA violation.
    assert axe_violations(page) == []
    screenshot(page, f"household-form-{viewport}")
    page.get_by_label(re.compile("I agree that my registration")).check()
    page.get_by_role("button", name="Register").click()

    page.wait_for_url(re.compile(r"/registration/[\w-]+$"))
    with site.app.app_context():
        codes = db.session.execute(select(Attendee.code).order_by(Attendee.id)).scalars().all()
        db.engine.dispose()
    assert len(codes) == 3
    party = page.get_by_role("heading", name="Your party")
    assert party.is_visible()
    body = page.locator("main").inner_text()
    for code in codes:
        assert code in body
    assert "no place needed" in body
    assert axe_violations(page) == []
    screenshot(page, f"household-registered-{viewport}")

    # The public counter moves by the places taken: the parent and the child (the page
    # refreshes its figures itself, from whichever worker answers).
    page.goto(site.url + "/")
    counter = page.locator("[data-counter='attendees']").first
    expect(counter).to_have_text(str(before + 2), timeout=10_000)


def test_a_companion_added_and_removed_on_the_self_service_page(site, page):
    welcome_families(site)
    fill_parent(page, site, "Sam", "Lee")
    page.get_by_label(re.compile("I agree that my registration")).check()
    page.get_by_role("button", name="Register").click()
    page.wait_for_url(re.compile(r"/registration/[\w-]+$"))

    adding = page.get_by_role("group", name="Add a companion")
    adding.get_by_label("First name").fill("Mia")
    adding.get_by_label("Last name").fill("Lee")
    page.get_by_role("button", name="Add this companion").click()  # no age: refused
    assert "Please choose adult, child or infant." in page.get_by_role("alert").inner_text()
    assert axe_violations(page) == []
    page.get_by_role("group", name="Add a companion").get_by_label("Age").select_option("child")
    page.get_by_role("button", name="Add this companion").click()
    assert "Mia Lee is added to your party" in page.locator("main").inner_text()
    page.get_by_role("button", name="Remove Mia Lee").click()
    assert "Mia Lee no longer comes with you." in page.locator("main").inner_text()
    assert axe_violations(page) == []
