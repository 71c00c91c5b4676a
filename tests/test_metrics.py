"""/metrics: who may read it, what it counts (requests by route, registrations by outcome, the
outbox, the change watch's reconnections), and, under gunicorn with several workers, counts
that add up to exactly what a load generator sent."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from conftest import csrf_token, registration_form, serving
from necreg import create_app
from necreg.extensions import db
from necreg.models import MAIL_FAILED, MAIL_PENDING, MAIL_SENT, OutboxMessage
from necreg.registration import Registrant, register_with_fee
from necreg.speed.watch import watch_for
from servers import BIN, ROOT, free_port

WRK = shutil.which("wrk")


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape: (name, sorted labels) -> value."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def scrape(client) -> dict:
    answer = client.get("/metrics")
    assert answer.status_code == 200, answer.text
    return samples(answer.get_data(as_text=True))


def requests_of(scraped: dict, endpoint: str, method: str = "GET", status: str = "200") -> float:
    labels = (("endpoint", endpoint), ("method", method), ("status", status))
    return scraped.get(("necreg_http_request_duration_seconds_count", labels), 0.0)


def outcome(scraped: dict, name: str) -> float:
    return scraped.get(("necreg_registrations_total", (("outcome", name),)), 0.0)


def value(scraped: dict, name: str) -> float:
    return scraped[(name, ())]


# --- who may read /metrics ---------------------------------------------------------------


def test_without_a_token_the_loopback_only_may_read(client):
    assert client.get("/metrics").status_code == 200
    assert client.get("/metrics").content_type.startswith("text/plain")
    outside = client.get("/metrics", environ_base={"REMOTE_ADDR": "203.0.113.7"})
    assert outside.status_code == 403
    assert "METRICS_TOKEN" in outside.get_data(as_text=True)
    ipv6 = client.get("/metrics", environ_base={"REMOTE_ADDR": "::1"})
    assert ipv6.status_code == 200


def test_a_request_through_a_proxy_on_the_loopback_is_not_local(client):
    """A reverse proxy on the same machine makes every visitor's request come from the
    loopback; the header it adds gives it away."""
    for header in ("X-Forwarded-For", "Forwarded", "X-Real-IP"):
        assert client.get("/metrics", headers={header: "203.0.113.7"}).status_code == 403


@pytest.fixture
def token_client(app_config):
    app = create_app({**app_config, "METRICS_TOKEN": "s3cret-metrics-token"})
    with app.app_context():
        db.create_all()
    yield app.test_client()
    with app.app_context():
        db.engine.dispose()


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-token", "Basic czNjcmV0LW1ldHJpY3MtdG9rZW4=", "s3cret-metrics-token"],
)
def test_with_a_token_a_request_without_it_is_refused_even_from_the_loopback(
    token_client, authorization
):
    headers = {"Authorization": authorization} if authorization else {}
    answer = token_client.get("/metrics", headers=headers)
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    assert "necreg_" not in answer.get_data(as_text=True)


def test_with_a_token_the_bearer_reads_from_anywhere(token_client):
    headers = {"Authorization": "Bearer s3cret-metrics-token"}
    answer = token_client.get(
        "/metrics", headers=headers, environ_base={"REMOTE_ADDR": "203.0.113.7"}
    )
    assert answer.status_code == 200
    assert "necreg_outbox_pending" in answer.get_data(as_text=True)
    assert answer.headers["Cache-Control"] == "no-store"


# --- requests ------------------------------------------------------------------------------


def test_requests_are_counted_by_route_never_by_the_address_asked(client, make_event):
    make_event()
    before = scrape(client)
    client.get("/")
    client.get("/")
    client.get("/registration/SECRETtoken123")
    client.get("/no/such/page")
    client.open("/", method="BREW")
    after = scrape(client)
    assert requests_of(after, "/") - requests_of(before, "/") == 2
    assert (
        requests_of(after, "/registration/<token>", status="404")
        - requests_of(before, "/registration/<token>", status="404")
        == 1
    )
    assert (
        requests_of(after, "<unmatched>", status="404")
        - requests_of(before, "<unmatched>", status="404")
        == 1
    )
    assert (
        requests_of(after, "<unmatched>", "other", "405")
        - requests_of(before, "<unmatched>", "other", "405")
        == 1
    )
    text = client.get("/metrics").get_data(as_text=True)
    assert "SECRETtoken123" not in text
    assert "/no/such/page" not in text
    assert "BREW" not in text


def test_the_replayed_stats_answer_is_counted_too(client, make_event):
    """/api/stats is answered before Flask once its view has answered (speed/wsgi.py)."""
    make_event()
    client.get("/api/stats")  # the view answers, and its answer is kept
    before = scrape(client)
    for _ in range(3):
        assert client.get("/api/stats").status_code == 200
    assert requests_of(scrape(client), "/api/stats") - requests_of(before, "/api/stats") == 3


def test_the_durations_are_a_histogram(client, make_event):
    make_event()
    client.get("/")
    scraped = scrape(client)
    labels = (("endpoint", "/"), ("le", "+Inf"), ("method", "GET"), ("status", "200"))
    assert scraped[("necreg_http_request_duration_seconds_bucket", labels)] == requests_of(
        scraped, "/"
    )
    total = scraped[
        (
            "necreg_http_request_duration_seconds_sum",
            (("endpoint", "/"), ("method", "GET"), ("status", "200")),
        )
    ]
    assert total > 0


def test_the_monitoring_paths_do_not_count_themselves(client):
    before = scrape(client)
    client.get("/healthz")
    client.get("/readyz")
    after = scrape(client)
    counted = {
        dict(labels).get("endpoint")
        for (name, labels), v in after.items()
        if name.endswith("_count") and v != before.get((name, labels))
    }
    assert not counted & {"/healthz", "/readyz", "/metrics"}


# --- registrations -------------------------------------------------------------------------


def test_registrations_are_counted_by_outcome(client, make_event):
    make_event(capacity=1)
    before = scrape(client)
    token = csrf_token(client)
    first = registration_form(csrf_token=token, email="first@example.org")
    assert client.post("/register", data=first).status_code == 303
    second = registration_form(csrf_token=token, email="second@example.org")
    assert client.post("/register", data=second).status_code == 303  # waits: the one place
    assert client.post("/register", data=first).status_code == 409  # the same e-mail again
    after = scrape(client)
    assert outcome(after, "confirmed") - outcome(before, "confirmed") == 1
    assert outcome(after, "waitlisted") - outcome(before, "waitlisted") == 1
    assert outcome(after, "duplicate") - outcome(before, "duplicate") == 1
    incomplete = registration_form(csrf_token=token, email="not an address")
    assert client.post("/register", data=incomplete).status_code == 400
    assert outcome(scrape(client), "invalid") - outcome(after, "invalid") == 1
    from necreg.public.landing import HONEYPOT_FIELD

    bot = registration_form(csrf_token=token, email="bot@example.org", **{HONEYPOT_FIELD: "x"})
    assert client.post("/register", data=bot).status_code == 303  # told nothing
    assert outcome(scrape(client), "scripted") - outcome(after, "scripted") == 1


def _person(email: str) -> Registrant:
    return Registrant(
        first_name="Ada", last_name="Lovelace", email=email, role="scientist", country="GB"
    )


def test_a_registration_rolled_back_is_not_counted_and_a_closed_one_is(app, client, make_event):
    event = make_event()
    closed = make_event(
        slug="closed", is_current=False, registration_closes_at=datetime(2000, 1, 1, tzinfo=UTC)
    )
    before = scrape(client)
    with app.app_context():
        register_with_fee(
            db.session, db.session.merge(event), _person("a@example.org"), prices=(),
            code_prefix="NEC",
        )  # fmt: skip
        db.session.rollback()
        with pytest.raises(Exception, match="closed"):
            register_with_fee(
                db.session, db.session.merge(closed), _person("b@example.org"), prices=(),
                code_prefix="NEC",
            )  # fmt: skip
        db.session.rollback()
    after = scrape(client)
    assert outcome(after, "confirmed") == outcome(before, "confirmed")
    assert outcome(after, "closed") - outcome(before, "closed") == 1


# --- the outbox, read at the scrape ----------------------------------------------------------


def _message(status: str, created_at: datetime) -> OutboxMessage:
    return OutboxMessage(
        kind="confirmation", to_address="x@example.org", subject="S", text_body="B",
        status=status, created_at=created_at,
    )  # fmt: skip


def test_the_outbox_is_read_from_the_database_at_each_scrape(app, client):
    now = datetime.now(UTC)
    with app.app_context():
        db.session.add_all(
            [
                _message(MAIL_PENDING, now - timedelta(minutes=30)),
                _message(MAIL_PENDING, now - timedelta(minutes=5)),
                _message(MAIL_FAILED, now - timedelta(days=2)),
                _message(MAIL_SENT, now - timedelta(days=3)),
            ]
        )
        db.session.commit()
    scraped = scrape(client)
    assert value(scraped, "necreg_database_up") == 1
    assert value(scraped, "necreg_outbox_pending") == 2
    assert value(scraped, "necreg_outbox_failed") == 1
    age = value(scraped, "necreg_outbox_oldest_pending_age_seconds")
    assert 30 * 60 <= age < 31 * 60
    with app.app_context():
        db.session.execute(db.update(OutboxMessage).values(status=MAIL_SENT))
        db.session.commit()
    scraped = scrape(client)
    assert value(scraped, "necreg_outbox_pending") == 0
    assert value(scraped, "necreg_outbox_oldest_pending_age_seconds") == 0


def test_a_database_that_does_not_answer_is_said_and_the_rest_still_answered(tmp_path):
    app = create_app(
        {
            "DATABASE_URL": f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/none",
            "INSTANCE_PATH": str(tmp_path),
            "SECRET_KEY": "x",
        }
    )
    answer = app.test_client().get("/metrics")
    assert answer.status_code == 200
    scraped = samples(answer.get_data(as_text=True))
    assert value(scraped, "necreg_database_up") == 0
    assert ("necreg_outbox_pending", ()) not in scraped
    assert any(name.startswith("necreg_http_request") for name, _ in scraped)


# --- the change watch ----------------------------------------------------------------------


def test_a_change_watch_that_connects_again_is_counted(app, client, monkeypatch):
    with app.app_context():
        watch = watch_for(db.engine)
    monkeypatch.setattr(watch, "RETRY_SECONDS", 0.0)
    before = value(scrape(client), "necreg_change_watch_reconnects_total")
    assert watch.token() is not None  # the first connection is not a reconnection
    assert value(scrape(client), "necreg_change_watch_reconnects_total") == before
    watch._conn.close()  # the connection is lost
    assert watch.token() is None  # cannot tell...
    assert watch.token() is not None  # ...until it has connected again
    assert value(scrape(client), "necreg_change_watch_reconnects_total") == before + 1
    watch.close()


# --- under gunicorn, several workers ---------------------------------------------------------

#: Each wrk thread has one connection and stops itself right after a response, once its time
#: is up: no request is left in flight, so every request the server counted was completed by
#: wrk (wrk's own end, by its -d timer, leaves one request per connection in flight).
STOP_AFTER_A_RESPONSE = """
local deadline
function init(args) deadline = os.time() + tonumber(args[1]) end
function response(status, headers, body)
  if os.time() >= deadline then wrk.thread:stop() end
