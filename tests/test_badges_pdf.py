"""Badge PDFs: page counts per layout, and QR codes that scan back to the attendee codes."""

# ruff: noqa: F811 - pytest fixtures imported from organizer_fixtures are used as arguments

from __future__ import annotations

import io
import shutil
import subprocess

import pytest
from organizer_fixtures import admin_client, make_organizer  # noqa: F401

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


# --- The organizer's export and the command line ------------------------------------------


def scan(pdf: bytes, tmp_path) -> list[str]:
    """Every QR code in the PDF, page by page (pdftoppm, then zbarimg)."""
    (tmp_path / "export.pdf").write_bytes(pdf)
    subprocess.run(
        ["pdftoppm", "-r", "150", "-png", str(tmp_path / "export.pdf"), str(tmp_path / "p")],
        check=True,
    )
    codes = []
    for page in sorted(tmp_path.glob("p*.png")):
        result = subprocess.run(
            ["zbarimg", "--quiet", "--raw", "-Sdisable", "-Sqrcode.enable", str(page)],
            capture_output=True,
            text=True,
        )
        codes += result.stdout.split()
    return codes


@pytest.fixture
def people(make_event, make_attendee):
    event = make_event()
    confirmed = [
        make_attendee(event, role=ROLES[i % 4], first_name=name, badge_name=name)
        for i, name in enumerate(["Zoë Núñez-李", "山田 太郎", "Jae", "Misty", "Ann", "Bo", "Cy"])
    ]
    make_attendee(event, status="waitlisted")
    make_attendee(event, status="cancelled")
    return confirmed


@needs_tools
def test_organizer_downloads_badges_of_confirmed_attendees(admin_client, people, tmp_path):
    response = admin_client.get("/organizer/export/badges.pdf")
    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    assert "attachment" in response.headers["Content-Disposition"]
    assert sorted(scan(response.get_data(), tmp_path)) == sorted(a.code for a in people)


@needs_tools
def test_pdf_export_follows_the_list_filters_and_layout(admin_client, people, tmp_path):
    response = admin_client.get("/organizer/export/badges.pdf?role=scientist&layout=badge-4x3")
    assert response.status_code == 200
    scientists = [a.code for a in people if a.role == "scientist"]
    assert scan(response.get_data(), tmp_path) == scientists
    assert response.get_data().count(b"/Type /Page\n") in (0, len(scientists))


def test_unknown_layout_is_refused(admin_client, people):
    response = admin_client.get("/organizer/export/badges.pdf?layout=poster")
    assert response.status_code == 400
    assert "Unknown layout" in response.get_data(as_text=True)


def test_anonymous_gets_401_not_badges(client, people):
    response = client.get("/organizer/export/badges.pdf")
    assert response.status_code == 401


@needs_tools
def test_export_badges_command_writes_the_same_badges(runner, people, tmp_path):
    out = tmp_path / "badges.pdf"
    result = runner.invoke(args=["export-badges", "--pdf", "--layout", "letter", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert f"Wrote {len(people)} badges" in result.output
    assert sorted(scan(out.read_bytes(), tmp_path)) == sorted(a.code for a in people)


def test_export_badges_pdf_needs_a_file(runner, people):
    result = runner.invoke(args=["export-badges", "--pdf"])
    assert result.exit_code != 0
    assert "--pdf needs --out" in result.output


def test_the_attendee_list_links_the_pdf_with_its_filters(admin_client, people):
    html = admin_client.get("/organizer/attendees?role=family").get_data(as_text=True)
    assert 'href="/organizer/export/badges.pdf?role=family"' in html
    assert 'href="/organizer/export/badges.pdf?layout=letter&amp;role=family"' in html
