"""Configuration: defaults -> TOML file -> NECREG_* environment -> the mapping passed in.

SETTINGS below is the one list of settings: each with its default (whose type is the
setting's type) and what else its value must be; config.example.toml shows each with one line
on what it does (a test holds the two together). Later layers win.

Strict, because a typo must not pass silently: ``DATABSE_URL`` in the file would otherwise
leave the site running on SQLite. A name in the file or a NECREG_* variable that is no setting
(nor one of TOOLING_VARIABLES) stops the start, naming the nearest setting; every value given is
checked against its setting's type, choices and range, and the message names the setting, what
it must be, what was given and where it came from. The mapping passed in by code (create_app's
argument) may also carry Flask's own keys (TESTING, SQLALCHEMY_*, SERVER_NAME ...): those pass
through, while the settings in it are checked like the rest.
"""

from __future__ import annotations

import contextlib
import copy
import difflib
import ipaddress
import json
import math
import os
import secrets
import tempfile
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import tzinfo
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from limits import parse_many
from limits.storage import SCHEMES as RATELIMIT_STORAGE_SCHEMES
from sqlalchemy import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from .formats import parse_yes_no, time_zone

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
#: The levels LOG_LEVEL may name (in any letter case), as the logging module spells them.
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

#: The port of SMTP over TLS from the start (RFC 8314 "implicit TLS").
SMTPS_PORT = 465
#: The shortest SECRET_KEY production accepts, in bytes (as HMAC-SHA256 wants its key).
SECRET_KEY_MIN_BYTES = 32

ENV_PREFIX = "NECREG_"
SECRET_FILE = "secret_key"  # noqa: S105 - a file name, not a secret

#: NECREG_* environment variables that are not settings but are read by the tooling around
#: the app. Every other NECREG_ name must be a setting: anything else is refused as a typo.
#: A test reads the repository for NECREG_ names, so a new one must be added here.
TOOLING_VARIABLES = frozenset(
    {
        f"{ENV_PREFIX}CONFIG",  # the TOML file to read (_toml_path below)
        f"{ENV_PREFIX}INSTANCE_PATH",  # the instance folder (create_app)
        # gunicorn.conf.py
        f"{ENV_PREFIX}BIND",
        f"{ENV_PREFIX}WORKERS",
        f"{ENV_PREFIX}WORKER_TIMEOUT",
        f"{ENV_PREFIX}ACCESS_LOG",
        f"{ENV_PREFIX}GUNICORN_LOG_LEVEL",
        f"{ENV_PREFIX}FORWARDED_ALLOW_IPS",
    }
)
#: Whole families of tooling variables: the test suite's and the benchmarks' own.
TOOLING_PREFIXES = (f"{ENV_PREFIX}TEST_", f"{ENV_PREFIX}BENCH_")


class ConfigError(RuntimeError):
    """The configuration cannot be used; the message (one line) says which setting and why."""


class Range(NamedTuple):
    """The numbers a numeric setting allows, and how a message says so."""

    words: str
    holds: Callable[[float], bool]


ABOVE_ZERO = Range("above 0", lambda n: n > 0)
ZERO_OR_MORE = Range("0 or more", lambda n: n >= 0)
PORT = Range("from 1 to 65535", lambda n: 1 <= n <= 65535)


@dataclass(frozen=True)
class Setting:
    """One setting: its name and default, and what a value must be besides being of the
    default's type (true/false, a whole number, a string or a list)."""

    name: str
    default: Any
    #: The words the value must be one of, in any letter case (kept as spelled here).
    choices: tuple[str, ...] = ()
    #: The numbers allowed.
    range: Range | None = None
    #: Fractions allowed too (the code reads it with float()); else whole numbers only.
    fraction: bool = False
    #: A further check of a value of the right type: returns the value to keep, or raises
    #: ValueError whose text follows the setting's name ("must be ...", "names ...").
    check: Callable[[Any], Any] | None = None
    #: A password, key or token: its value is never repeated in a message.
    secret: bool = False
    #: What a value must be, when the type alone says too little.
    expected: str = ""


# --- the checks of single values (ValueError: the text after the setting's name) ----------


def _rate_limit(value: str) -> str:
    """A rate-limit string as flask-limiter reads it, parsed now rather than at the first
    request it would have limited."""
    try:
        parse_many(value)
    except ValueError as exc:
        raise ValueError(
            "must be a rate limit such as '10 per minute' or '10 per minute; 100 per hour',"
            f" not {value!r} ({exc})"
        ) from None
    return value


