"""Organizer accounts: hashing, sign-in, sessions, the CLI and login rate limits."""

# ruff: noqa: F811 - pytest fixtures imported from organizer_fixtures are used as arguments

from __future__ import annotations

import os
import secrets
from contextlib import contextmanager

import pytest
from organizer_fixtures import (  # noqa: F401 - fixtures
    ADMIN_EMAIL,
    PASSWORD,
    admin_client,
    make_organizer,
    page_csrf,
    sign_in,
    staff_client,
)
from sqlalchemy import func, select

from conftest import fresh
from necreg import create_app
from necreg.auth import AccountError, authenticate, create_organizer, verify_password
from necreg.extensions import db
from necreg.models import Organizer

REDIS_URL = os.environ.get("NECREG_TEST_REDIS_URL", "")


def test_password_is_stored_as_argon2id_hash(make_organizer):
    organizer = make_organizer()
    assert organizer.password_hash.startswith("$argon2id$")
    assert PASSWORD not in organizer.password_hash
    assert verify_password(organizer.password_hash, PASSWORD)
    assert not verify_password(organizer.password_hash, PASSWORD + "x")


def test_create_organizer_refuses_bad_input_and_stores_nothing(app, make_organizer):
    with app.app_context():
        make_organizer()
        with pytest.raises(AccountError, match="already exists"):
            create_organizer(db.session, ADMIN_EMAIL.upper(), PASSWORD)
        with pytest.raises(AccountError, match="at least 12"):
            create_organizer(db.session, "new@example.org", "short")
        with pytest.raises(AccountError, match="Unknown role"):
            create_organizer(db.session, "new@example.org", PASSWORD, role="root")
        with pytest.raises(AccountError, match="not a valid e-mail"):
            create_organizer(db.session, "not-an-address", PASSWORD)
        db.session.rollback()
        assert db.session.execute(select(func.count()).select_from(Organizer)).scalar_one() == 1


def test_login_page_and_successful_login_records_last_login(app, client, make_organizer):
    organizer = make_organizer()
    assert organizer.last_login_at is None
    page = client.get("/organizer/login")
    assert page.status_code == 200
    assert 'name="csrf_token"' in page.get_data(as_text=True)
    response = sign_in(client, ADMIN_EMAIL.upper())
    assert response.status_code == 303
    assert response.location.endswith("/organizer/")
    assert fresh(app, organizer).last_login_at is not None
    assert client.get("/organizer/").status_code == 200


@pytest.mark.parametrize(
    ("email", "password"),
    [(ADMIN_EMAIL, "wrong password!"), ("nobody@example.org", PASSWORD)],
)
def test_every_login_failure_says_the_same(client, make_organizer, email, password):
    make_organizer()
    response = sign_in(client, email, password)
    assert response.status_code == 401
    assert "Wrong e-mail or password." in response.get_data(as_text=True)
    assert client.get("/organizer/").status_code == 302


def test_inactive_account_cannot_login_and_is_signed_out(app, client, make_organizer):
    organizer = make_organizer()
    assert sign_in(client, ADMIN_EMAIL).status_code == 303
    assert client.get("/organizer/").status_code == 200
    with app.app_context():
        organizer = db.session.get(Organizer, organizer.id)
        organizer.is_active = False
        db.session.commit()
    # The session of a deactivated organizer is no longer honoured.
    assert client.get("/organizer/").status_code == 302
    response = sign_in(client, ADMIN_EMAIL)
    assert response.status_code == 401
    assert "Wrong e-mail or password." in response.get_data(as_text=True)


def test_password_change_ends_other_sessions(app, client, make_organizer):
    organizer = make_organizer()
    assert sign_in(client, ADMIN_EMAIL).status_code == 303
    from necreg.auth import hash_password

    with app.app_context():
        organizer = db.session.get(Organizer, organizer.id)
        organizer.password_hash = hash_password("another long password")
        db.session.commit()
    assert client.get("/organizer/").status_code == 302


def test_login_without_csrf_token_is_refused(client, make_organizer):
    make_organizer()
    response = client.post("/organizer/login", data={"email": ADMIN_EMAIL, "password": PASSWORD})
    assert response.status_code == 400
    assert client.get("/organizer/").status_code == 302


