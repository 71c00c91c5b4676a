"""config.example.toml documents every setting with its default."""

import tomllib
from pathlib import Path

from necreg.config import DEFAULTS

EXAMPLE = Path(__file__).resolve().parent.parent / "config.example.toml"


def test_example_lists_every_setting_with_its_default():
    example = tomllib.loads(EXAMPLE.read_text())
    assert set(example) == set(DEFAULTS)
    for name, default in DEFAULTS.items():
        assert example[name] == default, name
