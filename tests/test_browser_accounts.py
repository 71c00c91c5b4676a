"""Organizer accounts in a real browser against gunicorn (issue 16): a session cookie copied
before signing out is refused after it, failed sign-ins make the page ask to wait (but not at
the owner's known device), idle and absolute timeouts sign out, an authenticator is set up
and then asked for at sign-in; axe (WCAG 2.2 A/AA) on the account, accounts and sign-in
pages."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pyotp
from playwright.sync_api import expect
from sqlalchemy import update
from test_browser_organizer import assert_accessible, type_into

from browser import VIEWPORTS, needs_chromium, screenshot
from necreg.auth import create_organizer
from necreg.extensions import db
from necreg.login_limits import failure_email
from necreg.models import LoginFailure, OrganizerSession

pytestmark = needs_chromium

ADMIN = "admin@example.org"
PASSWORD = "correct horse battery staple"


def seed(site) -> None:
    with site.app.app_context():
        create_organizer(db.session, ADMIN, PASSWORD, role="admin")
        db.session.commit()
        db.engine.dispose()


def new_page(browser, viewport: str = "desktop"):
    context = browser.new_context(viewport=VIEWPORTS[viewport])
    page = context.new_page()
    page.set_default_timeout(10_000)
    return context, page


def submit_login(page, site, password: str = PASSWORD) -> None:
    page.goto(site.url + "/organizer/login")
    type_into(page, "E-mail", ADMIN)
    type_into(page, "Password", password)
    page.get_by_role("button", name="Sign in").click()


def sign_in(page, site) -> None:
    submit_login(page, site)
    page.wait_for_url(re.compile(r"/organizer/$"))


def sign_out(page) -> None:
    page.get_by_role("button", name="Sign out", exact=True).click()
    page.wait_for_url(re.compile(r"/organizer/login$"))


def change_sessions(site, **values) -> None:
    """Another process (the test) changes the sessions' times, as the clock would."""
    with site.app.app_context():
        db.session.execute(update(OrganizerSession).values(**values))
        db.session.commit()
        db.engine.dispose()


def test_a_copied_session_cookie_is_refused_after_sign_out(site, browser):
    seed(site)
    context, page = new_page(browser)
    sign_in(page, site)
    copied = context.cookies()
    assert any(c["name"] == "session" for c in copied)
    sign_out(page)
    # Someone who copied the cookie (a shared kiosk, a stolen laptop) tries it afterwards.
    thief_context, thief = new_page(browser)
    thief_context.add_cookies(copied)
    thief.goto(site.url + "/organizer/attendees")
    assert "/organizer/login" in thief.url
    expect(thief.get_by_role("heading", level=1)).to_have_text("Organizer sign-in")
    response = thief.request.get(site.url + "/organizer/export/badges.csv")
    assert response.status == 401
    context.close()
    thief_context.close()


def test_failed_sign_ins_ask_to_wait_but_not_the_owner_at_their_device(site, browser):
    seed(site)
    owner_context, owner = new_page(browser)
    sign_in(owner, site)  # this device is known from now on
    sign_out(owner)
    attacker_context, attacker = new_page(browser, "phone")
    for _ in range(3):
        submit_login(attacker, site, "not the password at all")
        expect(attacker.get_by_role("alert")).to_contain_text("Wrong e-mail or password.")
    # More failures from the same address (the venue's Wi-Fi), made just now, so the wait
    # is long enough to see whatever the machine's speed.
    with site.app.app_context():
        now = datetime.now(UTC)
        db.session.add_all(
            LoginFailure(email=failure_email(ADMIN), address="127.0.0.1", failed_at=now)
            for _ in range(5)
        )
        db.session.commit()
        db.engine.dispose()
    submit_login(attacker, site)  # even the right password waits
    alert = attacker.get_by_role("alert")
    expect(alert).to_contain_text("Too many failed sign-ins for this account from here.")
    expect(alert).to_contain_text(re.compile(r"Please wait \d+ seconds and try again\."))
    assert_accessible(attacker, "sign-in page asking to wait")
    screenshot(attacker, "accounts-login-wait")
    assert "/organizer/login" in attacker.url
    # The owner, at the device they signed in from before, is not slowed.
    sign_in(owner, site)
    expect(owner.get_by_role("heading", level=1)).to_contain_text("dashboard")
    owner_context.close()
    attacker_context.close()


