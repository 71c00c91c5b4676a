"""The event's questions in a real browser: every type on the form, a mistake at a question
corrected, the answers on the self-service page, WCAG 2.2 A/AA (axe-core) throughout."""

from __future__ import annotations

import re

from sqlalchemy import select
from test_questions import QUESTIONS

from browser import axe_violations, needs_chromium, screenshot
from necreg.extensions import db
from necreg.models import Answer, Event, utcnow
from necreg.questions import definitions, sync_questions

pytestmark = needs_chromium


def ask_questions(site) -> None:
    with site.app.app_context():
        event = db.session.execute(select(Event)).scalar_one()
        sync_questions(db.session, event, definitions(QUESTIONS))
        event.updated_at = utcnow()
        db.session.commit()
        db.engine.dispose()


def test_every_question_type_in_the_browser_with_a_mistake_corrected(site, page, viewport):
    ask_questions(site)
    page.goto(site.url + "/register")
    page.get_by_label("First name").fill("Zoë")
    page.get_by_label("Last name").fill("Núñez")
    page.get_by_label("E-mail", exact=True).fill("zoe@example.org")
    page.get_by_label("I attend as").select_option("family")
    page.get_by_label("Country").select_option("US")
    dietary = page.get_by_role("group", name="Dietary requirements")
    dietary.get_by_role("radio", name="Other", exact=True).check()  # the mistake: no text
    access = page.get_by_role("group", name=re.compile("Accessibility needs"))
    access.get_by_label("Wheelchair access").check()
    access.get_by_label("Captioning").check()
    page.get_by_role("group", name=re.compile("Photos of me")).get_by_label("No").check()
    page.get_by_label(re.compile("Your title")).fill("Dr")
    page.get_by_label(re.compile("Anything else")).fill("Two lines\nof notes")
    page.get_by_label(re.compile("Children coming")).fill("2")
    page.get_by_label(re.compile("I agree that my registration")).check()
    page.get_by_role("button", name="Register").click()

    summary = page.get_by_role("alert")
    assert "Dietary requirements: Please say what" in summary.inner_text()
    assert page.locator("#q_dietary-error").is_visible()
    assert axe_violations(page) == []
    screenshot(page, f"questions-error-{viewport}")
    summary.get_by_role("link").click()
    assert page.evaluate("document.activeElement.id") == "q_dietary-0"
    assert page.get_by_label(re.compile("Your title")).input_value() == "Dr"  # kept
    dietary.get_by_label("If other, please say what").fill("No shellfish")
    page.get_by_label(re.compile("I agree that my registration")).check()
    page.get_by_role("button", name="Register").click()

    page.wait_for_url(re.compile(r"/registration/[\w-]+$"))
    details = page.locator("dl.details").inner_text()
    assert "Other: No shellfish" in details
    assert "Wheelchair access; Captioning" in details
    assert axe_violations(page) == []
    screenshot(page, f"questions-self-service-{viewport}")
    with site.app.app_context():
        assert len(db.session.execute(select(Answer)).all()) == 7
        db.engine.dispose()


def test_questions_for_other_roles_are_hidden_when_a_role_is_chosen(site, page):
    ask_questions(site)
    page.goto(site.url + "/register")
    children = page.get_by_label(re.compile("Children coming"))
    assert children.is_visible()  # no role yet: every question shows whom it is for
    page.get_by_label("I attend as").select_option("scientist")
    assert not children.is_visible()
    page.get_by_label("I attend as").select_option("family")
    assert children.is_visible()
    assert axe_violations(page) == []


def test_an_admin_manages_the_questions_in_the_browser(site, page, viewport):
    from playwright.sync_api import expect
    from test_browser_organizer import assert_accessible, seed, sign_in

    seed(site)
    ask_questions(site)
    with site.app.app_context():
        event = db.session.execute(select(Event)).scalar_one()
        event.capacity, event.capacity_by_role = 40, {"family": 10}
        db.session.commit()
        db.engine.dispose()
    sign_in(page, site)
    # The dashboard with the places meters and the totals per choice.
    page.goto(site.url + "/organizer/")
    expect(page.get_by_role("heading", name="Answers of active attendees")).to_be_visible()
    assert page.locator("meter").count() == 2
    assert_accessible(page, "dashboard with questions")
    screenshot(page, f"dashboard-questions-{viewport}")

    page.goto(site.url + "/organizer/questions")
    assert_accessible(page, "questions")
    form = page.locator("form", has=page.get_by_role("button", name="Add the question"))
    form.get_by_label("Key").fill("tshirt")
    form.get_by_label("Type").select_option("choice")
    form.get_by_label("Choices").fill("S | Small\nM | Medium")
    page.get_by_role("button", name="Add the question").click()  # no label: refused
    expect(page.get_by_role("alert")).to_contain_text("label is required")
    assert_accessible(page, "questions with an error")
    page.locator("form", has=page.get_by_role("button", name="Add the question")).get_by_label(
        "Question", exact=True
    ).fill("T-shirt size")
    page.get_by_role("button", name="Add the question").click()
    expect(page.get_by_role("status").first).to_contain_text("is asked now")
    page.get_by_role("button", name="Up: T-shirt size").click()
    expect(page.get_by_role("status").first).to_contain_text("moved up")
    page.get_by_role("link", name="T-shirt size").click()
    assert_accessible(page, "one question")
    screenshot(page, f"question-edit-{viewport}")
    page.get_by_label("Question", exact=True).fill("Your T-shirt size")
    page.get_by_role("button", name="Save the question").click()
    expect(page.get_by_role("status").first).to_contain_text("Saved: label.")
    page.get_by_role("button", name="Retire: Your T-shirt size").click()
    expect(page.get_by_role("status").first).to_contain_text("no longer asked")
    assert_accessible(page, "questions with a retired one")
