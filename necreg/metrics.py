"""What /metrics tells Prometheus: requests by endpoint, method and status with their
durations, registrations by outcome, the outbox, and the change watch's reconnections.

Under gunicorn each worker counts in files of its own, in PROMETHEUS_MULTIPROC_DIR
(prometheus_client's multiprocess mode; gunicorn.conf.py makes the folder and sets the variable
before anything imports prometheus_client), and a scrape, answered by any one worker, adds up
every worker's files, those of workers that have exited too, so counts never go back when a
worker is replaced. Without that variable (``flask run``, the tests, the CLI) the counts are
this process's alone.

The outbox figures are read from the database at each scrape (``OutboxCollector``): they are
the database's, not any worker's.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from flask import Request as FlaskRequest
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, values
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import event
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, SessionTransaction

log = logging.getLogger("necreg.metrics")

#: The metrics this process counts (in multiprocess mode they are read back from the files).
REGISTRY = CollectorRegistry(auto_describe=True)

#: Seconds: from well under a millisecond (the replayed /api/stats) to a slow export.
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
REQUEST_DURATION = Histogram(
    "necreg_http_request_duration_seconds",
    "Requests answered, by route (its rule, never the address asked for), method and status, "
    "and how long the app took to answer them; _count is the number of requests.",
    ["endpoint", "method", "status"],
    buckets=DURATION_BUCKETS,
    registry=REGISTRY,
)
REGISTRATIONS = Counter(
    "necreg_registrations",
    "Registrations sent through the form, by outcome: the status given (confirmed, "
    "waitlisted, pending_payment; counted once stored) or why it was refused (closed, "
    "duplicate, refused, invalid, scripted, error).",
    ["outcome"],
    registry=REGISTRY,
)
WATCH_RECONNECTS = Counter(
    "necreg_change_watch_reconnects",
    "Times a worker's change watch connected again after losing its connection to the "
    "database, or failing to make one (speed/watch.py).",
    registry=REGISTRY,
)

#: The label of a request that matched no route (404, or 405 for a method no route takes).
UNMATCHED = "<unmatched>"
#: Methods counted by name; any other is counted as "other" (a client may send anything).
METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))


#: Where a request's route is left in the WSGI environ for RequestMetrics.
RULE_KEY = "necreg.url_rule"


class Request(FlaskRequest):
    """Flask's request, leaving the route it matched in the environ (RULE_KEY) too: Flask
    takes the request out of the environ when it is done with it, before RequestMetrics
    counts it; routing it a second time there would cost more than the property."""

    @property
    def url_rule(self):  # type: ignore[override]
        return self.__dict__.get("_url_rule")

    @url_rule.setter
    def url_rule(self, rule) -> None:
        self.__dict__["_url_rule"] = rule
        self.environ[RULE_KEY] = rule


def multiprocess() -> bool:
    """Whether the metrics are counted in PROMETHEUS_MULTIPROC_DIR's files (decided once, when
    prometheus_client was first imported)."""
    return bool(getattr(values.ValueClass, "_multiprocess", False))


class RequestMetrics:
    """WSGI middleware counting each request and the time the app took to answer it (until
    it hands back the body: a streamed export's writing is not in it), by route, method and
    status.

    Outermost, so that answers given before Flask (the replayed /api/stats, speed/wsgi.py)
    are counted too. The route is the one Flask matched (left in the environ by ``Request``,
    the app's request class); ``fixed_paths`` names the paths answered before Flask, which are
    their own rule. ``left_out``: paths not counted (the monitoring's
    own: a probe every few seconds is not the site's traffic).
    """

    def __init__(self, app: Callable, *, fixed_paths: Iterable[str], left_out: Iterable[str]):
        self.app = app
        self.fixed_paths = frozenset(fixed_paths)
        self.left_out = frozenset(left_out)
        #: (endpoint, method, status) -> its histogram, without prometheus_client's labels()
        #: (lock, label checks) at every request. Bounded: routes x methods x statuses.
        self._children: dict[tuple[str, str, str], Any] = {}

    def __call__(self, environ, start_response) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path in self.left_out:
            return self.app(environ, start_response)
        started = time.perf_counter()
        status = "500"  # if the app raises instead of answering

        def start(status_line, headers, exc_info=None):
            nonlocal status
            status = status_line[:3]
            return start_response(status_line, headers, exc_info)

        try:
            return self.app(environ, start)
        finally:
            self._observe(environ, path, status, time.perf_counter() - started)

    def _observe(self, environ, path: str, status: str, seconds: float) -> None:
        rule = environ.get(RULE_KEY)
        if rule is not None:
            endpoint = rule.rule
        else:
            endpoint = path if path in self.fixed_paths else UNMATCHED
        method = environ.get("REQUEST_METHOD", "")
        # Keyed by the method as counted: any word a client sends as its method is "other",
        # so the dict cannot be grown by made-up methods.
        key = (endpoint, method if method in METHODS else "other", status)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = REQUEST_DURATION.labels(*key)
        child.observe(seconds)


# --- registrations by outcome -------------------------------------------------------------

#: Where a session keeps the outcomes to count once (and only if) its transaction commits.
_PENDING_OUTCOMES = "necreg.metrics.registrations"


def count_registration(outcome: str) -> None:
    """Count a registration that ended as ``outcome`` (a refusal: nothing to wait for)."""
    REGISTRATIONS.labels(outcome).inc()


def count_registration_on_commit(session: Session, outcome: str) -> None:
    """Count a registration stored as ``outcome`` when ``session`` commits it; a rollback
    (a later step refused, the database went away) forgets it."""
    session.info.setdefault(_PENDING_OUTCOMES, []).append(outcome)


@event.listens_for(Session, "after_commit")
def _count_committed(session: Session) -> None:
    for outcome in session.info.pop(_PENDING_OUTCOMES, ()):
        REGISTRATIONS.labels(outcome).inc()


@event.listens_for(Session, "after_transaction_end")
def _forget_rolled_back(session: Session, transaction: SessionTransaction) -> None:
    # after_commit has taken those of a commit; what is left at the end of the outermost
    # transaction was rolled back (a savepoint's end is not the registration's).
    if transaction.parent is None and _PENDING_OUTCOMES in session.info:
        del session.info[_PENDING_OUTCOMES]


# --- what a scrape answers ----------------------------------------------------------------


class OutboxCollector(Collector):
    """The outbox as the database holds it at the scrape: messages pending and failed, and
    how long the oldest pending one has waited; ``necreg_database_up`` says whether they
    could be read."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from .mail.outbox import outbox_figures  # the outbox imports the models

        try:
            figures = outbox_figures(self.session)
        except SQLAlchemyError as exc:
            log.warning("metrics: the outbox could not be read: %s", exc)
            yield GaugeMetricFamily(
                "necreg_database_up", "Whether the database answered the scrape.", value=0
            )
            return
        finally:
            with contextlib.suppress(SQLAlchemyError):  # a lost connection: the pool drops it
                self.session.close()
        yield GaugeMetricFamily(
            "necreg_database_up", "Whether the database answered the scrape.", value=1
        )
        yield GaugeMetricFamily(
            "necreg_outbox_pending", "E-mails waiting to be sent.", value=figures.pending
        )
        yield GaugeMetricFamily(
            "necreg_outbox_failed",
            "E-mails given up on after their last attempt (an organizer may retry them).",
            value=figures.failed,
        )
        age = figures.age_of_oldest()
        yield GaugeMetricFamily(
            "necreg_outbox_oldest_pending_age_seconds",
            "How long the oldest pending e-mail has waited (0: none is pending).",
            value=age.total_seconds() if age is not None else 0.0,
        )


class _Together(Collector):
    def __init__(self, *collectors: Any) -> None:
        self.collectors = collectors

    def collect(self) -> Iterator[Any]:
        for collector in self.collectors:
            yield from collector.collect()


def exposition(session: Session) -> tuple[bytes, str]:
    """The metrics in Prometheus' text format, and its content type: every worker's counts
    (in multiprocess mode) or this process's, then the outbox read through ``session``."""
    counted: Collector = REGISTRY
    if multiprocess():
        counted = MultiProcessCollector(None, path=os.environ["PROMETHEUS_MULTIPROC_DIR"])
    return generate_latest(_Together(counted, OutboxCollector(session))), CONTENT_TYPE_LATEST
