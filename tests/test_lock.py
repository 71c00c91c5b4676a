"""The locks agree with pyproject.toml (issue 17): every dependency, runtime and test, with the
packages its extras bring, is pinned in requirements/ at a version its specifier admits, each pin
with the hashes pip checks (--require-hashes), main.txt and test.txt pin a package alike, and
every dependency has an upper bound so that `make lock` never takes a major release unasked.

A change to pyproject.toml without `make lock` fails here; so does a lock edited by hand."""

from __future__ import annotations

import subprocess
import tomllib
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
MAIN_LOCK = ROOT / "requirements" / "main.txt"
TEST_LOCK = ROOT / "requirements" / "test.txt"
#: Operators that bound a version from above.
UPPER = {"<", "<=", "==", "~=", "==="}


@dataclass(frozen=True)
class Pin:
    version: str
    hashes: frozenset[str]


def read_lock(text: str) -> dict[str, Pin]:
    """The pins of a requirements file as `uv pip compile --generate-hashes` writes it: one
    ``name==version`` a requirement, continued by backslashes with its ``--hash=`` options."""
    pins: dict[str, Pin] = {}
    for line in text.replace("\\\n", " ").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        spec, *options = line.split()
        requirement = Requirement(spec)
        [specifier] = requirement.specifier  # the lock pins: one == each, nothing else
        assert specifier.operator == "==", f"{spec} is not pinned with =="
        name = canonicalize_name(requirement.name)
        assert name not in pins, f"{name} pinned twice"
        hashes = frozenset(o.removeprefix("--hash=") for o in options if o.startswith("--hash="))
        pins[name] = Pin(specifier.version, hashes)
    return pins


def project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def extra_requirements(requirement: Requirement, version: str) -> list[Requirement]:
    """What ``requirement``'s extras (psycopg[binary], sentry-sdk[flask]) add, read from the
    installed distribution's metadata (the locked version when the venv was made by make)."""
    if not requirement.extras:
        return []
    assert metadata.version(requirement.name) == version, (
        f"{requirement.name} {metadata.version(requirement.name)} is installed, the lock pins"
        f" {version}: run make to install the lock"
    )
    added = []
    for line in metadata.requires(requirement.name) or []:
        dependency = Requirement(line)
        marker = dependency.marker
        # A dependency true without any extra is the package's own, not an extra's.
        if (
            marker is not None
            and any(marker.evaluate({"extra": extra}) for extra in requirement.extras)
            and not marker.evaluate({"extra": ""})
        ):
            added.append(dependency)
    return added


def lock_problems(
    runtime: list[str], test: list[str], main: dict[str, Pin], tested: dict[str, Pin]
) -> list[str]:
    """Every way the locks ``main`` and ``tested`` disagree with the project's runtime and test
    requirements (as pyproject.toml writes them); empty when they agree."""
    problems = []
    wanted = [(line, "main", main) for line in runtime]
    wanted += [(line, "test", tested) for line in runtime + test]
    for line, lock_name, pins in wanted:
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        if name not in pins:
            problems.append(f"{line}: not in {lock_name}.txt")
            continue
        pin = pins[name]
        if not requirement.specifier.contains(pin.version, prereleases=True):
            problems.append(f"{line}: {lock_name}.txt pins {pin.version}")
            continue
        for dependency in extra_requirements(requirement, pin.version):
            got = pins.get(canonicalize_name(dependency.name))
            if got is None:
                problems.append(f"{line}: {dependency} (from its extra) not in {lock_name}.txt")
            elif not dependency.specifier.contains(got.version, prereleases=True):
                problems.append(f"{line}: {dependency} but {lock_name}.txt pins {got.version}")
    for lock_name, pins in (("main", main), ("test", tested)):
        problems += [f"{n}: no --hash in {lock_name}.txt" for n, p in pins.items() if not p.hashes]
    for name, pin in main.items():
        if name not in tested:
            problems.append(f"{name}: in main.txt, not in test.txt")
        elif tested[name].version != pin.version:
            problems.append(f"{name}: main.txt pins {pin.version}, test.txt {tested[name].version}")
        elif tested[name].hashes != pin.hashes:
            problems.append(f"{name}: main.txt and test.txt list other hashes")
    return problems


def unbounded(lines: list[str]) -> list[str]:
    """The requirements with no upper bound on their version."""
    return [
        line for line in lines if not any(s.operator in UPPER for s in Requirement(line).specifier)
    ]


