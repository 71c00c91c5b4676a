"""The public pages in a real browser, on a phone and a desktop: counters, registration,
confirmation, keyboard use and WCAG 2.2 A/AA (axe-core)."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from browser import axe_violations, needs_chromium, screenshot
from conftest import registration_form
from necreg.extensions import db
from necreg.models import Attendee, Event
from servers import Browserless

pytestmark = needs_chromium


def add_attendees(site, n: int) -> None:
    with site.app.app_context():
        event = db.session.execute(select(Event)).scalar_one()
        for i in range(n):
            db.session.add(
                Attendee(
                    event_id=event.id, code=f"NEC-TEST{i:02d}", role="clinician",
                    first_name="A", last_name=str(i), email=f"a{i}@example.org",
                    institution=f"Hospital {i}", country="US", badge_name=f"A {i}",
                )
            )  # fmt: skip
        db.session.commit()
        db.engine.dispose()


RECORD_COUNTER = """
() => {
  window.seen = [];
  const el = document.querySelector('[data-counter="attendees"]');
  new MutationObserver(() => window.seen.push(parseInt(el.textContent, 10)))
    .observe(el, {childList: true, characterData: true, subtree: true});
}
"""


def test_counters_count_up_then_follow_new_registrations(site, page, viewport):
    add_attendees(site, 30)
    page.add_init_script(
        "document.addEventListener('DOMContentLoaded', " + RECORD_COUNTER.strip() + ")"
    )
    page.goto(site.url + "/")
    counter = page.locator('[data-counter="attendees"]')
    counter.scroll_into_view_if_needed()
    page.wait_for_function("() => window.seen && window.seen.includes(30)")
    seen = page.evaluate("window.seen")
    assert min(seen) < 30, seen  # it counted up from below
    page.wait_for_function(
        "() => document.querySelector('[data-counter=\"sessions\"]').textContent === '40'"
    )
    screenshot(page, f"landing-{viewport}")

    # Someone registers elsewhere while the page is open: the counter follows.
    person = Browserless()
    token = person.csrf(site.url + "/register")
    status, _body, _ = person.open(site.url + "/register", registration_form(csrf_token=token))
    assert status == 303
    page.wait_for_function(
        "() => document.querySelector('[data-counter=\"attendees\"]').textContent === '31'",
        timeout=15_000,
    )
    assert "31" in page.locator("#counters-status").inner_text()


def test_reduced_motion_shows_figures_without_counting(site, browser):
    add_attendees(site, 12)
    context = browser.new_context(reduced_motion="reduce")
    page = context.new_page()
    page.add_init_script(
        "document.addEventListener('DOMContentLoaded', " + RECORD_COUNTER.strip() + ")"
    )
    page.goto(site.url + "/")
    page.wait_for_timeout(1500)  # longer than the count-up would take
    assert page.evaluate("window.seen") == []  # never rewritten
    assert page.locator('[data-counter="attendees"]').inner_text() == "12"
    context.close()


def type_into(page, label: str, text: str) -> None:
    field = page.get_by_label(label, exact=True)
    field.click()
    field.press_sequentially(text)


def test_registering_like_a_person_with_a_mistake_corrected(site, page, viewport):
    page.goto(site.url + "/")
    page.get_by_role("link", name="Register now").click()
    page.wait_for_url(re.compile(r"/register$"))
    type_into(page, "First name", "Zoë")
    type_into(page, "Last name", "Núñez-李")
    type_into(page, "E-mail", "zoe.example.org")  # the mistake: no @
    page.get_by_label("I attend as").select_option("family")
    page.get_by_label("I am a trainee or early-career investigator").check()
    type_into(page, "Institution or organisation", "UNC Children's")
    page.get_by_label("Country").select_option("US")
    page.get_by_label(re.compile("I agree that my registration")).check()
    page.get_by_role("button", name="Register").click()

    summary = page.get_by_role("alert")
    assert "Please correct this to register" in summary.inner_text()
    email = page.get_by_label("E-mail", exact=True)
    assert email.get_attribute("aria-invalid") == "true"
    error = page.locator("#email-error")
    assert "does not look right" in error.inner_text()
    assert "email-error" in email.get_attribute("aria-describedby")
    assert page.get_by_label("First name").input_value() == "Zoë"  # kept
    assert axe_violations(page) == []
    screenshot(page, f"register-error-{viewport}")

    summary.get_by_role("link").click()  # the summary link moves focus to the field
    assert page.evaluate("document.activeElement.id") == "email"
    email.fill("")
    email.press_sequentially("zoe@example.org")
    page.get_by_label(re.compile("I agree that my registration")).check()
    page.get_by_role("button", name="Register").click()

    page.wait_for_url(re.compile(r"/registration/[\w-]+$"))
    assert page.get_by_role("heading", level=1).inner_text() == "You are registered"
    code = page.locator(".code").inner_text()
    assert re.fullmatch(r"NEC-[A-Z0-9]{6}", code)
    assert axe_violations(page) == []
    screenshot(page, f"confirmation-{viewport}")
    with site.app.app_context():
        stored = db.session.execute(select(Attendee)).scalar_one()
        assert (stored.first_name, stored.last_name, stored.code) == ("Zoë", "Núñez-李", code)
        db.engine.dispose()


def test_the_form_works_with_the_keyboard_alone(site, page):
    page.goto(site.url + "/register")
    page.keyboard.press("Tab")  # the skip link comes first
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.get_by_label("First name").focus()
    page.keyboard.type("Kim")
    page.keyboard.press("Tab")
    page.keyboard.type("Lee")
    page.keyboard.press("Tab")
    page.keyboard.type("kim@example.org")
    page.keyboard.press("Tab")
    page.keyboard.press("ArrowDown")  # "I attend as": Clinician
    page.keyboard.press("Tab")
    page.keyboard.press("Space")  # early career
    page.keyboard.press("Tab")  # the credential: left as it is
    page.keyboard.press("Tab")
    page.keyboard.type("Cincinnati Children's")
    page.keyboard.press("Tab")
    page.keyboard.type("United States")  # type-ahead in the country select
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")  # badge name left empty; then the privacy notice link
    page.keyboard.press("Tab")
    page.keyboard.press("Space")  # consent
    page.keyboard.press("Tab")  # photos: left as they are
    page.keyboard.press("Tab")  # the attendee list: left as it is
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")  # the Register button
    page.wait_for_url(re.compile(r"/registration/[\w-]+$"))
    assert "Kim Lee" in page.locator(".details").inner_text()


@pytest.mark.parametrize("path", ["/", "/register", "/privacy", "/no-such-page"])
def test_public_pages_pass_axe(site, page, viewport, path):
    add_attendees(site, 3)
    page.goto(site.url + path)
    assert axe_violations(page) == []
    name = {"/": "landing-axe", "/no-such-page": "not-found"}.get(path, path.strip("/"))
    screenshot(page, f"{name}-{viewport}")


def test_text_reflows_at_200_percent_zoom(site, browser):
    # 200% zoom of a 1280 px window lays the page out in 640 CSS pixels.
    context = browser.new_context(viewport={"width": 640, "height": 800}, device_scale_factor=2)
    page = context.new_page()
    for path in ("/", "/register"):
        page.goto(site.url + path)
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{path} scrolls sideways at 200% zoom"
    context.close()
