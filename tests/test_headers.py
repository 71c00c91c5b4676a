"""Headers and configuration (issue 16, item 6): no-store on organizer and personal pages,
Permissions-Policy, HSTS and the __Host- cookie in production, what production refuses to
start with, SMTP logins only inside TLS (STARTTLS and TLS from the start, against a real
server), private files under instance/, tokens masked in the access log; and every 403 in
the security log."""

# ruff: noqa: F811 - pytest fixtures imported from organizer_fixtures are used as arguments

from __future__ import annotations

import logging
import re
import ssl
import stat
import subprocess
import threading
import urllib.request
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from organizer_fixtures import (  # noqa: F401
    ADMIN_EMAIL,
    PASSWORD,
    admin_client,
    make_organizer,
    page_csrf,
    staff_client,
)
from sqlalchemy import select

from conftest import EVENT_DEFAULTS, csrf_token, serving
from necreg import create_app
from necreg.auth import create_organizer
from necreg.config import ConfigError, load
from necreg.extensions import db
from necreg.mail.delivery import FileBackend, SMTPBackend, backend_from_config, build_message
from necreg.models import Event, OutboxMessage
from servers import HOST, Inbox, free_port

#: A production configuration that starts: each test of a refusal spoils one setting.
PRODUCTION = {
    "ENV": "production",
    "SECRET_KEY": "k" * 32,
    "SITE_URL": "https://reg.example.org",
    "MAIL_BACKEND": "smtp",
    "MAIL_SERVER": "smtp.example.org",
    "RATELIMIT_STORAGE_URI": "redis://127.0.0.1:9/0",  # nothing listens: counted in memory
}


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- Cache-Control: no-store ------------------------------------------------------------------


def test_organizer_pages_are_never_stored(app, admin_client, make_event, client):
    make_event()
    for path in ("/organizer/", "/organizer/attendees", "/organizer/check-in",
                 "/organizer/attendees/12345", "/organizer/export/badges.csv"):  # fmt: skip
        response = admin_client.get(path)
        assert response.headers.getlist("Cache-Control") == ["no-store"], path
    # The dashboard's figures (counts, no one's data) are asked again at every poll, with
    # their ETag, as the view says.
    figures = admin_client.get("/organizer/stats.json")
    assert figures.headers.getlist("Cache-Control") == ["private, no-cache"]
    # Signed out too: the sign-in page and the redirect to it.
    assert client.get("/organizer/login").headers["Cache-Control"] == "no-store"
    assert client.get("/organizer/attendees").headers["Cache-Control"] == "no-store"


def test_pages_of_personal_links_are_never_stored(app, client, make_event, make_attendee):
    event = make_event()
    person = make_attendee(event)
    for path in (
        f"/registration/{person.token}",
        f"/registration/{person.token}/cancel",
        "/registration/not-a-token",
        "/interest/confirm/not-a-token",
        "/unsubscribe/not-a-token",
        "/certificates/NEC-AAAAAA",
    ):
        assert client.get(path).headers.getlist("Cache-Control") == ["no-store"], path


def test_public_pages_may_still_be_kept(client, make_event):
    make_event()
    for path in ("/", "/register", "/api/stats"):
        assert "no-store" not in client.get(path).headers.get("Cache-Control", ""), path


# --- Permissions-Policy ---------------------------------------------------------------------


def test_permissions_policy_gives_the_camera_to_the_check_in_page_only(
    client, staff_client, make_event
):
    make_event()
    for response in (client.get("/"), client.get("/register"), client.get("/nowhere")):
        policy = response.headers["Permissions-Policy"]
        assert "camera=()" in policy and "microphone=()" in policy and "geolocation=()" in policy
    check_in = staff_client.get("/organizer/check-in")
    assert check_in.status_code == 200
    policy = check_in.headers["Permissions-Policy"]
    assert "camera=(self)" in policy and "microphone=()" in policy
    assert len(check_in.headers.getlist("Permissions-Policy")) == 1


# --- production: HSTS, the __Host- cookie, CSRF ---------------------------------------------


@pytest.fixture
def production_app(tmp_path):
    app = create_app(
        {
            **PRODUCTION,
            "DATABASE_URL": f"sqlite:///{tmp_path / 'p.db'}",
            "INSTANCE_PATH": str(tmp_path),
        }
    )
    with app.app_context():
        db.create_all()
        db.session.add(Event(**EVENT_DEFAULTS))
        create_organizer(db.session, ADMIN_EMAIL, PASSWORD, role="admin")
        db.session.commit()
    yield app
    with app.app_context():
        db.engine.dispose()