def test_the_locks_pin_every_requirement_of_pyproject_with_hashes():
    runtime, test = project()["dependencies"], project()["optional-dependencies"]["test"]
    main = read_lock(MAIN_LOCK.read_text(encoding="utf-8"))
    tested = read_lock(TEST_LOCK.read_text(encoding="utf-8"))
    assert lock_problems(runtime, test, main, tested) == [], "run make lock"
    # The extras' packages are there (psycopg[binary] without psycopg-binary needs libpq).
    assert {"psycopg-binary", "blinker"} <= main.keys()


def test_the_checks_see_each_disagreement():
    """What test_the_locks... would report, on locks made wrong on purpose."""
    runtime, test = ["flask>=3.1,<4", "psycopg[binary]>=3.1,<4"], ["ruff==0.17.6"]
    main = read_lock(MAIN_LOCK.read_text(encoding="utf-8"))
    tested = read_lock(TEST_LOCK.read_text(encoding="utf-8"))
    assert lock_problems(runtime, test, main, tested) == []

    assert lock_problems(["flask>=9,<10"], [], main, tested) == [
        f"flask>=9,<10: main.txt pins {main['flask'].version}",
        f"flask>=9,<10: test.txt pins {tested['flask'].version}",
    ]
    assert lock_problems(runtime, ["left-out-package>=1,<2"], main, tested) == [
        "left-out-package>=1,<2: not in test.txt"
    ]
    without_binary = {k: v for k, v in main.items() if k != "psycopg-binary"}
    [problem] = lock_problems(runtime, [], without_binary, tested)
    assert "psycopg-binary" in problem
    assert "from its extra" in problem
    assert "main.txt" in problem
    unhashed = {**main, "flask": Pin(main["flask"].version, frozenset())}
    assert lock_problems(runtime, [], unhashed, tested) == [
        "flask: no --hash in main.txt",
        "flask: main.txt and test.txt list other hashes",
    ]
    older = {**main, "flask": Pin("3.1.0", main["flask"].hashes)}
    assert f"flask: main.txt pins 3.1.0, test.txt {tested['flask'].version}" in lock_problems(
        runtime, [], older, tested
    )


def test_read_lock_takes_continued_lines_and_refuses_a_loose_pin():
    text = (
        "# header\nflask==3.1.3 \\\n    --hash=sha256:aa \\\n    --hash=sha256:bb\n"
        "    # via necreg (pyproject.toml)\nFlask_Login==0.6.3\n"
    )
    assert read_lock(text) == {
        "flask": Pin("3.1.3", frozenset({"sha256:aa", "sha256:bb"})),
        "flask-login": Pin("0.6.3", frozenset()),
    }
    with pytest.raises(AssertionError, match="not pinned"):
        read_lock("flask>=3.1\n")


def test_every_dependency_has_an_upper_bound_and_ruff_is_pinned():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    runtime, test = project()["dependencies"], project()["optional-dependencies"]["test"]
    assert unbounded(runtime + test + pyproject["build-system"]["requires"]) == []
    assert unbounded(["flask>=3.1", "pytest", "ruff==0.17.6", "alembic~=1.13"]) == [
        "flask>=3.1",
        "pytest",
    ]
    # ruff's rules and formatter change between releases: `make lint` must not move by itself.
    [ruff] = [r for r in map(Requirement, test) if r.name == "ruff"]
    [pin] = ruff.specifier
    assert pin.operator == "==" and "*" not in pin.version
    # gunicorn 22 has a published request-smuggling advisory.
    [gunicorn] = [r for r in map(Requirement, runtime) if r.name == "gunicorn"]
    assert not gunicorn.specifier.contains(Version("22.0.0"))


def test_make_installs_from_the_locks_with_hashes_and_the_project_without_deps():
    """`make -n` (print, run nothing) as if a lock had changed: the stamps are rebuilt from it."""
    for lock, stamp in ((MAIN_LOCK, ".venv/.installed"), (TEST_LOCK, ".venv/.installed-test")):
        lines = subprocess.run(
            ["make", "-n", "-W", str(lock.relative_to(ROOT)), stamp],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
        installs = [line for line in lines if " install " in line]
        assert len(installs) == 2, lines
        assert f"--require-hashes -r {lock.relative_to(ROOT)}" in installs[0]
        assert installs[1].endswith("--no-deps -e .")
