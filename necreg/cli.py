"""The ``necreg`` command line: a Flask CLI group bound to create_app, plus our commands."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, with_appcontext
from sqlalchemy import func, select

from .api.tokens import TOKEN_COMMANDS
from .attendee_search import FilterError, count_select, parse_filters
from .auth import (
    AccountError,
    create_organizer,
    deactivate_organizer,
    ensure_organizer,
    get_organizer,
    list_organizers,
    set_password,
)
from .badges import exported_questions, for_printing, iter_badge_csv, iter_badges
from .badges_pdf import LAYOUTS, write_badges
from .events import EventFileError, load_event, read_event_file
from .extensions import db
from .fees import FeeError, code_summary, create_code
from .interest import InterestError, notify_opened
from .mail.worker import mail_worker_command
from .models import ATTENDEE_ROLES, ORGANIZER_ROLES, ROLES, STATUSES, Attendee, Event, Organizer
from .payments import payment_terms
from .pdf_fonts import FontsMissing
from .privacy import PRIVACY_COMMANDS
from .questions import event_questions
from .registration import current_event
from .seed import seed_demo


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
        event, created = load_event(
            db.session,
            read_event_file(file),
            payment=payment_terms(current_app.config),
            default_timezone=current_app.config["DISPLAY_TIMEZONE"],
        )
    except EventFileError as exc:
        db.session.rollback()
        raise click.ClickException(f"{file}: {exc}") from None
    db.session.commit()
    verb = "Created" if created else "Updated"
    current = " (current)" if event.is_current else ""
    click.echo(f"{verb} event {event.slug}: {event.name}{current}")


def _stdin_is_terminal() -> bool:
    return sys.stdin.isatty()


def _read_password() -> str:
    """Prompt twice on a terminal; read one line from stdin when it is not a terminal."""
    if not _stdin_is_terminal():
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise click.ClickException("No password given on standard input.")
        return password
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


@click.command("create-organizer")
@click.argument("email")
@click.option(
    "--role",
    type=click.Choice(list(ORGANIZER_ROLES)),
    default="admin",
    show_default=True,
    help="admin: everything; staff: check-in only.",
)
@with_appcontext
def create_organizer_command(email: str, role: str) -> None:
    """Create an organizer account; the password is asked for twice (or read from stdin)."""
    password = _read_password()
    try:
        organizer = create_organizer(db.session, email, password, role=role)
    except AccountError as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from None
    db.session.commit()
    click.echo(f"Created {ORGANIZER_ROLES[organizer.role].lower()} account {organizer.email}.")


def _read_email() -> str:
    """The first administrator's e-mail: asked for on a terminal, else one line of stdin."""
    if _stdin_is_terminal():
        return click.prompt("E-mail of the first administrator").strip()
    return sys.stdin.readline().strip()


@click.command("ensure-organizer")
@click.option(
    "--email",
    help="E-mail of the first administrator (asked for on a terminal, else read from stdin).",
)
@with_appcontext
def ensure_organizer_command(email: str | None) -> None:
    """On a database without organizers, create an administrator and print its password once."""
    if db.session.execute(select(func.count()).select_from(Organizer)).scalar_one():
        click.echo("An organizer account exists already; none created.")
        return
    email = email or _read_email()
    if not email:
        raise click.ClickException(
            "No organizer account yet: give the first administrator's e-mail with --email "
            "(make run ADMIN_EMAIL=you@example.org)."
        )
    try:
        created = ensure_organizer(db.session, email)
    except AccountError as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from None
    if created is None:
        click.echo("An organizer account exists already; none created.")
        return
    db.session.commit()
    address, password = created
    click.echo(
        "Created the first organizer account (administrator); this password is shown only once:\n"
        f"  e-mail:   {address}\n"
        f"  password: {password}\n"
        "Sign in at /organizer/login, then change it on your account page."
    )


def _account(email: str) -> Organizer:
    try:
        return get_organizer(db.session, email)
    except AccountError as exc:
        raise click.ClickException(str(exc)) from None


def _record_account_change(action: str, organizer: Organizer) -> None:
    from .audit import record

    record(
        db.session,
        organizer_id=None,
        action=action,
        target=organizer.email,
        details={"via": "command line"},
    )


