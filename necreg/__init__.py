"""necreg: registration and attendee management for the NEC Symposium."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the application. ``config`` overrides every other configuration source."""
    # triggers: the database triggers that metadata.create_all installs with the tables
    from . import (  # noqa: F401
        auth,
        database,
        error_reports,
        faults,
        health,
        logs,
        speed,
        triggers,
        web,
        webhooks,
    )
    from . import config as settings
    from .api.v1 import bp as api_v1_bp
    from .api.views import STATS_ANSWER
    from .api.views import bp as api_bp
    from .cli import register_commands
    from .extensions import csrf, db, limiter, migrate
    from .metrics import Request, RequestMetrics
    from .organizer import bp as organizer_bp
    from .public import bp as public_bp
    from .resources import resource_dir

    instance_path = (config or {}).get("INSTANCE_PATH") or os.environ.get("NECREG_INSTANCE_PATH")
    app = Flask(
        __name__,
        instance_path=str(Path(instance_path).resolve()) if instance_path else None,
        template_folder=str(resource_dir("templates")),
        static_folder=str(resource_dir("static")),
    )
    app.config.update(settings.load(Path(app.instance_path), config))
    app.config.setdefault("SQLALCHEMY_DATABASE_URI", app.config["DATABASE_URL"])
    app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", database.engine_options(app.config))
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    production = app.config["ENV"] == "production"
    app.config["SESSION_COOKIE_SECURE"] = production
    if production:
        # The __Host- prefix: browsers take the cookie only if it is Secure, for Path=/ and
        # without a Domain, so no other host (a subdomain) can set or overwrite it.
        app.config["SESSION_COOKIE_NAME"] = web.SESSION_COOKIE_PRODUCTION
        app.config["SESSION_COOKIE_PATH"] = "/"
        app.config["SESSION_COOKIE_DOMAIN"] = None
    app.json.sort_keys = False  # JSON keys in the order the contract lists them
    app.request_class = Request  # leaves the route matched where the request metrics read it
    logs.init_app(app)
    app.logger.setLevel(getattr(logging, str(app.config["LOG_LEVEL"]).upper(), logging.INFO))

    error_reports.init_app(app)
    database.create_private_sqlite_file(app.config["SQLALCHEMY_DATABASE_URI"], app.instance_path)
    db.init_app(app)
    database.init_app(app)
    faults.init_app(app)
    migrate.init_app(app, db, directory=str(resource_dir("migrations")))
    csrf.init_app(app)
    auth.init_app(app)
    limiter.init_app(app)
    web.init_app(app)
    webhooks.init_app(app)
    replayed = {"/api/stats": STATS_ANSWER}
    speed.init_app(app, replayed=replayed)
    app.wsgi_app = web.PolicyHeaders(app.wsgi_app, production=production)  # type: ignore[method-assign]
    register_commands(app)

    proxies = {
        key: int(app.config[f"PROXY_FIX_X_{key.upper()}"]) for key in ("for", "proto", "host")
    }
    if any(proxies.values()):
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=proxies["for"], x_proto=proxies["proto"], x_host=proxies["host"]
        )
    # Outermost: every request counted and given its id, the ones answered before Flask too.
    app.wsgi_app = RequestMetrics(app.wsgi_app, fixed_paths=replayed, left_out=health.PATHS)  # type: ignore[method-assign]
    app.wsgi_app = logs.RequestId(app.wsgi_app)  # type: ignore[method-assign]

    app.register_blueprint(health.bp)
    app.register_blueprint(public_bp)
    app.register_blueprint(api_bp)
    app.register_blueprint(api_v1_bp)
    app.register_blueprint(organizer_bp)
    return app
