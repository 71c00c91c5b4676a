"""Fixtures: an app on a fresh database per test, on SQLite and (when
NECREG_TEST_DATABASE_URL is set) on PostgreSQL, each in a schema of its own."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from collections.abc import Callable, Iterator
from datetime import date
from typing import Any

import pytest
from flask import Flask, has_app_context
from flask.testing import FlaskClient
from sqlalchemy import create_engine, make_url, text
from sqlalchemy import event as sa_event

from necreg import create_app
from necreg.extensions import db
from necreg.models import Attendee, Event, new_code
from servers import SMTPServer

PG_URL = os.environ.get("NECREG_TEST_DATABASE_URL", "")
DATABASES = ["sqlite"] + (["postgresql"] if PG_URL else [])


def postgres_schema_url(schema: str) -> str:
    url = make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


@pytest.fixture(params=DATABASES)
def database_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    """A URL to an empty database: a new SQLite file, or a new PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'necreg-test.db'}"
        return
    schema = f"necreg_test_{secrets.token_hex(6)}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield postgres_schema_url(schema)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def is_postgres(database_url: str) -> bool:
    return database_url.startswith("postgresql")


#: Tests register and change registrations many times from one address, straight after
#: reading the form: the abuse limits are tested with their own settings (test_abuse.py).
TEST_ABUSE_SETTINGS: dict[str, Any] = {
    "REGISTER_MIN_SECONDS": 0,
    "REGISTER_RATE_LIMIT": "1000 per minute",
    "SELF_SERVICE_RATE_LIMIT": "1000 per minute",
}


@pytest.fixture
def app_config(database_url: str, tmp_path) -> dict[str, Any]:
    return {
        "TESTING": True,
        "SECRET_KEY": "test-secret",
        "DATABASE_URL": database_url,
        "INSTANCE_PATH": str(tmp_path / "instance"),
        **TEST_ABUSE_SETTINGS,
    }


@pytest.fixture
def app(app_config: dict[str, Any]) -> Iterator[Flask]:
    """The app on its empty database. No app context is held for the test (Flask-SQLAlchemy's
    advice): each request of the test client has its own, as in production, and a test that
    uses the database directly pushes one exactly where it needs it (``app.app_context()``)."""
    app = create_app(app_config)
    with app.app_context():
        db.create_all()
    yield app
    with app.app_context():
        db.engine.dispose()


def detached(obj: Any) -> Any:
    """``obj`` with every column loaded, taken out of its session: readable after the app
    context that loaded it has ended."""
    db.session.refresh(obj)
    db.session.expunge(obj)
    return obj


def saved(app: Flask, obj: Any) -> Any:
    """Add and commit ``obj``: in the test's app context if one is pushed (the object stays in
    its session), else in a context of its own (the object comes back detached, loaded)."""
    if has_app_context():
        db.session.add(obj)
        db.session.commit()
        return obj
    with app.app_context():
        db.session.add(obj)
        db.session.commit()
        return detached(obj)


def fresh(app: Flask, obj: Any) -> Any:
    """``obj`` as the database holds it now, loaded and detached (``obj`` itself is not
    changed): for looking at what a request did."""
    with app.app_context():
        found = db.session.get(type(obj), obj.id)
        assert found is not None, f"{obj!r} is gone"
        return detached(found)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask):
    return app.test_cli_runner()


#: The tests' event: an edition still to come (once an event is over, registration closes), far
#: enough ahead never to pass; EDITION_YEAR for the dates tests write.
EDITION_YEAR = 2099
EVENT_DEFAULTS: dict[str, Any] = {
    "slug": "nec-2099",
    "name": "NEC Symposium",
    "tagline": "Building a World Without NEC",
    "starts_on": date(EDITION_YEAR, 9, 7),
    "ends_on": date(EDITION_YEAR, 9, 10),
    "venue": "Chicago",
    "hosts": ["NEC Society", "Cincinnati Children's", "UNC Children's"],
    "is_current": True,
    "sessions": 40,
    "faculty": 100,
    "description": "The world's largest meeting dedicated to NEC.",
}


