"""gunicorn settings for necreg: `gunicorn -c gunicorn.conf.py necreg.wsgi:app`.

Each setting can be overridden on the command line or by GUNICORN_CMD_ARGS; the ones read from
the environment here are named NECREG_*. See the README, "Running in production".
"""

import multiprocessing
import os
import re

from gunicorn.glogging import Logger

bind = os.environ.get("NECREG_BIND", "127.0.0.1:8000")
# The usual (2 x cores) + 1 sync workers: requests are short and wait on the database.
workers = int(os.environ.get("NECREG_WORKERS", multiprocessing.cpu_count() * 2 + 1))
worker_class = "sync"
# A request that takes longer than this is stuck: the worker is killed and replaced.
timeout = int(os.environ.get("NECREG_WORKER_TIMEOUT", 30))
graceful_timeout = 20
keepalive = 5
# Recycle workers now and then, with jitter so they do not all restart at once.
max_requests = 10_000
max_requests_jitter = 1_000
# Load the app once in the master: faster worker starts and shared read-only memory.
preload_app = True
accesslog = os.environ.get("NECREG_ACCESS_LOG", "-") or None  # "" turns it off
errorlog = "-"
loglevel = os.environ.get("NECREG_GUNICORN_LOG_LEVEL", "info")
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms "%(a)s"'

#: The secret part of the paths that a personal link opens (the link is the key to a
#: registration, an unsubscription, a certificate): kept out of the access log.
TOKEN_IN_PATH = re.compile(
    r"(/(?:registration|interest/confirm|unsubscribe|certificates|api/registrations"
    r"|organizer/set-password)/)"
    r"(?!lost-link(?:[/?#\s]|$))[^/?#\s]+"
)
MASK = "<masked>"


def mask_tokens(text):
    """``text`` (a request line, a path, a Referer) with every token of TOKEN_IN_PATH masked."""
    return TOKEN_IN_PATH.sub(r"\1" + MASK, text) if isinstance(text, str) else text


class TokenMaskingLogger(Logger):
    """gunicorn's logger, writing the access log without the tokens of personal links."""

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        for key in ("r", "U", "f", "{referer}i"):
            if key in atoms:
                atoms[key] = mask_tokens(atoms[key])
        return atoms


logger_class = TokenMaskingLogger
# Client addresses behind a reverse proxy are handled by the app (PROXY_FIX_* settings), so
# gunicorn trusts forwarded headers only from these addresses.
forwarded_allow_ips = os.environ.get("NECREG_FORWARDED_ALLOW_IPS", "127.0.0.1,::1")


def when_ready(server):
    """Compile the site's templates once in the master, before any worker is forked: workers,
    and those that replace them after max_requests, start with them compiled instead of
    spending their first requests on it (~25 ms for the attendee list)."""
    jinja_env = getattr(server.app.wsgi(), "jinja_env", None)  # any WSGI app may be served
    if jinja_env is not None:
        for name in jinja_env.list_templates(extensions=["html"]):
            jinja_env.get_template(name)


def post_fork(server, worker):
    """Connections opened by the master before forking must not be shared with workers."""
    app = server.app.wsgi()
    if "sqlalchemy" in getattr(app, "extensions", {}):
        from necreg.extensions import db

        with app.app_context():
            db.engine.dispose(close=False)
