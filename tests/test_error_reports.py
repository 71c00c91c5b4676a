"""Errors reported to Sentry when SENTRY_DSN is set, with personal data kept out: a real SDK
sending to a small Sentry stand-in on the loopback, and the scrubber on its own."""

from __future__ import annotations

import gzip
import json
import logging
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import sentry_sdk

from necreg import create_app
from necreg.error_reports import mask_text, scrub
from necreg.extensions import db

EMAIL = "zebedee.quartermain@example.org"
FIRST, LAST = "Zebedee", "Quartermain"
TOKEN = "TOKENsecretLINK42"
COOKIE = "cookieSECRET99"


class SentryStandIn:
    """An HTTP server on 127.0.0.1 keeping the bodies of the envelopes it is sent."""

    def __init__(self) -> None:
        received = self.received = []
        arrived = self.arrived = threading.Event()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                encoding = self.headers.get("Content-Encoding", "")
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding == "deflate":
                    body = zlib.decompress(body)
                received.append((self.path, body.decode()))
                arrived.set()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def dsn(self) -> str:
        return f"http://publickey@127.0.0.1:{self.port}/1"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def sentry():
    stand_in = SentryStandIn()
    yield stand_in
    # The SDK is the process's: leave it as the other tests expect it, off.
    sentry_sdk.get_client().close()
    sentry_sdk.get_global_scope().set_client(None)
    stand_in.stop()


def test_without_a_dsn_nothing_is_started(app):
    assert not sentry_sdk.get_client().is_active()


def test_an_error_arrives_without_personal_data(app_config, sentry):
    settings = {"SENTRY_DSN": sentry.dsn, "TESTING": False, "WTF_CSRF_ENABLED": False}
    app = create_app({**app_config, **settings})
    with app.app_context():
        db.create_all()

    @app.post("/registration/<token>/explode")
    def explode(token):
        logging.getLogger("necreg.test").info("looking at %s from 198.51.100.23", EMAIL)
        first_name, last_name = FIRST, LAST  # noqa: F841 - locals the SDK must not send
        raise RuntimeError(f"could not save the registration of {EMAIL}")

    client = app.test_client()
    client.set_cookie("necreg_session", COOKIE)
    answer = client.post(
        f"/registration/{TOKEN}/explode?email={EMAIL}",
        data={"first_name": FIRST, "last_name": LAST, "email": EMAIL},
        headers={"X-Request-ID": "sentry-req-1", "Authorization": f"Bearer {TOKEN}"},
    )
    assert answer.status_code == 500
    sentry_sdk.get_client().flush(timeout=10)
    assert sentry.arrived.wait(10), "no event reached the Sentry stand-in"
    path, envelope = sentry.received[0]
    assert path == "/api/1/envelope/"
    items = [json.loads(line) for line in envelope.splitlines() if line.strip()]
    event = next(item for item in items if "exception" in item)
    assert event["exception"]["values"][-1]["type"] == "RuntimeError"
    assert "could not save the registration of [email]" in envelope
    assert event["tags"]["request_id"] == "sentry-req-1"
    assert event["request"]["method"] == "POST"
    assert event["request"]["url"].endswith("/registration/<masked>/explode")
    for secret in (EMAIL, "zebedee", FIRST, LAST, TOKEN, COOKIE, "198.51.100.23", "Bearer"):
        assert secret.lower() not in envelope.lower(), secret
    with app.app_context():
        db.engine.dispose()


def test_the_scrubber_leaves_nothing_personal():
    event = {
        "request": {
            "method": "GET",
            "url": f"http://site/registration/{TOKEN}/cancel",
            "query_string": f"email={EMAIL}",
            "cookies": {"session": COOKIE},
            "data": {"first_name": FIRST},
            "headers": {"Cookie": COOKIE, "User-Agent": "curl", "X-Forwarded-For": "1.2.3.4"},
            "env": {"REMOTE_ADDR": "1.2.3.4"},
        },
        "user": {"email": EMAIL, "ip_address": "1.2.3.4"},
        "exception": {
            "values": [
                {
                    "type": "IntegrityError",
                    "value": (
                        "(psycopg.errors.UniqueViolation) duplicate key\n"
                        f"DETAIL:  Key (event_id, lower(email::text))=(1, {EMAIL}) already exists."
                        f"\n[SQL: INSERT INTO attendees ...]\n[parameters: {{'first_name': "
                        f"'{FIRST}', 'email': '{EMAIL}'}}]\n(Background on this error at: x)"
                    ),
                },
                {
                    "type": "CheckViolation",
                    "value": f"Failing row contains (7, {FIRST}, {LAST}, {EMAIL}).",
                },
            ]
        },
        "breadcrumbs": {
            "values": [
                {"message": "sign-in from 2001:db8::17 and 198.51.100.23", "data": {"x": 1}},
                {"message": f"link /unsubscribe/{TOKEN} opened", "category": "log"},
            ]
        },
        "extra": {"badge_name": f"{FIRST} {LAST}", "kept": "at 12:30:45 all well"},
    }
    text = json.dumps(scrub(event))
    for secret in (EMAIL, FIRST, LAST, TOKEN, COOKIE, "1.2.3.4", "2001:db8::17", "198.51"):
        assert secret not in text, secret
    assert "Key (event_id, lower(email::text))=([Filtered]) already exists" in text
    assert "at 12:30:45 all well" in text  # a time is not an address
    assert "/unsubscribe/<masked>" in text
    assert "User-Agent" in text and "Cookie" not in text


def test_mask_text_keeps_what_is_not_personal():
    assert mask_text("GET /registration/lost-link 404") == "GET /registration/lost-link 404"
    assert mask_text("worker 3 took 12.5 ms") == "worker 3 took 12.5 ms"
