"""Strict configuration: unknown names refused with the nearest setting, values checked.

A typo must stop the start, not pass silently: ``DATABSE_URL`` would otherwise leave the site
on SQLite, ``LOG_LEVEL = "verbose"`` would become INFO.
"""

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from necreg import create_app
from necreg.config import (
    DEFAULTS,
    ENV_PREFIX,
    SETTINGS,
    TOOLING_PREFIXES,
    TOOLING_VARIABLES,
    ConfigError,
    _checked,
    load,
)

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def from_file(tmp_path, text):
    """load() with a config file holding ``text`` and nothing in the environment."""
    path = tmp_path / "config.toml"
    path.write_text(text)
    return load(tmp_path, environ={})


def refused_from_file(tmp_path, text) -> str:
    with pytest.raises(ConfigError) as refusal:
        from_file(tmp_path, text)
    message = str(refusal.value)
    assert message.startswith(f"{tmp_path / 'config.toml'}: "), message  # where it came from
    assert "\n" not in message
    return message


def refused_from_environment(tmp_path, **environ) -> str:
    instance = tmp_path / "no-file"  # an instance folder without config.toml
    with pytest.raises(ConfigError) as refusal:
        load(instance, environ=environ)
    assert "\n" not in str(refusal.value)
    return str(refusal.value)


def refused_from_code(tmp_path, **overrides) -> str:
    with pytest.raises(ConfigError) as refusal:
        load(tmp_path, overrides, environ={})
    return str(refusal.value)


# --- unknown names ---------------------------------------------------------------------------


def test_an_unknown_name_in_the_file_is_refused_with_the_nearest_setting(tmp_path):
    message = refused_from_file(tmp_path, 'DATABSE_URL = "postgresql+psycopg://u@db/necreg"\n')
    assert message.endswith("unknown setting DATABSE_URL (did you mean DATABASE_URL?)")


def test_every_unknown_name_in_the_file_is_named_at_once(tmp_path):
    message = refused_from_file(tmp_path, "LOGLEVEL = 'INFO'\nMAIL_PORTS = 25\nCOLOUR = 'red'\n")
    assert "unknown settings LOGLEVEL (did you mean LOG_LEVEL?)" in message
    assert "MAIL_PORTS (did you mean MAIL_PORT?)" in message
    assert "COLOUR (config.example.toml lists every setting)" in message


def test_names_in_the_file_may_be_in_lower_case_as_before(tmp_path):
    assert from_file(tmp_path, "mail_port = 587\n")["MAIL_PORT"] == 587


def test_an_unknown_environment_variable_is_refused_with_the_nearest_name(tmp_path):
    message = refused_from_environment(tmp_path, NECREG_DATABSE_URL="sqlite:///x.db")
    assert message == (
        "unknown environment variable NECREG_DATABSE_URL (did you mean NECREG_DATABASE_URL?)"
    )
    # The tooling's variables are near names too.
    message = refused_from_environment(tmp_path, NECREG_WORKER="4")
    assert "NECREG_WORKER (did you mean NECREG_WORKERS?)" in message


def test_a_name_far_from_every_setting_gets_no_suggestion(tmp_path):
    message = refused_from_file(tmp_path, 'COLOUR_SCHEME = "dark"\n')
    assert "did you mean" not in message
    assert "COLOUR_SCHEME (config.example.toml lists every setting)" in message
    message = refused_from_environment(tmp_path, NECREG_COLOUR_SCHEME="dark")
    assert "did you mean" not in message
    assert "NECREG_COLOUR_SCHEME" in message


def test_the_tooling_variables_are_accepted(tmp_path):
    environ = dict.fromkeys(TOOLING_VARIABLES, "x") | {
        "NECREG_TEST_ANYTHING": "x",
        "NECREG_BENCH_ANYTHING": "x",
        "NECREG_CONFIG": "",  # empty: no file named
        "OTHER_PROGRAM_SETTING": "x",  # not ours
    }
    assert load(tmp_path, environ=environ)["DATABASE_URL"] == DEFAULTS["DATABASE_URL"]


