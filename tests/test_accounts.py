"""Organizer accounts (issue 16, items 1-3): server-side sessions and their timeouts, the
account page (password, authenticator, recovery codes, signing out everywhere), the admins'
page of accounts and set-password links, the command line, and failed sign-ins that slow
their origin but never lock the owner out."""

# ruff: noqa: F811 - pytest fixtures imported from organizer_fixtures are used as arguments

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta

import pyotp
import pytest
from organizer_fixtures import (  # noqa: F401 - fixtures
    ADMIN_EMAIL,
    PASSWORD,
    STAFF_EMAIL,
    admin_client,
    make_organizer,
    page_csrf,
    sign_in,
    staff_client,
)
from sqlalchemy import create_engine, func, select, text, update

from conftest import count_queries
from necreg import auth, create_app, login_limits, sessions, totp
from necreg.auth import AccountError, check_password_rules, verify_password
from necreg.extensions import db
from necreg.models import LoginFailure, Organizer, OrganizerSession, RecoveryCode

NEW_PASSWORD = "violet lantern orbit meadow"


class Clock:
    """A settable now, for the modules that read the time (instead of sleeping)."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def forward(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock(monkeypatch) -> Clock:
    clock = Clock()
    for module in (auth, sessions, login_limits, totp):
        monkeypatch.setattr(module, "utcnow", clock)
    return clock


def count(app, model, *where) -> int:
    with app.app_context():
        return db.session.execute(
            select(func.count()).select_from(model).where(*where)
        ).scalar_one()


def session_rows(app) -> list[OrganizerSession]:
    with app.app_context():
        rows = db.session.execute(select(OrganizerSession).order_by(OrganizerSession.id))
        return list(rows.scalars())


def cookie(client, name: str = "session") -> str:
    return client.get_cookie(name).value


def post_form(client, path: str, data: dict | None = None, *, page: str | None = None, **kw):
    token = page_csrf(client, page or "/organizer/account")
    return client.post(path, data={"csrf_token": token, **(data or {})}, **kw)


def login(client, email: str, password: str = PASSWORD, otp: str | None = None):
    """Sign in with the code sent beside the password (as a script may)."""
    token = page_csrf(client, "/organizer/login")
    form = {"email": email, "password": password, "csrf_token": token}
    if otp is not None:
        form["otp"] = otp
    return client.post("/organizer/login", data=form)


def signed_in(client) -> bool:
    return client.get("/organizer/account").status_code == 200


# --- Sessions ---------------------------------------------------------------------------------


def test_sign_in_opens_a_session_stored_by_its_hash(app, admin_client):
    (row,) = session_rows(app)
    assert row.revoked_at is None and row.address == "127.0.0.1"
    assert len(row.token_hash) == 64
    # The cookie carries the token, never the hash the database keeps.
    with app.test_request_context():
        from flask import current_app

        data = current_app.session_interface.get_signing_serializer(current_app).loads(
            cookie(admin_client)
        )
    token = data["_user_id"].partition(".")[0]
    assert sessions.token_hash(token) == row.token_hash
    assert row.token_hash not in cookie(admin_client)


def test_a_cookie_copied_before_logout_does_not_work_after_it(app, admin_client):
    copied = cookie(admin_client)
    token = page_csrf(admin_client, "/organizer/")
    assert admin_client.post("/organizer/logout", data={"csrf_token": token}).status_code == 303
    assert session_rows(app)[0].revoked_at is not None
    thief = app.test_client()
    thief.set_cookie("session", copied)
    response = thief.get("/organizer/attendees")
    assert response.status_code == 302 and "/organizer/login" in response.location
    assert thief.get("/organizer/stats.json").status_code == 401


def test_each_sign_in_has_its_own_session_and_csrf_token(app, make_organizer):
    make_organizer()
    client = app.test_client()
    before = page_csrf(client, "/organizer/login")
    sign_in(client, ADMIN_EMAIL)
    first = cookie(client)
    # The CSRF token of before signing in is not the session's any more.
    refused = client.post("/organizer/logout", data={"csrf_token": before})
    assert refused.status_code == 400 and signed_in(client)
    other = app.test_client()
    sign_in(other, ADMIN_EMAIL)
    assert cookie(other) != first
    assert len({row.token_hash for row in session_rows(app)}) == 2


def test_a_session_ends_after_the_idle_time(app, make_organizer, clock):
    make_organizer()
    client = app.test_client()
    sign_in(client, ADMIN_EMAIL)
    clock.forward(minutes=59)
    assert signed_in(client)  # used: the idle time starts again
    clock.forward(minutes=59)
    assert signed_in(client)
    clock.forward(minutes=61)
    response = client.get("/organizer/account")
    assert response.status_code == 302
    assert "signed out after a time without activity" in client.get(response.location).text


def test_the_idle_time_is_a_setting(app_config, make_organizer, clock):
    other = create_app({**app_config, "SESSION_IDLE_MINUTES": 5})
    try:
        with other.app_context():
            auth.create_organizer(db.session, ADMIN_EMAIL, PASSWORD)
            db.session.commit()
        client = other.test_client()
        sign_in(client, ADMIN_EMAIL)
        clock.forward(minutes=4)
        assert signed_in(client)
        clock.forward(minutes=6)
        assert not signed_in(client)
    finally:
        with other.app_context():
            db.engine.dispose()


def test_a_session_ends_at_its_longest_length_however_busy(app, make_organizer, clock):
    make_organizer()
    client = app.test_client()
    sign_in(client, ADMIN_EMAIL)
    for _ in range(11):
        clock.forward(minutes=59)
        assert signed_in(client)
    clock.forward(minutes=12 * 60 - 11 * 59)
    response = client.get("/organizer/account")
    assert response.status_code == 302
    assert "longest length" in client.get(response.location).text


def test_last_seen_is_written_at_most_once_a_minute(app, admin_client, clock):
    first = session_rows(app)[0].last_seen_at
    with count_queries(app) as statements:
        for _ in range(3):
            clock.forward(seconds=15)
            assert signed_in(admin_client)
    assert not [s for s in statements if s.startswith("UPDATE organizer_sessions")]
    assert session_rows(app)[0].last_seen_at == first
    clock.forward(seconds=20)
    assert signed_in(admin_client)
    assert session_rows(app)[0].last_seen_at == clock.now


def test_a_session_revoked_by_another_worker_is_refused_at_once(app, app_config, admin_client):
    assert signed_in(admin_client)
    with count_queries(app) as statements:
        assert signed_in(admin_client)
    assert not [s for s in statements if "organizer_sessions.token_hash =" in s]  # kept
    worker = create_app(app_config)  # another worker (PostgreSQL: told by NOTIFY)
    try:
        with worker.app_context():
            organizer = db.session.execute(select(Organizer)).scalar_one()
            assert sessions.revoke_all(db.session, organizer.id) == 1
            db.session.commit()
            db.engine.dispose()
    finally:
        with worker.app_context():
            db.engine.dispose()
    deadline = datetime.now(UTC) + timedelta(seconds=2)
    while signed_in(admin_client):
        assert datetime.now(UTC) < deadline, "the revocation was not seen"


def test_sign_out_everywhere_ends_every_session(app, make_organizer, caplog):
    make_organizer()
    phone, laptop = app.test_client(), app.test_client()
    sign_in(phone, ADMIN_EMAIL)
    sign_in(laptop, ADMIN_EMAIL)
    page = laptop.get("/organizer/account").text
    assert page.count("127.0.0.1") == 2 and "(this one)" in page
    with caplog.at_level(logging.INFO, logger="necreg.security"):
        response = post_form(laptop, "/organizer/account/sign-out-everywhere")
    assert response.status_code == 303
    assert not signed_in(phone) and not signed_in(laptop)
    assert all(row.revoked_at is not None for row in session_rows(app))
    assert "sign-out everywhere email=admin@example.org" in caplog.text


def test_deactivation_ends_the_sessions_of_the_account(app, admin_client, staff_client):
    staff = count(app, Organizer, Organizer.email == STAFF_EMAIL)
    assert staff == 1
    with app.app_context():
        staff_id = db.session.execute(
            select(Organizer.id).where(Organizer.email == STAFF_EMAIL)
        ).scalar_one()
    response = post_form(
        admin_client,
        f"/organizer/organizers/{staff_id}",
        {"action": "deactivate"},
        page="/organizer/organizers",
    )
    assert response.status_code == 303
    assert staff_client.get("/organizer/check-in").status_code == 302
    with app.app_context():
        rows = db.session.execute(
            select(OrganizerSession).where(OrganizerSession.organizer_id == staff_id)
        ).scalars()
        assert all(row.revoked_at is not None for row in rows)
    assert sign_in(app.test_client(), STAFF_EMAIL).status_code == 401


def test_security_log_has_sign_ins_failures_and_sign_outs_without_secrets(
    app, make_organizer, caplog
):
    make_organizer()
    client = app.test_client()
    with caplog.at_level(logging.INFO, logger="necreg.security"):
        sign_in(client, ADMIN_EMAIL, "not the password at all")
        sign_in(client, ADMIN_EMAIL)
        client.post("/organizer/logout", data={"csrf_token": page_csrf(client, "/organizer/")})
    lines = [r.getMessage() for r in caplog.records if r.name == "necreg.security"]
    assert lines == [
        "sign-in failed (password) email=admin@example.org address=127.0.0.1",
        "sign-in email=admin@example.org address=127.0.0.1",
        "sign-out email=admin@example.org address=127.0.0.1",
    ]
    assert PASSWORD not in caplog.text and "not the password" not in caplog.text


# --- Passwords --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("short pass", "at least 12 characters"),
        ("aaaaaaaaaaaa", "too easy to guess"),
        ("password1234", "very common password"),
        ("admin@example.org1", "too easy to guess"),
    ],
)
def test_password_rules_say_why(password, reason):
    with pytest.raises(AccountError, match=reason):
        check_password_rules(password, ADMIN_EMAIL)


def test_a_long_unguessable_password_passes():
    check_password_rules(NEW_PASSWORD, ADMIN_EMAIL)
    check_password_rules("x" * 30 + "Q7!vd" * 50, ADMIN_EMAIL)  # long ones are cut for zxcvbn


def _change(client, current=PASSWORD, new=NEW_PASSWORD, again=None):
    data = {
        "current_password": current,
        "new_password": new,
        "confirm_password": new if again is None else again,
    }
    return post_form(client, "/organizer/account/password", data)


@pytest.mark.parametrize(
    ("current", "new", "again", "message"),
    [
        ("wrong password here", NEW_PASSWORD, None, "The current password is not right."),
        (PASSWORD, "aaaaaaaaaaaaaaaa", None, "This password is too easy to guess."),
        (PASSWORD, NEW_PASSWORD, NEW_PASSWORD + "x", "The two new passwords are not the same."),
        (PASSWORD, PASSWORD, None, "The new password is the same as the current one."),
    ],
)
def test_a_refused_password_change_says_why_and_changes_nothing(
    app, admin_client, current, new, again, message
):
    before = _admin(app).password_hash
    response = _change(admin_client, current, new, again)
    assert response.status_code == 400
    assert message in response.text
    assert _admin(app).password_hash == before
    assert signed_in(admin_client)


def _admin(app) -> Organizer:
    with app.app_context():
        organizer = db.session.execute(
            select(Organizer).where(Organizer.email == ADMIN_EMAIL)
        ).scalar_one()
        db.session.expunge(organizer)
        return organizer


def test_changing_the_password_ends_the_other_sessions_only(app, admin_client):
    other = app.test_client()
    sign_in(other, ADMIN_EMAIL)
    response = _change(admin_client)
    assert response.status_code == 303
    assert "signed out everywhere else" in admin_client.get(response.location).text
    assert signed_in(admin_client)
    assert not signed_in(other)
    organizer = _admin(app)
    assert verify_password(organizer.password_hash, NEW_PASSWORD)
    assert organizer.password_changed_at is not None
    assert sign_in(app.test_client(), ADMIN_EMAIL, PASSWORD).status_code == 401
    assert sign_in(app.test_client(), ADMIN_EMAIL, NEW_PASSWORD).status_code == 303


# --- Authenticator ----------------------------------------------------------------------------


def _enrol(app, client, clock=None) -> tuple[str, list[str]]:
    """Set up an authenticator through the account page; (secret, recovery codes)."""
    response = post_form(client, "/organizer/account/authenticator")
    assert response.status_code == 303
    page = client.get("/organizer/account").text
    secret = re.search(r'class="totp-secret">([A-Z2-7]+)<', page).group(1)
    assert "<svg" in page and "QR code to scan" in page
    now = clock.now if clock else datetime.now(UTC)
    code = pyotp.TOTP(secret).at(now)
    response = post_form(client, "/organizer/account/authenticator/confirm", {"otp": code})
    assert response.status_code == 200
    codes = re.findall(r"<code>([A-Z0-9]{5}-[A-Z0-9]{5})</code>", response.text)
    return secret, codes


def test_enrolment_shows_a_qr_code_then_ten_recovery_codes_stored_hashed(app, admin_client):
    secret, codes = _enrol(app, admin_client)
    assert len(codes) == len(set(codes)) == 10
    organizer = _admin(app)
    assert organizer.totp_secret == secret and organizer.totp_enabled_at is not None
    with app.app_context():
        hashes = db.session.execute(select(RecoveryCode.code_hash)).scalars().all()
    assert len(hashes) == 10 and all(h.startswith("$argon2id$") for h in hashes)
    assert not any(code.replace("-", "") in h for code in codes for h in hashes)
    # Shown once: the account page does not show them again.
    page = admin_client.get("/organizer/account").text
    assert codes[0] not in page and "Recovery codes left: 10" in page


def test_enrolment_refuses_a_wrong_code_and_stays_off(app, admin_client):
    post_form(admin_client, "/organizer/account/authenticator")
    response = post_form(
        admin_client, "/organizer/account/authenticator/confirm", {"otp": "000000"}
    )
    assert response.status_code == 400
    assert "That code is not right." in response.text
    assert _admin(app).totp_enabled_at is None
    assert count(app, RecoveryCode) == 0
    # Signing in still asks for the password alone.
    assert sign_in(app.test_client(), ADMIN_EMAIL).status_code == 303


def _password_step(client):
    response = sign_in(client, ADMIN_EMAIL)
    assert response.status_code == 200
    assert 'name="otp"' in response.text
    return response


def test_sign_in_asks_for_the_code_and_never_takes_one_twice(app, admin_client, clock):
    secret, _codes = _enrol(app, admin_client, clock)
    clock.forward(seconds=30)
    client = app.test_client()
    page = _password_step(client)
    assert client.get("/organizer/").status_code == 302  # not signed in yet
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text).group(1)
    code = pyotp.TOTP(secret).at(clock.now)
    response = client.post("/organizer/login", data={"otp": code, "csrf_token": token})
    assert response.status_code == 303
    assert client.get("/organizer/").status_code == 200
    # The same code, again within its 30 seconds: refused.
    again = app.test_client()
    page = _password_step(again)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text).group(1)
    response = again.post("/organizer/login", data={"otp": code, "csrf_token": token})
    assert response.status_code == 401
    assert "That code is not right" in response.text
    assert again.get("/organizer/").status_code == 302
    assert count(app, LoginFailure) == 1


def test_a_client_may_send_the_code_with_the_password(app, admin_client, clock):
    secret, _codes = _enrol(app, admin_client, clock)
    clock.forward(seconds=30)
    client = app.test_client()
    code = pyotp.TOTP(secret).at(clock.now)
    wrong = "000000" if code != "000000" else "111111"
    assert login(client, ADMIN_EMAIL, otp=wrong).status_code == 401
    assert login(client, ADMIN_EMAIL, otp=code).status_code == 303


def test_a_recovery_code_signs_in_once(app, admin_client):
    _secret, codes = _enrol(app, admin_client)
    client = app.test_client()
    assert login(client, ADMIN_EMAIL, otp=codes[3].lower()).status_code == 303
    assert login(app.test_client(), ADMIN_EMAIL, otp=codes[3]).status_code == 401
    with app.app_context():
        used = db.session.execute(
            select(func.count()).where(RecoveryCode.used_at.is_not(None))
        ).scalar_one()
    assert used == 1
    assert "Recovery codes left: 9" in client.get("/organizer/account").text


def test_the_code_step_expires(app, admin_client, monkeypatch):
    _enrol(app, admin_client)
    client = app.test_client()
    page = _password_step(client)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text).group(1)
    import necreg.organizer.auth as views

    monkeypatch.setattr(views, "OTP_STEP_SECONDS", -1)
    response = client.post("/organizer/login", data={"otp": "123456", "csrf_token": token})
    assert response.status_code == 401
    assert "took too long" in response.text


def test_turning_the_authenticator_off_needs_a_code(app, admin_client, clock):
    secret, codes = _enrol(app, admin_client, clock)
    response = post_form(
        admin_client, "/organizer/account/authenticator/disable", {"otp": "000000"}
    )
    assert response.status_code == 400 and "That code is not right" in response.text
    assert _admin(app).totp_enabled_at is not None and count(app, RecoveryCode) == 10
    response = post_form(
        admin_client, "/organizer/account/authenticator/disable", {"otp": codes[0]}
    )
    assert response.status_code == 303
    organizer = _admin(app)
    assert organizer.totp_enabled_at is None and organizer.totp_secret is None
    assert count(app, RecoveryCode) == 0
    assert sign_in(app.test_client(), ADMIN_EMAIL).status_code == 303


def test_new_recovery_codes_replace_the_old(app, admin_client, clock):
    secret, old = _enrol(app, admin_client, clock)
    clock.forward(seconds=30)
    response = post_form(
        admin_client,
        "/organizer/account/recovery-codes",
        {"otp": pyotp.TOTP(secret).at(clock.now)},
    )
    assert response.status_code == 200
    new = re.findall(r"<code>([A-Z0-9]{5}-[A-Z0-9]{5})</code>", response.text)
    assert len(new) == 10 and not set(new) & set(old)
    assert login(app.test_client(), ADMIN_EMAIL, otp=old[0]).status_code == 401
    assert login(app.test_client(), ADMIN_EMAIL, otp=new[0]).status_code == 303


def test_admins_must_enrol_first_where_the_setting_says(app_config, make_organizer, make_event):
    make_event()
    other = create_app({**app_config, "TOTP_REQUIRED_FOR_ADMINS": True})
    try:
        with other.app_context():
            auth.create_organizer(db.session, ADMIN_EMAIL, PASSWORD, role="admin")
            auth.create_organizer(db.session, STAFF_EMAIL, PASSWORD, role="staff")
            db.session.commit()
        admin = other.test_client()
        response = sign_in(admin, ADMIN_EMAIL)
        assert response.location == "/organizer/account"
        for path in ("/organizer/", "/organizer/attendees", "/organizer/check-in"):
            assert admin.get(path).location == "/organizer/account", path
        assert admin.get("/organizer/stats.json").status_code == 403
        assert "must use an authenticator" in admin.get("/organizer/account").text
        staff = other.test_client()
        sign_in(staff, STAFF_EMAIL)
        assert staff.get("/organizer/check-in").status_code == 200
        # Once enrolled, the admin goes everywhere.
        _enrol(other, admin)
        assert admin.get("/organizer/attendees").status_code == 200
    finally:
        with other.app_context():
            db.engine.dispose()


# --- Administrators manage accounts -----------------------------------------------------------


def _manage(client, organizer_id, action, **extra):
    return post_form(
        client,
        f"/organizer/organizers/{organizer_id}",
        {"action": action, **extra},
        page="/organizer/organizers",
    )


def _id(app, email) -> int:
    with app.app_context():
        return db.session.execute(select(Organizer.id).where(Organizer.email == email)).scalar_one()


def test_invite_gives_a_link_that_sets_a_password_once(app, admin_client, make_event):
    make_event()
    page = admin_client.get("/organizer/organizers").text
    assert ADMIN_EMAIL in page
    response = post_form(
        admin_client,
        "/organizer/organizers",
        {"email": "New.Person@Example.org", "role": "staff"},
        page="/organizer/organizers",
    )
    assert response.status_code == 200
    link = re.search(r'value="(http[^"]+/organizer/set-password/[^"]+)"', response.text).group(1)
    path = link.split("127.0.0.1:5000", 1)[1] if "127.0.0.1:5000" in link else link
    invited = app.test_client()
    # Not before a password is set.
    assert sign_in(invited, "new.person@example.org", "").status_code == 400
    form_page = invited.get(path)
    assert form_page.status_code == 200 and "new.person@example.org" in form_page.text.lower()
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', form_page.text).group(1)
    weak = invited.post(
        path,
        data={
            "csrf_token": token,
            "new_password": "aaaaaaaaaaaaa",
            "confirm_password": "aaaaaaaaaaaaa",
        },
    )
    assert weak.status_code == 400 and "too easy to guess" in weak.text
    done = invited.post(
        path,
        data={"csrf_token": token, "new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD},
    )
    assert done.status_code == 303
    assert invited.get(path).status_code == 404  # used
    assert sign_in(invited, "new.person@example.org", NEW_PASSWORD).status_code == 303
    assert invited.get("/organizer/check-in").status_code == 200


@pytest.mark.parametrize(
    ("email", "message"),
    [(ADMIN_EMAIL, "already exists"), ("not-an-address", "not a valid e-mail")],
)
def test_a_refused_invitation_says_why_and_stores_nothing(app, admin_client, email, message):
    response = post_form(
        admin_client,
        "/organizer/organizers",
        {"email": email, "role": "staff"},
        page="/organizer/organizers",
    )
    assert response.status_code == 400 and message in response.text
    assert count(app, Organizer) == 1


def test_a_forged_or_old_set_password_link_is_refused(app, admin_client, clock):
    organizer = _admin(app)
    with app.app_context():
        token = auth.password_link_token(organizer, "another secret")
        assert app.test_client().get(f"/organizer/set-password/{token}").status_code == 404
        token = auth.password_link_token(organizer, app.secret_key)
        assert auth.organizer_for_link(db.session, token, app.secret_key) is not None
        later = auth.organizer_for_link(
            db.session, token, app.secret_key, max_age=timedelta(seconds=-1)
        )
        assert later is None


def test_reset_ends_sessions_and_the_old_password(app, admin_client, staff_client):
    staff_id = _id(app, STAFF_EMAIL)
    response = _manage(admin_client, staff_id, "reset")
    assert response.status_code == 200 and "/organizer/set-password/" in response.text
    assert staff_client.get("/organizer/check-in").status_code == 302
    assert sign_in(app.test_client(), STAFF_EMAIL).status_code == 401


def test_deactivate_reactivate_and_change_role(app, admin_client, staff_client, make_event):
    make_event()
    staff_id = _id(app, STAFF_EMAIL)
    assert _manage(admin_client, staff_id, "deactivate").status_code == 303
    assert sign_in(app.test_client(), STAFF_EMAIL).status_code == 401
    again = _manage(admin_client, staff_id, "deactivate")
    assert again.status_code == 400 and "deactivated already" in again.text
    assert _manage(admin_client, staff_id, "reactivate").status_code == 303
    assert _manage(admin_client, staff_id, "role", role="admin").status_code == 303
    with app.app_context():
        assert db.session.get(Organizer, staff_id).role == "admin"
    promoted = app.test_client()
    sign_in(promoted, STAFF_EMAIL)
    assert promoted.get("/organizer/attendees").status_code == 200


@pytest.mark.parametrize(("action", "extra"), [("deactivate", {}), ("role", {"role": "staff"})])
def test_the_last_active_admin_cannot_leave(app, admin_client, make_organizer, action, extra):
    make_organizer(STAFF_EMAIL, role="staff")
    admin_id = _id(app, ADMIN_EMAIL)
    response = _manage(admin_client, admin_id, action, **extra)
    assert response.status_code == 400
    assert "last active administrator" in response.text
    organizer = _admin(app)
    assert organizer.is_active and organizer.role == "admin"
    assert signed_in(admin_client)


def test_an_admin_may_step_down_when_another_remains(app, admin_client, make_organizer):
    make_organizer("second@example.org", role="admin")
    response = _manage(admin_client, _id(app, ADMIN_EMAIL), "role", role="staff")
    assert response.status_code == 303 and response.location == "/organizer/check-in"
    assert admin_client.get("/organizer/attendees").status_code == 403


def test_an_unknown_account_or_action_answers_clearly(app, admin_client):
    assert _manage(admin_client, 424242, "deactivate").status_code == 404
    assert _manage(admin_client, 2**40, "deactivate").status_code == 404
    response = _manage(admin_client, _id(app, ADMIN_EMAIL), "explode")
    assert response.status_code == 400 and "Choose what to do" in response.text


def test_removing_a_lost_authenticator(app, admin_client, make_organizer):
    make_organizer(STAFF_EMAIL, role="staff")
    staff = app.test_client()
    sign_in(staff, STAFF_EMAIL)
    _enrol(app, staff)
    staff_id = _id(app, STAFF_EMAIL)
    assert _manage(admin_client, staff_id, "remove_authenticator").status_code == 303
    assert not signed_in(staff)
    with app.app_context():
        assert db.session.get(Organizer, staff_id).totp_enabled_at is None
    assert count(app, RecoveryCode) == 0
    assert sign_in(app.test_client(), STAFF_EMAIL).status_code == 303


# --- Command line -----------------------------------------------------------------------------


def test_set_password_command(app, runner, make_organizer):
    make_organizer()
    refused = runner.invoke(args=["set-password", ADMIN_EMAIL], input="aaaaaaaaaaaaaaa\n")
    assert refused.exit_code == 1 and "too easy to guess" in refused.output
    assert verify_password(_admin(app).password_hash, PASSWORD)
    unknown = runner.invoke(args=["set-password", "who@example.org"], input=NEW_PASSWORD + "\n")
    assert unknown.exit_code == 1 and "no organizer" in unknown.output
    client = app.test_client()
    sign_in(client, ADMIN_EMAIL)
    result = runner.invoke(args=["set-password", ADMIN_EMAIL.upper()], input=NEW_PASSWORD + "\n")
    assert result.exit_code == 0, result.output
    assert verify_password(_admin(app).password_hash, NEW_PASSWORD)
    assert not signed_in(client)


def test_deactivate_and_list_organizers_commands(app, runner, make_organizer):
    make_organizer()
    make_organizer(STAFF_EMAIL, role="staff")
    client = app.test_client()
    sign_in(client, STAFF_EMAIL)
    result = runner.invoke(args=["deactivate-organizer", STAFF_EMAIL])
    assert result.exit_code == 0, result.output
    assert client.get("/organizer/check-in").status_code == 302
    last = runner.invoke(args=["deactivate-organizer", ADMIN_EMAIL])
    assert last.exit_code == 1 and "last active administrator" in last.output
    listing = runner.invoke(args=["list-organizers"]).output.splitlines()
    assert listing[0].split() == ["E-MAIL", "ROLE", "STATUS", "AUTHENTICATOR", "LAST", "SIGN-IN"]
    assert listing[1].split()[:4] == [ADMIN_EMAIL, "admin", "active", "off"]
    assert listing[2].split()[:4] == [STAFF_EMAIL, "staff", "deactivated", "off"]


def test_ensure_organizer_asks_for_the_email(app, runner, monkeypatch):
    refused = runner.invoke(args=["ensure-organizer"])
    assert refused.exit_code == 1 and "--email" in refused.output
    assert count(app, Organizer) == 0
    import necreg.cli

    monkeypatch.setattr(necreg.cli, "_stdin_is_terminal", lambda: True)
    result = runner.invoke(args=["ensure-organizer"], input="chair@example.org\n")
    assert result.exit_code == 0, result.output
    assert "E-mail of the first administrator" in result.output
    assert "e-mail:   chair@example.org" in result.output
    # There is one now: nothing is asked.
    again = runner.invoke(args=["ensure-organizer"])
    assert again.exit_code == 0 and "exists already" in again.output


def test_ensure_organizer_reads_the_email_from_stdin(app, runner):
    result = runner.invoke(args=["ensure-organizer"], input="chair@example.org\n")
    assert result.exit_code == 0, result.output
    assert "e-mail:   chair@example.org" in result.output


# --- Failed sign-ins --------------------------------------------------------------------------


def _try(client, email=ADMIN_EMAIL, password="not the password", addr="10.0.0.1"):  # noqa: S107
    token = page_csrf(client, "/organizer/login")
    return client.post(
        "/organizer/login",
        data={"email": email, "password": password, "csrf_token": token},
        environ_base={"REMOTE_ADDR": addr},
    )


@pytest.fixture
def unlimited(app, app_config):
    """The app without the coarse flood limit per address (LOGIN_RATE_LIMIT), to see the
    delays alone."""
    other = create_app({**app_config, "LOGIN_RATE_LIMIT": "1000 per minute"})
    with other.app_context():
        auth.create_organizer(db.session, ADMIN_EMAIL, PASSWORD)
        db.session.commit()
    yield other
    with other.app_context():
        db.engine.dispose()


def test_delays_grow_and_are_capped():
    assert [login_limits.delay(n, 3).total_seconds() for n in range(8)] == [
        0, 0, 0, 1, 2, 4, 8, 16,
    ]  # fmt: skip
    assert login_limits.delay(13, 3) == timedelta(minutes=15)
    assert login_limits.delay(10_000, 3) == timedelta(minutes=15)


def test_after_three_failures_the_next_attempt_waits(unlimited, clock):
    client = unlimited.test_client()
    for _ in range(3):
        assert _try(client).status_code == 401
    refused = _try(client, password=PASSWORD)  # even the right password waits
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "1"
    assert "Please wait 1 second and try again." in refused.text
    assert count(unlimited, LoginFailure) == 3  # a refused attempt is not a failure
    clock.forward(seconds=1)
    assert _try(client).status_code == 401
    refused = _try(client)
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "2"
    clock.forward(seconds=2)
    assert _try(client, password=PASSWORD).status_code == 303
    # A success clears the failures of its (account, address).
    assert count(unlimited, LoginFailure) == 0


def test_failures_from_one_address_do_not_slow_another(unlimited, clock):
    client = unlimited.test_client()
    for n in range(6):
        clock.forward(minutes=n and 1)
        assert _try(client, addr="10.6.6.6").status_code == 401
    assert _try(client, addr="10.6.6.6").status_code == 429
    assert _try(client, password=PASSWORD, addr="10.0.0.2").status_code == 303


def test_failures_older_than_the_window_do_not_count(unlimited, clock):
    client = unlimited.test_client()
    for _ in range(5):
        _try(client)
    clock.forward(minutes=16)
    assert _try(client, password=PASSWORD).status_code == 303


def test_one_address_trying_many_accounts_is_slowed(unlimited, clock):
    client = unlimited.test_client()
    for n in range(login_limits.ADDRESS_FREE):
        assert _try(client, email=f"guess{n}@example.org").status_code == 401
    assert _try(client, email="another@example.org").status_code == 429
    assert _try(client, email="another@example.org", addr="10.0.0.9").status_code == 401


def test_the_owners_known_device_is_not_slowed_by_others(unlimited, clock):
    owner = unlimited.test_client()
    assert _try(owner, password=PASSWORD).status_code == 303
    owner.post("/organizer/logout", data={"csrf_token": page_csrf(owner, "/organizer/")})
    attacker = unlimited.test_client()
    for _ in range(10):
        _try(attacker)  # the same address as the owner (the venue's Wi-Fi)
    assert _try(attacker, password=PASSWORD).status_code == 429
    # The owner's device, known from the sign-in before, is counted apart.
    assert _try(owner, password=PASSWORD).status_code == 303
    # And its own failures slow it alone.
    owner.post("/organizer/logout", data={"csrf_token": page_csrf(owner, "/organizer/")})
    for _ in range(3):
        assert _try(owner).status_code == 401
    assert _try(owner).status_code == 429


def test_a_forged_device_cookie_is_ignored(unlimited, clock):
    attacker = unlimited.test_client()
    attacker.set_cookie("necreg_device", "eyJkIjoiMDAiLCJhIjpbXX0.forged", path="/organizer/")
    for _ in range(3):
        _try(attacker)
    assert _try(attacker, password=PASSWORD).status_code == 429


def test_the_flood_limit_per_address_spares_known_devices(app_config, make_organizer):
    limited = create_app({**app_config, "LOGIN_RATE_LIMIT": "3 per minute"})
    try:
        with limited.app_context():
            auth.create_organizer(db.session, ADMIN_EMAIL, PASSWORD)
            db.session.commit()
        owner = limited.test_client()
        assert _try(owner, password=PASSWORD).status_code == 303
        owner.post("/organizer/logout", data={"csrf_token": page_csrf(owner, "/organizer/")})
        stranger = limited.test_client()
        for n in range(3):
            _try(stranger, email=f"x{n}@example.org")
        assert _try(stranger, email="y@example.org").status_code == 429
        assert _try(owner, password=PASSWORD).status_code == 303
    finally:
        with limited.app_context():
            db.engine.dispose()


def test_spellings_of_one_address_count_together(unlimited, clock):
    client = unlimited.test_client()
    for email in ("ADMIN@example.org", " admin@EXAMPLE.org", "admin@ｅｘａｍｐｌｅ.org"):
        _try(client, email=email)
    assert _try(client).status_code == 429
    with unlimited.app_context():
        emails = set(db.session.execute(select(LoginFailure.email)).scalars())
    assert emails == {ADMIN_EMAIL}


def test_unknown_emails_cost_a_password_check_too(unlimited, clock, monkeypatch):
    checks = []
    real = auth.verify_password
    monkeypatch.setattr(auth, "verify_password", lambda h, p: checks.append(h) or real(h, p))
    client = unlimited.test_client()
    assert _try(client, email="nobody@example.org").status_code == 401
    assert _try(client).status_code == 401
    assert len(checks) == 2 and checks[0] == auth._dummy_hash()


def test_bad_input_on_the_sign_in_form_stores_nothing(unlimited, clock):
    client = unlimited.test_client()
    for email in ("a\x00b@example.org", "x" * 400 + "@example.org", ""):
        assert _try(client, email=email).status_code == 400
    assert count(unlimited, LoginFailure) == 0


@pytest.mark.parametrize(
    "target",
    ["/organizer/\r\nSet-Cookie: x=y", "//evil.example/organizer/", "https://evil.example/",
     "/organizer/\\evil", "/elsewhere"],
)  # fmt: skip
def test_only_a_plain_organizer_path_is_followed_after_sign_in(app, target):
    from necreg.organizer.auth import _safe_next

    assert _safe_next(target) is None
    assert _safe_next("/organizer/attendees?q=x") == "/organizer/attendees?q=x"


def test_old_failures_are_let_go(app, clock):
    with app.app_context():
        login_limits.record_failure(db.session, ADMIN_EMAIL, "10.1.1.1")
        clock.forward(minutes=20)
        login_limits.record_failure(db.session, ADMIN_EMAIL, "10.1.1.1")
        db.session.commit()
    assert count(app, LoginFailure) == 1


def test_raw_sql_changes_of_sessions_are_seen(app, admin_client, database_url):
    """Revoked in plain SQL (an operator), the session ends: on PostgreSQL once anything
    notifies, on SQLite at once; and the password-hash fingerprint ends it regardless."""
    engine = create_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE organizers SET password_hash = 'changed'"))
    finally:
        engine.dispose()
    deadline = datetime.now(UTC) + timedelta(seconds=2)
    while signed_in(admin_client):
        assert datetime.now(UTC) < deadline


def test_sessions_domain_functions(app, make_organizer, clock):
    make_organizer()
    timeouts = sessions.Timeouts(idle=timedelta(minutes=60), lifetime=timedelta(hours=12))
    with app.app_context():
        organizer = db.session.execute(select(Organizer)).scalar_one()
        old = sessions.open_session(db.session, organizer.id)
        clock.forward(hours=13)
        keep = sessions.open_session(db.session, organizer.id, timeouts=timeouts)
        # The ended session was deleted on the way.
        assert count_rows(OrganizerSession) == 1
        other = sessions.open_session(db.session, organizer.id)
        assert sessions.revoke_all(db.session, organizer.id, keep=keep) == 1
        assert sessions.revoke(db.session, other) == 0  # revoked already
        assert sessions.revoke(db.session, old) == 0  # deleted
        assert [
            s.token_hash for s in sessions.open_sessions(db.session, organizer.id, timeouts)
        ] == [sessions.token_hash(keep)]
        db.session.execute(update(OrganizerSession).values(last_seen_at=clock.now))
        db.session.commit()


def count_rows(model, *where) -> int:
    return db.session.execute(select(func.count()).select_from(model).where(*where)).scalar_one()


def test_account_changes_are_audited(app, admin_client, make_organizer):
    from necreg.models import AuditEntry

    make_organizer(STAFF_EMAIL, role="staff")
    _manage(admin_client, _id(app, STAFF_EMAIL), "deactivate")
    _change(admin_client)
    with app.app_context():
        entries = db.session.execute(
            select(AuditEntry.action, AuditEntry.target).order_by(AuditEntry.id)
        ).all()
    assert [tuple(e) for e in entries] == [
        ("organizer.deactivate", STAFF_EMAIL),
        ("account.password", ADMIN_EMAIL),
    ]


def test_the_device_cookie_is_secure_in_production(app, app_config):
    production = {
        "ENV": "production",
        "SECRET_KEY": "k" * 32,
        "SITE_URL": "https://nec.example.org",
        "MAIL_BACKEND": "smtp",
        "RATELIMIT_STORAGE_URI": "redis://127.0.0.1:9/0",
    }
    other = create_app({**app_config, **production})
    try:
        with other.app_context():
            auth.create_organizer(db.session, ADMIN_EMAIL, PASSWORD)
            db.session.commit()
        client = other.test_client()
        response = login(client, ADMIN_EMAIL)
        assert response.status_code == 303
        (device,) = [c for c in response.headers.getlist("Set-Cookie") if "necreg_device" in c]
        assert device.startswith("__Secure-necreg_device=")
        assert "Secure" in device and "HttpOnly" in device and "Path=/organizer/" in device
        assert ADMIN_EMAIL not in device
    finally:
        with other.app_context():
            db.engine.dispose()
