"""config.example.toml documents every setting with its default, and nothing else."""

import tomllib
from pathlib import Path

from necreg.config import DEFAULTS, load

EXAMPLE = Path(__file__).resolve().parent.parent / "config.example.toml"


def test_example_lists_every_setting_with_its_default():
    example = tomllib.loads(EXAMPLE.read_text())
    assert set(example) == set(DEFAULTS)
    for name, default in DEFAULTS.items():
        assert example[name] == default, name


def test_every_name_in_the_example_is_a_setting():
    """An operator copies the example: a name in it that the strict loader does not know
    would stop their first start."""
    unknown = set(tomllib.loads(EXAMPLE.read_text())) - set(DEFAULTS)
    assert not unknown, f"config.example.toml names {sorted(unknown)}, which are not settings"


def test_the_example_loads_through_the_strict_loader(tmp_path):
    settings = load(tmp_path, environ={"NECREG_CONFIG": str(EXAMPLE)})
    for name, default in DEFAULTS.items():
        if name != "SECRET_KEY":  # empty in the example: generated into the instance folder
            assert settings[name] == default, name
    assert settings["SECRET_KEY"] == (tmp_path / "secret_key").read_text().strip()
