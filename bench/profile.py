"""Where a request's time goes: pyinstrument over many requests to one path, in-process.

Seeds N attendees like `make bench` (SQLite by default, NECREG_BENCH_DATABASE_URL for a fresh
PostgreSQL schema), then sends REQUESTS requests through the WSGI app, each in an app context of
its own as under gunicorn, and prints pyinstrument's call tree. Examples:

    .venv/bin/python bench/profile.py --path "POST /register"
    .venv/bin/python bench/profile.py --path "GET /organizer/attendees?q=hospital" --no-watch

``--no-watch`` turns CHANGE_WATCH off, so nothing is kept between requests: what a request
costs when the database has just changed. Needs pyinstrument (`pip install pyinstrument`).

``--cpu`` prints, instead of the call tree, the CPU time per request of this process and of
the local PostgreSQL server's processes (read from /proc): with both cores busy under wrk,
a path's throughput is about the machine's cores over their sum.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from cpu_by_process import cpu_ticks, used_by_name  # noqa: E402
from run import ORGANIZER, prepare  # noqa: E402

CSRF_RE = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def registration(token: str, n: int) -> dict[str, str]:
    return {
        "csrf_token": token,
        "first_name": "Profile",
        "last_name": f"Runner{n}",
        "email": f"profile-{n}@example.org",
        "role": ("clinician", "scientist", "family", "advocate")[n % 4],
        "institution": f"Profile Hospital {n % 300}",
        "country": "US",
        "consent": "y",
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", default="POST /register", help='"METHOD /path?query"')
    parser.add_argument("--attendees", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--no-watch", action="store_true", help="keep nothing between requests")
    parser.add_argument(
        "--cpu", action="store_true", help="CPU per request, here and in PostgreSQL's processes"
    )
    options = parser.parse_args()
    try:
        from pyinstrument import Profiler
    except ImportError:
        print("pyinstrument is not installed (pip install pyinstrument)", file=sys.stderr)
        return 2

    method, _, path = options.path.partition(" ")
    tmp = Path(tempfile.mkdtemp(prefix="necreg-profile-"))
    cleanup: list = []
    try:
        watch = {"CHANGE_WATCH": str(not options.no_watch).lower()}
        settings, _database, _seconds = prepare(tmp, options.attendees, cleanup, watch)
        n = options.attendees
        password = ORGANIZER[1]

        from necreg import create_app

        app = create_app(
            {**settings, "REGISTER_MIN_SECONDS": 0, "CHANGE_WATCH": not options.no_watch}
        )
        client = app.test_client()
        if path.startswith("/organizer/"):
            token = CSRF_RE.search(client.get("/organizer/login").get_data(as_text=True))[1]
            form = {"email": ORGANIZER[0], "password": password, "csrf_token": token}
            assert client.post("/organizer/login", data=form).status_code == 303
        token = CSRF_RE.search(client.get("/register").get_data(as_text=True))[1]

        def send(i: int) -> int:
            if method == "POST":
                return client.post(path, data=registration(token, i)).status_code
            return client.get(path).status_code

        for i in range(20):  # warm up: templates compiled, connections open
            send(-1 - i)
        if options.cpu:
            here, there = time.process_time(), cpu_ticks()
            statuses = [send(i) for i in range(options.requests)]
            here = (time.process_time() - here) / options.requests * 1000
            used = used_by_name(there, cpu_ticks())  # the local server's processes
            ticks = sum(n for name, n in used.items() if name.startswith("postgres"))
            there = ticks / os.sysconf("SC_CLK_TCK") / options.requests * 1000
            print(f"{options.requests} x {options.path} ({n} attendees), answers {set(statuses)}")
            print(f"CPU per request: {here:.2f} ms here, {there:.2f} ms in PostgreSQL")
            return 0
        profiler = Profiler(interval=0.0002)
        profiler.start()
        statuses = [send(i) for i in range(options.requests)]
        profiler.stop()
        print(f"{options.requests} x {options.path} ({n} attendees), answers {set(statuses)}")
        print(profiler.output_text(unicode=False, color=False))
        return 0
    finally:
        for step in reversed(cleanup):
            step()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
