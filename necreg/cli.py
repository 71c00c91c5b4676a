"""The ``necreg`` command line: a Flask CLI group bound to create_app, plus our commands."""

from __future__ import annotations

from pathlib import Path

import click
from flask import Flask
from flask.cli import FlaskGroup, with_appcontext
from sqlalchemy import func, select

from .events import EventFileError, load_event, read_event_file
from .extensions import db
from .mail.worker import mail_worker_command
from .models import Event


@click.command("load-event")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--if-empty",
    is_flag=True,
    help="Load only when the database holds no event yet (what `make run` uses).",
)
@with_appcontext
def load_event_command(file: Path, if_empty: bool) -> None:
    """Create or update an event from a TOML description (matched by slug)."""
    if if_empty and db.session.execute(select(func.count()).select_from(Event)).scalar_one():
        click.echo("The database already holds an event; nothing loaded.")
        return
    try:
        event, created = load_event(db.session, read_event_file(file))
    except EventFileError as exc:
        db.session.rollback()
        raise click.ClickException(f"{file}: {exc}") from None
    db.session.commit()
    verb = "Created" if created else "Updated"
    current = " (current)" if event.is_current else ""
    click.echo(f"{verb} event {event.slug}: {event.name}{current}")


def register_commands(app: Flask) -> None:
    app.cli.add_command(load_event_command)
    app.cli.add_command(mail_worker_command)


def _create_app():
    from . import create_app

    return create_app()


@click.group(cls=FlaskGroup, create_app=_create_app)
def main() -> None:
    """necreg: registration and attendee management for the NEC Symposium."""