def _database_url(value: str) -> str:
    """An address SQLAlchemy can connect with: parsed, of a known kind, its driver installed.
    The value is shown with the password hidden."""
    examples = "sqlite:///necreg.db or postgresql+psycopg://USER:PASSWORD@HOST/NAME"
    try:
        url = make_url(value)
    except ArgumentError:
        raise ValueError(f"must be a database address such as {examples}") from None
    shown = url.render_as_string(hide_password=True)
    try:
        dialect = url.get_dialect()
    except NoSuchModuleError:
        raise ValueError(
            f"{shown!r} names the database kind {url.drivername!r}, which SQLAlchemy does not"
            f" know; use an address such as {examples}"
        ) from None
    try:
        dialect.import_dbapi()
    except ImportError:
        raise ValueError(
            f"{shown!r} needs the database driver {url.get_driver_name()!r}, which is not"
            f" installed; use an address such as {examples}"
        ) from None
    return value


def _site_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"must be the http:// or https:// address attendees reach the site at, not {value!r}"
        )
    return value


def _ratelimit_storage(value: str) -> str:
    """A storage flask-limiter knows; only the scheme is shown (the rest may hold a password)."""
    scheme = urlsplit(value).scheme
    if scheme not in RATELIMIT_STORAGE_SCHEMES:
        raise ValueError(
            f"must be memory:// or redis://HOST:6379/0 (a storage flask-limiter knows),"
            f" not an address of the kind {scheme + '://' if scheme else 'without a scheme'}"
        )
    return value


def _sentry_dsn(value: str) -> str:
    """Empty (no reporting), or a DSN as Sentry's project settings show it. Not shown: it
    carries the project's key."""
    if value:
        parts = urlsplit(value)
        if (
            parts.scheme not in ("http", "https")
            or not parts.username
            or not parts.hostname
            or not parts.path.strip("/")
        ):
            raise ValueError(
                "must be empty or a DSN such as https://KEY@o123.ingest.sentry.io/456"
                " (Sentry shows it in the project's settings, under Client Keys)"
            )
    return value


def _font_dir(value: str) -> str:
    if value and not Path(value).is_dir():
        raise ValueError(f"names {value}, which is not a folder (empty: the shipped fonts)")
    return value


def _time_zone_name(value: str) -> str:
    if time_zone(value) is None:
        raise ValueError(f"{value!r} is not a time zone; use a name such as America/Chicago")
    return value


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


# --- the settings -------------------------------------------------------------------------

