"""The public pages know without a query whether the database changed (necreg/speed/watch.py)."""

# ruff: noqa: F811 - pytest fixtures imported from organizer_fixtures are used as arguments

from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path

import pytest
from flask_migrate import downgrade, upgrade
from organizer_fixtures import admin_client, make_organizer  # noqa: F401
from sqlalchemy import create_engine, text

from conftest import EVENT_DEFAULTS, count_queries
from necreg import create_app, triggers
from necreg.extensions import db
from necreg.models import Event
from necreg.speed.memo import memo_of

ROOT = Path(__file__).resolve().parent.parent


def change_watch(app):
    return memo_of(app).watch


def load_migration(number: int, name: str):
    path = ROOT / "migrations" / "versions" / f"{number:04d}_{name}.py"
    spec = importlib.util.spec_from_file_location(f"migration_{number}", path)
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    return migration


def same_sql(a: list[str], b: list[str]) -> bool:
    """The same statements, but for white space."""
    return [" ".join(s.split()) for s in a] == [" ".join(s.split()) for s in b]


def stats(client) -> dict:
    response = client.get("/api/stats")
    assert response.status_code == 200
    return json.loads(response.get_data())


def seen_within(read, expected, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while read() != expected:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.001)
    return True


def other_connection_sets_sessions(database_url: str, event_id: int, sessions: int) -> None:
    """A change made outside this process's sessions (another worker, the CLI, plain SQL),
    moving the figures' version as the tallying trigger does."""
    engine = create_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text("UPDATE events SET sessions = :s WHERE id = :e"),
                {"s": sessions, "e": event_id},
            )
            conn.execute(
                text(
                    "INSERT INTO tallies (event_id, kind, key, shard, n, changed_at)"
                    " VALUES (:e, 'version', '', 99, 1, CURRENT_TIMESTAMP)"
                    " ON CONFLICT (event_id, kind, key, shard) DO UPDATE SET n = tallies.n + 1"
                ),
                {"e": event_id},
            )
    finally:
        engine.dispose()


def test_a_change_from_another_connection_is_seen_at_once(app, client, database_url, make_event):
    event = make_event(sessions=10)
    assert stats(client)["sessions"] == 10
    with count_queries(app) as statements:
        assert stats(client)["sessions"] == 10
    assert statements == []  # unchanged: answered from what this process computed
    other_connection_sets_sessions(database_url, event.id, 11)
    # SQLite: at once. PostgreSQL: when the notification has arrived, which is after the
    # other connection's commit returned (a fraction of a millisecond here).
    assert seen_within(lambda: stats(client)["sessions"], 11, seconds=2)
    assert b'data-counter="sessions">11<' in client.get("/").get_data()


def test_without_its_connection_the_watch_reads_the_database(
    app, client, database_url, make_event, monkeypatch
):
    """A lost connection (a restarted database) means reading every time, then reconnecting."""
    event = make_event(sessions=10)
    assert stats(client)["sessions"] == 10
    watch = change_watch(app)
    monkeypatch.setattr(watch, "RETRY_SECONDS", 3600.0)
    broken = watch._conn
    if app.config["DATABASE_URL"].startswith("postgresql"):
        pid = broken.info.backend_pid
        with app.app_context():
            with db.engine.begin() as conn:
                conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
            gone = text("SELECT count(*) FROM pg_stat_activity WHERE pid = :p")
            deadline = time.monotonic() + 10
            while db.session.execute(gone, {"p": pid}).scalar() and time.monotonic() < deadline:
                db.session.rollback()
                time.sleep(0.01)
    else:
        broken.close()
    watch._retry_at = 0.0
    other_connection_sets_sessions(database_url, event.id, 12)
    with count_queries(app) as statements:
        assert stats(client)["sessions"] == 12
    assert statements  # read from the database, not from memory
    with count_queries(app) as statements:
        stats(client)
    assert statements  # still no watch: it waits RETRY_SECONDS before connecting again
    monkeypatch.setattr(watch, "RETRY_SECONDS", 0.0)
    watch._retry_at = 0.0
    stats(client)  # connects again
    with count_queries(app) as statements:
        assert stats(client)["sessions"] == 12
    assert statements == []
    other_connection_sets_sessions(database_url, event.id, 13)
    assert seen_within(lambda: stats(client)["sessions"], 13, seconds=2)


def test_disposing_of_the_engine_closes_the_watch(app, client, make_event):
    make_event()
    stats(client)
    watch = change_watch(app)
    assert watch._conn is not None
    with app.app_context():
        db.engine.dispose()
    assert watch._conn is None


def test_an_in_memory_database_is_not_watched(tmp_path):
    app = create_app({"DATABASE_URL": "sqlite://", "INSTANCE_PATH": str(tmp_path)})
    assert change_watch(app) is None


def test_without_the_watch_every_request_reads_the_version(app_config):
    """CHANGE_WATCH off (LISTEN gets nothing behind a transaction-pooling PgBouncer)."""
    app = create_app({**app_config, "CHANGE_WATCH": False})
    assert change_watch(app) is None
    with app.app_context():
        db.create_all()
    try:
        with app.app_context():
            db.session.add(Event(**{**EVENT_DEFAULTS, "sessions": 10}))
            db.session.commit()
        client = app.test_client()
        stats(client)
        with count_queries(app) as statements:
            assert stats(client)["sessions"] == 10
        assert len(statements) == 1  # the snapshot, and nothing else while unchanged
    finally:
        with app.app_context():
            db.drop_all()
            db.engine.dispose()


