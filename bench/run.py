"""`make bench`: necreg against a hello-world Flask app, both under the same gunicorn settings.

Seeds N attendees with `necreg seed-demo`, starts necreg and bench/hello.py on free loopback
ports, drives each path with wrk (alternating hello-world and necreg runs, several rounds) and
prints requests per second, p50/p99 latency and the ratio to hello-world, then the badge CSV
export (seconds and peak RSS of the worker that streamed it) and the seeding time.

Besides the plain rows (one wrk against one necreg instance):

- ``POST /register 2 inst capped`` / ``uncapped`` (PostgreSQL only): registrations through two
  necreg instances on the same database, each driven by its own wrk at once (half the
  connections each; r/s summed, the worse p50/p99 of the two), against two hello-world
  instances driven the same way. Capped and uncapped are measured in the same rounds,
  alternating: capped with the event's total cap in force (not reached) and a family cap too
  high to be reached, uncapped after loading the same event with no caps at all; the prepared
  caps are restored after. Also prints ``capped / uncapped`` and how many registrations were
  waitlisted (none, or a cap was reached and the row measures something else).
- ``organizer dashboard`` (GET /organizer/) and ``organizer dashboard JSON`` (GET
  /organizer/stats.json, which the page's script refreshes) are measured while a background
  client commits one registration every 100 ms; how many it committed is printed.
- ``organizer search (no watch)``: the search on a third instance with CHANGE_WATCH=false, where
  every request reads the database.

Extra instances are started only when a row needing them is selected (``--only``).
A "!" marks a ratio under its target, or a p99 at or over a row's latency limit.

SQLite by default; PostgreSQL with NECREG_BENCH_DATABASE_URL (a fresh schema is made and dropped).
``--against DIR`` also serves another checkout of necreg (DIR with its own .venv, e.g. a git
worktree of the commit before a change) on the same database, measured in turn with the others,
and prints this checkout's r/s as a share of that one's: a before/after in one run, so the
machine's noise falls on both alike (n/a for the 2-instance and no-watch rows).
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
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT / "tests"))
from servers import HOST, GunicornServer  # noqa: E402 - the tests' server helper

ORGANIZER = ("bench@example.org", "bench-password-" + secrets.token_hex(4))
POST_REGISTER = ROOT / "bench/post_register.lua"

EVENT_TOML = """
slug = "bench"
name = "NEC Symposium (benchmark)"
starts_on = 2099-09-07
ends_on = 2099-09-10
current = true
sessions = 40
faculty = 100
"""


def event_toml(capacity: int | None, family_cap: int | None) -> str:
    """The benchmark event with these caps (None: no cap; no role cap at all without family)."""
    text = EVENT_TOML
    if capacity is not None:
        text += f"capacity = {capacity}\n"
    if family_cap is not None:
        text += f"[capacity_by_role]\nfamily = {family_cap}\n"
    return text


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


def drive(
    servers: list, path: str, seconds: int, connections: int, headers=(), script=None, env=None
) -> Load:
    """Drive ``servers`` at once, each by a wrk of its own with its share of ``connections`` and
    its own NECREG_BENCH_RUN (so that the e-mails of post_register.lua never repeat): the r/s
    and errors summed, the worse p50 and p99 of them."""
    env = dict(env or os.environ)
    run = env.get("NECREG_BENCH_RUN", "0")
    if len(servers) == 1:
        return wrk(servers[0].url + path, seconds, connections, headers, script, env)
    share = max(2, connections // len(servers))  # wrk wants a connection per thread at least
    with ThreadPoolExecutor(len(servers)) as pool:
        futures = [
            pool.submit(
                wrk,
                server.url + path,
                seconds,
                share,
                headers,
                script,
                {**env, "NECREG_BENCH_RUN": f"{run}-{number}"},
            )  # fmt: skip
            for number, server in enumerate(servers)
        ]
        loads = [future.result() for future in futures]
    return Load(
        sum(load.rps for load in loads),
        max(load.p50_ms for load in loads),
        max(load.p99_ms for load in loads),
        sum(load.errors for load in loads),
    )


def log_in(port: int) -> Client:
    """A client signed in as ORGANIZER on the server at ``port``."""
    organizer = Client(port)
    form = {
        "email": ORGANIZER[0],
        "password": ORGANIZER[1],
        "csrf_token": organizer.csrf("/organizer/login"),
    }
    status, _, _ = organizer.text("POST", "/organizer/login", form)
    if status not in (302, 303):
        raise RuntimeError(f"organizer login answered {status}")
    return organizer


class RegistrationWriter(threading.Thread):
    """A visitor committing one registration every ``interval`` seconds to the server at
    ``port`` while a row is measured: a cookie jar and CSRF token of its own (from /register),
    the form post_register.lua sends, a new e-mail address each time. Each registration is
    sent on time by a small pool, whether the one before has been answered or not, so that
    the rate holds however slow the server is. One answered other than by a redirect (302/303)
    is an error."""

    ROLES = ("clinician", "clinician", "clinician", "scientist", "scientist", "family", "advocate")

    def __init__(self, port: int, tag: str, interval: float = 0.1):
        super().__init__(daemon=True)
        visitor = Client(port)
        self.token = visitor.csrf("/register")
        self.port, self.cookies, self.tag, self.interval = port, visitor.cookies, tag, interval
        self.sent = self.committed = 0
        self.errors: list[str] = []
        self.seconds = 0.0
        self.done = threading.Event()
        self.lock = threading.Lock()

    def post(self, number: int) -> None:
        form = {
            "csrf_token": self.token,
            "first_name": "Bench",
            "last_name": f"Writer{number}",
            "email": f"bench-writer-{self.tag}-{number}@example.org",
            "role": self.ROLES[number % len(self.ROLES)],
            "institution": f"Benchmark Hospital {number % 300}",
            "country": "US",
            "consent": "y",
        }
        client = Client(self.port)
        client.cookies = dict(self.cookies)
        try:
            status, _, _ = client.text("POST", "/register", form)
        except OSError as exc:
            status = type(exc).__name__
        with self.lock:
            if status in (302, 303):
                self.committed += 1
            else:
                self.errors.append(str(status))

    def run(self) -> None:
        started = due = time.monotonic()
        with ThreadPoolExecutor(8) as pool:
            while not self.done.wait(max(due - time.monotonic(), 0)):
                self.sent += 1
                pool.submit(self.post, self.sent)
                due += self.interval
        self.seconds = time.monotonic() - started

    def stop(self) -> str:
        """Stop, wait for the registrations sent to be answered, and say what it did."""
        self.done.set()
        self.join()
        line = f"{self.committed} of {self.sent} registrations committed in {self.seconds:.1f} s"
        if self.errors:
            shown = ", ".join(sorted(set(self.errors))[:5])
            line += f", {len(self.errors)} errors! ({shown})"
        else:
            line += ", 0 errors"
        return line


def necreg_env(settings: dict[str, str]) -> dict[str, str]:
    return {**os.environ, **{f"NECREG_{k}": v for k, v in settings.items()}}


def necreg(env: dict[str, str], *args: str, stdin: str | None = None) -> float:
    started = time.perf_counter()
    subprocess.run(
        [str(BIN / "necreg"), *args], env=env, input=stdin, text=True, check=True,
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    return time.perf_counter() - started


def load_event(env: dict[str, str], file: Path, text: str) -> None:
    """Write ``text`` to ``file`` and load it (the event is updated, matched by slug)."""
    file.write_text(text)
    necreg(env, "load-event", str(file))


def status_counts(database_url: str, email_like: str) -> dict[str, int]:
    """Registrations per status whose e-mail is LIKE ``email_like``."""
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT status, count(*) FROM attendees WHERE email LIKE :like GROUP BY status"
                ),
                {"like": email_like},
            )
            return dict(rows.all())
    finally:
        engine.dispose()


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
    tmp: Path,
    attendees: int,
    cleanup: list,
    extra: dict[str, str] | None = None,
    event_text: str | None = None,
) -> tuple[dict[str, str], str, float]:
    """A database (SQLite in ``tmp``, or a new schema of NECREG_BENCH_DATABASE_URL, dropped by
    ``cleanup``) with the benchmark event (or the event file ``event_text``), ``attendees``
    seeded and the organizer ORGANIZER. Returns the app's settings, the database's name and
    how long seeding took."""
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
        # wrk is one client posting as fast as it can, with no honeypot and no stamp
        "REGISTER_RATE_LIMIT": "1000000 per second",
        "REGISTER_MIN_SECONDS": "0",
        **(extra or {}),
    }
    env = necreg_env(settings)
    necreg(env, "db", "upgrade")
    load_event(env, tmp / "bench-event.toml", event_text or prepared_event(attendees))
    seed_seconds = necreg(env, "seed-demo", "--attendees", str(attendees))
    password = ORGANIZER[1]
    necreg(env, "create-organizer", ORGANIZER[0], stdin=f"{password}\n{password}\n")
    return settings, database, seed_seconds


def prepared_event(attendees: int) -> str:
    """The event as the benchmark prepares it: room for as many again as are seeded, and a
    family cap (seed-demo makes 17% family)."""
    return event_toml(capacity=attendees * 2, family_cap=attendees // 5)


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


@dataclass
class Row:
    """A line of the table: ``path`` driven by wrk, against hello-world's same path."""

    label: str
    path: str
    target: float | None  # share of hello-world's r/s; "!" under it
    headers: tuple[str, ...] = ()
    script: Path | None = None
    organizer: bool = False  # sends the organizer's session cookie
    server: str = "necreg"  # which instance: "necreg" or "no watch" (CHANGE_WATCH=false)
    p99_limit_ms: float | None = None  # "!" after a p99 at or over it
    writer: bool = False  # a registration committed every 100 ms during the row
    caps: bool | None = None  # not None: POST /register through 2 instances, capped or not


