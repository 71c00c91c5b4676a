"""What one request costs in CPU under load, by kind of process (gunicorn, postgres, ...).

Seeds N attendees like `make bench` (SQLite by default, NECREG_BENCH_DATABASE_URL for a fresh
PostgreSQL schema), starts INSTANCES gunicorn instances of WORKERS workers each, drives them
with wrk for SECONDS (one wrk per instance, the connections shared out, as bench/run.py's
two-instance rows do), and prints the CPU time that each kind of process on this machine used
per request meanwhile, read from /proc (with the children each has reaped, so a worker recycled
during the run counts). wrk's own is not counted. Examples:

    .venv/bin/python bench/cpu_by_process.py --path "POST /register" --instances 2
    .venv/bin/python bench/cpu_by_process.py --path "POST /register" --workers 1 --connections 2
    .venv/bin/python bench/cpu_by_process.py --path "GET /organizer/attendees?q=hospital" --no-watch

With every core busy, a path's throughput is the machine's cores over the sum of these; set
against bench/profile.py --cpu (the same requests one at a time, in-process) it shows what
running side by side costs (docs/performance.md, "Issue 11, stop 27").
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
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


def cpu_ticks() -> dict[tuple[int, int], tuple[str, int]]:
    """Each process but this one, by process id and start time (a process id can be used
    again), with its name and the CPU time (user and system, in clock ticks) it has used,
    counting the children it has reaped: a gunicorn worker recycled or a PostgreSQL backend
    ended during a run still counts, through its parent. This process is left out, and with
    it wrk, its child. The kernel's workers, renamed by the work they do, are one name."""
    ticks = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        if int(pid) == os.getpid():
            continue
        try:
            with open(f"/proc/{pid}/comm") as comm:
                name = comm.read().strip()
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        if name.startswith("kworker/"):
            name = "kworker"
        ticks[int(pid), int(fields[19])] = (name, sum(int(field) for field in fields[11:15]))
    return ticks


def used_by_name(before: dict, after: dict) -> Counter[str]:
    """CPU ticks used between two readings of ``cpu_ticks``, by process name. A process gone
    by the second reading gives back what it had used by the first: its parent's count of
    reaped children now holds all of it."""
    used: Counter[str] = Counter()
    for key, (name, ticks) in after.items():
        used[name] += ticks - before.get(key, (name, 0))[1]
    for key, (name, ticks) in before.items():
        if key not in after:
            used[name] -= ticks
    return used


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
    if not path.startswith("/") or method not in ("GET", "POST"):
        print('--path: "GET /any/path" or "POST /register"', file=sys.stderr)
        return 2
    if method == "POST" and path != "/register":  # post_register.lua posts there only
        print('--path: the only POST measured is "POST /register"', file=sys.stderr)
        return 2
    if min(options.instances, options.workers, options.seconds) < 1:
        print("--instances, --workers and --seconds must be at least 1", file=sys.stderr)
        return 2
    if options.connections < 2 * options.instances:  # wrk runs 2 threads, a connection each
        print("--connections must be at least twice --instances", file=sys.stderr)
        return 2

    tmp = Path(tempfile.mkdtemp(prefix="necreg-cpu-"))
    cleanup: list = [lambda: shutil.rmtree(tmp, ignore_errors=True)]
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
        elif path.startswith("/organizer/"):
            headers = ("Cookie: " + log_in(servers[0].port).cookie_header(),)
        for server in servers:  # wrk counts a redirect to the sign-in page as a success
            status, _page, _headers = Client(server.port).text(
                "GET", path, headers=dict(header.split(": ", 1) for header in headers)
            )
            if status != 200:
                print(f"GET {path} answers {status}, not 200", file=sys.stderr)
                return 1

        def load(seconds: int, run: str):
            run_env = {**env, "NECREG_BENCH_RUN": run}  # post_register.lua's e-mails differ
            return drive(servers, path, seconds, options.connections, headers, script, run_env)

        load(2, "warm")
        before = cpu_ticks()
        result = load(options.seconds, "measured")
        used = used_by_name(before, cpu_ticks())
        requests = result.rps * options.seconds
        print(
            f"{options.path} on {database}, {options.attendees} attendees:"
            f" {options.instances} x {options.workers} workers, {options.connections}"
            f" connections, {result.rps:.0f} r/s, {result.errors} errors"
        )
        if result.errors or requests < 1:
            print("not measured: no request answered, or some failed", file=sys.stderr)
            return 1
        hz = os.sysconf("SC_CLK_TCK")
        shown = 0
        for name, ticks in used.most_common():
            share = ticks / hz / options.seconds * 100
            if share >= 0.5:
                shown += ticks
                cost = ticks / hz * 1000 / requests
                print(f"  {name:<20} {cost:7.3f} ms per request ({share:.0f}% of a core)")
        total = sum(used.values())
        print(f"  {'others':<20} {(total - shown) / hz * 1000 / requests:7.3f} ms per request")
        print(f"  {'all but wrk':<20} {total / hz * 1000 / requests:7.3f} ms per request")
        return 0
    finally:
        tear_down(servers, cleanup)


if __name__ == "__main__":
    sys.exit(main())
