"""Request ids (X-Request-ID taken when sane, else made; sent back) and log lines that carry
them: readable text, or one JSON object per line with LOG_FORMAT = "json"."""

from __future__ import annotations

import json
import logging
import re
import urllib.request

import pytest

from conftest import serving
from necreg import create_app
from necreg.extensions import db
from necreg.logs import JsonFormatter, TextFormatter, formatter_for

HEX_ID = re.compile(r"[0-9a-f]{32}")


def test_a_request_id_is_made_when_none_is_sent(client):
    first = client.get("/healthz").headers["X-Request-ID"]
    second = client.get("/healthz").headers["X-Request-ID"]
    assert HEX_ID.fullmatch(first) and HEX_ID.fullmatch(second)
    assert first != second


@pytest.mark.parametrize("sent", ["abc-123", "9f1c2a4b-0d6e-4f1a-9c1e-1234567890ab", "lb:42.7_x"])
def test_a_sane_request_id_is_kept(client, sent):
    assert client.get("/", headers={"X-Request-ID": sent}).headers["X-Request-ID"] == sent


@pytest.mark.parametrize(
    "sent", ["x" * 65, "id with spaces", "id\u00e9", "<script>", 'a"b', "", "a\tb"]
)
def test_a_request_id_that_is_not_sane_is_replaced(client, sent):
    answer = client.get("/", headers={"X-Request-ID": sent})
    assert HEX_ID.fullmatch(answer.headers["X-Request-ID"])


def test_answers_given_before_flask_carry_the_id_too(client, make_event):
    make_event()
    client.get("/api/stats")  # kept: the next one is replayed (speed/wsgi.py)
    answer = client.get("/api/stats", headers={"X-Request-ID": "replayed-1"})
    assert answer.status_code == 200
    assert answer.headers["X-Request-ID"] == "replayed-1"


@pytest.fixture
def logging_app(app_config, request):
    """The app in ``request.param`` log format, with a view that logs and one that fails."""
    app = create_app({**app_config, "LOG_FORMAT": request.param, "TESTING": False})

    @app.get("/test-logs/warn")
    def warn():
        logging.getLogger("necreg.test").warning("something to see: %s", "café")
        return "ok"

    @app.get("/test-logs/fail")
    def fail():
        raise RuntimeError("it broke")

    yield app
    with app.app_context():
        db.engine.dispose()
    create_app(app_config)  # the usual text format for the tests that follow


def _lines(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.strip()]


@pytest.mark.parametrize("logging_app", ["json"], indirect=True)
def test_json_lines_carry_the_request_id_and_the_exception(logging_app, capsys):
    client = logging_app.test_client()
    capsys.readouterr()
    warned = client.get("/test-logs/warn", headers={"X-Request-ID": "req-json-1"})
    failed = client.get("/test-logs/fail")
    assert failed.status_code == 500
    logging.getLogger("necreg.test").info("outside any request")
    lines = _lines(capsys)
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert len(records) == 3, lines
    warning, error, outside = records
    assert set(warning) == {"time", "level", "logger", "message", "request_id"}
    assert warning["level"] == "WARNING"
    assert warning["logger"] == "necreg.test"
    assert warning["message"] == "something to see: café"
    assert warning["request_id"] == "req-json-1" == warned.headers["X-Request-ID"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", warning["time"])
    assert error["level"] == "ERROR"
    assert error["request_id"] == failed.headers["X-Request-ID"]
    assert "RuntimeError: it broke" in error["exception"]
    assert "Traceback" in error["exception"]
    assert outside["request_id"] is None


@pytest.mark.parametrize("logging_app", ["text"], indirect=True)
def test_text_lines_carry_the_request_id(logging_app, capsys):
    client = logging_app.test_client()
    capsys.readouterr()
    client.get("/test-logs/warn", headers={"X-Request-ID": "req-text-1"})
    (line,) = _lines(capsys)
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} WARNING necreg\.test \[req-text-1\] "
        r"something to see: café",
        line,
    )


def test_an_unknown_log_format_is_refused_naming_the_choices():
    with pytest.raises(ValueError, match='"text" or "json"'):
        formatter_for("yaml")
    assert isinstance(formatter_for("json"), JsonFormatter)
    assert isinstance(formatter_for("text"), TextFormatter)


def test_gunicorns_lines_are_json_too_with_the_request_id_in_the_access_log(tmp_path):
    access = tmp_path / "access.log"
    with serving(tmp_path, workers=1, LOG_FORMAT="json", ACCESS_LOG=str(access)) as site:
        request = urllib.request.Request(
            site.url + "/registration/SECRETtoken9", headers={"X-Request-ID": "via-gunicorn"}
        )
        try:
            urllib.request.urlopen(request, timeout=30).close()  # noqa: S310 - loopback
        except urllib.error.HTTPError as exc:
            exc.close()
        error_log = site.server.read_log()
    (line,) = access.read_text().splitlines()
    record = json.loads(line)
    assert record["logger"] == "gunicorn.access"
    assert record["request_id"] == "via-gunicorn"
    assert "/registration/<masked>" in record["message"]
    assert "SECRETtoken9" not in line
    started = [json.loads(line) for line in error_log.splitlines() if line.strip()]
    assert any("Starting gunicorn" in r["message"] for r in started), error_log
    assert {r["logger"] for r in started} >= {"gunicorn.error"}


def test_gunicorns_text_access_log_ends_with_the_request_id(tmp_path):
    access = tmp_path / "access.log"
    with serving(tmp_path, workers=1, ACCESS_LOG=str(access)) as site:
        request = urllib.request.Request(site.url + "/", headers={"X-Request-ID": "text-id-7"})
        urllib.request.urlopen(request, timeout=30).close()  # noqa: S310 - loopback
    (line,) = access.read_text().splitlines()
    assert line.endswith(" text-id-7"), line