def test_idle_and_absolute_timeouts_sign_out(site, browser):
    seed(site)
    context, page = new_page(browser)
    sign_in(page, site)
    now = datetime.now(UTC)
    change_sessions(site, last_seen_at=now - timedelta(minutes=61))
    page.goto(site.url + "/organizer/attendees")
    assert "/organizer/login" in page.url
    expect(page.get_by_role("status")).to_contain_text("signed out after a time without activity")
    sign_in(page, site)
    # Busy all along (seen a moment ago), but signed in 12 hours ago.
    now = datetime.now(UTC)
    with site.app.app_context():
        db.session.execute(
            update(OrganizerSession)
            .where(OrganizerSession.revoked_at.is_(None))
            .values(created_at=now - timedelta(hours=12, minutes=1), last_seen_at=now)
        )
        db.session.commit()
        db.engine.dispose()
    page.goto(site.url + "/organizer/attendees")
    assert "/organizer/login" in page.url
    expect(page.get_by_role("status")).to_contain_text("longest length")
    context.close()


def test_authenticator_set_up_then_asked_for_at_sign_in(site, browser):
    seed(site)
    context, page = new_page(browser)
    sign_in(page, site)
    page.goto(site.url + "/organizer/account")
    assert_accessible(page, "account page")
    page.get_by_role("button", name="Set up an authenticator app").click()
    expect(
        page.get_by_role("img", name="QR code to scan with your authenticator app")
    ).to_be_visible()
    secret = page.locator(".totp-secret").inner_text()
    assert_accessible(page, "account page, setting up the authenticator")
    type_into(page, "Authenticator code", pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Turn the authenticator on").click()
    expect(page.get_by_role("heading", name="Your recovery codes")).to_be_visible()
    codes = page.locator(".code-list code").all_inner_texts()
    assert len(codes) == 10
    assert_accessible(page, "account page with the recovery codes")
    screenshot(page, "accounts-recovery-codes")
    page.get_by_role("link", name="I have saved them").click()
    expect(page.get_by_text("Recovery codes left: 10")).to_be_visible()
    sign_out(page)

    # Signing in now asks for the code after the password.
    submit_login(page, site)
    expect(page.get_by_role("heading", level=1)).to_have_text("Authenticator code")
    assert_accessible(page, "sign-in, the code step")
    # The code of the next 30 seconds (the current one was used to set it up).
    next_code = pyotp.TOTP(secret).at(datetime.now(UTC) + timedelta(seconds=30))
    type_into(page, "Authenticator code", next_code)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/organizer/$"))
    sign_out(page)

    # The same code again: refused; a recovery code works instead.
    submit_login(page, site)
    type_into(page, "Authenticator code", next_code)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("That code is not right.")
    submit_login(page, site)
    type_into(page, "Authenticator code", codes[0])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/organizer/$"))
    context.close()


def test_accounts_page_invites_and_passes_axe(site, browser):
    seed(site)
    context, page = new_page(browser, "phone")
    sign_in(page, site)
    page.goto(site.url + "/organizer/organizers")
    assert_accessible(page, "accounts page")
    type_into(page, "E-mail", "door@example.org")
    page.get_by_label("Role", exact=True).select_option("staff")
    page.get_by_role("button", name="Invite").click()
    link = page.get_by_label("Set-password link").input_value()
    assert "/organizer/set-password/" in link
    assert_accessible(page, "accounts page showing an invitation link")
    path = link[link.index("/organizer/set-password/") :]

    invited_context, invited = new_page(browser, "phone")
    invited.goto(site.url + path)
    assert_accessible(invited, "set-password page")
    type_into(invited, "Password", "violet lantern orbit meadow")
    type_into(invited, "New password again", "violet lantern orbit meadow")
    invited.get_by_role("button", name="Set password").click()
    invited.wait_for_url(re.compile(r"/organizer/login$"))
    expect(invited.get_by_role("status")).to_contain_text("Your password is set.")
    context.close()
    invited_context.close()
