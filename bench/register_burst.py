"""Registrations per second through the real server, with the caps in force (not a test).

Starts gunicorn (several workers, 127.0.0.1, a free port) on a fresh PostgreSQL schema with an
event whose total and per-role caps are set, releases THREADS clients at once (a barrier), each
sending registrations through the form with its own cookie jar and CSRF token (CSRF stays on),
and prints registrations/s, latency p50/p99 and the final counts against the caps. Everything
is bounded in time; the server is stopped by its pid and the schema is dropped.

    .venv/bin/python bench/register_burst.py \
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test \
        --workers 4 --threads 32 --per-thread 25 --capacity 300 --family-cap 60
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

from sqlalchemy import create_engine, make_url, text

ROLES = ("clinician", "scientist", "family", "advocate")
CSRF_RE = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Client:
    """One browser: a connection, a cookie jar and the form's CSRF token."""

    def __init__(self, port: int, timeout: float) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, body: str | None = None):
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            self.conn.request(method, path, body=body, headers=headers)
            response = self.conn.getresponse()
            data = response.read()
        except (http.client.HTTPException, OSError):
            self.conn.close()  # reconnect on the next request
            raise
        for header in response.headers.get_all("Set-Cookie") or []:
            for name, morsel in SimpleCookie(header).items():
                self.cookies[name] = morsel.value
        if response.headers.get("Connection", "").lower() == "close":
            self.conn.close()
        return response.status, data.decode("utf-8", "replace")

    def csrf_token(self) -> str:
        status, page = self.request("GET", "/register")
        match = CSRF_RE.search(page)
        if status != 200 or not match:
            raise RuntimeError(f"GET /register answered {status} without a form")
        return match.group(1)


