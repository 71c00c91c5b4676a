"""Engine settings per database, so SQLite behaves as a sound embedded default."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import Engine

from .extensions import db
from .freshness import Watch, watch_for

#: How long a SQLite writer waits for another to finish before giving up, in milliseconds.
SQLITE_BUSY_TIMEOUT_MS = 15_000


def engine_options(config: dict[str, Any]) -> dict[str, Any]:
    if str(config["DATABASE_URL"]).startswith("sqlite"):
        return {}
    return {"pool_pre_ping": True, "pool_size": 5, "max_overflow": 5}


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers go on while one writer writes; several gunicorn workers share the file.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def init_app(app: Flask) -> None:
    with app.app_context():
        engine: Engine = db.engine
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _sqlite_pragmas)
        watch = watch_for(engine) if app.config["CHANGE_WATCH"] else None
        if watch is not None:
            app.extensions["necreg.watch"] = watch
            # Disposing of the engine (tests, shutdown) closes the watch's connection too.
            event.listen(engine, "engine_disposed", lambda _engine: watch.close())


def change_watch(app: Flask) -> Watch | None:
    """The app's watch on its database (freshness.py), if it can be watched."""
    return app.extensions.get("necreg.watch")


def include_object_for(dialect_name: str) -> Callable[..., bool]:
    """Alembic's ``include_object`` for comparing models and database: leaves out the indexes
    the models make only on another database (``Index(...).ddl_if(dialect=...)``)."""

    def include(obj: Any, _name: str, type_: str, reflected: bool, _compare_to: Any) -> bool:
        condition = getattr(obj, "_ddl_if", None)
        if type_ != "index" or reflected or condition is None or not condition.dialect:
            return True
        dialects = condition.dialect
        return dialect_name == dialects if isinstance(dialects, str) else dialect_name in dialects

    return include