SETTINGS: tuple[Setting, ...] = (
    # "development" or "production". Production refuses to start without SECRET_KEY.
    Setting("ENV", "development", choices=("development", "production")),
    Setting("SECRET_KEY", "", secret=True),
    # Relative SQLite paths are resolved inside the instance folder.
    Setting("DATABASE_URL", "sqlite:///necreg.db", check=_database_url),
    # Largest request body accepted, in bytes; larger bodies get 413.
    Setting("MAX_CONTENT_LENGTH", 64 * 1024, range=ABOVE_ZERO),
    # Ask DNS whether an e-mail domain can receive mail (off: no network look-ups).
    Setting("EMAIL_CHECK_DELIVERABILITY", False),
    # Prefix of the short attendee codes, e.g. NEC-7K3QXA.
    Setting("ATTENDEE_CODE_PREFIX", "NEC"),
    # Seconds between refreshes of the public counters in the browser.
    Setting("STATS_REFRESH_SECONDS", 15, range=ABOVE_ZERO),
    # Know without a query whether the public counters changed (SQLite: data_version;
    # PostgreSQL: LISTEN, one more connection per worker). Off behind a transaction-pooling
    # PgBouncer, where LISTEN gets nothing: every request then reads the counters' version.
    Setting("CHANGE_WATCH", True),
    # Log level of the application logger.
    Setting("LOG_LEVEL", "INFO", choices=LOG_LEVELS),
    # "text" (one readable line per record) or "json" (one JSON object per line, for a log
    # collector); each record carries the request id (X-Request-ID, taken or made).
    Setting("LOG_FORMAT", "text", choices=("text", "json")),
    # Errors are reported to Sentry when this is set (personal data scrubbed).
    Setting("SENTRY_DSN", "", check=_sentry_dsn, secret=True),
    # /metrics needs this as a Bearer token; empty: /metrics answers the loopback only.
    Setting("METRICS_TOKEN", "", secret=True),
    # A folder holding the fonts badges and certificates are printed with (empty: the fonts
    # shipped in the package, then the system's).
    Setting("FONT_DIR", "", check=_font_dir),
    # Address of the site as attendees reach it, for links in e-mails.
    Setting("SITE_URL", "http://127.0.0.1:5000", check=_site_url),
    # Say "N places left" on the landing page and form once fewer than this remain.
    Setting("PLACES_LEFT_THRESHOLD", 20, range=ZERO_OR_MORE),
    # Where rate-limit counters live: "memory://" (per process) or "redis://host:6379/0"
    # (shared by every worker and machine).
    Setting("RATELIMIT_STORAGE_URI", "memory://", check=_ratelimit_storage),
    # Sign-in attempts one client address may make (a flood limit; failed sign-ins also slow
    # the next ones down per account and address, see login_limits.py).
    Setting("LOGIN_RATE_LIMIT", "10 per minute", check=_rate_limit),
    # Lost-link e-mails one client address, and one e-mail address, may ask for.
    Setting("LOST_LINK_RATE_LIMIT", "5 per hour", check=_rate_limit),
    # Rate limiting on or off, and a prefix for its keys (to share one Redis between sites).
    Setting("RATELIMIT_ENABLED", True),
    Setting("RATELIMIT_KEY_PREFIX", ""),
    # The time zone of an event whose file names no `timezone`, and of the pages about no
    # event (account, audit log) when no event is current, e.g. "America/Chicago". Every
    # time about an event is shown in the event's own zone.
    Setting("DISPLAY_TIMEZONE", "UTC", check=_time_zone_name),
    # "file" writes .eml files under instance/outbox/; "smtp" sends through MAIL_SERVER.
    Setting("MAIL_BACKEND", "file", choices=("file", "smtp")),
    Setting("MAIL_SERVER", "localhost"),
    Setting("MAIL_PORT", 25, range=PORT),
    # TLS to the mail server: STARTTLS after connecting (MAIL_USE_TLS, port 587), or TLS from
    # the start (MAIL_USE_SSL, port 465, which implies it). A login needs one of them.
    Setting("MAIL_USE_TLS", False),
    Setting("MAIL_USE_SSL", False),
    Setting("MAIL_USERNAME", ""),
    Setting("MAIL_PASSWORD", "", secret=True),
    Setting("MAIL_SENDER", "NEC Symposium <registration@localhost>"),
    # Delivery attempts of one message before it is marked failed (back-off 1, 2, 4 ... min).
    Setting("MAIL_MAX_ATTEMPTS", 8, range=ABOVE_ZERO),
    # Behind a reverse proxy: how many proxies set X-Forwarded-For / -Proto / -Host in front of
    # the app (0 = none: the headers are ignored, as they must be when anyone can send them).
    Setting("PROXY_FIX_X_FOR", 0, range=ZERO_OR_MORE),
    Setting("PROXY_FIX_X_PROTO", 0, range=ZERO_OR_MORE),
    Setting("PROXY_FIX_X_HOST", 0, range=ZERO_OR_MORE),
    # How fees are paid: "none" (prices shown, nothing collected), "offline" (instructions;
    # organizers record payments), "stripe" (by card); PAYMENT_INSTRUCTIONS says how to pay,
    # offline.
    Setting("PAYMENT_PROVIDER", "none", choices=PAYMENT_PROVIDERS),
    Setting("PAYMENT_INSTRUCTIONS", ""),
    # How long a registration that owes money holds its place unpaid, and how long a place
    # offered from the waiting list waits for its payment (with a provider other than "none").
    Setting("PAYMENT_HOLD_MINUTES", 60, range=ABOVE_ZERO, fraction=True),
    Setting("PAYMENT_OFFER_HOURS", 48, range=ABOVE_ZERO, fraction=True),
    # Stripe (PAYMENT_PROVIDER = "stripe"): the account's keys, the webhook endpoint's signing
    # secret, and where the API and Stripe.js are (Stripe's own unless testing).
    Setting("STRIPE_SECRET_KEY", "", secret=True),
    Setting("STRIPE_PUBLISHABLE_KEY", ""),
    Setting("STRIPE_WEBHOOK_SECRET", "", secret=True),
    Setting("STRIPE_API_BASE", "https://api.stripe.com"),
    Setting("STRIPE_JS_URL", "https://js.stripe.com/v3/"),
    # At most this many e-mails a minute leave each mail worker (0: no limit), so a message
    # to every attendee does not trip the mail provider's limits.
    Setting("MAIL_RATE_PER_MINUTE", 300, range=ZERO_OR_MORE),
    # Interest-list sign-ups one client address, and one e-mail address, may make.
    Setting("INTEREST_RATE_LIMIT", "5 per hour", check=_rate_limit),
    # Receivers told of registrations: a list of {url, secret, events} (events: the event
    # types wanted, all when left out). In the environment, NECREG_WEBHOOKS holds JSON.
    Setting(
        "WEBHOOKS",
        [],
        check=webhook_receivers,
        secret=True,
        expected="a list of receivers ({url, secret, events})",
    ),
    # Requests one API token may make (``necreg create-api-token``).
    Setting("API_RATE_LIMIT", "120 per minute", check=_rate_limit),
    # An organizer's session ends after this long without use, and this long after sign-in.
    Setting("SESSION_IDLE_MINUTES", 60, range=ABOVE_ZERO),
    Setting("SESSION_MAX_HOURS", 12, range=ABOVE_ZERO),
    # Administrators must sign in with an authenticator code (TOTP) too.
    Setting("TOTP_REQUIRED_FOR_ADMINS", False),
    # Registrations, and changes from private links, one client address may send.
    Setting("REGISTER_RATE_LIMIT", "10 per minute; 100 per hour", check=_rate_limit),
    Setting("SELF_SERVICE_RATE_LIMIT", "30 per minute", check=_rate_limit),
    # Codes one check-in account may try (scans and typed codes).
    Setting("CHECK_IN_RATE_LIMIT", "120 per minute", check=_rate_limit),
    # A registration form sent back sooner than this after it was shown is a script's.
    Setting("REGISTER_MIN_SECONDS", 3, range=ZERO_OR_MORE, fraction=True),
    # Attendees of an event this many days over, and cancelled ones, are anonymised by
    # ``necreg purge``; delivered e-mails lose their bodies after OUTBOX_RETENTION_DAYS.
    Setting("RETENTION_DAYS_AFTER_EVENT", 365, range=ZERO_OR_MORE),
    Setting("OUTBOX_RETENTION_DAYS", 30, range=ZERO_OR_MORE),
)
#: Each setting by name.
SETTING: dict[str, Setting] = {setting.name: setting for setting in SETTINGS}
#: Each setting's default by name (what other modules and config.example.toml's test read).
DEFAULTS: dict[str, Any] = {setting.name: setting.default for setting in SETTINGS}


