"""Flask extensions, created unbound here and bound to an app in create_app."""

from flask import Flask
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
csrf = CSRFProtect()


class AppLimiter(Limiter):
    """Flask-Limiter, re-read from each app's config.

    The stock extension keeps the first app's key prefix and "enabled" flag for every later app
    bound to the same (module-level) instance; tests and the CLI build many apps in one process.
    """

    def init_app(self, app: Flask) -> None:
        self.enabled = bool(app.config["RATELIMIT_ENABLED"])
        self._key_prefix = str(app.config["RATELIMIT_KEY_PREFIX"])
        # When Redis is unreachable, count in this process rather than refuse every sign-in.
        app.config.setdefault("RATELIMIT_IN_MEMORY_FALLBACK_ENABLED", True)
        self._storage_dead = False
        super().init_app(app)
        # Only decorated views are limited here (no default or application-wide limits), and
        # the decorator checks its own limits; the check the extension runs before every
        # request would only find nothing to do, at a cost on the busiest public pages.
        manager = self.limit_manager
        limits = (manager._default_limits, manager._application_limits, manager._blueprint_limits)
        if not any(limits):
            _remove(app.before_request_funcs, self._check_request_limit)
            if not app.config.get("RATELIMIT_HEADERS_ENABLED"):
                # Its after-request hook only adds X-RateLimit headers, and its teardown resets
                # state kept on the request context, which ends with the request anyway.
                for hook in list(app.after_request_funcs.get(None, [])):
                    if getattr(hook, "args", None) == (self,):  # partial(__inject_headers, self)
                        _remove(app.after_request_funcs, hook)
                _remove(app.teardown_request_funcs, self._Limiter__release_context)


def _remove(hooks: dict, hook) -> None:
    """Take ``hook`` out of an app's app-wide hooks, if it is there (none when disabled)."""
    funcs = hooks.get(None, [])
    if hook in funcs:
        funcs.remove(hook)


login_manager = LoginManager()
limiter = AppLimiter(key_func=get_remote_address)