def run(args: argparse.Namespace) -> int:
    base_url = args.database_url or os.environ.get("NECREG_TEST_DATABASE_URL", "")
    if not base_url.startswith("postgresql"):
        print("Give --database-url postgresql+psycopg://... (or NECREG_TEST_DATABASE_URL).")
        return 2
    schema = f"necreg_bench_{secrets.token_hex(4)}"
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = (
        make_url(base_url)
        .update_query_dict({"options": f"-csearch_path={schema}"})
        .render_as_string(hide_password=False)
    )
    server = None
    try:
        with tempfile.TemporaryDirectory(prefix="necreg-bench-") as tmp:
            env = {
                **os.environ,
                "NECREG_DATABASE_URL": url,
                "NECREG_INSTANCE_PATH": str(Path(tmp) / "instance"),
                "NECREG_SECRET_KEY": secrets.token_hex(32),
                "NECREG_LOG_LEVEL": "WARNING",
                "NECREG_REGISTER_RATE_LIMIT": "1000000 per second",
                "NECREG_REGISTER_MIN_SECONDS": "0",
            }
            event_file = Path(tmp) / "event.toml"
            event_file.write_text(
                'slug = "bench"\nname = "Bench Symposium"\nstarts_on = 2099-09-07\n'
                f"ends_on = 2099-09-10\ncurrent = true\ncapacity = {args.capacity}\n"
                f"[capacity_by_role]\nfamily = {args.family_cap}\n"
            )
            subprocess.run([BIN / "necreg", "db", "upgrade"], env=env, check=True,
                           capture_output=True, timeout=120)  # fmt: skip
            subprocess.run([BIN / "necreg", "load-event", str(event_file)], env=env, check=True,
                           capture_output=True, timeout=60)  # fmt: skip
            port = free_port()
            server = subprocess.Popen(
                [
                    BIN / "gunicorn",
                    "--bind",
                    f"127.0.0.1:{port}",
                    "--workers",
                    str(args.workers),
                    "--log-level",
                    "warning",
                    "necreg.wsgi:app",
                ],  # fmt: skip
                env=env,
                start_new_session=True,
            )
            deadline = time.monotonic() + 30
            while True:
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=1):
                        break
                except OSError:
                    if server.poll() is not None or time.monotonic() > deadline:
                        print("gunicorn did not start")
                        return 1
                    time.sleep(0.1)
            return burst(args, port, url)
    finally:
        if server is not None and server.poll() is None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def burst(args: argparse.Namespace, port: int, url: str) -> int:
    latencies: list[float] = []
    outcomes: dict[int, int] = {}
    errors: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(args.threads + 1)
    # Set before anyone starts: the clients stop sending after this moment.
    stop_at = [time.monotonic() + args.seconds + 60]

    def client_thread(number: int) -> None:
        client = Client(port, timeout=args.timeout)
        try:
            token = client.csrf_token()
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(f"thread {number}: {exc}")
            barrier.abort()
            return
        barrier.wait()
        mine: list[float] = []
        codes: dict[int, int] = {}
        for i in range(args.per_thread):
            if time.monotonic() > stop_at[0]:
                break
            if args.fresh_form:
                token = client.csrf_token()
            form = {
                "csrf_token": token,
                "first_name": f"T{number}",
                "last_name": f"N{i}",
                "email": f"bench-{number}-{i}@example.org",
                "role": ROLES[(number + i) % len(ROLES)],
                "country": "US",
                "institution": f"Institution {i % 50}",
                "consent": "y",
            }
            started = time.perf_counter()
            try:
                status, _ = client.request("POST", "/register", urlencode(form))
            except (http.client.HTTPException, OSError) as exc:
                with lock:
                    errors.append(f"thread {number}: {type(exc).__name__}: {exc}")
                continue
            mine.append(time.perf_counter() - started)
            codes[status] = codes.get(status, 0) + 1
        with lock:
            latencies.extend(mine)
            for code, n in codes.items():
                outcomes[code] = outcomes.get(code, 0) + n

    threads = [threading.Thread(target=client_thread, args=(n,)) for n in range(args.threads)]
    for thread in threads:
        thread.start()
    try:
        stop_at[0] = time.monotonic() + args.seconds
        barrier.wait(timeout=60)
    except threading.BrokenBarrierError:
        print("clients could not start:", *errors[:5], sep="\n  ")
        return 1
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started

    engine = create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT status, role, count(*) FROM attendees GROUP BY status, role")
        ).all()
        outbox = conn.execute(text("SELECT kind, count(*) FROM outbox_messages GROUP BY kind"))
        outbox_counts = dict(outbox.all())
    engine.dispose()
    by_status: dict[str, int] = {}
    confirmed_by_role: dict[str, int] = dict.fromkeys(ROLES, 0)
    for status, role, n in rows:
        by_status[status] = by_status.get(status, 0) + n
        if status == "confirmed":
            confirmed_by_role[role] = n
    stored = sum(by_status.values())
    done = outcomes.get(303, 0)
    ms = sorted(x * 1000 for x in latencies)

    def pct(p: float) -> float:
        return ms[min(len(ms) - 1, int(round(p / 100 * (len(ms) - 1))))] if ms else float("nan")

    print(f"server: gunicorn, {args.workers} workers, PostgreSQL; clients: {args.threads} threads"
          f" x {args.per_thread} registrations, all released at once"
          f"{', a fresh form before each' if args.fresh_form else ''}")  # fmt: skip
    print(f"burst: {len(latencies)} POST /register in {elapsed:.2f} s -> "
          f"{done / elapsed:.1f} registrations/s")  # fmt: skip
    print(f"latency: p50 {pct(50):.1f} ms, p99 {pct(99):.1f} ms, max {ms[-1] if ms else 0:.1f} ms")
    print(f"answers: {dict(sorted(outcomes.items()))}; client errors: {len(errors)}")
    for line in errors[:5]:
        print("  ", line)
    print(f"stored: {stored} ({by_status}); outbox: {outbox_counts}")
    print(f"confirmed: {by_status.get('confirmed', 0)} of capacity {args.capacity}; "
          f"family {confirmed_by_role['family']} of cap {args.family_cap}; "
          f"by role {confirmed_by_role}")  # fmt: skip
    ok = (
        by_status.get("confirmed", 0) <= args.capacity
        and confirmed_by_role["family"] <= args.family_cap
        and stored == done
        and sum(outbox_counts.values()) == stored
    )
    print("caps held, every accepted registration stored with its mail" if ok else "MISMATCH")
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default="")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers")
    parser.add_argument("--threads", type=int, default=32, help="simultaneous clients")
    parser.add_argument("--per-thread", type=int, default=25, help="registrations per client")
    parser.add_argument("--capacity", type=int, default=300)
    parser.add_argument("--family-cap", type=int, default=60)
    parser.add_argument("--seconds", type=float, default=60, help="stop sending after this")
    parser.add_argument("--timeout", type=float, default=30, help="per request, seconds")
    parser.add_argument("--fresh-form", action="store_true",
                        help="GET /register before each POST (as a new visitor would)")  # fmt: skip
    return run(parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())
