"""Configuration: defaults -> TOML file -> NECREG_* environment -> the mapping passed in.

Every setting has a default here and one line in config.example.toml. Later layers win.
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
import tempfile
import tomllib
from collections.abc import Mapping
from datetime import tzinfo
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .formats import parse_yes_no, time_zone

DEFAULTS: dict[str, Any] = {
    # "development" or "production". Production refuses to start without SECRET_KEY.
    "ENV": "development",
    "SECRET_KEY": "",
    # Relative SQLite paths are resolved inside the instance folder.
    "DATABASE_URL": "sqlite:///necreg.db",
    # Largest request body accepted, in bytes; larger bodies get 413.
    "MAX_CONTENT_LENGTH": 64 * 1024,
    # Ask DNS whether an e-mail domain can receive mail (off: no network look-ups).
    "EMAIL_CHECK_DELIVERABILITY": False,
    # Prefix of the short attendee codes, e.g. NEC-7K3QXA.
    "ATTENDEE_CODE_PREFIX": "NEC",
    # Seconds between refreshes of the public counters in the browser.
    "STATS_REFRESH_SECONDS": 15,
    # Know without a query whether the public counters changed (SQLite: data_version;
    # PostgreSQL: LISTEN, one more connection per worker). Off behind a transaction-pooling
    # PgBouncer, where LISTEN gets nothing: every request then reads the counters' version.
    "CHANGE_WATCH": True,
    # Log level of the application logger.
    "LOG_LEVEL": "INFO",
    # "text" (one readable line per record) or "json" (one JSON object per line, for a log
    # collector); each record carries the request id (X-Request-ID, taken or made).
    "LOG_FORMAT": "text",
    # Errors are reported to Sentry when this is set (personal data scrubbed).
    "SENTRY_DSN": "",
    # /metrics needs this as a Bearer token; empty: /metrics answers the loopback only.
    "METRICS_TOKEN": "",
    # A folder holding the fonts badges and certificates are printed with (empty: the fonts
    # shipped in the package, then the system's).
    "FONT_DIR": "",
    # Address of the site as attendees reach it, for links in e-mails.
    "SITE_URL": "http://127.0.0.1:5000",
    # Say "N places left" on the landing page and form once fewer than this remain.
    "PLACES_LEFT_THRESHOLD": 20,
    # Where rate-limit counters live: "memory://" (per process) or "redis://host:6379/0"
    # (shared by every worker and machine).
    "RATELIMIT_STORAGE_URI": "memory://",
    # Sign-in attempts one client address may make (a flood limit; failed sign-ins also slow
    # the next ones down per account and address, see login_limits.py).
    "LOGIN_RATE_LIMIT": "10 per minute",
    # Lost-link e-mails one client address, and one e-mail address, may ask for.
    "LOST_LINK_RATE_LIMIT": "5 per hour",
    # Rate limiting on or off, and a prefix for its keys (to share one Redis between sites).
    "RATELIMIT_ENABLED": True,
    "RATELIMIT_KEY_PREFIX": "",
    # The time zone that times are shown in to organizers, e.g. "America/Chicago".
    "DISPLAY_TIMEZONE": "UTC",
    # "file" writes .eml files under instance/outbox/; "smtp" sends through MAIL_SERVER.
    "MAIL_BACKEND": "file",
    "MAIL_SERVER": "localhost",
    "MAIL_PORT": 25,
    # TLS to the mail server: STARTTLS after connecting (MAIL_USE_TLS, port 587), or TLS from
    # the start (MAIL_USE_SSL, port 465, which implies it). A login needs one of them.
    "MAIL_USE_TLS": False,
    "MAIL_USE_SSL": False,
    "MAIL_USERNAME": "",
    "MAIL_PASSWORD": "",
    "MAIL_SENDER": "NEC Symposium <registration@localhost>",
    # Delivery attempts of one message before it is marked failed (back-off 1, 2, 4 ... min).
    "MAIL_MAX_ATTEMPTS": 8,
    # Behind a reverse proxy: how many proxies set X-Forwarded-For / -Proto / -Host in front of
    # the app (0 = none: the headers are ignored, as they must be when anyone can send them).
    "PROXY_FIX_X_FOR": 0,
    "PROXY_FIX_X_PROTO": 0,
    "PROXY_FIX_X_HOST": 0,
    # How fees are paid: "none" (prices shown, nothing collected), "offline" (instructions;
    # organizers record payments), "stripe" (by card); PAYMENT_INSTRUCTIONS says how to pay,
    # offline.
    "PAYMENT_PROVIDER": "none",
    "PAYMENT_INSTRUCTIONS": "",
    # How long a registration that owes money holds its place unpaid, and how long a place
    # offered from the waiting list waits for its payment (with a provider other than "none").
    "PAYMENT_HOLD_MINUTES": 60,
    "PAYMENT_OFFER_HOURS": 48,
    # Stripe (PAYMENT_PROVIDER = "stripe"): the account's keys, the webhook endpoint's signing
    # secret, and where the API and Stripe.js are (Stripe's own unless testing).
    "STRIPE_SECRET_KEY": "",
    "STRIPE_PUBLISHABLE_KEY": "",
    "STRIPE_WEBHOOK_SECRET": "",
    "STRIPE_API_BASE": "https://api.stripe.com",
    "STRIPE_JS_URL": "https://js.stripe.com/v3/",
    # At most this many e-mails a minute leave each mail worker (0: no limit), so a message
    # to every attendee does not trip the mail provider's limits.
    "MAIL_RATE_PER_MINUTE": 300,
    # Interest-list sign-ups one client address, and one e-mail address, may make.
    "INTEREST_RATE_LIMIT": "5 per hour",
    # Receivers told of registrations: a list of {url, secret, events} (events: the event
    # types wanted, all when left out). In the environment, NECREG_WEBHOOKS holds JSON.
    "WEBHOOKS": [],
    # Requests one API token may make (``necreg create-api-token``).
    "API_RATE_LIMIT": "120 per minute",
    # An organizer's session ends after this long without use, and this long after sign-in.
    "SESSION_IDLE_MINUTES": 60,
    "SESSION_MAX_HOURS": 12,
    # Administrators must sign in with an authenticator code (TOTP) too.
    "TOTP_REQUIRED_FOR_ADMINS": False,
    # Registrations, and changes from private links, one client address may send.
    "REGISTER_RATE_LIMIT": "10 per minute; 100 per hour",
    "SELF_SERVICE_RATE_LIMIT": "30 per minute",
    # Codes one check-in account may try (scans and typed codes).
    "CHECK_IN_RATE_LIMIT": "120 per minute",
    # A registration form sent back sooner than this after it was shown is a script's.
    "REGISTER_MIN_SECONDS": 3,
    # Attendees of an event this many days over, and cancelled ones, are anonymised by
    # ``necreg purge``; delivered e-mails lose their bodies after OUTBOX_RETENTION_DAYS.
    "RETENTION_DAYS_AFTER_EVENT": 365,
    "OUTBOX_RETENTION_DAYS": 30,
}
#: The payment providers there are.
PAYMENT_PROVIDERS = ("none", "offline", "stripe")
#: What the Stripe provider cannot work without.
STRIPE_REQUIRED = ("STRIPE_SECRET_KEY", "STRIPE_PUBLISHABLE_KEY", "STRIPE_WEBHOOK_SECRET")
#: The events a webhook receiver may be told of (WEBHOOKS); webhooks.py says when each is.
WEBHOOK_EVENTS = (
    "registration.created",
    "registration.updated",
    "registration.cancelled",
    "registration.checked_in",
    "registration.paid",
)
#: The keys of a receiver in WEBHOOKS; ``events`` may be left out (then: all of them).
WEBHOOK_KEYS = ("url", "secret", "events")
#: Longest receiver address (the column ``webhook_deliveries.url``).
WEBHOOK_URL_LENGTH = 500

#: The port of SMTP over TLS from the start (RFC 8314 "implicit TLS").
SMTPS_PORT = 465
#: The shortest SECRET_KEY production accepts, in bytes (as HMAC-SHA256 wants its key).
SECRET_KEY_MIN_BYTES = 32

ENV_PREFIX = "NECREG_"
SECRET_FILE = "secret_key"  # noqa: S105 - a file name, not a secret


class ConfigError(RuntimeError):
    """The configuration cannot be used; the message says which setting and why."""


def _coerce(name: str, raw: str, default: Any) -> Any:
    """Turn an environment string into the type of the setting's default."""
    if isinstance(default, bool):
        try:
            return parse_yes_no(raw, default=False)
        except ValueError:
            raise ConfigError(f"{ENV_PREFIX}{name} must be true or false, not {raw!r}") from None
    if isinstance(default, int):
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(f"{ENV_PREFIX}{name} must be a whole number, not {raw!r}") from None
    if isinstance(default, list):
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise ConfigError(f"{ENV_PREFIX}{name} must be JSON (a list): {exc}") from None
    return raw