def test_hsts_in_production_only(production_app, client, make_event):
    make_event()
    assert "Strict-Transport-Security" not in client.get("/").headers
    secure = production_app.test_client()
    for path in ("/", "/api/stats", "/api/stats", "/nowhere"):  # the replayed answer too
        response = secure.get(path, base_url="https://reg.example.org")
        assert (
            response.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
        )


def test_production_session_cookie_has_the_host_prefix_and_csrf_still_works(production_app):
    client = production_app.test_client()
    # Over HTTPS, Flask-WTF checks that the Referer is this site, as browsers send it.
    https = {
        "base_url": "https://reg.example.org",
        "headers": {"Referer": "https://reg.example.org/organizer/login"},
    }
    page = client.get("/organizer/login", **https).get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    response = client.post(
        "/organizer/login",
        data={"email": ADMIN_EMAIL, "password": PASSWORD, "csrf_token": token},
        **https,
    )
    assert response.status_code == 303
    cookie = response.headers.getlist("Set-Cookie")[-1]
    assert cookie.startswith("__Host-necreg_session=")
    attributes = [part.strip().lower() for part in cookie.split(";")[1:]]
    assert "secure" in attributes and "path=/" in attributes and "httponly" in attributes
    assert not any(a.startswith("domain") for a in attributes)
    # The session it carries works, CSRF included: the dashboard, then signing out.
    assert client.get("/organizer/", **https).status_code == 200
    token = page_csrf_https(client)
    assert client.post("/organizer/logout", data={"csrf_token": token}, **https).status_code == 303
    # Without its token a form is refused.
    assert client.post("/organizer/login", data={"email": ADMIN_EMAIL}, **https).status_code == 400


def page_csrf_https(client) -> str:
    https = {"base_url": "https://reg.example.org"}
    page = client.get("/organizer/", **https).get_data(as_text=True)
    return re.search(r'name="csrf_token"[^>]* value="([^"]+)"', page).group(1)


def test_development_keeps_the_plain_cookie_name(app):
    assert app.config["SESSION_COOKIE_NAME"] == "session"
    assert app.config["SESSION_COOKIE_SECURE"] is False


# --- what production refuses to start with ----------------------------------------------------


def test_a_sound_production_configuration_loads(tmp_path):
    settings = load(tmp_path, PRODUCTION, environ={})
    assert settings["ENV"] == "production"


@pytest.mark.parametrize(
    ("over", "named"),
    [
        ({"SECRET_KEY": "x"}, "SECRET_KEY"),
        ({"SECRET_KEY": "k" * 31}, "SECRET_KEY"),
        ({"SITE_URL": "http://reg.example.org"}, "SITE_URL"),
        ({"SITE_URL": "https://127.0.0.1:5000"}, "SITE_URL"),
        ({"SITE_URL": "https://localhost"}, "SITE_URL"),
        ({"SITE_URL": "https://[::1]/"}, "SITE_URL"),
        ({"SITE_URL": "https://0.0.0.0"}, "SITE_URL"),
        ({"MAIL_BACKEND": "file"}, "MAIL_BACKEND"),
        ({"RATELIMIT_STORAGE_URI": "memory://"}, "RATELIMIT_STORAGE_URI"),
    ],
)
def test_production_refuses_unsafe_settings_naming_them(tmp_path, over, named):
    with pytest.raises(ConfigError, match=named):
        load(tmp_path, {**PRODUCTION, **over}, environ={})
    # The same in development starts (SITE_URL on loopback is the embedded default).
    load(tmp_path, {**PRODUCTION, **over, "ENV": "development"}, environ={})


def test_a_secret_of_32_bytes_in_other_letters_is_long_enough(tmp_path):
    load(tmp_path, {**PRODUCTION, "SECRET_KEY": "é" * 16}, environ={})


def test_environment_settings_are_checked_as_well(tmp_path):
    environ = {f"NECREG_{k}": v for k, v in PRODUCTION.items()} | {"NECREG_MAIL_BACKEND": "file"}
    with pytest.raises(ConfigError, match="MAIL_BACKEND"):
        load(tmp_path, environ=environ)


