"""Configuration layers: defaults -> TOML file -> NECREG_* environment -> mapping."""

import pytest

from necreg import create_app
from necreg.config import ConfigError, load


def test_defaults_apply(tmp_path):
    settings = load(tmp_path, environ={})
    assert settings["DATABASE_URL"] == "sqlite:///necreg.db"
    assert settings["MAX_CONTENT_LENGTH"] == 64 * 1024
    assert settings["EMAIL_CHECK_DELIVERABILITY"] is False


def test_file_then_environment_then_mapping(tmp_path):
    (tmp_path / "config.toml").write_text(
        'DATABASE_URL = "sqlite:///from-file.db"\nMAX_CONTENT_LENGTH = 1000\n'
        'ATTENDEE_CODE_PREFIX = "FILE"\n'
    )
    environ = {"NECREG_MAX_CONTENT_LENGTH": "2000", "NECREG_EMAIL_CHECK_DELIVERABILITY": "true"}
    settings = load(tmp_path, {"ATTENDEE_CODE_PREFIX": "MAP"}, environ=environ)
    assert settings["DATABASE_URL"] == "sqlite:///from-file.db"
    assert settings["MAX_CONTENT_LENGTH"] == 2000  # environment beats file, typed as int
    assert settings["EMAIL_CHECK_DELIVERABILITY"] is True
    assert settings["ATTENDEE_CODE_PREFIX"] == "MAP"  # mapping beats everything


def test_config_file_named_by_environment(tmp_path):
    named = tmp_path / "elsewhere.toml"
    named.write_text('ATTENDEE_CODE_PREFIX = "ELSE"\n')
    settings = load(tmp_path, environ={"NECREG_CONFIG": str(named)})
    assert settings["ATTENDEE_CODE_PREFIX"] == "ELSE"


def test_missing_named_config_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="not a file"):
        load(tmp_path, environ={"NECREG_CONFIG": str(tmp_path / "missing.toml")})


@pytest.mark.parametrize(
    ("name", "raw"), [("MAX_CONTENT_LENGTH", "lots"), ("EMAIL_CHECK_DELIVERABILITY", "maybe")]
)
def test_bad_environment_values_are_refused(tmp_path, name, raw):
    with pytest.raises(ConfigError, match=f"NECREG_{name}"):
        load(tmp_path, environ={f"NECREG_{name}": raw})


def test_secret_is_generated_once_for_the_embedded_default(tmp_path):
    first = load(tmp_path, environ={})["SECRET_KEY"]
    second = load(tmp_path, environ={})["SECRET_KEY"]
    assert len(first) == 64
    assert first == second
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0  # readable by owner only


def test_production_without_secret_refuses_to_start(tmp_path):
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        load(tmp_path, environ={"NECREG_ENV": "production"})
    assert not (tmp_path / "secret_key").exists()


def test_production_sets_secure_cookies(tmp_path):
    app = create_app(
        {
            "ENV": "production",
            "SECRET_KEY": "s" * 40,
            "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
            "INSTANCE_PATH": str(tmp_path),
            "SITE_URL": "https://reg.example.org",
            "MAIL_BACKEND": "smtp",
            "RATELIMIT_STORAGE_URI": "redis://127.0.0.1:9/0",  # refused: counts in memory
        }
    )
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.config["SESSION_COOKIE_HTTPONLY"] is True
    assert app.config["SESSION_COOKIE_SAMESITE"] == "Lax"


def _remote_addr_seen(tmp_path, **over):
    app = create_app(
        {
            "SECRET_KEY": "x",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
            "INSTANCE_PATH": str(tmp_path),
            **over,
        }
    )
    seen = {}

    @app.get("/whoami")
    def whoami():
        from flask import request

        seen["addr"], seen["scheme"] = request.remote_addr, request.scheme
        return ""

    app.test_client().get(
        "/whoami",
        headers={"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"},
        environ_base={"REMOTE_ADDR": "127.0.0.1"},
    )
    return seen["addr"], seen["scheme"]


def test_forwarded_headers_are_ignored_unless_a_proxy_is_configured(tmp_path):
    assert _remote_addr_seen(tmp_path) == ("127.0.0.1", "http")
    trusted = _remote_addr_seen(tmp_path, PROXY_FIX_X_FOR=1, PROXY_FIX_X_PROTO=1)
    assert trusted == ("203.0.113.9", "https")


@pytest.mark.parametrize(
    ("name", "value"), [("SESSION_IDLE_MINUTES", 0), ("SESSION_MAX_HOURS", "forever")]
)
def test_session_timeouts_must_be_whole_numbers_above_zero(tmp_path, name, value):
    with pytest.raises(ConfigError, match=f"{name} must be a whole number above 0"):
        load(tmp_path, {name: value}, environ={})
