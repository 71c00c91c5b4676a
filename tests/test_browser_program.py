"""The program end to end in a real browser (issue 14): a clinician registers and picks two
workshops (a third that overlaps is refused), is scanned in at a workshop's and a plenary's
doors, and after certificates_from downloads a certificate that lists exactly those two
items (pdftotext) and whose QR code opens the page that confirms it. axe-core on the agenda,
the support queue and the verification page."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect
from test_browser_organizer import ADMIN, STAFF, assert_accessible, scan, seed, sign_in
from test_program import event_file

from browser import needs_chromium, qr_in_pdf, screenshot
from necreg.events import load_event
from necreg.extensions import db

pytestmark = [
    needs_chromium,
    pytest.mark.skipif(
        not (shutil.which("pdftotext") and shutil.which("pdftoppm") and shutil.which("zbarimg")),
        reason="needs poppler-utils and zbar-tools",
    ),
]


@pytest.fixture
def program_site(tmp_path):
    from conftest import serving

    with serving(tmp_path, workers=1) as site:
        seed(site)  # the organizers
        with site.app.app_context():
            opened = datetime.now(UTC) - timedelta(hours=1)
            load_event(
                db.session,
                event_file(
                    certificates_from=opened,
                    venue="Chicago",
                    cme_statement="Designated for AMA PRA Category 1 Credits.",
                    currency="USD",
                    support_budget="5000",
                ),
            )
            db.session.commit()
            db.engine.dispose()
        yield site


def test_register_pick_workshops_be_scanned_in_and_get_a_verified_certificate(
    program_site, browser, tmp_path
):
    site = program_site
    page = browser.new_page()
    page.goto(site.url + "/")
    expect(page.get_by_role("heading", name="Program")).to_be_visible()
    expect(page.get_by_text("Tuesday, September 08")).to_be_visible()
    assert_accessible(page, "landing with the agenda")

    page.goto(site.url + "/register")
    page.get_by_label("First name").first.fill("Ana")
    page.get_by_label("Last name").first.fill("Silva")
    page.get_by_label("E-mail", exact=True).fill("ana@example.org")
    page.get_by_label("I attend as").select_option("clinician")
    page.get_by_label("Your credential").select_option("MD")
    page.get_by_label("Country").select_option("BR")
    page.get_by_label(re.compile("^Feeding protocols")).check()
    page.get_by_label(re.compile("^Imaging NEC")).check()  # at the same time: refused
    page.get_by_label(re.compile("I agree that my registration")).check()
    page.get_by_role("button", name="Register").click()
    expect(page.locator("#program-error")).to_contain_text("are at the same time")
    page.get_by_label(re.compile("^Imaging NEC")).uncheck()
    page.get_by_label(re.compile("^Families as partners")).check()
    page.get_by_label(re.compile("I ask for support to come")).check()
    page.get_by_label("Why support would help you come").fill("A first-year fellow from Recife.")
    page.get_by_label(re.compile("I agree that my registration")).check()
    page.get_by_role("button", name="Register").click()
    page.wait_for_url(re.compile(r"/registration/[\w-]+$"))
    registration = page.url
    expect(page.get_by_role("heading", name="Your program")).to_be_visible()
    expect(page.get_by_text("You have a place").first).to_be_visible()
    assert_accessible(page, "the private page's agenda")
    screenshot(page, "program-private-page")
    code = page.locator(".code-box .code").inner_text().strip()

    staff = browser.new_page()
    sign_in(staff, site, STAFF)
    staff.goto(site.url + "/organizer/check-in")
    staff.get_by_label("Door").select_option("ws-feeding")
    staff.get_by_label("Attendee code or QR code").focus()
    scan(staff, code, "Checked in")
    expect(staff.locator("#checkin-result .message")).to_contain_text("Feeding protocols")
    staff.get_by_label("Door").select_option("opening")
    staff.get_by_label("Attendee code or QR code").focus()
    scan(staff, code, "Checked in")
    assert_accessible(staff, "check-in at a door")

    pdf = page.request.get(registration + "/certificate.pdf")
    assert pdf.status == 200
    (tmp_path / "certificate.pdf").write_bytes(pdf.body())
    text = subprocess.run(
        ["pdftotext", "-layout", "certificate.pdf", "-"],
        cwd=tmp_path,
        capture_output=True,
        check=True,
    ).stdout.decode()
    assert "Opening plenary" in text and "Feeding protocols" in text
    assert "Families as partners" not in text and "Imaging NEC" not in text  # not scanned in
    assert "1.5 credit hours" in text and "2 credit hours" in text and "3.5 credit hours" in text
    verify_url = qr_in_pdf(pdf.body(), tmp_path)
    assert verify_url.startswith("http") and "/certificates/" in verify_url
    page.goto(site.url + verify_url[verify_url.index("/certificates/") :])
    expect(page.get_by_role("heading", name="This certificate is valid")).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text("Ana Silva")
    assert_accessible(page, "certificate verification")

    admin = browser.new_page()
    sign_in(admin, site, ADMIN)
    admin.goto(site.url + "/organizer/support")
    expect(admin.get_by_text("A first-year fellow from Recife.")).to_be_visible()
    assert_accessible(admin, "support queue")
    admin.get_by_label("Decision").select_option("decline")
    admin.get_by_label("Note to the applicant").fill("The fund is spent this year.")
    admin.get_by_role("button", name="Record the decision").click()
    expect(admin.get_by_text("declined recorded and e-mailed")).to_be_visible()
    assert_accessible(admin, "support queue after a decision")
    admin.goto(site.url + "/organizer/program")
    expect(admin.get_by_role("link", name="Feeding protocols")).to_be_visible()
    assert_accessible(admin, "the program, for admins")
    admin.get_by_role("link", name="Feeding protocols").click()
    assert_accessible(admin, "a program item, for admins")
