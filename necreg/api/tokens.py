"""API tokens: created, listed and revoked from the command line (``necreg create-api-token``),
and recognised by the API (``authenticate``).

A token is shown once, when it is created; only its SHA-256 is stored, so a copy of the
database gives no way into the API. A revoked token stays listed (its name is kept, so a
leaked token's name is not taken again by accident) but opens nothing.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

import click
from flask.cli import with_appcontext
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..extensions import db
from ..formats import moment_text
from ..models import ApiToken, utcnow

#: What every token starts with, so one found in a file or a log is recognised for what it is.
TOKEN_PREFIX = "necreg_"  # noqa: S105 - a prefix, not a secret
#: The longest name of a token (ApiToken's check constraint).
NAME_MAX = 100
#: ``last_used_at`` is written at most this often per token (not on every request).
LAST_USE_PRECISION = timedelta(minutes=1)


class TokenError(ValueError):
    """A token that cannot be created or revoked; ``str(exc)`` says why."""


def hash_token(secret: str) -> str:
    """The hex SHA-256 stored for ``secret``. A token carries 256 random bits, so a fast hash
    is enough: no one can guess a token from its hash, however many hashes they try."""
    return hashlib.sha256(secret.encode()).hexdigest()


def find_token(session: Session, name: str) -> ApiToken | None:
    return session.execute(select(ApiToken).where(ApiToken.name == name)).scalar_one_or_none()


def create_token(
    session: Session, name: str, *, now: datetime | None = None
) -> tuple[ApiToken, str]:
    """A new token named ``name`` and the token itself (shown once, never stored).

    TokenError, with nothing added, for an empty or too long name or one already taken (by a
    revoked token too)."""
    name = name.strip()
    if not 1 <= len(name) <= NAME_MAX:
        raise TokenError(f"A token's name has 1 to {NAME_MAX} characters.")
    if find_token(session, name) is not None:
        raise TokenError(f"There is already a token named {name!r}; choose another name.")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(name=name, token_hash=hash_token(secret), created_at=now or utcnow())
    try:
        with session.begin_nested():
            session.add(token)
    except IntegrityError:  # created meanwhile by someone else
        raise TokenError(f"There is already a token named {name!r}; choose another name.") from None
    return token, secret


def revoke_token(session: Session, name: str, *, now: datetime | None = None) -> bool:
    """Revoke the token named ``name``: False when it was revoked already (nothing changes);
    TokenError when there is no such token."""
    token = find_token(session, name.strip())
    if token is None:
        raise TokenError(f"There is no token named {name.strip()!r}.")
    if token.revoked_at is not None:
        return False
    token.revoked_at = now or utcnow()
    session.flush()
    return True


def authenticate(session: Session, secret: str, *, now: datetime | None = None) -> ApiToken | None:
    """The token whose secret is ``secret``, if it exists and is not revoked; its last use
    noted (at most once per LAST_USE_PRECISION; the caller commits)."""
    if not secret:
        return None
    token = session.execute(
        select(ApiToken).where(ApiToken.token_hash == hash_token(secret))
    ).scalar_one_or_none()
    if token is None or token.revoked_at is not None:
        return None
    now = now or utcnow()
    if token.last_used_at is None or now - token.last_used_at >= LAST_USE_PRECISION:
        token.last_used_at = now
    return token


# --- commands -----------------------------------------------------------------------------


@click.command("create-api-token")
@click.argument("name")
@with_appcontext
def create_api_token_command(name: str) -> None:
    """Create an API token named NAME (e.g. the tool that uses it) and print it, once."""
    try:
        token, secret = create_token(db.session, name)
    except TokenError as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from None
    db.session.commit()
    click.echo(f"Created API token {token.name!r}. It is shown only now; keep it secret:")
    click.echo(secret)
    click.echo("Send it as the header  Authorization: Bearer <token>")


@click.command("revoke-api-token")
@click.argument("name")
@with_appcontext
def revoke_api_token_command(name: str) -> None:
    """Revoke the API token named NAME: it opens nothing from now on."""
    try:
        changed = revoke_token(db.session, name)
    except TokenError as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from None
    db.session.commit()
    name = name.strip()
    click.echo(f"Revoked API token {name!r}." if changed else f"{name!r} was revoked already.")


@click.command("list-api-tokens")
@with_appcontext
def list_api_tokens_command() -> None:
    """List the API tokens: name, when created, last used and revoked."""
    tokens = db.session.execute(select(ApiToken).order_by(ApiToken.name)).scalars().all()
    if not tokens:
        click.echo("No API tokens; create one with: necreg create-api-token NAME")
        return
    for token in tokens:
        last = moment_text(token.last_used_at) if token.last_used_at else "never"
        state = f"revoked {moment_text(token.revoked_at)}" if token.revoked_at else "active"
        click.echo(
            f"{token.name}\tcreated {moment_text(token.created_at)}\tlast used {last}\t{state}"
        )


#: The commands of this module, added to the ``necreg`` command by cli.register_commands.
TOKEN_COMMANDS: list[click.Command] = [
    create_api_token_command,
    revoke_api_token_command,
    list_api_tokens_command,
]