# --- SMTP: a login only inside TLS; TLS from the start ----------------------------------------


@pytest.mark.parametrize("env", ["development", "production"])
def test_an_smtp_login_without_tls_is_refused_at_start(tmp_path, env):
    over = {**PRODUCTION, "ENV": env, "MAIL_USERNAME": "necreg", "MAIL_PASSWORD": "pw"}
    with pytest.raises(ConfigError, match="MAIL_USERNAME"):
        load(tmp_path, over, environ={})
    load(tmp_path, {**over, "MAIL_USE_TLS": True}, environ={})
    load(tmp_path, {**over, "MAIL_USE_SSL": True}, environ={})
    load(tmp_path, {**over, "MAIL_PORT": 465}, environ={})  # the port of TLS from the start
    with pytest.raises(ValueError, match="TLS"):
        SMTPBackend("127.0.0.1", 25, username="necreg", password="pw")


def test_starttls_and_implicit_tls_exclude_each_other(tmp_path):
    with pytest.raises(ConfigError, match="MAIL_USE_TLS"):
        load(tmp_path, {**PRODUCTION, "MAIL_USE_TLS": True, "MAIL_PORT": 465}, environ={})


def test_the_backend_is_chosen_from_the_settings(tmp_path):
    base = {**PRODUCTION, "MAIL_USERNAME": "u", "MAIL_PASSWORD": "p"}
    implied = backend_from_config(load(tmp_path, {**base, "MAIL_PORT": 465}, environ={}), tmp_path)
    assert (implied.implicit_tls, implied.use_tls) == (True, False)
    chosen = backend_from_config(
        load(tmp_path, {**base, "MAIL_PORT": 2465, "MAIL_USE_SSL": True}, environ={}), tmp_path
    )
    assert (chosen.implicit_tls, chosen.port) == (True, 2465)
    starttls = backend_from_config(
        load(tmp_path, {**base, "MAIL_PORT": 587, "MAIL_USE_TLS": True}, environ={}), tmp_path
    )
    assert (starttls.implicit_tls, starttls.use_tls) == (False, True)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key, made by openssl."""
    where = tmp_path_factory.mktemp("tls")
    cert, key = where / "cert.pem", where / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


class Logins:
    """An aiosmtpd authenticator that takes one user and password, and says who logged in."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, bool]] = []
        self.lock = threading.Lock()

    def __call__(self, server, session, envelope, mechanism, auth_data):
        ok = (auth_data.login, auth_data.password) == (b"necreg", b"secret")
        # STARTTLS sets session.ssl; a connection in TLS from the start has an SSL object.
        tls = session.ssl is not None or server.transport.get_extra_info("ssl_object") is not None
        with self.lock:
            self.seen.append((auth_data.login.decode(), tls))
        return AuthResult(success=ok)


def _outbox_message() -> OutboxMessage:
    return OutboxMessage(
        id=7, kind="test", subject="Hello", to_address="ada@example.org",
        text_body="Hello over TLS", html_body=None, headers={}, attachments=[],
    )  # fmt: skip


def _client_context(cert: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cert))


@pytest.mark.parametrize("kind", ["starttls", "implicit"])
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
def test_login_and_delivery_over_tls_to_a_real_server(certificate, kind):
    cert, key = certificate
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert, key)
    inbox, logins, port = Inbox(), Logins(), free_port()
    options = {"authenticator": logins, "auth_required": True, "auth_require_tls": True}
    if kind == "starttls":
        options |= {"tls_context": server_context, "require_starttls": True}
    else:
        # aiosmtpd counts only STARTTLS as TLS for AUTH: the whole connection is TLS here.
        options |= {"ssl_context": server_context, "auth_require_tls": False}
    controller = Controller(inbox, hostname=HOST, port=port, **options)
    controller.start()
    try:
        backend = SMTPBackend(
            HOST, port, use_tls=kind == "starttls", implicit_tls=kind == "implicit",
            username="necreg", password="secret", timeout=10, tls_context=_client_context(cert),
        )  # fmt: skip
        message = _outbox_message()
        backend.send(build_message(message, "NEC <reg@nec.example>"), message)
        backend.close()
    finally:
        controller.stop()
    assert logins.seen == [("necreg", True)]  # the password crossed inside TLS
    assert [m["Subject"] for m in inbox.received] == ["Hello"]


