"""PostgreSQL lost in the middle of a burst of registrations through gunicorn (issue 16): a proxy
between the workers and the database is cut, as a restart cuts every connection and refuses
new ones, then restored. Each registration is either stored exactly once with its e-mail (and
answered 303), or refused with 503 and Retry-After; nothing is half-stored, no 500, and the
same workers take registrations again once the database is back (the pool checks each
connection before use, without a round trip)."""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest
from sqlalchemy import create_engine, select, text

from conftest import EVENT_DEFAULTS, PG_URL, postgres_schema_url, registration_form
from necreg import create_app
from necreg.extensions import db
from necreg.models import Attendee, Event, OutboxMessage
from servers import Browserless, CuttableProxy, GunicornServer

needs_postgres = pytest.mark.skipif(
    not PG_URL, reason="needs PostgreSQL: set NECREG_TEST_DATABASE_URL"
)

CLIENTS = 6
PER_CLIENT = 20


@pytest.fixture
def schema():
    name = f"necreg_fault_{int(time.time() * 1000) % 10**9}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{name}"'))
    try:
        yield name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
        admin.dispose()


def _through(url: str, port: int) -> str:
    """``url`` with the database server's port replaced (to go through the proxy)."""
    from sqlalchemy import make_url

    return make_url(url).set(port=port).render_as_string(hide_password=False)


@needs_postgres
def test_a_database_lost_mid_burst_stores_each_registration_once_or_refuses_it(schema, tmp_path):
    from sqlalchemy import make_url

    direct = postgres_schema_url(schema)
    app = create_app({"DATABASE_URL": direct, "SECRET_KEY": "x", "INSTANCE_PATH": str(tmp_path)})
    with app.app_context():
        db.create_all()
        db.session.add(Event(**EVENT_DEFAULTS))
        db.session.commit()
        db.engine.dispose()
    proxy = CuttableProxy(make_url(PG_URL).port or 5432)
    settings = {
        "DATABASE_URL": _through(direct, proxy.port),
        "SECRET_KEY": "fault-test-secret-of-enough-length",
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "RATELIMIT_ENABLED": "false",
        "REGISTER_MIN_SECONDS": "0",
    }
    outcomes: list[tuple[str, int, str]] = []
    lock = threading.Lock()
    try:
        with GunicornServer(settings, workers=2) as server:

            def client(n: int) -> None:
                browser = Browserless()  # the form once: its CSRF token serves every POST
                token = browser.csrf(server.url + "/register")
                for i in range(PER_CLIENT):
                    email = f"c{n}-{i}@example.org"
                    form = registration_form(csrf_token=token, email=email)
                    status, _body, headers = browser.open(server.url + "/register", form)
                    with lock:
                        outcomes.append((email, status, headers.get("Retry-After") or ""))
                    if status == 503:
                        time.sleep(0.2)  # not waiting the Retry-After: the cut is short

            threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
            for thread in threads:
                thread.start()
            while len(outcomes) < CLIENTS * PER_CLIENT // 4:
                time.sleep(0.05)
            proxy.cut()  # the database restarts: every connection goes, new ones are refused
            time.sleep(2)
            proxy.restore()
            for thread in threads:
                thread.join(timeout=120)
            # The same workers take registrations again.
            browser = Browserless()
            form = registration_form(
                csrf_token=browser.csrf(server.url + "/register"), email="after@example.org"
            )
            assert browser.open(server.url + "/register", form)[0] == 303
    finally:
        proxy.stop()

    statuses = Counter(status for _email, status, _retry in outcomes)
    print(f"\nsent {len(outcomes)}, answered {dict(statuses)}")
    assert len(outcomes) == CLIENTS * PER_CLIENT
    assert set(statuses) <= {303, 503}, statuses  # never a 500
    assert statuses[503] > 0, "the cut came too late to meet a registration"
    assert all(retry for _e, status, retry in outcomes if status == 503)
    with app.app_context():
        stored = Counter(db.session.execute(select(Attendee.email)).scalars())
        mails = Counter(
            db.session.execute(
                select(OutboxMessage.to_address).where(OutboxMessage.kind == "confirmation")
            ).scalars()
        )
        db.session.remove()
        db.engine.dispose()
    accepted = {email for email, status, _r in outcomes if status == 303}
    refused = {email for email, status, _r in outcomes if status == 503}
    assert all(n == 1 for n in stored.values())  # stored once
    assert stored == mails  # each with its e-mail: nothing half-stored
    lost = accepted - set(stored)
    assert lost == set()
    # A refusal whose commit reached the database before the cut (its answer lost on the
    # way back) is stored: the person's private link mail tells them so. Count them.
    in_doubt = refused & set(stored)
    print(
        f"stored {len(stored) - 1} of {len(outcomes)}, refused with 503 {len(refused)}"
        f" (of which committed before the cut: {len(in_doubt)}), lost {len(lost)}"
    )
    assert set(stored) == accepted | in_doubt | {"after@example.org"}


