"""The organizer pages in a real browser: signing in, the dashboard, finding and correcting an
attendee, check-in at the door without a reload, the badge CSV, a staff account's limits, and
WCAG 2.2 A/AA (axe-core) on every organizer page."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from browser import axe_violations, needs_chromium, screenshot
from necreg.auth import create_organizer
from necreg.extensions import db
from necreg.models import Attendee, Event

pytestmark = needs_chromium


def assert_accessible(page, where: str = "") -> None:
    """axe finds nothing, once the page has its styles (a form post answers with a new page
    whose elements ``expect`` can see before its stylesheet has loaded)."""
    page.wait_for_load_state("load")
    assert axe_violations(page) == [], where or page.url


ADMIN = "admin@example.org"
STAFF = "door@example.org"
PASSWORD = "correct horse battery staple"
TARGET_CODE = "NEC-ZVE234"
OTHER_CODE = "NEC-KXM567"


def seed(site) -> None:
    """Two organizers and a dozen attendees registered over several days."""
    with site.app.app_context():
        create_organizer(db.session, ADMIN, PASSWORD, role="admin")
        create_organizer(db.session, STAFF, PASSWORD, role="staff")
        event = db.session.execute(select(Event)).scalar_one()
        start = datetime.now(UTC) - timedelta(days=6)

        def add(code, first, last, role, institution, country, day, **extra):
            db.session.add(
                Attendee(
                    event_id=event.id, code=code, role=role, first_name=first,
                    last_name=last, email=f"{code.lower()}@example.org",
                    institution=institution, country=country,
                    badge_name=extra.pop("badge_name", f"{first} {last}"),
                    created_at=start + timedelta(days=day), **extra,
                )
            )  # fmt: skip

        add(TARGET_CODE, "Zoe", "Nunez", "scientist", "Cincinnati Children's Hospital",
            "US", 0, badge_name="Dr Zoë")  # fmt: skip
        add(OTHER_CODE, "Kim", "Lee", "clinician", "Seoul National University Hospital",
            "KR", 1, early_career=True)  # fmt: skip
        for n in range(8):
            add(f"NEC-THRD{n + 2}{n + 2}", "Alex", f"Other{n}", ("clinician", "family")[n % 2],
                f"University Hospital of a Rather Long Name Number {n}",
                ("GB", "DE", "US", "JP")[n % 4], 2 + n % 4)  # fmt: skip
        add("NEC-GNE999", "Sam", "Gone", "advocate", "Far Away", "FR", 3, status="cancelled")
        db.session.commit()
        db.engine.dispose()


def type_into(page, label: str, text: str) -> None:
    field = page.get_by_label(label, exact=True)
    field.click()
    field.press_sequentially(text)


def sign_in(page, site, email: str = ADMIN, password: str = PASSWORD) -> None:
    page.goto(site.url + "/organizer/login")
    type_into(page, "E-mail", email)
    type_into(page, "Password", password)
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/organizer/(check-in)?$"))


def scan(page, code: str, title: str) -> None:
    """Type a code into the focused check-in input like a scanner does, then Enter."""
    page.wait_for_function("() => document.activeElement && document.activeElement.id === 'code'")
    page.keyboard.type(code)
    page.keyboard.press("Enter")
    expect(page.locator("#checkin-result h2")).to_have_text(title)


def test_an_organizer_day(site, page, viewport, tmp_path):
    seed(site)
    sign_in(page, site)

    # The dashboard: its figures are /api/stats's.
    assert page.get_by_role("heading", level=1).inner_text().endswith("dashboard")
    api = page.request.get(site.url + "/api/stats").json()
    assert api["attendees"] == 10
    for key in ("attendees", "sessions", "faculty", "institutions"):
        assert page.locator(f'[data-stat="{key}"]').inner_text() == str(api[key]), key
    for role, n in api["by_role"].items():
        assert page.locator(f'[data-stat="by_role.{role}"]').inner_text() == str(n), role
    chart = page.locator("svg.chart-svg")
    expect(chart).to_have_accessible_name(
        re.compile(r"^Registrations per day from \d{4}-\d\d-\d\d to .*: \d+ in all")
    )
    expect(page.get_by_role("img", name=re.compile("^Registrations per day"))).to_be_visible()
    screenshot(page, f"organizer-dashboard-{viewport}")

    # Find the attendee by part of their institution, and open them.
    page.get_by_role("navigation", name="Organizer").get_by_role("link", name="Attendees").click()
    page.wait_for_url(re.compile(r"/organizer/attendees$"))
    type_into(page, "Search", "cincinnati chil")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url(re.compile(r"q=cincinnati"))
    assert page.locator("#total").inner_text() == "1"
    rows = page.locator("table tbody tr")
    expect(rows).to_have_count(1)
    screenshot(page, f"organizer-attendees-{viewport}")
    rows.get_by_role("link", name=TARGET_CODE).click()
    page.wait_for_url(re.compile(r"/organizer/attendees/\d+$"))

    # Correct the name: the change is in the history.
    first = page.get_by_label("First name", exact=True)
    assert first.input_value() == "Zoe"
    first.fill("")
    first.press_sequentially("Zoë")
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_role("status").filter(has_text="Saved")).to_contain_text("first_name")
    assert page.get_by_role("heading", level=1).inner_text().startswith("Zoë Nunez")
    expect(page.locator(".audit")).to_contain_text("first name: “Zoe” → “Zoë”")
    expect(page.locator(".audit")).to_contain_text(f"by {ADMIN}")

    # At the door: type the code into the focused input and press Enter; no reload.
    page.get_by_role("navigation", name="Organizer").get_by_role("link", name="Check-in").click()
    page.wait_for_url(re.compile(r"/organizer/check-in$"))
    page.evaluate("() => { window.marker = 1; }")
    scan(page, TARGET_CODE, "Checked in")
    result = page.locator("#checkin-result")
    expect(result.locator(".badge-name")).to_have_text("Dr Zoë")
    expect(result.locator(".role")).to_have_text("Scientist")
    expect(result).to_contain_text(f"Zoë Nunez · {TARGET_CODE}")
    assert page.evaluate("() => window.marker") == 1  # the page did not navigate
    assert page.get_by_label("Attendee code or QR code").input_value() == ""
    screenshot(page, f"organizer-checkin-{viewport}")

    scan(page, TARGET_CODE.lower(), "Already checked in")  # a second scan, typed in lower case
    expect(result.locator(".message")).to_contain_text("already checked in at")
    expect(result.locator(".badge-name")).to_have_text("Dr Zoë")
    assert page.evaluate("() => window.marker") == 1
    with site.app.app_context():
        stored = db.session.execute(select(Attendee).filter_by(code=TARGET_CODE)).scalar_one()
        assert stored.checked_in_at is not None and stored.first_name == "Zoë"
        db.engine.dispose()

    # The badge CSV of everyone, from the attendee list.
    page.goto(site.url + "/organizer/attendees")
    with page.expect_download() as info:
        page.get_by_role("link", name="badge CSV").click()
    download = info.value
    assert re.fullmatch(r"badges-[\w-]+-\d{8}-\d{4}\.csv", download.suggested_filename)
    path = tmp_path / download.suggested_filename
    download.save_as(path)
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))
    assert rows[0][:8] == ["code", "first_name", "last_name", "badge_name", "role",
                           "institution", "country", "early_career"]  # fmt: skip
    assert len(rows) == 1 + 11
    target = next(r for r in rows if r[0] == TARGET_CODE)
    assert target[1:7] == ["Zoë", "Nunez", "Dr Zoë", "scientist",
                           "Cincinnati Children's Hospital", "US"]  # fmt: skip


def test_staff_can_check_in_but_not_see_the_dashboard(site, browser):
    from browser import VIEWPORTS

    seed(site)
    context = browser.new_context(viewport=VIEWPORTS["phone"])
    page = context.new_page()
    page.set_default_timeout(10_000)
    sign_in(page, site, STAFF)
    assert page.url.endswith("/organizer/check-in")  # staff land on check-in
    nav = page.get_by_role("navigation", name="Organizer")
    expect(nav.get_by_role("link")).to_have_text(["Check-in", "Your account"])
    scan(page, OTHER_CODE, "Checked in")
    expect(page.locator("#checkin-result .badge-name")).to_have_text("Kim Lee")
    for path in ("/organizer/", "/organizer/attendees", "/organizer/settings"):
        response = page.goto(site.url + path)
        assert response.status == 403, path
    response = page.request.get(site.url + "/organizer/export/badges.csv")
    assert response.status == 403
    context.close()


@pytest.mark.parametrize("viewport", ["phone"])  # the layout where tables scroll
def test_organizer_pages_pass_axe(site, page, viewport):
    seed(site)
    page.goto(site.url + "/organizer/login")
    assert_accessible(page)
    type_into(page, "E-mail", ADMIN)
    type_into(page, "Password", "not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("Wrong e-mail or password.")
    assert_accessible(page)
    screenshot(page, f"organizer-login-error-{viewport}")
    page.get_by_label("Password", exact=True).fill("")
    page.get_by_role("button", name="Sign in").click()  # an empty field: a field error
    expect(page.get_by_role("alert")).to_contain_text("Please enter your password.")
    assert_accessible(page)

    sign_in(page, site)
    with site.app.app_context():
        target_id = db.session.execute(select(Attendee.id).filter_by(code=TARGET_CODE)).scalar_one()
        db.engine.dispose()
    sorted_by = page.locator("th[aria-sort]")
    page.goto(site.url + "/organizer/attendees?sort=name&order=desc")
    expect(sorted_by).to_have_count(1)
    assert sorted_by.get_attribute("aria-sort") == "descending"
    expect(sorted_by.get_by_role("link")).to_have_text("Name")
    for path in (
        "/organizer/",
        "/organizer/attendees",
        "/organizer/attendees?sort=name&order=desc",
        f"/organizer/attendees/{target_id}",
        "/organizer/settings",
        "/organizer/codes",
        "/organizer/questions",
        "/organizer/check-in",
    ):
        page.goto(site.url + path)
        assert_accessible(page, path)
    scan(page, TARGET_CODE, "Checked in")
    assert_accessible(page)
    scan(page, "NEC-NXPE99", "Unknown code")
    assert_accessible(page)

    # The attendee page after a check-in, with a cancelled registration and a history.
    page.goto(site.url + f"/organizer/attendees/{target_id}")
    page.get_by_role("link", name="Cancel registration…").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Cancel the registration of")
    assert_accessible(page)
    page.get_by_role("button", name="Yes, cancel the registration").click()
    expect(page.get_by_role("status").first).to_contain_text("Registration cancelled.")
    assert_accessible(page)
    screenshot(page, f"organizer-attendee-{viewport}")


def test_organizer_pages_fit_a_phone(site, browser):
    """Nothing but the wide attendee table scrolls sideways, and that one in its own region."""
    seed(site)
    # 320 CSS pixels: the narrowest phone, and 400% zoom of a 1280 px window (WCAG 1.4.10).
    context = browser.new_context(viewport={"width": 320, "height": 640})
    page = context.new_page()
    page.set_default_timeout(10_000)
    sign_in(page, site)
    for path in ("/organizer/", "/organizer/attendees", "/organizer/settings",
                 "/organizer/check-in"):  # fmt: skip
        page.goto(site.url + path)
        overflow = page.evaluate(
            "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{path} scrolls sideways on a phone"
    page.goto(site.url + "/organizer/attendees")
    region = page.get_by_role("region", name=re.compile("Attendees"))
    assert region.get_attribute("tabindex") == "0"  # keyboard users can scroll it
    assert page.evaluate(
        "() => { const r = document.querySelector('.table-wrap'); "
        "return r.scrollWidth > r.clientWidth; }"
    )
    context.close()
