"""gunicorn settings for necreg: `gunicorn -c gunicorn.conf.py necreg.wsgi:app`.

Each setting can be overridden on the command line or by GUNICORN_CMD_ARGS; the ones read from
the environment here are named NECREG_*. See the README, "Running in production".
"""

import atexit
import glob
import multiprocessing
import os
import shutil
import tempfile

from gunicorn.glogging import Logger

# --- metrics across workers ---------------------------------------------------------------
# Each worker counts in files of its own in PROMETHEUS_MULTIPROC_DIR, and /metrics adds them
# up (necreg/metrics.py). The variable must be set before anything imports prometheus_client,
# so here, before the app is loaded: a folder of this master's own unless the operator names
# one, which is then emptied of an earlier run's counts. The mark says whose folder it is, so
# that a reload of these settings (SIGHUP) keeps the counts, and a new master started by this
# one (USR2) makes its own.
METRICS_DIR = "PROMETHEUS_MULTIPROC_DIR"
# Not NECREG_*: those are settings, and an unknown setting stops the app.
METRICS_DIR_MARK = "PROMETHEUS_MULTIPROC_DIR_OF"  # "<master pid> made" or "... given"
_pid, _, _how = os.environ.get(METRICS_DIR_MARK, "").partition(" ")
if _pid != str(os.getpid()):
    if _how == "made" or not os.environ.get(METRICS_DIR):
        os.environ[METRICS_DIR] = tempfile.mkdtemp(prefix="necreg-metrics-")
        _how = "made"
    else:
        for _stale in glob.glob(os.path.join(os.environ[METRICS_DIR], "*.db")):
            os.remove(_stale)
        _how = "given"
    os.environ[METRICS_DIR_MARK] = f"{os.getpid()} {_how}"


@atexit.register
def _remove_metrics_dir():
    """The counts of a folder this master made go with it, however the master ends (a stop,
    or an app that fails to load: gunicorn's on_exit is not called then). Workers inherit
    this; the mark names the master, so a worker's exit leaves the folder alone."""
    if os.environ.get(METRICS_DIR_MARK) == f"{os.getpid()} made":
        shutil.rmtree(os.environ[METRICS_DIR], ignore_errors=True)


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
# Last: the request id the app answered with (X-Request-ID), as in the app's own lines.
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms "%(a)s" %({x-request-id}o)s'


class TokenMaskingLogger(Logger):
    """gunicorn's logger, writing the access log without the tokens of personal links
    (necreg.logs.TOKEN_IN_PATH)."""

    def atoms(self, resp, req, environ, request_time):
        # Imported here: these settings are also used to serve other checkouts (bench/run.py).
        from necreg.logs import mask_tokens

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


def child_exit(server, worker):
    """A worker has exited: its counts stay (they are added up still), its live gauges go."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_reload(server):
    """A reload (SIGHUP) has set gunicorn's log handlers up anew, in its own format."""
    config = getattr(server.app.wsgi(), "config", {})
    if "LOG_FORMAT" in config:
        from necreg.logs import format_gunicorn_logs

        format_gunicorn_logs(str(config["LOG_FORMAT"]))
