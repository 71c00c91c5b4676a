"""The house's rule for speed (necreg/speed/__init__.py): the domain never imports the speed
package, views use only its memo API, and stats.py knows nothing of Flask. Read from the
imports with ``ast``, so nothing is run."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "necreg"
DOMAIN = [
    "registration.py",
    "checkin.py",
    "events.py",
    "badges.py",
    "attendee_search.py",
    "stats.py",
    "counters.py",
    "places.py",
    "triggers.py",
    *(f"mail/{p.name}" for p in sorted((PACKAGE / "mail").glob("*.py"))),
]
VIEWS = [
    "pages.py",
    "forms.py",
    "auth.py",
    "health.py",
    *(str(p.relative_to(PACKAGE)) for p in sorted(PACKAGE.glob("*/views.py"))),
    *(str(p.relative_to(PACKAGE)) for p in sorted((PACKAGE / "organizer").glob("*.py"))),
    *(str(p.relative_to(PACKAGE)) for p in sorted((PACKAGE / "public").glob("*.py"))),
]
#: What a view may take from the speed package.
MEMO_API = {("necreg.speed.memo", "kept")}


def imports(source: str, module: str) -> list[tuple[str, str | None]]:
    """(module, name) of every import in ``source``, relative ones made absolute; ``module`` is
    the dotted name of the file the source is (e.g. necreg.organizer.attendees)."""
    package = module.rsplit(".", 1)[0]
    found: list[tuple[str, str | None]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            found += [(base, alias.name) for alias in node.names]
    return found


def module_name(relative: str) -> str:
    return "necreg." + relative.removesuffix(".py").replace("/", ".")


def speed_imports(relative: str) -> list[tuple[str, str | None]]:
    source = (PACKAGE / relative).read_text()
    return [
        (mod, name)
        for mod, name in imports(source, module_name(relative))
        if mod == "necreg.speed"
        or mod.startswith("necreg.speed.")
        or (mod == "necreg" and name == "speed")
    ]


@pytest.mark.parametrize("relative", DOMAIN)
def test_the_domain_never_imports_the_speed_package(relative):
    assert speed_imports(relative) == []


@pytest.mark.parametrize("relative", VIEWS)
def test_views_use_only_the_memo_api(relative):
    assert set(speed_imports(relative)) <= MEMO_API


def test_stats_knows_nothing_of_flask():
    found = imports((PACKAGE / "stats.py").read_text(), "necreg.stats")
    assert not [mod for mod, _ in found if mod == "flask" or mod.startswith("flask")]


@pytest.mark.parametrize(
    ("source", "caught"),
    [
        ("from .speed.memo import kept\n", [("necreg.speed.memo", "kept")]),
        ("from .speed import watch\n", [("necreg.speed", "watch")]),
        ("from . import speed\n", [("necreg", "speed")]),
        ("import necreg.speed.wsgi\n", [("necreg.speed.wsgi", None)]),
        ("from ..speed.watch import Watch\n", [("necreg.speed.watch", "Watch")]),
    ],
)
def test_the_rule_catches_every_form_of_import(tmp_path, monkeypatch, source, caught):
    """The check itself: a domain module that imports the speed package in any form fails."""
    monkeypatch.setattr(__import__(__name__), "PACKAGE", tmp_path)
    (tmp_path / "mail").mkdir()
    (tmp_path / "registration.py").write_text(source)
    (tmp_path / "mail" / "outbox.py").write_text(source)
    relative = "registration.py" if not source.startswith("from ..") else "mail/outbox.py"
    assert speed_imports(relative) == caught
    with pytest.raises(AssertionError):
        test_the_domain_never_imports_the_speed_package(relative)