def test_every_necreg_variable_the_repository_uses_is_a_setting_or_tooling():
    """gunicorn.conf.py, the Makefile, bench/, scripts/, tests/, deploy/ ...: a NECREG_ name
    they use that is neither would stop the app that runs beside them."""
    suffixes = (".py", ".lua", ".sh", ".toml", ".yaml", ".yml", ".service", ".conf", ".env")
    names: dict[str, str] = {}
    for path in ROOT.rglob("*"):
        parts = path.relative_to(ROOT).parts
        if parts[0].startswith(".") or "node_modules" in parts or not path.is_file():
            continue
        if path.name.startswith("test_config") or not (
            path.suffix in suffixes or path.name in ("Makefile", "Dockerfile")
        ):
            continue
        for name in re.findall(r"\bNECREG_[A-Z0-9_]*[A-Z0-9]\b", path.read_text(errors="ignore")):
            names.setdefault(name, str(path.relative_to(ROOT)))
    strays = {
        name: where
        for name, where in names.items()
        if name[len(ENV_PREFIX) :] not in DEFAULTS
        and name not in TOOLING_VARIABLES
        and not name.startswith(TOOLING_PREFIXES)
    }
    assert not strays, f"add these to TOOLING_VARIABLES in necreg/config.py: {strays}"


# --- types ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('CHANGE_WATCH = "no"', "CHANGE_WATCH must be true or false, not 'no' (a string)"),
        ("CHANGE_WATCH = 0", "CHANGE_WATCH must be true or false, not 0"),
        (
            'MAIL_PORT = "587"',
            "MAIL_PORT must be a whole number from 1 to 65535, not '587' (a string)",
        ),
        ("MAIL_PORT = true", "MAIL_PORT must be a whole number from 1 to 65535, not true"),
        ("MAX_CONTENT_LENGTH = 1.5", "MAX_CONTENT_LENGTH must be a whole number above 0, not 1.5"),
        ("ATTENDEE_CODE_PREFIX = 7", "ATTENDEE_CODE_PREFIX must be a string, not 7"),
        ('SITE_URL = ["a"]', "SITE_URL must be a string, not a list"),
        ('WEBHOOKS = "https://x"', "WEBHOOKS must be a list of receivers"),
        ('PAYMENT_HOLD_MINUTES = "60"', "PAYMENT_HOLD_MINUTES must be a number above 0, not '60'"),
    ],
)
def test_values_of_the_wrong_type_in_the_file_are_refused(tmp_path, line, expected):
    assert expected in refused_from_file(tmp_path, line + "\n")


@pytest.mark.parametrize(
    ("name", "raw", "expected"),
    [
        ("CHANGE_WATCH", "maybe", "NECREG_CHANGE_WATCH must be true or false, not 'maybe'"),
        ("MAIL_PORT", "smtp", "NECREG_MAIL_PORT must be a whole number from 1 to 65535"),
        ("MAIL_PORT", "25.0", "NECREG_MAIL_PORT must be a whole number"),
        ("PAYMENT_OFFER_HOURS", "soon", "NECREG_PAYMENT_OFFER_HOURS must be a number above 0"),
        ("WEBHOOKS", "[{url = 1}]", "NECREG_WEBHOOKS must be JSON (a list)"),
    ],
)
def test_environment_values_that_do_not_parse_are_refused(tmp_path, name, raw, expected):
    assert expected in refused_from_environment(tmp_path, **{f"NECREG_{name}": raw})


def test_environment_values_are_parsed_as_before(tmp_path):
    environ = {
        "NECREG_CHANGE_WATCH": "no",
        "NECREG_TOTP_REQUIRED_FOR_ADMINS": "1",
        "NECREG_MAIL_PORT": " 587 ",
        "NECREG_REGISTER_MIN_SECONDS": "0.5",
        "NECREG_WEBHOOKS": "[]",
    }
    settings = load(tmp_path, environ=environ)
    assert settings["CHANGE_WATCH"] is False
    assert settings["TOTP_REQUIRED_FOR_ADMINS"] is True
    assert settings["MAIL_PORT"] == 587
    assert settings["REGISTER_MIN_SECONDS"] == 0.5
    assert settings["WEBHOOKS"] == []


def test_settings_passed_by_code_are_checked_too(tmp_path):
    assert "MAIL_PORT must be a whole number" in refused_from_code(tmp_path, MAIL_PORT="25")
    assert "CHANGE_WATCH must be true or false" in refused_from_code(tmp_path, CHANGE_WATCH=None)
    message = refused_from_code(tmp_path, PAYMENT_HOLD_MINUTES=float("inf"))
    assert "PAYMENT_HOLD_MINUTES must be a number above 0" in message
    assert "MAIL_PORT must be a whole number" in refused_from_code(tmp_path, MAIL_PORT=10**400)


def test_flask_keys_passed_by_code_pass_through(tmp_path):
    flask_keys = {
        "TESTING": True,
        "WTF_CSRF_ENABLED": False,
        "SQLALCHEMY_ECHO": False,
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        "SERVER_NAME": "reg.example.org",
        "INSTANCE_PATH": str(tmp_path),
    }
    settings = load(tmp_path, flask_keys, environ={})
    assert {key: settings[key] for key in flask_keys} == flask_keys
    app = create_app({**flask_keys, "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"})
    assert app.config["TESTING"] is True
    assert app.config["SERVER_NAME"] == "reg.example.org"