def webhook_receivers(value: Any) -> list[dict[str, Any]]:
    """The receivers of the setting WEBHOOKS, checked: each ``{url, secret, events}`` with an
    http(s) address (each address once), a secret, and ``events`` (all of WEBHOOK_EVENTS when
    left out) a list of known ones; ConfigError saying which receiver and what is wrong."""
    if not isinstance(value, list | tuple):
        raise ConfigError(
            "WEBHOOKS must be a list of receivers ({url, secret, events}),"
            f" not a {type(value).__name__}"
        )
    receivers: list[dict[str, Any]] = []
    for n, receiver in enumerate(value, start=1):
        where = f"WEBHOOKS receiver {n}"
        if not isinstance(receiver, Mapping):
            raise ConfigError(f"{where} must be a table with url, secret and events")
        unknown = sorted(set(receiver) - set(WEBHOOK_KEYS))
        if unknown:
            raise ConfigError(
                f"{where}: unknown key {', '.join(map(repr, unknown))}"
                f" (a receiver has {', '.join(WEBHOOK_KEYS)})"
            )
        url = receiver.get("url")
        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"{where}: url must be an http:// or https:// address, not {url!r}")
        if len(url) > WEBHOOK_URL_LENGTH:
            raise ConfigError(f"{where}: url is longer than {WEBHOOK_URL_LENGTH} characters")
        if any(other["url"] == url for other in receivers):
            raise ConfigError(f"{where}: {url} is named twice; name each receiver once")
        secret = receiver.get("secret")
        if not isinstance(secret, str) or not secret.strip():
            raise ConfigError(f"{where} ({url}): secret must be set (a long random value)")
        events = receiver.get("events", list(WEBHOOK_EVENTS))
        if (
            not isinstance(events, list | tuple)
            or not events
            or not all(isinstance(e, str) and e in WEBHOOK_EVENTS for e in events)
        ):
            raise ConfigError(
                f"{where} ({url}): events must list some of {', '.join(WEBHOOK_EVENTS)}"
                f" (or be left out for all), not {events!r}"
            )
        receivers.append({"url": url, "secret": secret, "events": list(dict.fromkeys(events))})
    return receivers


