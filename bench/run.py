"""`make bench`: necreg against a hello-world Flask app, both under the same gunicorn settings.

Seeds N attendees with `necreg seed-demo`, starts necreg and bench/hello.py on free loopback
ports, drives each path with wrk (alternating hello-world and necreg runs, several rounds) and
prints requests per second, p50/p99 latency and the ratio to hello-world, then the badge CSV
export (seconds and peak RSS of the worker that streamed it) and the seeding time.

SQLite by default; PostgreSQL with NECREG_BENCH_DATABASE_URL (a fresh schema is made and dropped).
``--against DIR`` also serves another checkout of necreg (DIR with its own .venv, e.g. a git
worktree of the commit before a change) on the same database, measured in turn with the others,
and prints this checkout's r/s as a share of that one's: a before/after in one run, so the
machine's noise falls on both alike.
Everything listens on 127.0.0.1 only, every load run is bounded in time, and every server is
stopped by its process id.
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT / "tests"))
from servers import HOST, GunicornServer  # noqa: E402 - the tests' server helper

ORGANIZER = ("bench@example.org", "bench-password-" + secrets.token_hex(4))

EVENT_TOML = """
slug = "bench"
name = "NEC Symposium (benchmark)"
starts_on = 2027-09-07
ends_on = 2027-09-10
current = true
sessions = 40
faculty = 100
capacity = {capacity}
[capacity_by_role]
family = {family_cap}
"""


def memory_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} for {pid}")


@dataclass
class Load:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1, "s": 1000, "m": 60000}[unit]


def wrk(url: str, seconds: int, connections: int, headers=(), script=None, env=None) -> Load:
    args = ["wrk", "-t", "2", "-c", str(connections), "-d", f"{seconds}s", "--latency"]
    args += ["--timeout", "10s"]
    for header in headers:
        args += ["-H", header]
    if script:
        args += ["-s", str(script)]
    out = subprocess.run(
        [*args, url], capture_output=True, text=True, env=env, timeout=seconds + 60, check=True
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))
    errors = 0
    if match := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        errors += int(match.group(1))
    if match := re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    ):
        errors += sum(int(n) for n in match.groups())
    return Load(rps, p50, p99, errors)


class Client:
    """A tiny cookie-keeping HTTP client for logging in and fetching tokens."""

    def __init__(self, port: int):
        self.port = port
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, form: dict | None = None, headers=None):
        conn = http.client.HTTPConnection(HOST, self.port, timeout=120)
        all_headers = dict(headers or {})
        if self.cookies:
            all_headers["Cookie"] = self.cookie_header()
        body = None
        if form is not None:
            body = urlencode(form)
            all_headers["Content-Type"] = "application/x-www-form-urlencoded"
        conn.request(method, path, body=body, headers=all_headers)
        response = conn.getresponse()
        for header in response.headers.get_all("Set-Cookie") or []:
            name, _, rest = header.partition("=")
            self.cookies[name] = rest.split(";")[0]
        return conn, response

    def text(self, method: str, path: str, form=None, headers=None) -> tuple[int, str, dict]:
        conn, response = self.request(method, path, form, headers)
        body = response.read().decode()
        conn.close()
        return response.status, body, dict(response.headers)

    def cookie_header(self) -> str:
        return "; ".join(f"{k}={v}" for k, v in self.cookies.items())

    def csrf(self, path: str) -> str:
        _status, page, _ = self.text("GET", path)
        return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)


def necreg(env: dict[str, str], *args: str, stdin: str | None = None) -> float:
    started = time.perf_counter()
    subprocess.run(
        [str(BIN / "necreg"), *args], env=env, input=stdin, text=True, check=True,
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    return time.perf_counter() - started


def postgres_schema(url: str) -> tuple[str, object]:
    from sqlalchemy import create_engine, make_url, text

    schema = f"necreg_bench_{secrets.token_hex(4)}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    scoped = make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
    return scoped.render_as_string(hide_password=False), drop


def prepare(
    tmp: Path, attendees: int, cleanup: list, extra: dict[str, str] | None = None
) -> tuple[dict[str, str], str, float]:
    """A database (SQLite in ``tmp``, or a new schema of NECREG_BENCH_DATABASE_URL, dropped by
    ``cleanup``) with the benchmark event, ``attendees`` seeded and the organizer ORGANIZER.
    Returns the app's settings, the database's name and how long seeding took."""
    bench_url = os.environ.get("NECREG_BENCH_DATABASE_URL")
    if bench_url:
        database_url, drop = postgres_schema(bench_url)
        cleanup.append(drop)
        database = "PostgreSQL"
    else:
        database_url = f"sqlite:///{tmp / 'bench.db'}"
        database = "SQLite"
    settings = {
        "INSTANCE_PATH": str(tmp),
        "DATABASE_URL": database_url,
        "SECRET_KEY": secrets.token_hex(32),
        "RATELIMIT_STORAGE_URI": "memory://",
        "LOGIN_RATE_LIMIT": "1000 per second",
        **(extra or {}),
    }
    env = {**os.environ, **{f"NECREG_{k}": v for k, v in settings.items()}}
    event_file = tmp / "bench-event.toml"
    event_file.write_text(EVENT_TOML.format(capacity=attendees * 2, family_cap=attendees // 5))
    necreg(env, "db", "upgrade")
    necreg(env, "load-event", str(event_file))
    seed_seconds = necreg(env, "seed-demo", "--attendees", str(attendees))
    password = ORGANIZER[1]
    necreg(env, "create-organizer", ORGANIZER[0], stdin=f"{password}\n{password}\n")
    return settings, database, seed_seconds


def badge_csv(
    settings: dict[str, str], cookies: dict[str, str], servers: list, checkout: Path = ROOT
) -> tuple[int, int, float, float]:
    """The badge CSV of ``checkout``'s necreg streamed by a single fresh worker whose memory we
    can watch: its rows, bytes, seconds and the worker's peak RSS growth in MB."""
    bin_dir = BIN if checkout == ROOT else checkout / ".venv" / "bin"
    server = GunicornServer(settings, 1, chdir=checkout, bin_dir=bin_dir)
    servers.append(server)
    warm = Client(server.port)
    warm.cookies = dict(cookies)
    warm.text("GET", "/organizer/attendees")
    (worker,) = server.worker_pids()
    before = memory_kib(worker, "VmRSS")
    started = time.perf_counter()
    conn, response = warm.request("GET", "/organizer/export/badges.csv")
    size = rows = 0
    while chunk := response.read(1 << 16):
        size += len(chunk)
        rows += chunk.count(b"\n")
    conn.close()
    seconds = time.perf_counter() - started
    peak = memory_kib(worker, "VmHWM")
    server.stop()
    return rows - 1, size, seconds, (peak - before) / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attendees", type=int, default=100_000)
    parser.add_argument("--seconds", type=int, default=5, help="length of each wrk run")
    parser.add_argument("--rounds", type=int, default=2, help="alternating runs per path")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=(os.cpu_count() or 1) * 2 + 1)
    parser.add_argument(
        "--only", default="", help="run only paths whose label contains this text (and no CSV)"
    )
    parser.add_argument(
        "--against",
        type=Path,
        help="another checkout of necreg (with its .venv) to measure in turn, e.g. the one before",
    )
    options = parser.parse_args()

    if not shutil.which("wrk"):
        print("wrk is not installed (Debian: apt-get install wrk)", file=sys.stderr)
        return 2

    tmp = Path(tempfile.mkdtemp(prefix="necreg-bench-"))
    cleanup = [lambda: shutil.rmtree(tmp, ignore_errors=True)]
    servers: list[GunicornServer] = []
    try:
        n = options.attendees
        settings, database, seed_seconds = prepare(tmp, n, cleanup)
        print(f"necreg benchmark on {database}, {n} attendees, {options.workers} gunicorn workers")
        password = ORGANIZER[1]

        app = GunicornServer(settings, options.workers)
        servers.append(app)
        hello = GunicornServer(settings, options.workers, app="hello:app", chdir=ROOT / "bench")
        servers.append(hello)
        before = None
        if options.against:
            # Run from its own folder: gunicorn puts the current folder first on sys.path.
            against = options.against.resolve()
            before = GunicornServer(
                settings, options.workers, chdir=against, bin_dir=against / ".venv" / "bin"
            )
            servers.append(before)

        visitor = Client(app.port)
        register_token = visitor.csrf("/register")
        organizer = Client(app.port)
        status, _, _ = organizer.text(
            "POST",
            "/organizer/login",
            {
                "email": ORGANIZER[0],
                "password": password,
                "csrf_token": organizer.csrf("/organizer/login"),
            },
        )
        if status not in (302, 303):
            raise RuntimeError(f"organizer login answered {status}")
        _, _, stats_headers = visitor.text("GET", "/api/stats")
        etag = stats_headers["ETag"]
        cookie = f"Cookie: {organizer.cookie_header()}"

        paths = [
            ("GET /api/stats", "/api/stats", [], None, 0.80),
            ("GET /api/stats (304)", "/api/stats", [f"If-None-Match: {etag}"], None, 0.80),
            ("GET / (landing)", "/", [], None, 0.50),
            ("GET /register", "/register", [], None, 0.40),
            ("POST /register", "/register", [], ROOT / "bench/post_register.lua", 0.25),
            ("organizer search", "/organizer/attendees?q=hospital", [cookie], None, 0.15),
            ("organizer dashboard", "/organizer/", [cookie], None, None),
        ]
        print()
        header = f"{'path':24} {'necreg r/s':>11} {'hello r/s':>10} {'ratio':>6} {'target':>7}"
        header += f" {'p50 ms':>7} {'p99 ms':>7} {'errors':>6}"
        if before is not None:
            header += f" {'before r/s':>10} {'ratio':>6} {'vs before':>9}"
        print(header)
        print("-" * len(header))
        for run, (label, path, headers, script, target) in enumerate(paths):
            if options.only not in label:
                continue
            ours, theirs, earlier = [], [], []
            for round_ in range(options.rounds):
                lua_env = {
                    **os.environ,
                    "NECREG_BENCH_CSRF": register_token,
                    "NECREG_BENCH_COOKIE": visitor.cookie_header(),
                    "NECREG_BENCH_RUN": f"{run}-{round_}",
                }
                theirs.append(
                    wrk(hello.url + path, options.seconds, options.connections, headers, script,
                        lua_env)
                )  # fmt: skip
                if before is not None:
                    lua_env["NECREG_BENCH_RUN"] = f"{run}-{round_}-before"
                    earlier.append(
                        wrk(before.url + path, options.seconds, options.connections, headers,
                            script, lua_env)
                    )  # fmt: skip
                lua_env["NECREG_BENCH_RUN"] = f"{run}-{round_}-necreg"
                ours.append(
                    wrk(app.url + path, options.seconds, options.connections, headers, script,
                        lua_env)
                )  # fmt: skip
            rps = statistics.median(load.rps for load in ours)
            base = statistics.median(load.rps for load in theirs)
            ratio = rps / base
            verdict = "" if target is None else (f"{target:.0%}" + ("" if ratio >= target else "!"))
            p50 = statistics.median(load.p50_ms for load in ours)
            p99 = statistics.median(load.p99_ms for load in ours)
            errors = sum(load.errors for load in ours)
            line = (
                f"{label:24} {rps:11.0f} {base:10.0f} {ratio:6.0%} {verdict:>7}"
                f" {p50:7.2f} {p99:7.2f} {errors:6d}"
            )
            if earlier:
                then = statistics.median(load.rps for load in earlier)
                line += f" {then:10.0f} {then / base:6.0%} {rps / then:9.0%}" if then else ""
            print(line)

        if options.only:
            return 0
        print()
        rows, size, seconds, grown = badge_csv(settings, organizer.cookies, servers)
        line = (
            f"badge CSV: {rows} rows, {size / 1e6:.1f} MB in {seconds:.2f} s"
            f" (target <= 1.0 s), worker peak RSS +{grown:.1f} MB (target <= +16 MB)"
        )
        if options.against:
            _, _, then, then_grown = badge_csv(
                settings, organizer.cookies, servers, options.against.resolve()
            )
            line += f"; before: {then:.2f} s, +{then_grown:.1f} MB"
        print(line)
        print(f"seed-demo --attendees {n}: {seed_seconds:.1f} s (target <= 20 s)")
        return 0
    finally:
        for server in servers:
            server.stop()
        for step in reversed(cleanup):
            step()


if __name__ == "__main__":
    sys.exit(main())
