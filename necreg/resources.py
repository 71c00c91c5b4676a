"""Where the templates, static files, migrations and event files live.

In a checkout (and an editable install) they stand at the top of the repository; an installed
wheel carries them inside the package (see pyproject.toml)."""

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def resource_dir(name: str) -> Path:
    inside = PACKAGE_DIR / name
    return inside if inside.is_dir() else PACKAGE_DIR.parent / name
