"""The attendee list filtered by an answer, at N attendees, with nothing kept between requests.

Seeds N attendees (SQLite by default, NECREG_BENCH_DATABASE_URL for a fresh PostgreSQL schema)
for the benchmark event asking the NEC Symposium's questions (seed-demo makes up answers), then
sends each list request REQUESTS times through the WSGI app in-process with CHANGE_WATCH off
and prints the median and 90th percentile in milliseconds, and the ratio to the unfiltered
list measured in the same run. On PostgreSQL it also prints the page query's plan.

    .venv/bin/python bench/answer_filter.py
    NECREG_BENCH_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test \\
        .venv/bin/python bench/answer_filter.py
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from run import ORGANIZER, prepare, prepared_event  # noqa: E402

CSRF_RE = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
PATHS = (
    ("no filter", "/organizer/attendees"),
    ("dietary = none (common)", "/organizer/attendees?q_dietary=none"),
    ("dietary = kosher (rare)", "/organizer/attendees?q_dietary=kosher"),
    ("accessibility = wheelchair", "/organizer/attendees?q_accessibility=wheelchair"),
    ("kosher + family", "/organizer/attendees?q_dietary=kosher&role=family"),
    ("kosher, counted all", "/organizer/attendees?q_dietary=kosher&count=all"),
    ("no filter, counted all", "/organizer/attendees?count=all"),
)


def questions_toml() -> str:
    text = (ROOT / "events" / "nec-symposium.toml").read_text()
    return text[text.index("[[questions]]") :]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attendees", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=60)
    options = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="necreg-answers-"))
    cleanup: list = []
    try:
        event = prepared_event(options.attendees) + "\n" + questions_toml()
        settings, database, seconds = prepare(
            tmp, options.attendees, cleanup, {"CHANGE_WATCH": "false"}, event_text=event
        )
        print(
            f"{database}: seed-demo --attendees {options.attendees} with answers: {seconds:.1f} s"
        )
        from necreg import create_app

        app = create_app({**settings, "REGISTER_MIN_SECONDS": 0, "CHANGE_WATCH": False})
        client = app.test_client()
        token = CSRF_RE.search(client.get("/organizer/login").get_data(as_text=True))[1]
        form = {"email": ORGANIZER[0], "password": ORGANIZER[1], "csrf_token": token}
        assert client.post("/organizer/login", data=form).status_code == 303
        baseline = None
        print(f"{'list':<30} {'median ms':>10} {'p90 ms':>8} {'ratio':>7}  total shown")
        for label, path in PATHS:
            for _ in range(5):  # warm up
                client.get(path)
            times = []
            for _ in range(options.requests):
                started = time.perf_counter()
                response = client.get(path)
                times.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200, (path, response.status_code)
            total = re.search(r'<strong id="total">(\d+)</strong>', response.get_data(as_text=True))
            median = statistics.median(times)
            p90 = statistics.quantiles(times, n=10)[-1]
            baseline = baseline or median
            shown = total[1] if total else "?"
            print(f"{label:<30} {median:10.2f} {p90:8.2f} {median / baseline:6.0%}  {shown}")
        if database == "PostgreSQL":
            explain(app)
        return 0
    finally:
        for step in reversed(cleanup):
            step()
        shutil.rmtree(tmp, ignore_errors=True)


def explain(app) -> None:
    from sqlalchemy.dialects import postgresql

    from necreg.attendee_search import attendee_select, parse_filters
    from necreg.extensions import db
    from necreg.models import Attendee
    from necreg.registration import current_event

    with app.app_context():
        event = current_event(db.session)
        filters = parse_filters({"q_dietary": "kosher"})
        stmt = attendee_select(event, filters, Attendee.id).limit(51)
        compiled = stmt.compile(
            dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}
        )
        plan = db.session.execute(db.text(f"EXPLAIN (ANALYZE, COSTS OFF) {compiled}")).scalars()
        print("\nPlan of the page query, dietary = kosher:")
        print("\n".join(plan))


if __name__ == "__main__":
    if os.environ.get("NECREG_BENCH_DATABASE_URL", "").startswith("sqlite"):
        sys.exit("NECREG_BENCH_DATABASE_URL is for PostgreSQL; leave it unset for SQLite")
    sys.exit(main())