def test_login_redirects_to_safe_next_only(client, make_organizer):
    make_organizer()
    token = page_csrf(client, "/organizer/login")
    form = {"email": ADMIN_EMAIL, "password": PASSWORD, "csrf_token": token}
    response = client.post("/organizer/login?next=//evil.example/organizer/", data=form)
    assert response.status_code == 303
    assert response.location == "/organizer/"
    # Signing in gave a new CSRF token: the login page's no longer works.
    assert client.post("/organizer/logout", data={"csrf_token": token}).status_code == 400
    client.post("/organizer/logout", data={"csrf_token": page_csrf(client, "/organizer/")})
    token = page_csrf(client, "/organizer/login")
    form["csrf_token"] = token
    response = client.post("/organizer/login?next=/organizer/attendees?q=x", data=form)
    assert response.location == "/organizer/attendees?q=x"


def test_logout_is_post_only_and_ends_the_session(admin_client):
    refused = admin_client.get("/organizer/logout")
    assert refused.status_code == 405 and "POST" in refused.headers["Allow"]  # RFC 9110
    token = page_csrf(admin_client, "/organizer/")
    response = admin_client.post("/organizer/logout", data={"csrf_token": token})
    assert response.status_code == 303
    assert admin_client.get("/organizer/").status_code == 302


#: What production needs to start (config.py refuses less).
PRODUCTION = {
    "ENV": "production",
    "SECRET_KEY": "k" * 32,
    "SITE_URL": "https://nec.example.org",
    "MAIL_BACKEND": "smtp",
    "RATELIMIT_STORAGE_URI": "redis://127.0.0.1:9/0",
}


def test_session_cookie_flags(app_config):
    with _limited_app(app_config, **PRODUCTION) as app:
        assert app.config["SESSION_COOKIE_SECURE"] is True
        assert app.config["SESSION_COOKIE_HTTPONLY"] is True
        assert app.config["SESSION_COOKIE_SAMESITE"] == "Lax"


def test_staff_login_lands_on_check_in(staff_client):
    assert staff_client.get("/organizer/login").location.endswith("/organizer/check-in")


def test_authenticate_is_a_domain_function(app, make_organizer):
    with app.app_context():
        make_organizer()
        assert authenticate(db.session, ADMIN_EMAIL, PASSWORD) is not None
        assert authenticate(db.session, ADMIN_EMAIL, "nope") is None
        assert authenticate(db.session, "", PASSWORD) is None


# --- command line -------------------------------------------------------------------------


def test_create_organizer_command_reads_password_from_stdin(app, runner):
    result = runner.invoke(
        args=["create-organizer", "door@example.org", "--role", "staff"], input=PASSWORD + "\n"
    )
    assert result.exit_code == 0, result.output
    with app.app_context():
        organizer = db.session.execute(select(Organizer)).scalar_one()
        assert (organizer.email, organizer.role) == ("door@example.org", "staff")
        assert verify_password(organizer.password_hash, PASSWORD)


def test_create_organizer_command_refuses_short_password(app, runner):
    result = runner.invoke(args=["create-organizer", "door@example.org"], input="short\n")
    assert result.exit_code == 1
    assert "at least 12" in result.output
    with app.app_context():
        assert db.session.execute(select(func.count()).select_from(Organizer)).scalar_one() == 0


def test_ensure_organizer_creates_first_admin_once_and_password_works(app, runner, client):
    first = runner.invoke(args=["ensure-organizer", "--email", "chair@example.org"])
    assert first.exit_code == 0, first.output
    lines = dict(
        line.strip().split(":", 1) for line in first.output.splitlines() if line.startswith("  ")
    )
    email, password = lines["e-mail"].strip(), lines["password"].strip()
    assert email == "chair@example.org"
    assert len(password) >= 12
    second = runner.invoke(args=["ensure-organizer"])
    assert second.exit_code == 0
    assert password not in second.output
    with app.app_context():
        assert db.session.execute(select(func.count()).select_from(Organizer)).scalar_one() == 1
    assert sign_in(client, email, password).status_code == 303


# --- rate limits --------------------------------------------------------------------------


@contextmanager
def _limited_app(app_config, **over):
    """Another app on the test database (as another worker builds it), with a low limit."""
    other = create_app({**app_config, "LOGIN_RATE_LIMIT": "3 per minute", **over})
    try:
        yield other
    finally:
        with other.app_context():
            db.engine.dispose()