def test_a_secret_of_the_wrong_type_is_not_repeated(tmp_path):
    message = refused_from_file(tmp_path, "MAIL_PASSWORD = 271828\n")
    assert message.endswith("MAIL_PASSWORD must be a string, not a whole number")
    assert "271828" not in message


# --- choices -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "wrong", "choices"),
    [
        ("ENV", "prod", "development, production"),
        ("PAYMENT_PROVIDER", "paypal", "none, offline, stripe"),
        ("MAIL_BACKEND", "sendmail", "file, smtp"),
        ("LOG_LEVEL", "verbose", "DEBUG, INFO, WARNING, ERROR, CRITICAL"),
        ("LOG_FORMAT", "xml", "text, json"),
    ],
)
def test_each_choice_is_checked(tmp_path, name, wrong, choices):
    expected = f"{name} must be one of {choices}, not {wrong!r}"
    assert refused_from_file(tmp_path, f'{name} = "{wrong}"\n').endswith(expected)
    assert f"NECREG_{expected}" in refused_from_environment(tmp_path, **{f"NECREG_{name}": wrong})


def test_log_level_verbose_no_longer_becomes_info(tmp_path):
    message = refused_from_environment(tmp_path, NECREG_LOG_LEVEL="verbose")
    assert message.startswith("NECREG_LOG_LEVEL must be one of DEBUG, INFO")


def test_choices_take_any_letter_case_and_are_kept_as_spelled_in_the_list(tmp_path):
    settings = from_file(
        tmp_path, 'LOG_LEVEL = "debug"\nMAIL_BACKEND = "SMTP"\nLOG_FORMAT = "JSON"\n'
    )
    assert (settings["LOG_LEVEL"], settings["MAIL_BACKEND"], settings["LOG_FORMAT"]) == (
        "DEBUG",
        "smtp",
        "json",
    )


# --- values --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [s.name for s in SETTINGS if s.name.endswith("_RATE_LIMIT")])
def test_a_rate_limit_typo_stops_the_start(tmp_path, name):
    message = refused_from_file(tmp_path, f'{name} = "10 per minit"\n')
    assert f"{name} must be a rate limit such as '10 per minute'" in message
    assert "not '10 per minit' (no granularity matched for minit)" in message
    assert from_file(tmp_path, f'{name} = "10/minute; 100 per hour"\n')[name]


def test_a_database_url_that_is_not_one_is_refused(tmp_path):
    message = refused_from_file(tmp_path, 'DATABASE_URL = "necreg.db"\n')
    assert "DATABASE_URL must be a database address such as sqlite:///necreg.db" in message
    message = refused_from_environment(tmp_path, NECREG_DATABASE_URL="postgres://u:hush@db/n")
    assert message.startswith("NECREG_DATABASE_URL 'postgres://u:***@db/n' names the database")
    assert "hush" not in message


@pytest.mark.skipif(
    importlib.util.find_spec("psycopg2") is not None, reason="psycopg2 is installed here"
)
def test_a_database_url_whose_driver_is_missing_is_refused(tmp_path):
    """necreg installs psycopg (3), not psycopg2: an address that asks for psycopg2 would
    otherwise fail at the first request."""
    line = 'DATABASE_URL = "postgresql+psycopg2://u:hush@db/necreg"\n'
    message = refused_from_file(tmp_path, line)
    assert "needs the database driver 'psycopg2', which is not installed" in message
    assert "postgresql+psycopg://" in message
    assert "hush" not in message


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("MAIL_PORT = 0", "MAIL_PORT must be a whole number from 1 to 65535, not 0"),
        ("MAIL_PORT = 65536", "MAIL_PORT must be a whole number from 1 to 65535, not 65536"),
        ("MAX_CONTENT_LENGTH = 0", "MAX_CONTENT_LENGTH must be a whole number above 0, not 0"),
        ("MAIL_MAX_ATTEMPTS = 0", "MAIL_MAX_ATTEMPTS must be a whole number above 0"),
        ("STATS_REFRESH_SECONDS = 0", "STATS_REFRESH_SECONDS must be a whole number above 0"),
        ("PROXY_FIX_X_FOR = -1", "PROXY_FIX_X_FOR must be a whole number, 0 or more, not -1"),
        ("PLACES_LEFT_THRESHOLD = -1", "PLACES_LEFT_THRESHOLD must be a whole number, 0 or more"),
        ("OUTBOX_RETENTION_DAYS = -1", "OUTBOX_RETENTION_DAYS must be a whole number, 0 or more"),
        ("REGISTER_MIN_SECONDS = -0.5", "REGISTER_MIN_SECONDS must be a number, 0 or more"),
        ("PAYMENT_OFFER_HOURS = 0", "PAYMENT_OFFER_HOURS must be a number above 0, not 0"),
        ('SITE_URL = "reg.example.org"', "SITE_URL must be the http:// or https:// address"),
        ('DISPLAY_TIMEZONE = "Mars/Olympus"', "DISPLAY_TIMEZONE 'Mars/Olympus' is not a time"),
    ],
)
def test_numbers_and_addresses_out_of_range_are_refused(tmp_path, line, expected):
    assert expected in refused_from_file(tmp_path, line + "\n")


