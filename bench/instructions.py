"""Instructions per request, counted by valgrind's callgrind: a measure of a path's CPU cost
that does not move with the machine's load (wrk figures here move by 10-20% between runs).

Each path is asked for in-process through Flask's test client (no gunicorn, no network; the
database is SQLite in a temporary folder, or a new schema of NECREG_BENCH_DATABASE_URL), first
to warm up, then N times with callgrind counting. The figures are this Python process's
instructions only: the PostgreSQL server's work is not in them.

    bench/instructions.py [--requests 200] [--against DIR]

``--against DIR`` counts another checkout too (DIR with its own .venv, e.g. a git worktree of
the commit before a change) and prints the ratio. Needs valgrind (Debian: apt-get install
valgrind); about a minute per checkout.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PATHS = ("/", "/register", "/api/stats", "/organizer/attendees?q=hospital", "POST /register")
PASSWORD = "instructions-" + secrets.token_hex(4)
CSRF_RE = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def count_inside(requests: int) -> None:
    """Run under callgrind (instrumentation off): set up, then count each path's requests."""
    from necreg import create_app
    from necreg.auth import create_organizer
    from necreg.extensions import db
    from necreg.models import Event
    from necreg.seed import seed_demo

    folder = tempfile.mkdtemp(prefix="necreg-instructions-")
    url = os.environ.get("NECREG_BENCH_INSTRUCTIONS_URL") or f"sqlite:///{folder}/i.db"
    settings = {"DATABASE_URL": url, "INSTANCE_PATH": folder, "SECRET_KEY": "x"}
    app = create_app({**settings, "RATELIMIT_ENABLED": False, "REGISTER_MIN_SECONDS": 0})
    with app.app_context():
        db.create_all()
        event = Event(slug="bench", name="Bench", starts_on=date(2099, 9, 7),
                      ends_on=date(2099, 9, 10), is_current=True, capacity=1_000_000)  # fmt: skip
        db.session.add(event)
        db.session.commit()
        seed_demo(db.session, event, 2000, code_prefix="NEC", seed=1)
        create_organizer(db.session, "bench@example.org", PASSWORD)
        db.session.commit()
    client = app.test_client()
    token = CSRF_RE.search(client.get("/organizer/login").text)[1]
    form = {"email": "bench@example.org", "password": PASSWORD, "csrf_token": token}
    assert client.post("/organizer/login", data=form).status_code == 303
    token = CSRF_RE.search(client.get("/register").text)[1]
    sent = 0

    def post() -> None:
        nonlocal sent
        sent += 1
        form = {"first_name": "Zoë", "last_name": "Núñez", "email": f"p{sent}@example.org",
                "role": "scientist", "institution": "UNC", "country": "US", "consent": "y",
                "csrf_token": token}  # fmt: skip
        assert client.post("/register", data=form).status_code == 303

    def control(*args: str) -> None:
        subprocess.run(["callgrind_control", *args, str(os.getpid())], check=True,
                       capture_output=True)  # fmt: skip

    for path in PATHS:
        ask = post if path.startswith("POST ") else (lambda path=path: client.get(path))
        for _ in range(30):
            ask()
        control("--zero")
        control("--instr=on")
        for _ in range(requests):
            ask()
        control("--instr=off")
        control(f"--dump={path}")
    shutil.rmtree(folder, ignore_errors=True)


def count(checkout: Path, requests: int, database_url: str | None) -> dict[str, float]:
    """Instructions per request of each path, for ``checkout``'s necreg."""
    python = checkout / ".venv" / "bin" / "python"
    folder = Path(tempfile.mkdtemp(prefix="necreg-callgrind-"))
    env = dict(os.environ)
    schema = None
    if database_url:
        from sqlalchemy import create_engine, make_url, text

        schema = f"necreg_instr_{secrets.token_hex(4)}"
        admin = create_engine(database_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        scoped = make_url(database_url).update_query_dict({"options": f"-csearch_path={schema}"})
        env["NECREG_BENCH_INSTRUCTIONS_URL"] = scoped.render_as_string(hide_password=False)
    try:
        subprocess.run(
            ["valgrind", "--tool=callgrind", "--instr-atstart=no",
             f"--callgrind-out-file={folder}/out", str(python), str(Path(__file__).resolve()),
             "--inside", "--requests", str(requests)],
            cwd=checkout, env=env, check=True, capture_output=True, timeout=3600,
        )  # fmt: skip
        figures = {}
        for dump in sorted(folder.glob("out.*")):
            text_ = dump.read_text(errors="replace")
            path = re.search(r"^desc: Trigger: dump (.*)$", text_, re.M)[1]
            figures[path] = int(re.search(r"^totals: (\d+)", text_, re.M)[1]) / requests
        return figures
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        if schema:
            with admin.connect() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--against", type=Path, help="another checkout (with its .venv)")
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.inside:
        count_inside(options.requests)
        return 0
    if not shutil.which("valgrind"):
        print("valgrind is not installed (Debian: apt-get install valgrind)", file=sys.stderr)
        return 2
    url = os.environ.get("NECREG_BENCH_DATABASE_URL")
    print(f"instructions per request, {options.requests} requests per path, "
          f"{'PostgreSQL' if url else 'SQLite'}, in-process")  # fmt: skip
    ours = count(ROOT, options.requests, url)
    theirs = count(options.against.resolve(), options.requests, url) if options.against else {}
    header = f"{'path':34} {'this':>12}"
    if theirs:
        header += f" {'before':>12} {'this/before':>11}"
    print(header)
    print("-" * len(header))
    for path, figure in ours.items():
        line = f"{path:34} {figure:12,.0f}"
        if path in theirs:
            line += f" {theirs[path]:12,.0f} {figure / theirs[path]:11.1%}"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