def summary(loads: list[Load]) -> tuple[float, float, float, int]:
    """Median r/s, p50 and p99 over the rounds, and all the errors."""
    return (
        statistics.median(load.rps for load in loads),
        statistics.median(load.p50_ms for load in loads),
        statistics.median(load.p99_ms for load in loads),
        sum(load.errors for load in loads),
    )


LABEL = 30


def row_line(row: Row, ours: list[Load], theirs: list[Load]) -> str:
    rps, p50, p99, errors = summary(ours)
    base = summary(theirs)[0]
    ratio = rps / base
    verdict = (
        "" if row.target is None else f"{row.target:.0%}" + ("" if ratio >= row.target else "!")
    )
    slow = row.p99_limit_ms is not None and p99 >= row.p99_limit_ms
    return (
        f"{row.label:{LABEL}} {rps:11.0f} {base:10.0f} {ratio:6.0%} {verdict:>7}"
        f" {p50:7.2f} {p99:7.2f}{'!' if slow else ' '}{errors:6d}"
    )


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

    rows = [
        Row("GET /api/stats", "/api/stats", 0.80),
        Row("GET /api/stats (304)", "/api/stats", 0.80),  # If-None-Match added below
        Row("GET / (landing)", "/", 0.50),
        Row("GET /register", "/register", 0.40),
        Row("POST /register", "/register", 0.25, script=POST_REGISTER),
        Row("POST /register 2 inst capped", "/register", 0.12, script=POST_REGISTER, caps=True),
        Row("POST /register 2 inst uncapped", "/register", None, script=POST_REGISTER, caps=False),
        Row("organizer search", "/organizer/attendees?q=hospital", 0.15, organizer=True),
        Row(
            "organizer search (no watch)",
            "/organizer/attendees?q=hospital",
            0.15,
            organizer=True,
            server="no watch",
            p99_limit_ms=50,
        ),
        Row(
            "organizer dashboard",
            "/organizer/",
            0.25,
            organizer=True,
            p99_limit_ms=100,
            writer=True,
        ),
        Row(
            "organizer dashboard JSON",
            "/organizer/stats.json",
            0.25,
            organizer=True,
            p99_limit_ms=100,
            writer=True,
        ),
    ]
    selected = [row for row in rows if options.only in row.label]
    postgres = bool(os.environ.get("NECREG_BENCH_DATABASE_URL"))

    tmp = Path(tempfile.mkdtemp(prefix="necreg-bench-"))
    cleanup = [lambda: shutil.rmtree(tmp, ignore_errors=True)]
    servers: list[GunicornServer] = []
    try:
        n = options.attendees
        settings, database, seed_seconds = prepare(tmp, n, cleanup)
        env = necreg_env(settings)
        print(f"necreg benchmark on {database}, {n} attendees, {options.workers} gunicorn workers")

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
        # Extra instances only for the rows that need them (they cost memory). The same
        # settings, so one instance's session cookies and CSRF tokens hold on the others.
        necregs, hellos = [app], [hello]
        if postgres and any(row.caps is not None for row in selected):
            necregs.append(GunicornServer(settings, options.workers))
            servers.append(necregs[-1])
            # Two hello-world instances driven as the two necreg ones are: the fair ceiling.
            hellos.append(
                GunicornServer(settings, options.workers, app="hello:app", chdir=ROOT / "bench")
            )
            servers.append(hellos[-1])
        instances = {"necreg": app}
        if any(row.server == "no watch" for row in selected):
            instances["no watch"] = GunicornServer(
                {**settings, "CHANGE_WATCH": "false"}, options.workers
            )
            servers.append(instances["no watch"])

        visitor = Client(app.port)
        register_token = visitor.csrf("/register")
        organizer = log_in(app.port)
        cookies = {"necreg": f"Cookie: {organizer.cookie_header()}"}
        if "no watch" in instances:
            # Sessions are signed with the same SECRET_KEY: the first instance's cookie should
            # open the organizer pages of this one too. Checked, as a redirect to the login page
            # would pass for a success with wrk; signed in there if not.
            probe = Client(instances["no watch"].port)
            probe.cookies = dict(organizer.cookies)
            status, _, _ = probe.text("GET", "/organizer/attendees?q=hospital")
            if status != 200:
                print(f"(the organizer cookie answered {status} on the no-watch instance)")
                probe = log_in(instances["no watch"].port)
            cookies["no watch"] = f"Cookie: {probe.cookie_header()}"
        _, _, stats_headers = visitor.text("GET", "/api/stats")
        rows[1].headers = (f"If-None-Match: {stats_headers['ETag']}",)

        print()
        header = f"{'path':{LABEL}} {'necreg r/s':>11} {'hello r/s':>10} {'ratio':>6} {'target':>7}"
        header += f" {'p50 ms':>7} {'p99 ms':>7} {'errors':>6}"
        if before is not None:
            header += f" {'before r/s':>10} {'ratio':>6} {'vs before':>9}"
        print(header)
        print("-" * len(header))
        not_before = f" {'n/a':>10} {'n/a':>6} {'n/a':>9}" if before is not None else ""
        two_instance_done = False
        for run, row in enumerate(rows):
            if row not in selected:
                continue
            lua_env = {
                **os.environ,
                "NECREG_BENCH_CSRF": register_token,
                "NECREG_BENCH_COOKIE": visitor.cookie_header(),
            }
            if row.caps is not None:
                if two_instance_done:
                    continue
                two_instance_done = True
                pair = [other for other in selected if other.caps is not None]
                if not postgres:
                    for other in pair:
                        print(f"{other.label:{LABEL}} skipped: PostgreSQL only"
                              " (NECREG_BENCH_DATABASE_URL)")  # fmt: skip
                    continue
                by_caps, theirs = two_instance_register(
                    pair, necregs, hellos, options, lua_env, env, tmp, run
                )
                for other in pair:
                    print(row_line(other, by_caps[other.caps], theirs) + not_before)
                if len(pair) == 2:
                    share = summary(by_caps[True])[0] / summary(by_caps[False])[0]
                    print(f"  capped / uncapped: {share:.0%} (target >= 85%)"
                          + ("" if share >= 0.85 else "!"))  # fmt: skip
                for other in pair:
                    mode = "capped" if other.caps else "uncapped"
                    counts = status_counts(settings["DATABASE_URL"], f"bench-2inst-{mode}-%")
                    waitlisted = counts.get("waitlisted", 0)
                    line = f"  {mode}: {sum(counts.values())} registered, {waitlisted} waitlisted"
                    if waitlisted:
                        line += "! (a cap was reached: run with more --attendees)"
                    print(line)
                continue

            server = instances[row.server]
            headers = list(row.headers)
            if row.organizer:
                headers.append(cookies[row.server])
            # The writer commits through the necreg instance during the whole row (hello-world
            # runs too, so that both see the same machine); stopped before the next row.
            writer = RegistrationWriter(app.port, str(run)) if row.writer else None
            if writer is not None:
                writer.start()
            ours, theirs, earlier = [], [], []
            try:
                for round_ in range(options.rounds):
                    args = (row.path, options.seconds, options.connections, headers, row.script)
                    lua_env["NECREG_BENCH_RUN"] = f"{run}-{round_}"
                    theirs.append(drive([hello], *args, lua_env))
                    if before is not None and row.server == "necreg":
                        lua_env["NECREG_BENCH_RUN"] = f"{run}-{round_}-before"
                        earlier.append(drive([before], *args, lua_env))
                    lua_env["NECREG_BENCH_RUN"] = f"{run}-{round_}-necreg"
                    ours.append(drive([server], *args, lua_env))
            finally:
                done = writer.stop() if writer is not None else None
            line = row_line(row, ours, theirs)
            if earlier:
                rps, base, then = summary(ours)[0], summary(theirs)[0], summary(earlier)[0]
                line += f" {then:10.0f} {then / base:6.0%} {rps / then:9.0%}" if then else ""
            elif before is not None:
                line += not_before
            print(line)
            if done is not None:
                print(f"  background writer: {done}")

        if options.only:
            return 0
        print()
        csv_rows, size, seconds, grown = badge_csv(settings, organizer.cookies, servers)
        line = (
            f"badge CSV: {csv_rows} rows, {size / 1e6:.1f} MB in {seconds:.2f} s"
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
        tear_down(servers, cleanup)


def tear_down(servers: list, cleanup: list) -> None:
    """Stop ``servers`` (by their process ids), then run each step of ``cleanup``, last first."""
    for server in servers:
        server.stop()
    for step in reversed(cleanup):
        step()


def two_instance_register(
    pair: list[Row],
    necregs: list,
    hellos: list,
    options,
    lua_env: dict,
    env: dict,
    tmp: Path,
    run: int,
) -> tuple[dict[bool, list[Load]], list[Load]]:
    """POST /register through the two necreg instances at once, capped and uncapped in the
    same rounds (their order alternating from round to round), and through the two hello-world
    instances. Returns the loads by caps (True: capped) and hello-world's.

    Capped: the event's total cap (twice the seeded attendees) in force but not reached, and
    the family cap raised to the number seeded, so that it is not reached during the run
    either: family registrations are confirmed as they are uncapped, not waitlisted, and both
    measure the same work but for the caps being checked. Uncapped: the same event loaded with
    no capacity and no role caps. The prepared caps are loaded again after."""
    n = options.attendees
    files = {
        True: (tmp / "bench-event-capped.toml", event_toml(capacity=n * 2, family_cap=n)),
        False: (tmp / "bench-event-uncapped.toml", event_toml(capacity=None, family_cap=None)),
    }
    modes = [row.caps for row in pair]
    by_caps: dict[bool, list[Load]] = {caps: [] for caps in modes}
    theirs: list[Load] = []
    args = ("/register", options.seconds, options.connections, (), POST_REGISTER)
    try:
        for round_ in range(options.rounds):
            theirs.append(drive(hellos, *args, {**lua_env, "NECREG_BENCH_RUN": f"{run}-{round_}"}))
            for caps in modes if round_ % 2 == 0 else modes[::-1]:
                load_event(env, *files[caps])
                mode = "capped" if caps else "uncapped"
                run_env = {**lua_env, "NECREG_BENCH_RUN": f"2inst-{mode}-{round_}"}
                by_caps[caps].append(drive(necregs, *args, run_env))
    finally:
        load_event(env, tmp / "bench-event.toml", prepared_event(n))
    return by_caps, theirs


if __name__ == "__main__":
    sys.exit(main())