# --- checking what is given ---------------------------------------------------------------


def _expected(setting: Setting) -> str:
    """What a value of ``setting`` must be, in words: "a whole number above 0"."""
    if setting.expected:
        return setting.expected
    if setting.choices:
        return f"one of {', '.join(setting.choices)}"
    default = setting.default
    if isinstance(default, bool):
        return "true or false"
    if isinstance(default, int):
        words = "a number" if setting.fraction else "a whole number"
        if setting.range is not None:
            joint = ", " if setting.range.words[0].isdigit() else " "
            words += joint + setting.range.words
        return words
    if isinstance(default, list):
        return "a list"
    return "a string"


def _is_of_type(setting: Setting, value: Any) -> bool:
    default = setting.default
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int):
        kinds = (int, float) if setting.fraction else (int,)
        finite = not isinstance(value, float) or math.isfinite(value)
        return isinstance(value, kinds) and not isinstance(value, bool) and finite
    if isinstance(default, list):
        return isinstance(value, list | tuple)
    return isinstance(value, str)


def _shown(value: Any, secret: bool) -> str:
    """What was given, for a message: the value and its kind, or only its kind when the value
    is secret or a whole structure."""
    kind = {
        bool: "a boolean",
        str: "a string",
        int: "a whole number",
        float: "a fraction",
        list: "a list",
        tuple: "a list",
        dict: "a table",
    }.get(type(value), f"a value of type {type(value).__name__}")
    if secret or isinstance(value, list | tuple | dict):
        return kind
    if isinstance(value, bool):
        return f"{str(value).lower()} ({kind})"
    if isinstance(value, str):
        return f"{value!r} ({kind})"
    return repr(value)


def _checked(setting: Setting, value: Any, label: str) -> Any:
    """``value`` as ``setting`` keeps it (a choice in its own spelling, receivers made
    whole), or ConfigError whose message starts with ``label``."""
    if not _is_of_type(setting, value):
        raise ConfigError(
            f"{label} must be {_expected(setting)}, not {_shown(value, setting.secret)}"
        )
    if setting.choices:
        for choice in setting.choices:
            if value.lower() == choice.lower():
                return choice
        raise ConfigError(f"{label} must be {_expected(setting)}, not {value!r}")
    if setting.range is not None and not setting.range.holds(value):
        raise ConfigError(f"{label} must be {_expected(setting)}, not {value!r}")
    if setting.check is not None:
        try:
            return setting.check(value)
        except ValueError as exc:
            raise ConfigError(f"{label} {exc}") from None
    return value


