"""What one request costs in CPU under load, by kind of process (gunicorn, postgres, ...).

Seeds N attendees like `make bench` (SQLite by default, NECREG_BENCH_DATABASE_URL for a fresh
PostgreSQL schema), starts INSTANCES gunicorn instances of WORKERS workers each, drives them
with wrk for SECONDS (one wrk per instance, the connections shared out, as bench/run.py's
two-instance rows do), and prints the CPU time that each kind of process on this machine used
per request meanwhile, read from /proc. wrk's own is not counted: it has ended when the second
reading is taken. Examples:

    .venv/bin/python bench/cpu_by_process.py --path "POST /register" --instances 2
    .venv/bin/python bench/cpu_by_process.py --path "POST /register" --workers 1 --connections 2
    .venv/bin/python bench/cpu_by_process.py --path "GET /organizer/attendees?q=hospital" --no-watch

With both cores busy, a path's throughput is the machine's cores over the sum of these; set
against bench/profile.py --cpu (the same requests one at a time, in-process) it shows what
running side by side costs (docs/performance.md, "Issue 11, stop 27").
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from run import (  # noqa: E402
    POST_REGISTER,
    Client,
    GunicornServer,
    drive,
    log_in,
    prepare,
    tear_down,
)


def cpu_ticks() -> dict[int, tuple[str, int]]:
    """Each process's name and the CPU time (user and system) it has used, in clock ticks."""
    ticks = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/comm") as comm:
                name = comm.read().strip()
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        ticks[int(pid)] = (name, int(fields[11]) + int(fields[12]))
    return ticks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", default="POST /register", help='"METHOD /path?query"')
    parser.add_argument("--attendees", type=int, default=100_000)
    parser.add_argument("--instances", type=int, default=1)
    parser.add_argument("--workers", type=int, default=(os.cpu_count() or 1) * 2 + 1)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--no-watch", action="store_true", help="keep nothing between requests")
    options = parser.parse_args()
    if not shutil.which("wrk"):
        print("wrk is not installed (Debian: apt-get install wrk)", file=sys.stderr)
        return 2
    method, _, path = options.path.partition(" ")
    if method not in ("GET", "POST") or (method == "POST" and path != "/register"):
        print('--path: "GET /any/path" or "POST /register"', file=sys.stderr)
        return 2

    tmp = Path(tempfile.mkdtemp(prefix="necreg-cpu-"))
    cleanup: list = []
    servers: list[GunicornServer] = []
    try:
        watch = {"CHANGE_WATCH": str(not options.no_watch).lower()}
        settings, database, _seconds = prepare(tmp, options.attendees, cleanup, watch)
        for _ in range(options.instances):
            servers.append(GunicornServer(settings, options.workers))
        env, script, headers = dict(os.environ), None, ()
        if method == "POST":
            client = Client(servers[0].port)
            env["NECREG_BENCH_CSRF"] = client.csrf("/register")
            env["NECREG_BENCH_COOKIE"] = client.cookie_header()
            script = POST_REGISTER
        elif path.startswith("/organizer"):
            headers = ("Cookie: " + log_in(servers[0].port).cookie_header(),)

        def load(seconds: int, run: str):
            run_env = {**env, "NECREG_BENCH_RUN": run}  # post_register.lua's e-mails differ
            return drive(servers, path, seconds, options.connections, headers, script, run_env)

        load(2, "warm")
        before, started = cpu_ticks(), time.monotonic()
        result = load(options.seconds, "measured")
        after, elapsed = cpu_ticks(), time.monotonic() - started
        used: Counter[str] = Counter()
        for pid, (name, ticks) in after.items():
            used[name] += ticks - before.get(pid, (name, 0))[1]
        requests = result.rps * options.seconds
        per_tick = 1000 / os.sysconf("SC_CLK_TCK") / requests  # ms per request
        print(
            f"{options.path} on {database}, {options.attendees} attendees:"
            f" {options.instances} x {options.workers} workers, {options.connections}"
            f" connections, {result.rps:.0f} r/s, {result.errors} errors"
        )
        for name, ticks in used.most_common():
            share = ticks / os.sysconf("SC_CLK_TCK") / elapsed * 100
            if share >= 0.5:
                cost = ticks * per_tick
                print(f"  {name:<20} {cost:7.3f} ms per request ({share:.0f}% of a core)")
        print(f"  {'all':<20} {sum(used.values()) * per_tick:7.3f} ms per request")
        return 0
    finally:
        tear_down(servers, cleanup)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