def test_a_server_certificate_that_is_not_trusted_is_refused(certificate):
    cert, key = certificate
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert, key)
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname=HOST, port=port, ssl_context=server_context)
    controller.start()
    try:
        backend = SMTPBackend(HOST, port, implicit_tls=True, timeout=10)  # the system's CAs
        message = _outbox_message()
        with pytest.raises(ssl.SSLError):
            backend.send(build_message(message, "NEC <reg@nec.example>"), message)
    finally:
        controller.stop()
    assert inbox.received == []


# --- files under instance/ are private --------------------------------------------------------


def test_the_sqlite_file_and_its_folder_are_created_private(tmp_path):
    instance = tmp_path / "instance"
    app = create_app({"SECRET_KEY": "s", "INSTANCE_PATH": str(instance)})  # sqlite:///necreg.db
    with app.app_context():
        db.create_all()
        db.session.add(Event(**EVENT_DEFAULTS))
        db.session.commit()
        database = instance / "necreg.db"
        assert mode(instance) == 0o700
        assert mode(database) == 0o600
        wal = instance / "necreg.db-wal"
        assert wal.exists() and mode(wal) == 0o600
        db.engine.dispose()


def test_the_secret_key_file_and_its_folder_are_private(tmp_path):
    instance = tmp_path / "fresh"
    load(instance, environ={})
    assert mode(instance) == 0o700
    assert mode(instance / "secret_key") == 0o600


def test_outbox_files_and_their_folder_are_private(tmp_path):
    backend = FileBackend(tmp_path / "outbox")
    message = _outbox_message()
    backend.send(build_message(message, "NEC <reg@nec.example>"), message)
    assert mode(tmp_path / "outbox") == 0o700
    assert mode(backend.path_for(message)) == 0o600


# --- tokens masked in the access log ----------------------------------------------------------


def test_tokens_are_masked_in_gunicorns_access_log(tmp_path):
    log = tmp_path / "access.log"
    secrets = ["TOKENsecret1", "TOKENsecret2", "TOKENsecret3", "NEC-SECRET", "INVITEsecret"]
    with serving(tmp_path, workers=1, ACCESS_LOG=str(log)) as site:
        for path in (
            f"/registration/{secrets[0]}",
            f"/registration/{secrets[0]}/cancel",
            f"/interest/confirm/{secrets[1]}",
            f"/unsubscribe/{secrets[2]}",
            f"/certificates/{secrets[3]}",
            f"/organizer/set-password/{secrets[4]}",
            "/registration/lost-link",
        ):
            try:
                urllib.request.urlopen(site.url + path, timeout=30).close()  # noqa: S310
            except urllib.error.HTTPError as exc:
                exc.close()
    written = log.read_text()
    assert written.count("<masked>") == 6, written
    assert "/registration/<masked>/cancel" in written
    assert "/registration/lost-link" in written
    for secret in secrets:
        assert secret not in written


# --- every 403 in the security log ------------------------------------------------------------


def test_a_403_is_logged_with_path_account_and_address(app, staff_client, make_event, caplog):
    make_event()
    with app.app_context():
        from necreg.models import Organizer

        staff_id = db.session.execute(select(Organizer.id)).scalar_one()
    with caplog.at_level(logging.WARNING, logger="necreg.security"):
        response = staff_client.get(
            "/organizer/attendees", environ_base={"REMOTE_ADDR": "10.1.2.3"}
        )
    assert response.status_code == 403
    [record] = [r for r in caplog.records if "403" in r.getMessage()]
    assert record.name == "necreg.security"
    text = record.getMessage()
    assert "path=/organizer/attendees" in text
    assert f"account={staff_id}" in text and "address=10.1.2.3" in text


def test_an_anonymous_403_is_logged_as_anonymous(app, caplog):
    from flask import abort

    app.add_url_rule("/forbidden-here", "forbidden_here", lambda: abort(403))
    with caplog.at_level(logging.WARNING, logger="necreg.security"):
        assert app.test_client().get("/forbidden-here").status_code == 403
    assert "403 forbidden: path=/forbidden-here account=anonymous address=127.0.0.1" in caplog.text


def test_csrf_token_helper_still_finds_the_form(client, make_event):
    make_event()
    assert csrf_token(client)
