"""A real browser for tests: Debian's Chromium driven by Playwright, and axe-core for WCAG.

Browser tests are skipped, with the reason, when Chromium is not installed; `.ci/run`
installs it so CI always runs them. Screenshots go to test-artifacts/screenshots/<run>/.
"""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("NECREG_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORTS = {
    "phone": {"width": 390, "height": 844},
    "desktop": {"width": 1280, "height": 900},
}
#: axe-core rules of WCAG 2.0, 2.1 and 2.2 at levels A and AA.
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa"]

SCREENSHOTS = (
    Path(__file__).resolve().parent.parent
    / "test-artifacts"
    / "screenshots"
    / datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
)

chromium_missing = not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM))
needs_chromium = pytest.mark.skipif(
    chromium_missing, reason=f"Chromium not installed at {CHROMIUM} (apt-get install chromium)"
)


def screenshot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def axe_violations(page, exclude: str | None = None) -> list[str]:
    """WCAG 2.2 A/AA violations on the page as readable lines (empty when it passes);
    ``exclude``: a selector of what is not ours to check (a stand-in's widget)."""
    from axe_playwright_python.sync_playwright import Axe

    context = {"exclude": [[exclude]]} if exclude else None
    options = {"runOnly": {"type": "tag", "values": WCAG_TAGS}}
    result = Axe().run(page, context=context, options=options)
    lines = []
    for violation in result.response["violations"]:
        targets = [", ".join(node["target"]) for node in violation["nodes"]]
        lines.append(f"{violation['id']}: {violation['help']} at {targets}")
    return lines


def qr_in_pdf(pdf: bytes, folder: Path) -> str:
    """The text of the QR code on the first page of ``pdf`` (poppler draws it, zbar reads
    it), as a phone would read it from the printed page."""
    import subprocess

    (folder / "scanned.pdf").write_bytes(pdf)
    subprocess.run(
        ["pdftoppm", "-png", "-r", "200", "-singlefile", "scanned.pdf", "scanned"],
        cwd=folder,
        check=True,
    )
    found = subprocess.run(
        ["zbarimg", "--raw", "-q", "scanned.png"], cwd=folder, capture_output=True, check=True
    )
    return found.stdout.decode().strip()