def test_the_migration_installs_the_same_trigger_as_the_models():
    migration = load_migration(5, "change_notify")
    assert migration.POSTGRESQL_CREATE == triggers.NOTIFY_EVENTS


def test_the_migration_installs_the_same_tallying_triggers_as_the_models():
    from necreg.counters import _SQLITE_INSERT_TRIGGERS  # what a bulk load sets aside

    for name in _SQLITE_INSERT_TRIGGERS:
        assert any(s.startswith(f"CREATE TRIGGER {name} ") for s in triggers.COUNTING_SQLITE)
    migration = load_migration(15, "payment_holds")
    assert same_sql(migration.SQLITE_CREATE, triggers.COUNTING_SQLITE)
    assert same_sql(migration.POSTGRESQL_CREATE, triggers.COUNTING_POSTGRESQL)


@pytest.mark.parametrize("enabled", [True, False])
def test_the_limiter_does_not_run_before_every_request(tmp_path, enabled):
    """Only the sign-in is rate limited; its decorator checks it (see test_auth.py)."""
    from necreg.extensions import limiter

    settings = {"INSTANCE_PATH": str(tmp_path), "RATELIMIT_ENABLED": enabled}
    app = create_app({**settings, "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"})
    assert limiter._check_request_limit not in app.before_request_funcs.get(None, [])


@pytest.mark.parametrize(
    ("number", "name", "trigger", "table"),
    [
        (7, "attendee_change_notify", "NOTIFY_ATTENDEES", "attendees"),
        (8, "organizer_change_notify", "NOTIFY_ORGANIZERS", "organizers"),
    ],
)
def test_migrations_install_the_change_triggers_of_the_models(
    app_config, is_postgres, number, name, trigger, table
):
    migration = load_migration(number, name)
    assert getattr(triggers, trigger) == migration.POSTGRESQL_CREATE
    if not is_postgres:
        return
    app = create_app(app_config)
    listed = text("SELECT tgname FROM pg_trigger WHERE tgrelid = CAST(:t AS regclass)")
    with app.app_context():
        upgrade()
        names = db.session.execute(listed, {"t": table}).scalars().all()
        assert f"{table}_notify_change" in names
    # A context of its own: the session that read the names has ended before the DDL.
    with app.app_context():
        downgrade(revision=migration.down_revision)
        names = db.session.execute(listed, {"t": table}).scalars().all()
        assert f"{table}_notify_change" not in names
    with app.app_context():
        db.engine.dispose()


def test_a_signed_in_page_seen_again_costs_no_query(app, admin_client, make_event):
    make_event()
    admin_client.get("/organizer/attendees")
    with count_queries(app) as statements:
        assert admin_client.get("/organizer/attendees").status_code == 200
    assert statements == []


@pytest.mark.parametrize("change", ["is_active = false", "password_hash = 'another'"])
def test_an_organizer_changed_elsewhere_is_signed_out_at_once(
    app, admin_client, database_url, make_event, change
):
    make_event()

    def status() -> int:
        # Each request has an app context of its own: it starts without the user loaded.
        return admin_client.get("/organizer/attendees").status_code

    assert status() == 200
    with count_queries(app) as statements:
        assert status() == 200
    assert statements == []  # the organizer's row is kept while nothing changes
    engine = create_engine(database_url)  # another worker, the CLI, plain SQL
    try:
        with engine.begin() as conn:
            conn.execute(text(f"UPDATE organizers SET {change}"))
    finally:
        engine.dispose()
    # SQLite: at once. PostgreSQL: when the notice of the commit has arrived.
    assert seen_within(status, 302, seconds=2)


def test_stats_are_answered_without_flask_while_nothing_changed(app, client, make_event):
    """The busiest path: GET /api/stats from the last answer while the watch sees no change."""
    event = make_event(sessions=10)
    calls = []
    view = app.view_functions["api.stats"]
    app.view_functions["api.stats"] = lambda: calls.append(1) or view()
    first = client.get("/api/stats")
    assert len(calls) == 1
    again = client.get("/api/stats")
    assert len(calls) == 1  # not through Flask
    assert again.get_data() == first.get_data()
    assert again.headers["ETag"] == first.headers["ETag"]
    assert again.headers["Content-Type"] == "application/json"
    assert again.headers["Cache-Control"] == "no-cache"
    assert "script-src 'self'" in again.headers["Content-Security-Policy"]
    etag = first.headers["ETag"]
    assert client.get("/api/stats", headers={"If-None-Match": etag}).status_code == 304
    assert len(calls) == 1
    # Other forms of the question go to the view, which answers them the same way.
    listed = client.get("/api/stats", headers={"If-None-Match": f'"other", {etag}'})
    assert listed.status_code == 304
    assert client.head("/api/stats").status_code == 200
    assert len(calls) == 3
    with app.app_context():
        db.session.get(Event, event.id).sessions = 12
        db.session.commit()
    assert stats(client)["sessions"] == 12  # a change: through the view again
    assert len(calls) == 4


def test_without_a_watch_stats_always_go_through_the_view(app_config):
    app = create_app({**app_config, "CHANGE_WATCH": False})
    with app.app_context():
        db.create_all()
    try:
        with app.app_context():
            db.session.add(Event(**EVENT_DEFAULTS))
            db.session.commit()
        calls = []
        view = app.view_functions["api.stats"]
        app.view_functions["api.stats"] = lambda: calls.append(1) or view()
        client = app.test_client()
        stats(client)
        stats(client)
        assert len(calls) == 2
    finally:
        with app.app_context():
            db.drop_all()
            db.engine.dispose()
