"""The deployment kit in deploy/ (issue 17), checked as far as this machine can: the systemd
units pass `systemd-analyze verify`, compose.yaml runs the units' commands with a health check
on every service that stays up, the Dockerfile builds from the lock as a user without
privileges, and the example settings load in production. Building and running the image needs
a Docker daemon and a registry, which the test machine lacks (the README says so)."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from necreg import config

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
UNITS = DEPLOY / "systemd"
#: Where the units expect the venv (`make .venv/.installed` in a checkout at /srv/necreg).
PREFIX = "/srv/necreg/.venv/bin/"
#: This test's own venv, whose gunicorn and necreg stand in for the installed ones.
VENV_BIN = Path(sys.prefix) / "bin"


def unit(name: str) -> dict[str, dict[str, list[str]]]:
    """A unit file's sections, each key with every value it is given (Environment= repeats)."""
    sections: dict[str, dict[str, list[str]]] = {}
    section: dict[str, list[str]] = {}
    for line in (UNITS / name).read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = sections.setdefault(line.strip("[]"), {})
        else:
            key, value = line.split("=", 1)
            section.setdefault(key, []).append(value)
    return sections


def command(line: str) -> list[str]:
    """A unit's command line without the install prefix, as compose and the image run it."""
    words = shlex.split(line)
    return [words[0].removeprefix(PREFIX), *words[1:]]


def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))


def dockerfile_stages() -> list[list[tuple[str, str]]]:
    """The Dockerfile's instructions (continued lines joined), stage by stage."""
    text = re.sub(r"\\\n", " ", (DEPLOY / "Dockerfile").read_text(encoding="utf-8"))
    stages: list[list[tuple[str, str]]] = [[]]
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, rest = line.partition(" ")
        if instruction.upper() == "FROM":
            stages.append([])
        stages[-1].append((instruction.upper(), " ".join(rest.split())))
    return stages


