"""The README's backup and restore drill, run as an operator runs it (issue 17), on PostgreSQL:
a database made by `necreg db upgrade` and filled through the command line and the site, saved
with `pg_dump --format=custom`, restored with `pg_restore` into another database, where
`necreg db upgrade` finds nothing to do; every table then holds the same rows, and the restored
site takes registrations on (its sequences, triggers and counters came back too).

Both databases are made for the test (kit_drill_<random>_...) on the server of
NECREG_TEST_DATABASE_URL and dropped at the end."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, make_url, text

from conftest import PG_URL, TEST_ABUSE_SETTINGS, csrf_token, registration_form
from necreg import create_app
from necreg.extensions import db
from necreg.resources import resource_dir

pytestmark = [
    pytest.mark.postgresql_only,
    pytest.mark.skipif(not PG_URL, reason="needs PostgreSQL: set NECREG_TEST_DATABASE_URL"),
    pytest.mark.skipif(
        not (shutil.which("pg_dump") and shutil.which("pg_restore")),
        reason="needs pg_dump and pg_restore (postgresql-client)",
    ),
]

NECREG = Path(sys.prefix) / "bin" / "necreg"
SECRET_KEY = "backup-drill-secret-key-of-enough-length"

#: An edition still to come, so that the site takes registrations, with a small cap (some
#: people wait), companions and a question (answers).
DRILL_EVENT = """\
slug = "nec-2099"
name = "NEC Symposium"
tagline = "Building a World Without NEC"
starts_on = 2099-09-07
ends_on = 2099-09-10
venue = "Chicago"
hosts = ["NEC Society"]
current = true
sessions = 40
faculty = 100
capacity = 150
max_guests = 2

[[questions]]
key = "dietary"
label = "Dietary needs"
type = "choice"
choices = ["None", "Vegetarian", "Vegan"]
"""


def database_url(name: str) -> str:
    return make_url(PG_URL).set(database=name).render_as_string(hide_password=False)


def libpq_url(url: str) -> str:
    """The URL as pg_dump and pg_restore take it (no SQLAlchemy driver name)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def necreg(url: str, instance: Path, *args: str) -> None:
    """Run the console script `necreg` on the database at ``url``, as an operator would."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NECREG_")}
    env.update(
        NECREG_DATABASE_URL=url,
        NECREG_SECRET_KEY=SECRET_KEY,
        NECREG_INSTANCE_PATH=str(instance),
    )
    result = subprocess.run(
        [str(NECREG), *args], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, f"necreg {' '.join(args)}:\n{result.stdout}{result.stderr}"


def table_contents(url: str) -> dict[str, tuple[int, str]]:
    """Every table's row count and a digest of all its rows (in a fixed order)."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            tables = conn.execute(
                text(
                    "SELECT table_name FROM information_schema.tables"
                    " WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
                )
            ).scalars()
            return {
                table: tuple(
                    conn.execute(
                        text(
                            f"SELECT count(*), md5(coalesce(string_agg(t::text, E'\\n'"
                            f" ORDER BY t::text), '')) FROM \"{table}\" AS t"
                        )
                    ).one()
                )
                for table in sorted(tables)
            }
    finally:
        engine.dispose()


class Site:
    """necreg on the database at ``url``, in this process: its commands (the same click
    commands as the console script's) and its registration form."""

    def __init__(self, url: str, instance: Path) -> None:
        self.app = create_app(
            {
                "DATABASE_URL": url,
                "SECRET_KEY": SECRET_KEY,
                "INSTANCE_PATH": str(instance),
                "TESTING": True,
                **TEST_ABUSE_SETTINGS,
            }
        )
        self.client = self.app.test_client()

    def command(self, *args: str) -> None:
        result = self.app.test_cli_runner().invoke(args=list(args))
        assert result.exit_code == 0, f"necreg {' '.join(args)}: {result.output}"

    def register(self, **over) -> int:
        form = registration_form(csrf_token=csrf_token(self.client), **over)
        return self.client.post("/register", data=form).status_code

    def close(self) -> None:
        with self.app.app_context():
            db.engine.dispose()


@pytest.fixture
def scratch_databases():
    """Two empty databases, the original and the restored one; dropped after the test."""
    stem = f"kit_drill_{secrets.token_hex(4)}"
    names = [f"{stem}_original", f"{stem}_restored"]
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            for name in names:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield [database_url(name) for name in names]
    finally:
        with admin.connect() as conn:
            for name in names:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_backup_restore_and_upgrade_keep_every_row(scratch_databases, tmp_path):
    original, restored = scratch_databases
    instance = tmp_path / "instance"
    event_file = tmp_path / "nec-2099.toml"
    event_file.write_text(DRILL_EVENT, encoding="utf-8")

    # A database as production has it: made by the console script, then filled with events,
    # people (with answers, companions, a waiting list), organizers, codes, tokens, mail queued
    # and delivered.
    necreg(original, instance, "db", "upgrade")
    site = Site(original, instance)
    site.command("load-event", str(resource_dir("events") / "nec-symposium.toml"))
    site.command("load-event", str(event_file))
    site.command("ensure-organizer", "--email", "admin@example.org")
    site.command("create-code", "FACULTY", "--percent", "100", "--bypass-caps")
    site.command("create-api-token", "badge printer")
    for n in range(3):
        assert site.register(email=f"person{n}@example.org") == 303
    site.command("seed-demo", "--attendees", "200", "--seed", "17")
    site.command("mail-worker", "--once")
    site.close()
    before = table_contents(original)
    for table in ("events", "attendees", "answers", "organizers", "outbox_messages"):
        assert before[table][0] > 0, f"{table} is empty: the drill would prove little"

    # The drill: back up, restore elsewhere, upgrade there.
    dump = tmp_path / "necreg.dump"
    subprocess.run(
        ["pg_dump", "--format=custom", f"--file={dump}", libpq_url(original)],
        check=True,
        timeout=300,
    )
    subprocess.run(
        ["pg_restore", "--no-owner", "--exit-on-error", f"--dbname={libpq_url(restored)}", dump],
        check=True,
        timeout=300,
    )
    necreg(restored, instance, "db", "upgrade")

    assert table_contents(restored) == before
    head = ScriptDirectory(str(resource_dir("migrations"))).get_current_head()
    engine = create_engine(restored)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == head
    engine.dispose()

    # The restored site goes on: a new registration gets the next ids (sequences restored) and
    # is counted (triggers restored), and the original is left as it was.
    site = Site(restored, instance)
    assert site.register(email="after-restore@example.org") == 303
    site.close()
    after = table_contents(restored)
    assert after["attendees"][0] == before["attendees"][0] + 1
    assert after["tallies"] != before["tallies"]  # the counters kept by triggers moved
    assert table_contents(original) == before
