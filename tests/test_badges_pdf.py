"""Badge PDFs: page counts per layout, and QR codes that scan back to the attendee codes."""

from __future__ import annotations

import io
import shutil
import subprocess

import pytest

from necreg.badges_pdf import LAYOUTS, Badge, write_badges

tools_missing = not (shutil.which("pdftoppm") and shutil.which("zbarimg"))
needs_tools = pytest.mark.skipif(
    tools_missing, reason="pdftoppm and zbarimg needed (apt-get install poppler-utils zbar-tools)"
)
ROLES = ["clinician", "scientist", "family", "advocate"]


def badges(n: int) -> list[Badge]:
    names = [
        "Zoë Núñez-李",
        "Dr. Maximiliana Alexandrina Featherstonehaugh-Worthington III",
        "山田 太郎",
        "Jae Kim",
        "Олександра Ковальчук",
    ]
    return [
        Badge(
            code=f"NEC-{i:06d}".replace("0", "A"),
            badge_name=names[i % len(names)],
            role=ROLES[i % 4],
            institution="Cincinnati Children's Hospital Medical Center" if i % 2 else "UNC",
            country="United States",
            early_career=i % 3 == 0,
        )
        for i in range(n)
    ]


def pdf_bytes(items: list[Badge], layout: str) -> bytes:
    out = io.BytesIO()
    assert write_badges(items, out, layout=layout, event_name="NEC Symposium") == len(items)
    return out.getvalue()


def page_count(data: bytes) -> int:
    return (
        data.count(b"/Type /Page\n") or data.count(b"/Type /Page>") or data.count(b"/Type /Page ")
    )


@pytest.mark.parametrize(
    ("layout", "n", "pages"), [("a4", 17, 3), ("letter", 8, 1), ("badge-4x3", 3, 3)]
)
def test_page_counts(layout, n, pages, tmp_path):
    data = pdf_bytes(badges(n), layout)
    assert data.startswith(b"%PDF-")
    path = tmp_path / "b.pdf"
    path.write_bytes(data)
    if shutil.which("pdfinfo"):
        info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, check=True)
        assert f"Pages:           {pages}" in info.stdout


def test_an_empty_export_is_a_valid_one_page_pdf():
    data = pdf_bytes([], "a4")
    assert data.startswith(b"%PDF-") and b"%%EOF" in data


@needs_tools
@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_qr_codes_scan_back_to_the_codes(layout, tmp_path):
    items = badges(8 if layout != "badge-4x3" else 2)
    (tmp_path / "b.pdf").write_bytes(pdf_bytes(items, layout))
    subprocess.run(
        ["pdftoppm", "-r", "150", "-png", str(tmp_path / "b.pdf"), str(tmp_path / "page")],
        check=True,
    )
    scanned = set()
    for page in sorted(tmp_path.glob("page*.png")):
        result = subprocess.run(
            ["zbarimg", "--quiet", "--raw", "-Sdisable", "-Sqrcode.enable", str(page)],
            capture_output=True,
            text=True,
        )
        scanned |= set(result.stdout.split())
    assert scanned == {b.code for b in items}