@click.command("set-password")
@click.argument("email")
@with_appcontext
def set_password_command(email: str) -> None:
    """Set an organizer's password (asked for twice, or read from stdin); ends their sessions."""
    organizer = _account(email)
    password = _read_password()
    try:
        set_password(db.session, organizer, password)
    except AccountError as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from None
    _record_account_change("organizer.set_password", organizer)
    db.session.commit()
    click.echo(f"Set the password of {organizer.email}; their sessions have ended.")


@click.command("deactivate-organizer")
@click.argument("email")
@with_appcontext
def deactivate_organizer_command(email: str) -> None:
    """Stop an organizer account from signing in, and end its sessions."""
    organizer = _account(email)
    try:
        deactivate_organizer(db.session, organizer)
    except AccountError as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from None
    _record_account_change("organizer.deactivate", organizer)
    db.session.commit()
    click.echo(f"Deactivated {organizer.email}; their sessions have ended.")


@click.command("list-organizers")
@with_appcontext
def list_organizers_command() -> None:
    """Every organizer account: e-mail, role, status, authenticator, last sign-in (UTC)."""
    rows = [("E-MAIL", "ROLE", "STATUS", "AUTHENTICATOR", "LAST SIGN-IN")]
    for organizer in list_organizers(db.session):
        rows.append(
            (
                organizer.email,
                organizer.role,
                "active" if organizer.is_active else "deactivated",
                "on" if organizer.totp_enabled_at else "off",
                f"{organizer.last_login_at:%Y-%m-%d %H:%M}" if organizer.last_login_at else "never",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        click.echo("  ".join(cells).rstrip())


def _event_for(slug: str | None) -> Event:
    if slug:
        event = db.session.execute(select(Event).where(Event.slug == slug)).scalar_one_or_none()
        if event is None:
            raise click.ClickException(f"There is no event with the slug {slug!r}.")
        return event
    event = current_event(db.session)
    if event is None:
        raise click.ClickException("There is no current event; name one with --event SLUG.")
    return event


@click.command("export-badges")
@click.option("--event", "slug", help="Slug of the event (default: the current event).")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="File to write (default: standard output).",
)
@click.option("--q", default="", help="Search: part of a name, e-mail, institution or code.")
@click.option("--role", default="", help=f"Only this role ({', '.join(ROLES)}).")
@click.option("--status", default="", help=f"Only this status ({', '.join(STATUSES)}).")
@click.option("--early-career", default="", help="yes or no.")
@click.option("--checked-in", default="", help="yes or no.")
@click.option("--country", default="", help="ISO country code, e.g. US.")
@click.option(
    "--program",
    default="",
    help="A program item's key (a place there), KEY:waitlisted (its waiting list).",
)
@click.option("--sort", default="", help="Sort key, as in the attendee list.")
@click.option(
    "--answer",
    "answers",
    multiple=True,
    metavar="KEY=CHOICE",
    help="Only those who took this choice of question KEY (repeatable).",
)
@click.option("--email", "include_email", is_flag=True, help="Add the e-mail column.")
@click.option("--excel", is_flag=True, help="Start with a byte-order mark for Excel.")
@click.option(
    "--sensitive", "include_sensitive", is_flag=True, help="Add the answers to sensitive questions."
)
@click.option("--pdf", is_flag=True, help="Printable badges with QR codes instead of CSV.")
@click.option(
    "--layout",
    type=click.Choice(list(LAYOUTS)),
    default="a4",
    show_default=True,
    help="With --pdf: the sheet or badge stock.",
)
@with_appcontext
def export_badges_command(
    slug: str | None,
    out: Path | None,
    include_email: bool,
    excel: bool,
    include_sensitive: bool,
    pdf: bool,
    layout: str,
    answers: tuple[str, ...],
    **filter_args: str,
) -> None:
    """Write the badge CSV (the same file as the dashboard's export), or with --pdf the
    printable badges (confirmed attendees unless --status is given)."""
    event = _event_for(slug)
    asked = event_questions(db.session, event.id)
    for answer in answers:
        key, sep, choice = answer.partition("=")
        if not sep:
            raise click.UsageError(f"--answer takes KEY=CHOICE, not {answer!r}")
        filter_args[f"q_{key.strip()}"] = choice
    try:
        filters = parse_filters(filter_args, asked)
    except FilterError as exc:
        raise click.UsageError(str(exc)) from None
    if pdf and out is None:
        raise click.UsageError("--pdf needs --out FILE.pdf")
    from .audit import record

    record(
        db.session,
        organizer_id=None,
        action="export.badges",
        target=event.slug,
        details={
            "format": "pdf" if pdf else "csv",
            "email": include_email and not pdf,
            "sensitive": include_sensitive and not pdf,
            "filters": {key: value for key, value in filter_args.items() if value},
            "via": "command line",
        },
    )
    db.session.commit()
    if pdf:
        try:
            with out.open("wb") as fh:
                badges = iter_badges(db.session, event, for_printing(filters))
                count = write_badges(badges, fh, layout=layout, event_name=event.name)
        except FontsMissing as exc:
            out.unlink(missing_ok=True)  # no half-written file left to be printed
            raise click.ClickException(str(exc)) from None
        click.echo(f"Wrote {count} badges ({LAYOUTS[layout].label}) to {out}.", err=True)
        return
    csv_options = {
        "include_email": include_email,
        "excel": excel,
        "questions": exported_questions(asked, include_sensitive),
    }
    if out is None:
        stream = sys.stdout
        for chunk in iter_badge_csv(db.session, event, filters, **csv_options):
            stream.write(chunk)
        stream.flush()
        return
    total = db.session.execute(count_select(event, filters)).scalar_one()
    with (
        out.open("w", encoding="utf-8", newline="") as fh,
        click.progressbar(length=total, label="Exporting badges", file=sys.stderr) as bar,
    ):
        for chunk in iter_badge_csv(db.session, event, filters, **csv_options, progress=bar.update):
            fh.write(chunk)
    click.echo(f"Wrote {total} attendees to {out}.", err=True)


@click.command("seed-demo")
@click.option("--attendees", "count", type=click.IntRange(min=0), default=200, show_default=True)
@click.option("--event", "slug", help="Slug of the event (default: the current event).")
@click.option("--seed", type=int, help="Random seed, for the same data every time.")
@with_appcontext
def seed_demo_command(count: int, slug: str | None, seed: int | None) -> None:
    """Add N synthetic registrations (for trying the site and for benchmarks)."""
    event = _event_for(slug)
    with click.progressbar(length=count, label="Registering", file=sys.stderr) as bar:
        added = seed_demo(
            db.session,
            event,
            count,
            code_prefix=current_app.config["ATTENDEE_CODE_PREFIX"],
            seed=seed,
            progress=bar.update,
        )
    db.session.commit()
    click.echo(f"Added {added} synthetic registrations to {event.slug}.", err=True)


def _expiry(text: str | None) -> datetime | None:
    """A code's ``--expires`` (e.g. 2025-06-01 or 2025-06-01T12:00, UTC unless it says)."""
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter("use a date or date-time such as 2025-06-01T12:00") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


@click.command("create-code")
@click.argument("code")
@click.option("--percent", type=int, help="Percentage off, 1 to 100 (100: free).")
@click.option("--amount", help="Amount off, in the event's currency, e.g. 100.00.")
@click.option("--max-uses", type=click.IntRange(min=1), help="How many registrations may use it.")
@click.option("--expires", help="Usable until then, e.g. 2025-06-01T00:00 (UTC).")
@click.option(
    "--roles",
    default="",
    help=f"Only for these roles, e.g. family,advocate ({', '.join(ATTENDEE_ROLES)}).",
)
@click.option(
    "--bypass-caps",
    is_flag=True,
    help="A place even when the event or the role is full (faculty, speakers).",
)
@click.option("--event", "slug", help="Slug of the event (default: the current event).")
@with_appcontext
def create_code_command(
    code: str,
    percent: int | None,
    amount: str | None,
    max_uses: int | None,
    expires: str | None,
    roles: str,
    bypass_caps: bool,
    slug: str | None,
) -> None:
    """Create a registration code that lowers or waives the fee."""
    event = _event_for(slug)
    try:
        row = create_code(
            db.session,
            event,
            code,
            percent=percent,
            amount=amount,
            max_uses=max_uses,
            expires_at=_expiry(expires),
            roles=[r.strip() for r in roles.split(",") if r.strip()],
            bypass_caps=bypass_caps,
        )
    except FeeError as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from None
    db.session.commit()
    what = code_summary(row, event.currency, event.zone)
    click.echo(f"Created code {row.code} for {event.slug}: {what}.")


@click.command("export-certificates")
@click.option(
    "--out",
    "out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder to write the PDFs into (made if missing).",
)
@click.option("--event", "slug", help="Slug of the event (default: the current event).")
@with_appcontext
def export_certificates_command(out: Path, slug: str | None) -> None:
    """Write every certificate of attendance as a PDF (certificate-<code>.pdf), one per
    person checked in at a program item, for the CME office or for printing."""
    from .certificates import CertificateError, certificate_lines, certificate_pdf, credit_rows
    from .certificates import issue as issue_certificate
    from .mail.outbox import site_url
    from .web import date_range

    event = _event_for(slug)
    codes = [row["code"] for row in credit_rows(db.session, event)]
    out.mkdir(parents=True, exist_ok=True)
    dates = date_range(event.starts_on, event.ends_on)
    written = 0
    with click.progressbar(codes, label="Writing certificates", file=sys.stderr) as bar:
        for code in bar:
            attendee = db.session.execute(
                select(Attendee).where(Attendee.event_id == event.id, Attendee.code == code)
            ).scalar_one()
            try:
                issued = issue_certificate(db.session, attendee)
            except CertificateError as exc:
                raise click.ClickException(str(exc)) from None
            lines = certificate_lines(
                db.session, attendee, issued, site_url=site_url(), dates=dates
            )
            try:
                document = certificate_pdf(lines)
            except FontsMissing as exc:
                db.session.rollback()
                raise click.ClickException(str(exc)) from None
            (out / f"certificate-{attendee.code}.pdf").write_bytes(document)
            db.session.commit()
            written += 1
    click.echo(f"Wrote {written} certificates to {out}.")


@click.command("notify-interest")
@click.option("--event", "slug", help="Slug of the event (default: the current event).")
@with_appcontext
def notify_interest_command(slug: str | None) -> None:
    """Tell the interest list (confirmed addresses) that registration for the event is open:
    once per address; running it again tells only those who confirmed since."""
    event = _event_for(slug)
    try:
        told = notify_opened(db.session, event)
    except InterestError as exc:
        raise click.ClickException(str(exc)) from None
    db.session.commit()
    click.echo(f"Queued {told} message(s): registration for {event.name} is open.")


def register_commands(app: Flask) -> None:
    app.cli.add_command(load_event_command)
    app.cli.add_command(mail_worker_command)
    app.cli.add_command(create_organizer_command)
    app.cli.add_command(ensure_organizer_command)
    app.cli.add_command(set_password_command)
    app.cli.add_command(deactivate_organizer_command)
    app.cli.add_command(list_organizers_command)
    app.cli.add_command(export_badges_command)
    app.cli.add_command(seed_demo_command)
    app.cli.add_command(create_code_command)
    app.cli.add_command(export_certificates_command)
    app.cli.add_command(notify_interest_command)
    for command in (*TOKEN_COMMANDS, *PRIVACY_COMMANDS):
        app.cli.add_command(command)


def _create_app():
    """The app of every command. A configuration error stops the command with its one-line
    message on stderr and status 1, not a traceback: `make run` starts with `necreg db
    upgrade`, and that line is what the operator who made a typo must read. SystemExit, not
    a click exception, because Flask's group turns any Exception from here into a traceback
    while it lists the commands."""
    from . import create_app
    from .config import ConfigError

    try:
        return create_app()
    except ConfigError as exc:
        click.echo(f"necreg: configuration error: {exc}", err=True)
        raise SystemExit(1) from None


@click.group(cls=FlaskGroup, create_app=_create_app)
def main() -> None:
    """necreg: registration and attendee management for the NEC Symposium."""