def _attempt(client, email, password="wrong password!", addr="10.0.0.1"):  # noqa: S107
    token = page_csrf(client, "/organizer/login")
    return client.post(
        "/organizer/login",
        data={"email": email, "password": password, "csrf_token": token},
        environ_base={"REMOTE_ADDR": addr},
    )


def test_login_is_rate_limited_per_address(app, app_config):
    with _limited_app(app_config) as limited:
        client = limited.test_client()
        codes = [_attempt(client, f"user{n}@example.org").status_code for n in range(4)]
        assert codes == [401, 401, 401, 429]
        blocked = _attempt(client, "another@example.org")
        assert blocked.status_code == 429
        assert "Too many sign-in attempts" in blocked.get_data(as_text=True)
        assert "at most 3 per 1 minute" in blocked.get_data(as_text=True)
        # Another address is not blocked.
        assert _attempt(client, "x@example.org", addr="10.0.0.2").status_code == 401


def test_failures_from_elsewhere_never_lock_the_owner_out(app, app_config, make_organizer):
    """The old per-account limit let anyone lock the owner out; now failures slow only the
    (account, address) that made them."""
    with _limited_app(app_config) as limited:
        with limited.app_context():
            create_organizer(db.session, ADMIN_EMAIL, PASSWORD)
            db.session.commit()
        client = limited.test_client()
        for n in range(3):
            assert _attempt(client, ADMIN_EMAIL, addr=f"10.0.1.{n}").status_code == 401
        # The right password from a fresh address goes through.
        response = _attempt(client, ADMIN_EMAIL.upper(), PASSWORD, addr="10.0.1.99")
        assert response.status_code == 303
        assert client.get("/organizer/").status_code == 200


def test_memory_limits_are_per_process(app, app_config):
    """The contrast for the Redis test below: two apps on memory storage do not share."""
    with _limited_app(app_config) as first:
        client = first.test_client()
        for n in range(3):
            _attempt(client, f"a{n}@example.org")
        assert _attempt(client, "a3@example.org").status_code == 429
    with _limited_app(app_config) as second:
        assert _attempt(second.test_client(), "a4@example.org").status_code == 401


@pytest.mark.skipif(not REDIS_URL, reason="NECREG_TEST_REDIS_URL is not set")
def test_redis_limits_are_shared_between_app_instances(app, app_config):
    shared = {"RATELIMIT_STORAGE_URI": REDIS_URL, "RATELIMIT_KEY_PREFIX": secrets.token_hex(8)}
    with _limited_app(app_config, **shared) as first:
        client = first.test_client()
        for n in range(3):
            assert _attempt(client, f"a{n}@example.org").status_code == 401
    # A second app (as another worker or machine would build it) opens its own connection
    # to Redis and finds the same counters.
    with _limited_app(app_config, **shared) as second:
        assert _attempt(second.test_client(), "a3@example.org").status_code == 429
        # A different key prefix (another deployment) is not affected.
    other_prefix = {**shared, "RATELIMIT_KEY_PREFIX": secrets.token_hex(8)}
    with _limited_app(app_config, **other_prefix) as third:
        assert _attempt(third.test_client(), "a4@example.org").status_code == 401


def test_unreachable_redis_falls_back_to_per_process_limits(app, app_config, make_organizer):
    make_organizer()
    # Nothing listens on port 9 (discard): the storage is down from the start.
    with _limited_app(app_config, RATELIMIT_STORAGE_URI="redis://127.0.0.1:9/0") as limited:
        client = limited.test_client()
        for _ in range(2):
            assert _attempt(client, ADMIN_EMAIL).status_code == 401
        assert _attempt(client, ADMIN_EMAIL, PASSWORD).status_code == 303
        assert _attempt(limited.test_client(), ADMIN_EMAIL).status_code == 429


def test_create_organizer_command_prompts_twice_on_a_terminal(app, runner, monkeypatch):
    import necreg.cli

    monkeypatch.setattr(necreg.cli, "_stdin_is_terminal", lambda: True)
    result = runner.invoke(
        args=["create-organizer", "x@example.org"],
        input=f"{PASSWORD}\nsomething else\n{PASSWORD}\n{PASSWORD}\n",
    )
    assert result.exit_code == 0, result.output
    assert "Error: The two entered values do not match." in result.output
    assert "Repeat for confirmation" in result.output
    with app.app_context():
        organizer = db.session.execute(select(Organizer)).scalar_one()
        assert verify_password(organizer.password_hash, PASSWORD)