def _parsed(setting: Setting, raw: str, label: str) -> Any:
    """An environment variable's text as a value of ``setting``'s type (then _checked)."""
    default = setting.default
    if isinstance(default, bool):
        try:
            return parse_yes_no(raw, default=False)
        except ValueError:
            raise ConfigError(f"{label} must be true or false, not {raw!r}") from None
    if isinstance(default, int):
        for read in (int, float) if setting.fraction else (int,):
            with contextlib.suppress(ValueError):
                return read(raw.strip())
        raise ConfigError(f"{label} must be {_expected(setting)}, not {raw!r}")
    if isinstance(default, list):
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise ConfigError(f"{label} must be JSON (a list): {exc}") from None
    return raw


def _unknown(name: str, candidates: list[str], prefix: str = "") -> str:
    """``name`` refused, with the nearest known name when one is near."""
    near = difflib.get_close_matches(name.upper(), candidates, n=1)
    if near:
        return f"{prefix}{name} (did you mean {prefix}{near[0]}?)"
    return f"{prefix}{name} (config.example.toml lists every setting)"


def _from_file(path: Path) -> dict[str, Any]:
    """The settings of the TOML file at ``path``, checked; unknown names refused together."""
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    unknown = [key for key in data if key.upper() not in SETTING]
    if unknown:
        names = "; ".join(_unknown(key, list(SETTING)) for key in unknown)
        setting = "setting" if len(unknown) == 1 else "settings"
        raise ConfigError(f"{path}: unknown {setting} {names}")
    settings = {}
    for key, value in data.items():
        setting = SETTING[key.upper()]
        try:
            settings[setting.name] = _checked(setting, value, setting.name)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None
    return settings


def _from_environment(environ: Mapping[str, str]) -> dict[str, Any]:
    """The settings of NECREG_* variables, parsed and checked; a NECREG_ name that is
    neither a setting nor a tooling variable is refused (all such names together)."""
    ours = {
        key: raw
        for key, raw in environ.items()
        if key.startswith(ENV_PREFIX)
        and key not in TOOLING_VARIABLES
        and not key.startswith(TOOLING_PREFIXES)
    }
    unknown = sorted(key for key in ours if key[len(ENV_PREFIX) :] not in SETTING)
    if unknown:
        known = [*SETTING, *(name[len(ENV_PREFIX) :] for name in sorted(TOOLING_VARIABLES))]
        names = "; ".join(_unknown(key[len(ENV_PREFIX) :], known, ENV_PREFIX) for key in unknown)
        variable = "variable" if len(unknown) == 1 else "variables"
        raise ConfigError(f"unknown environment {variable} {names}")
    settings = {}
    for key, raw in ours.items():
        setting = SETTING[key[len(ENV_PREFIX) :]]
        settings[setting.name] = _checked(setting, _parsed(setting, raw, key), key)
    return settings


def _from_code(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The mapping passed to create_app: its settings checked, any other key (Flask's own:
    TESTING, SQLALCHEMY_*, SERVER_NAME, INSTANCE_PATH ...) passed through as it is."""
    return {
        key: _checked(SETTING[key], value, key) if key in SETTING else value
        for key, value in overrides.items()
    }


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
    """Return the merged settings, each layer checked as it is read (module docstring);
    ConfigError, one line naming the setting and where it came from, if any is wrong."""
    environ = os.environ if environ is None else environ
    settings: dict[str, Any] = copy.deepcopy(DEFAULTS)  # WEBHOOKS' list is the app's own
    path = _toml_path(instance_path, environ)
    if path is not None:
        settings.update(_from_file(path))
    settings.update(_from_environment(environ))
    if overrides:
        settings.update(_from_code(overrides))

    # What no single value shows: settings that need each other.
    if settings["PAYMENT_PROVIDER"] == "stripe":
        missing = [name for name in STRIPE_REQUIRED if not settings[name]]
        if missing:
            raise ConfigError(f"PAYMENT_PROVIDER stripe needs {', '.join(missing)}")
        for name in ("STRIPE_API_BASE", "STRIPE_JS_URL"):
            if not str(settings[name]).startswith(("https://", "http://127.0.0.1:")):
                raise ConfigError(f"{name} must be an https:// address, not {settings[name]!r}")
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
    """The zone of the setting DISPLAY_TIMEZONE; ConfigError if
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