def env_file(path: Path) -> dict[str, str]:
    """KEY=value lines as systemd's EnvironmentFile= and compose's env_file read them."""
    values = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, value = line.split("=", 1)
            values[key] = value[1:-1] if value[:1] == value[-1:] == '"' else value
    return values


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not here")
def test_the_systemd_units_pass_systemd_analyze_verify(tmp_path):
    """verify checks every key and that each command exists: the units are copied with this
    venv's bin/ in place of /srv/necreg/.venv/bin/, their only change."""
    assert (VENV_BIN / "gunicorn").is_file() and (VENV_BIN / "necreg").is_file()
    names = sorted(p.name for p in UNITS.iterdir())
    assert names == [
        "necreg-mail-worker.service",
        "necreg-purge.service",
        "necreg-purge.timer",
        "necreg-web.service",
    ]
    for name in names:
        text = (UNITS / name).read_text(encoding="utf-8")
        (tmp_path / name).write_text(text.replace(PREFIX, f"{VENV_BIN}/"), encoding="utf-8")
    result = subprocess.run(
        ["systemd-analyze", "verify", *(str(tmp_path / name) for name in names)],
        capture_output=True,
        text=True,
    )
    about_ours = [line for line in (result.stdout + result.stderr).splitlines() if "necreg" in line]
    assert result.returncode == 0 and about_ours == [], result.stdout + result.stderr

    # And it would say so: a command that is not there.
    broken = tmp_path / "broken"
    broken.mkdir()
    text = (UNITS / "necreg-web.service").read_text(encoding="utf-8")
    (broken / "necreg-web.service").write_text(text.replace(PREFIX, "/nowhere/bin/"))
    result = subprocess.run(
        ["systemd-analyze", "verify", str(broken / "necreg-web.service")],
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert "/nowhere/bin/gunicorn" in result.stdout + result.stderr


def test_the_units_run_as_necreg_hardened_and_restarted():
    web, worker = unit("necreg-web.service"), unit("necreg-mail-worker.service")
    purge = unit("necreg-purge.service")
    assert command(web["Service"]["ExecStart"][0]) == [
        "gunicorn",
        "-c",
        "gunicorn.conf.py",
        "necreg.wsgi:app",
    ]
    assert command(web["Service"]["ExecStartPre"][0]) == ["necreg", "db", "upgrade"]
    assert command(worker["Service"]["ExecStart"][0]) == ["necreg", "mail-worker"]
    assert command(purge["Service"]["ExecStart"][0]) == ["necreg", "purge"]
    assert unit("necreg-purge.timer")["Timer"]["OnCalendar"] == ["daily"]
    for sections in (web, worker, purge):
        service = sections["Service"]
        environment = dict(item.split("=", 1) for item in service["Environment"])
        assert environment["NECREG_ENV"] == "production"
        assert service["User"] == ["necreg"]
        assert service["EnvironmentFile"] == ["/etc/necreg/necreg.env"]
        assert service["NoNewPrivileges"] == ["yes"]
        assert service["ProtectSystem"] == ["strict"]
        assert service["PrivateTmp"] == ["yes"]
        # ProtectSystem=strict leaves it only the instance folder to write in.
        assert service["ReadWritePaths"] == [environment["NECREG_INSTANCE_PATH"]]
    for sections in (web, worker):
        assert sections["Service"]["Restart"] == ["on-failure"]


def test_compose_runs_the_units_commands_each_service_with_a_health_check():
    services = compose()["services"]
    assert {"web", "mail-worker", "postgres", "redis"} <= services.keys()
    web_unit, worker_unit = unit("necreg-web.service"), unit("necreg-mail-worker.service")
    assert services["web"]["command"] == command(web_unit["Service"]["ExecStart"][0])
    assert services["mail-worker"]["command"] == command(worker_unit["Service"]["ExecStart"][0])
    # The web unit's ExecStartPre is a one-off service that the others wait for.
    assert services["migrate"]["command"] == command(web_unit["Service"]["ExecStartPre"][0])
    one_offs = {name for name, service in services.items() if service.get("restart") == "no"}
    assert one_offs == {"migrate"}
    for name in ("web", "mail-worker"):
        assert services[name]["depends_on"]["migrate"] == {
            "condition": "service_completed_successfully"
        }
    for name, service in services.items():
        if name not in one_offs:
            assert service["healthcheck"]["test"][0] in {"CMD", "CMD-SHELL"}, name
            assert service["restart"] == "unless-stopped", name

    health = {
        name: " ".join(s["healthcheck"]["test"][1:])
        for name, s in services.items()
        if name not in one_offs
    }
    assert "http://127.0.0.1:8000/healthz" in health["web"]
    assert health["postgres"].startswith("pg_isready")
    assert health["redis"] == "redis-cli ping"
    assert health["mail-worker"] == "necreg db current"
    assert services["web"]["depends_on"]["postgres"] == {"condition": "service_healthy"}
    assert services["web"]["depends_on"]["redis"] == {"condition": "service_healthy"}

    # The database lives in a named volume, kept across containers.
    [volume] = services["postgres"]["volumes"]
    name, _, path = volume.partition(":")
    assert name in compose()["volumes"] and path == "/var/lib/postgresql/data"
    for name in ("web", "mail-worker", "migrate"):
        environment = services[name]["environment"]
        assert environment["NECREG_ENV"] == "production"
        assert environment["NECREG_RATELIMIT_STORAGE_URI"].startswith("redis://redis:")
        assert services[name]["env_file"] == [{"path": "necreg.env", "required": True}]
        assert services[name]["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}


def test_the_image_builds_from_the_lock_and_runs_without_privileges():
    stages = dockerfile_stages()
    preamble, final = stages[0], stages[-1]
    assert ("ARG", "PYTHON_IMAGE=python:3.11-slim") in preamble
    assert final[0] == ("FROM", "${PYTHON_IMAGE}")
    runs = [rest for instruction, rest in final if instruction == "RUN"]
    apt = next(rest for rest in runs if "apt-get install" in rest)
    for package in ("fonts-dejavu-core", "fonts-noto-core", "tzdata"):
        assert f" {package}" in apt
    assert ("COPY", "requirements/main.txt /tmp/main.txt") in final
    assert any("pip install --require-hashes -r /tmp/main.txt" in rest for rest in runs)
    assert any("pip install --no-deps" in rest for rest in runs)
    [user] = [rest for instruction, rest in final if instruction == "USER"]
    assert user.split(":")[0] not in {"root", "0"}
    # The user is set after the last RUN: nothing runs as root once the image starts.
    assert [i for i, _ in final].index("USER") > max(
        n for n, (i, _) in enumerate(final) if i == "RUN"
    )
    [healthcheck] = [rest for instruction, rest in final if instruction == "HEALTHCHECK"]
    assert "http://127.0.0.1:8000/healthz" in healthcheck
    [cmd] = [rest for instruction, rest in final if instruction == "CMD"]
    assert yaml.safe_load(cmd) == compose()["services"]["web"]["command"]
    assert (
        "ENV",
        "NECREG_ENV=production NECREG_INSTANCE_PATH=/var/lib/necreg NECREG_BIND=0.0.0.0:8000",
    ) in final


def test_the_example_settings_start_in_production(tmp_path):
    """deploy/necreg.env.example, its CHANGE-ME filled in, with what compose adds: every name a
    setting, every value valid, and nothing production refuses."""
    example = env_file(DEPLOY / "necreg.env.example")
    assert example["NECREG_MAIL_BACKEND"] == "smtp"
    filled = {key: value.replace("CHANGE-ME", "0f" * 32) for key, value in example.items()}
    environ = {**filled, **compose()["services"]["web"]["environment"]}
    settings = config.load(tmp_path, environ=environ)
    assert settings["ENV"] == "production"
    assert settings["MAIL_SENDER"] == "NEC Symposium <registration@example.org>"
    assert settings["MAIL_USE_TLS"] is True
    assert settings["LOG_FORMAT"] == "json"
    # As the units give it (no compose): their Environment= and the example's systemd lines.
    web = unit("necreg-web.service")["Service"]
    systemd = dict(item.split("=", 1) for item in web["Environment"])
    systemd["NECREG_RATELIMIT_STORAGE_URI"] = "redis://127.0.0.1:6379/0"
    settings = config.load(tmp_path, environ={**filled, **systemd})
    assert settings["RATELIMIT_STORAGE_URI"] == "redis://127.0.0.1:6379/0"
    # The Redis address is not in the file (compose's and a machine's differ), and production
    # refuses to start without one.
    with pytest.raises(config.ConfigError, match="RATELIMIT_STORAGE_URI"):
        config.load(tmp_path, environ={**filled, "NECREG_ENV": "production"})