@pytest.fixture
def make_event(app: Flask) -> Callable[..., Event]:
    def make(**over: Any) -> Event:
        return saved(app, Event(**{**EVENT_DEFAULTS, **over}))

    return make


@pytest.fixture
def make_attendee(app: Flask) -> Callable[..., Attendee]:
    counter = iter(range(1, 1_000_000))

    def make(event: Event, **over: Any) -> Attendee:
        n = next(counter)
        values: dict[str, Any] = {
            "event_id": event.id,
            "code": new_code("NEC"),
            "status": "confirmed",
            "role": "clinician",
            "first_name": f"First{n}",
            "last_name": f"Last{n}",
            "email": f"person{n}@example.org",
            "institution": f"Institution {n}",
            "country": "US",
            "badge_name": f"First{n} Last{n}",
        }
        values.update(over)
        return saved(app, Attendee(**values))

    return make


@contextlib.contextmanager
def count_queries(app: Flask) -> Iterator[list[str]]:
    """The SQL statements the app's engine runs inside the block (for no-query-per-row tests)."""
    statements: list[str] = []

    def record(conn, cursor, statement, *args) -> None:
        statements.append(statement)

    with app.app_context():
        engine = db.engine
    sa_event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        sa_event.remove(engine, "before_cursor_execute", record)


CSRF_RE = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def csrf_token(client: FlaskClient, path: str = "/register") -> str:
    page = client.get(path).get_data(as_text=True)
    match = CSRF_RE.search(page)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def registration_form(**over: Any) -> dict[str, Any]:
    form = {
        "first_name": "Zoë",
        "last_name": "Núñez-李",
        "email": "zoe@example.org",
        "role": "scientist",
        "institution": "UNC Children's",
        "country": "US",
        "early_career": "y",
        "consent": "y",
        "badge_name": "",
    }
    form.update(over)
    return {k: v for k, v in form.items() if v is not None}


# --- A real browser against a real server (see tests/browser.py) -------------------------


@pytest.fixture(scope="session")
def browser():
    from browser import CHROMIUM, CHROMIUM_ARGS, chromium_missing

    if chromium_missing:
        pytest.skip(f"Chromium not installed at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class Site:
    """necreg served by gunicorn on a fresh SQLite database, with the app for looking inside."""

    def __init__(self, app: Flask, server) -> None:
        self.app = app
        self.server = server
        self.url = server.url


@contextlib.contextmanager
def serving(tmp_path, workers: int = 2, **extra: Any) -> Iterator[Site]:
    """necreg under gunicorn on a fresh SQLite database holding the NEC Symposium, with
    ``extra`` settings (an operator's config file)."""
    from servers import GunicornServer

    settings = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'site.db'}",
        "SECRET_KEY": "browser-test-secret",
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "STATS_REFRESH_SECONDS": 1,
        **TEST_ABUSE_SETTINGS,
        **extra,
    }
    app = create_app(settings)
    with app.app_context():
        db.create_all()
        db.session.add(Event(**EVENT_DEFAULTS))
        db.session.commit()
        db.engine.dispose()
    with GunicornServer(settings, workers=workers) as server:
        yield Site(app, server)


@pytest.fixture
def site(tmp_path) -> Iterator[Site]:
    with serving(tmp_path) as served:
        yield served


@pytest.fixture(params=["phone", "desktop"])
def viewport(request) -> str:
    return request.param


@pytest.fixture
def page(browser, viewport):
    from browser import VIEWPORTS

    context = browser.new_context(viewport=VIEWPORTS[viewport])
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


@pytest.fixture
def smtp_server() -> Iterator[SMTPServer]:
    """A real SMTP server on the loopback, started for the test."""
    server = SMTPServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()