def test_fractions_where_the_code_reads_them_as_fractions(tmp_path):
    settings = from_file(tmp_path, "PAYMENT_HOLD_MINUTES = 0.5\nREGISTER_MIN_SECONDS = 0\n")
    assert (settings["PAYMENT_HOLD_MINUTES"], settings["REGISTER_MIN_SECONDS"]) == (0.5, 0)


def test_a_rate_limit_storage_must_be_one_flask_limiter_knows(tmp_path):
    message = refused_from_file(tmp_path, 'RATELIMIT_STORAGE_URI = "redsi://:hush@cache:6379"\n')
    assert "RATELIMIT_STORAGE_URI must be memory:// or redis://HOST:6379/0" in message
    assert "hush" not in message
    assert from_file(tmp_path, 'RATELIMIT_STORAGE_URI = "redis://cache:6379/0"\n')


@pytest.mark.parametrize(
    "dsn", ["sentry.example.org/1", "https://sentry.example.org/1", "https://key@sentry.io/"]
)
def test_a_sentry_dsn_must_look_like_one(tmp_path, dsn):
    message = refused_from_file(tmp_path, f'SENTRY_DSN = "{dsn}"\n')
    assert "SENTRY_DSN must be empty or a DSN such as https://KEY@" in message
    assert dsn not in message


def test_a_sentry_dsn_as_sentry_shows_it_is_taken(tmp_path):
    dsn = "https://0123abcd@o42.ingest.sentry.io/4504"
    assert from_file(tmp_path, f'SENTRY_DSN = "{dsn}"\n')["SENTRY_DSN"] == dsn


def test_font_dir_must_be_a_folder_when_set(tmp_path):
    missing = tmp_path / "fonts"
    message = refused_from_file(tmp_path, f'FONT_DIR = "{missing}"\n')
    assert message.endswith(
        f"FONT_DIR names {missing}, which is not a folder (empty: the shipped fonts)"
    )
    missing.mkdir()
    assert from_file(tmp_path, f'FONT_DIR = "{missing}"\n')["FONT_DIR"] == str(missing)


def test_every_default_passes_its_own_check():
    for setting in SETTINGS:
        assert _checked(setting, setting.default, setting.name) == setting.default, setting.name


# --- how it reaches the operator -------------------------------------------------------------


def _typo_environment(tmp_path) -> dict[str, str]:
    config = tmp_path / "config.toml"
    config.write_text('DATABSE_URL = "postgresql+psycopg://necreg@db.example.org/necreg"\n')
    environ = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    return environ | {
        "NECREG_CONFIG": str(config),
        "NECREG_INSTANCE_PATH": str(tmp_path / "instance"),
    }


def test_a_typo_stops_necreg_db_upgrade_with_one_line(tmp_path):
    """`make run` starts with `necreg db upgrade`: that is where the operator reads it."""
    ran = subprocess.run(
        [str(BIN / "necreg"), "db", "upgrade"],
        env=_typo_environment(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ran.returncode == 1
    assert ran.stderr == (
        f"necreg: configuration error: {tmp_path / 'config.toml'}: unknown setting DATABSE_URL"
        " (did you mean DATABASE_URL?)\n"
    )
    assert not (tmp_path / "instance" / "necreg.db").exists()  # SQLite was never touched


def test_a_typo_stops_gunicorn_with_the_same_message(tmp_path):
    ran = subprocess.run(
        [str(BIN / "gunicorn"), "-c", str(ROOT / "gunicorn.conf.py"), "--bind", "127.0.0.1:0"]
        + ["necreg.wsgi:app"],
        env=_typo_environment(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert ran.returncode != 0
    assert "Traceback" not in ran.stderr
    assert "unknown setting DATABSE_URL (did you mean DATABASE_URL?)" in ran.stderr
