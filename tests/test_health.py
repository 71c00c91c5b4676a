"""/healthz (the process is up, whatever the database does) and /readyz (the database answers
and its schema is the one the code's migrations end at; else 503 with the reason)."""

from __future__ import annotations

import pytest
from flask_migrate import downgrade, upgrade

from necreg import create_app
from necreg.extensions import db
from servers import free_port


@pytest.fixture
def unreachable_app(tmp_path):
    """The app on a PostgreSQL address where nothing listens: the database is down."""
    return create_app(
        {
            "DATABASE_URL": f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/none",
            "INSTANCE_PATH": str(tmp_path),
            "SECRET_KEY": "x",
        }
    )


def test_healthz_answers_without_the_database(unreachable_app):
    answer = unreachable_app.test_client().get("/healthz")
    assert answer.status_code == 200
    assert answer.json == {"status": "ok"}
    assert answer.headers["Cache-Control"] == "no-store"


def test_healthz_runs_no_query(app, client):
    from conftest import count_queries

    with count_queries(app) as statements:
        assert client.get("/healthz").status_code == 200
    assert statements == []


def test_readyz_is_503_with_the_reason_when_the_database_is_down(unreachable_app, caplog):
    answer = unreachable_app.test_client().get("/readyz")
    assert answer.status_code == 503
    assert answer.json == {"status": "not ready", "reason": "the database cannot be reached"}
    assert answer.headers["Cache-Control"] == "no-store"
    # What the database said goes to the log, not to whoever asked.
    assert "nobody" not in answer.get_data(as_text=True)
    assert any("readyz" in r.getMessage() for r in caplog.records)


def test_readyz_is_503_until_the_migrations_are_applied(app_config):
    app = create_app(app_config)
    client = app.test_client()
    answer = client.get("/readyz")
    assert answer.status_code == 503
    assert "no migration" in answer.json["reason"]
    assert "necreg db upgrade" in answer.json["reason"]
    with app.app_context():
        upgrade()
    answer = client.get("/readyz")
    assert (answer.status_code, answer.json) == (200, {"status": "ready"})
    with app.app_context():
        downgrade(revision="-1")  # the code is newer than the database
    answer = client.get("/readyz")
    assert answer.status_code == 503
    assert "run `necreg db upgrade`" in answer.json["reason"]
    with app.app_context():
        db.engine.dispose()


def test_the_operator_paths_are_never_rate_limited(app_config):
    """Even under a limit on every route (RATELIMIT_DEFAULT): a monitor polls them often."""
    from necreg.extensions import limiter

    # The limiter is one object for every app of the process: the default limit it takes
    # from this app must not stay for the apps of the tests after this one.
    kept = list(limiter.limit_manager._default_limits)
    try:
        app = create_app({**app_config, "RATELIMIT_DEFAULT": "2 per minute"})
        with app.app_context():
            db.create_all()
        client = app.test_client()
        statuses = {path: [client.get(path).status_code for _ in range(5)] for path in
                    ("/healthz", "/readyz", "/metrics", "/api/stats")}  # fmt: skip
    finally:
        limiter.limit_manager.set_default_limits(kept)
    assert statuses["/api/stats"][-1] == 429  # the default limit is in force
    assert statuses["/healthz"] == [200] * 5
    assert statuses["/readyz"] == [503] * 5  # created, not migrated: but never 429
    assert statuses["/metrics"] == [200] * 5
    with app.app_context():
        db.engine.dispose()