@pytest.fixture
def proxied(tmp_path):
    """A proxy to PostgreSQL, and the engine of an app (no change watch) that goes through it."""
    from sqlalchemy import make_url

    proxy = CuttableProxy(make_url(PG_URL).port or 5432)
    try:
        app = create_app(
            {
                "DATABASE_URL": _through(PG_URL, proxy.port),
                "SECRET_KEY": "x",
                "INSTANCE_PATH": str(tmp_path),
                "CHANGE_WATCH": False,
            }
        )
        with app.app_context():
            engine = db.engine
        try:
            yield proxy, engine
        finally:
            engine.dispose()
    finally:
        proxy.stop()


@needs_postgres
def test_a_checkout_sends_nothing_yet_a_connection_the_server_closed_is_replaced(proxied):
    """The pool takes a connection without a round trip (no ``SELECT 1`` per request), and a
    connection the server has closed meanwhile (a restart, a terminated backend) is replaced
    at checkout: the statement after it runs, with no error."""
    proxy, engine = proxied
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        before = proxy.sent
        for _ in range(20):
            with engine.connect():
                pass
        assert proxy.sent == before, "a checkout sent something to the database"

        # The server ends the pooled connection's backend.
        with admin.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            deadline = time.monotonic() + 10
            while conn.execute(
                text("SELECT 1 FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}
            ).first():
                assert time.monotonic() < deadline, "the backend did not end"
                time.sleep(0.02)
        while proxy.open:  # its last words cross the proxy, which then closes the pair
            assert time.monotonic() < deadline, "the proxy kept the connection"
            time.sleep(0.02)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT pg_backend_pid()")).scalar_one() != pid

        # Every connection is cut, as a restart cuts them.
        proxy.cut()
        proxy.restore()
        with engine.connect() as conn:
            assert conn.execute(text("SELECT 1")).scalar_one() == 1
    finally:
        admin.dispose()


@needs_postgres
def test_a_connection_idle_for_long_is_pinged_so_a_silent_drop_is_replaced(proxied, monkeypatch):
    """A connection dropped without a word (a firewall forgot it) shows nothing on its
    socket; one idle for longer than IDLE_PING_SECONDS is pinged, and replaced if the ping
    fails."""
    proxy, engine = proxied
    monkeypatch.setattr("necreg.database.IDLE_PING_SECONDS", 1.0)
    pings = []
    ping = engine.dialect.do_ping
    monkeypatch.setattr(engine.dialect, "do_ping", lambda conn: pings.append(1) or ping(conn))
    with engine.connect() as conn:
        pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
    with engine.connect():  # used again at once: not pinged
        pass
    assert pings == []
    proxy.forget()
    time.sleep(1.5)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT pg_backend_pid()")).scalar_one() != pid
    assert pings == [1]  # the dead connection's; the new one is not pinged


def test_drivers_other_than_psycopg_are_pinged_before_use():
    from necreg.database import engine_options

    assert engine_options({"DATABASE_URL": "postgresql+psycopg2://h/d"})["pool_pre_ping"]
    assert not engine_options({"DATABASE_URL": "postgresql+psycopg://h/d"})["pool_pre_ping"]


def test_a_database_that_cannot_be_opened_answers_503_with_retry_after(tmp_path):
    gone = tmp_path / "no-such-folder" / "necreg.db"
    app = create_app(
        {"DATABASE_URL": f"sqlite:///{gone}", "SECRET_KEY": "x", "INSTANCE_PATH": str(tmp_path)}
    )
    client = app.test_client()
    for path in ("/", "/register", "/api/stats"):
        answer = client.get(path)
        assert answer.status_code == 503, path
        assert answer.headers["Retry-After"] == "5"
        assert "nothing was saved" in answer.get_data(as_text=True)
    with app.app_context():
        db.engine.dispose()