end
"""


def _wrk(url: str, script: Path, seconds: int = 2) -> tuple[int, str]:
    """Run wrk on ``url`` (2 threads, one connection each); the requests it completed."""
    out = subprocess.run(
        [WRK, "-t2", "-c2", f"-d{seconds + 3}s", "-s", str(script), url, "--", str(seconds)],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    assert "Socket errors" not in out, out
    return int(re.search(r"(\d+) requests in", out).group(1)), out


def _scrape_url(url: str) -> dict:
    with urllib.request.urlopen(url + "/metrics", timeout=30) as answer:  # noqa: S310 - loopback
        return samples(answer.read().decode())


def _counted_by_each_worker(folder: str) -> dict[str, float]:
    """The requests each process counted, from its own file."""
    counted = {}
    for path in Path(folder).glob("histogram_*.db"):
        total = 0.0
        for metric in MultiProcessCollector.merge([str(path)]):
            total += sum(s.value for s in metric.samples if s.name.endswith("_count"))
        counted[path.stem.split("_")[-1]] = total
    return counted


@pytest.mark.skipif(WRK is None, reason="wrk is not installed (apt-get install wrk)")
def test_counts_across_workers_add_up_to_what_wrk_sent(tmp_path):
    script = tmp_path / "stop.lua"
    script.write_text(STOP_AFTER_A_RESPONSE)
    with serving(tmp_path, workers=3) as site:
        # The folder gunicorn.conf.py made: where the master has its files mapped.
        maps = Path(f"/proc/{site.server.proc.pid}/maps").read_text()
        folder = str(Path(re.search(r"(/\S*/necreg-metrics-[^/\s]+)/", maps).group(1)))
        assert Path(folder).name.startswith("necreg-metrics-")  # made by gunicorn.conf.py
        urllib.request.urlopen(site.url + "/api/stats", timeout=30).close()  # noqa: S310
        before = _scrape_url(site.url)
        stats, out_stats = _wrk(site.url + "/api/stats", script)
        landing, out_landing = _wrk(site.url + "/", script)
        after = _scrape_url(site.url)
        print(f"\nwrk /api/stats:\n{out_stats}\nwrk /:\n{out_landing}")
        counted_stats = requests_of(after, "/api/stats") - requests_of(before, "/api/stats")
        counted_landing = requests_of(after, "/") - requests_of(before, "/")
        print(f"counted /api/stats {counted_stats:.0f}, / {counted_landing:.0f}")
        assert stats > 100 and landing > 10
        assert counted_stats == stats
        assert counted_landing == landing
        by_worker = _counted_by_each_worker(folder)
        assert sum(1 for total in by_worker.values() if total > 0) >= 2, by_worker

        # A worker that goes (max_requests, a crash) takes none of the counts with it.
        gone = site.server.worker_pids()[0]
        os.kill(gone, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while (pids := site.server.worker_pids()) and (gone in pids or len(pids) < 3):
            assert time.monotonic() < deadline, "no worker replaced the one that went"
            time.sleep(0.1)
        again = _scrape_url(site.url)
        assert requests_of(again, "/api/stats") == requests_of(after, "/api/stats")
        assert requests_of(again, "/") == requests_of(after, "/")
    assert not Path(folder).exists()  # the master took its folder away


def test_a_folder_given_by_the_operator_starts_without_an_earlier_runs_counts(
    tmp_path, monkeypatch
):
    folder = tmp_path / "metrics"
    folder.mkdir()
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(folder))
    for run in ("first", "second"):
        (tmp_path / run).mkdir()
    with serving(tmp_path / "first", workers=1) as site:
        urllib.request.urlopen(site.url + "/", timeout=30).close()  # noqa: S310 - loopback
        assert requests_of(_scrape_url(site.url), "/") == 1
    assert list(folder.glob("histogram_*.db")), "the workers counted in the operator's folder"
    with serving(tmp_path / "second", workers=1) as site:
        assert requests_of(_scrape_url(site.url), "/") == 0
    assert folder.is_dir()  # the operator's folder stays


def test_a_master_that_fails_to_start_leaves_no_metrics_folder(tmp_path):
    """gunicorn's on_exit is not called when the app fails to load; the folder goes anyway."""
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    done = subprocess.run(
        [str(BIN / "gunicorn"), "-c", str(ROOT / "gunicorn.conf.py"), "--bind",
         f"127.0.0.1:{free_port()}", "necreg.no_such_module:app"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode != 0
    assert list(tmp_path.glob("necreg-metrics-*")) == []