def _positive(value: Any) -> bool:
    try:
        return not isinstance(value, bool) and float(value) > 0
    except (TypeError, ValueError):
        return False


def _toml_path(instance_path: Path, environ: Mapping[str, str]) -> Path | None:
    named = environ.get(f"{ENV_PREFIX}CONFIG")
    if named:
        path = Path(named)
        if not path.is_file():
            raise ConfigError(f"{ENV_PREFIX}CONFIG names {named}, which is not a file")
        return path
    default = instance_path / "config.toml"
    return default if default.is_file() else None


def load(
    instance_path: Path,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Return the merged settings. Unknown keys from the file or mapping pass through."""
    environ = os.environ if environ is None else environ
    settings: dict[str, Any] = dict(DEFAULTS)

    path = _toml_path(instance_path, environ)
    if path is not None:
        try:
            with path.open("rb") as fh:
                data = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: {exc}") from None
        settings.update({key.upper(): value for key, value in data.items()})

    for key, raw in environ.items():
        if key.startswith(ENV_PREFIX) and key != f"{ENV_PREFIX}CONFIG":
            name = key[len(ENV_PREFIX) :]
            settings[name] = _coerce(name, raw, DEFAULTS.get(name, settings.get(name, "")))

    if overrides:
        settings.update(overrides)

    if settings["ENV"] not in {"development", "production"}:
        raise ConfigError(f"ENV must be 'development' or 'production', not {settings['ENV']!r}")
    if settings["PAYMENT_PROVIDER"] not in PAYMENT_PROVIDERS:
        raise ConfigError(
            f"PAYMENT_PROVIDER must be one of {', '.join(PAYMENT_PROVIDERS)},"
            f" not {settings['PAYMENT_PROVIDER']!r}"
        )
    if settings["PAYMENT_PROVIDER"] == "stripe":
        missing = [name for name in STRIPE_REQUIRED if not settings[name]]
        if missing:
            raise ConfigError(f"PAYMENT_PROVIDER stripe needs {', '.join(missing)}")
        for name in ("STRIPE_API_BASE", "STRIPE_JS_URL"):
            if not str(settings[name]).startswith(("https://", "http://127.0.0.1:")):
                raise ConfigError(f"{name} must be an https:// address, not {settings[name]!r}")
    for name in (
        "PAYMENT_HOLD_MINUTES", "PAYMENT_OFFER_HOURS", "SESSION_IDLE_MINUTES", "SESSION_MAX_HOURS",
    ):  # fmt: skip
        if not _positive(settings[name]):
            raise ConfigError(f"{name} must be a number above 0, not {settings[name]!r}")
    settings["WEBHOOKS"] = webhook_receivers(settings["WEBHOOKS"])
    rate = settings["MAIL_RATE_PER_MINUTE"]
    if not isinstance(rate, int) or isinstance(rate, bool) or rate < 0:
        raise ConfigError(
            f"MAIL_RATE_PER_MINUTE must be a whole number, 0 or more (0: no limit), not {rate!r}"
        )
    # A wrong time zone stops the app at start-up, not at the first scan at the door.
    display_timezone(str(settings["DISPLAY_TIMEZONE"]))
    _check_mail_security(settings)
    if not settings["SECRET_KEY"]:
        settings["SECRET_KEY"] = _instance_secret(instance_path, settings["ENV"])
    if settings["ENV"] == "production":
        _check_production(settings)
    return settings


def smtp_implicit_tls(config: Mapping[str, Any]) -> bool:
    """TLS from the start of the SMTP connection: MAIL_USE_SSL, or MAIL_PORT 465."""
    return bool(config["MAIL_USE_SSL"]) or _int_or_none(config["MAIL_PORT"]) == SMTPS_PORT


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _check_mail_security(settings: Mapping[str, Any]) -> None:
    """A password is sent to the mail server only inside TLS."""
    if str(settings["MAIL_BACKEND"]).lower() != "smtp":
        return
    if settings["MAIL_USE_TLS"] and smtp_implicit_tls(settings):
        raise ConfigError(
            "MAIL_USE_TLS (STARTTLS) and MAIL_USE_SSL (TLS from the start, port 465) exclude"
            " each other: set the one your mail server speaks on MAIL_PORT"
        )
    if settings["MAIL_USERNAME"] and not (settings["MAIL_USE_TLS"] or smtp_implicit_tls(settings)):
        raise ConfigError(
            "MAIL_USERNAME is set but neither MAIL_USE_TLS (STARTTLS) nor MAIL_USE_SSL (port"
            " 465) is: the mail password would cross the network in clear text"
        )


def _check_production(settings: Mapping[str, Any]) -> None:
    """What production refuses to start with; each message names the setting."""
    secret = str(settings["SECRET_KEY"])
    if len(secret.encode()) < SECRET_KEY_MIN_BYTES:
        raise ConfigError(
            f"SECRET_KEY must be at least {SECRET_KEY_MIN_BYTES} bytes in production (it signs"
            " sessions and links); generate one with: python -c 'import secrets;"
            " print(secrets.token_hex(32))'"
        )
    site = str(settings["SITE_URL"])
    parts = urlsplit(site)
    if parts.scheme != "https" or not parts.hostname:
        raise ConfigError(
            f"SITE_URL must be the https:// address attendees reach in production, not {site!r}"
        )
    if _is_loopback(parts.hostname):
        raise ConfigError(
            f"SITE_URL {site!r} is this machine's own (loopback) address: links in e-mails"
            " would lead nowhere; set the public https:// address"
        )
    if str(settings["MAIL_BACKEND"]).lower() == "file":
        raise ConfigError(
            'MAIL_BACKEND "file" only writes e-mails to instance/outbox/: in production set'
            ' MAIL_BACKEND = "smtp" and MAIL_SERVER'
        )
    if str(settings["RATELIMIT_STORAGE_URI"]).startswith("memory://"):
        raise ConfigError(
            'RATELIMIT_STORAGE_URI "memory://" counts in each worker alone (every worker'
            " would allow the whole limit): in production set redis://host:6379/0"
        )


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


def display_timezone(name: str) -> tzinfo:
    """The zone of the setting DISPLAY_TIMEZONE (times shown at the door); ConfigError if
    ``name`` is not one."""
    zone = time_zone(name)
    if zone is None:
        raise ConfigError(
            f"DISPLAY_TIMEZONE {name!r} is not a time zone; use a name such as America/Chicago"
        )
    return zone


def _instance_secret(instance_path: Path, env: str) -> str:
    """Read, or create once, the secret key of the embedded default setup."""
    if env == "production":
        raise ConfigError(
            "SECRET_KEY is not set. In production set NECREG_SECRET_KEY "
            "(or SECRET_KEY in the config file) to a long random value."
        )
    path = instance_path / SECRET_FILE
    instance_path.mkdir(parents=True, exist_ok=True, mode=0o700)  # its own, when made here
    if not path.exists():
        # Write a private temporary file, then link it into place: link() fails if the
        # name exists, so when several workers start at once exactly one key wins and
        # nobody ever reads a half-written file.
        fd, tmp = tempfile.mkstemp(dir=instance_path, prefix=".secret-")
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32) + "\n")
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
    key = path.read_text().strip()
    if not key:
        raise ConfigError(f"{path} is empty; delete it to have a new key generated")
    return key
