"""Badge PDFs: page counts per layout, and QR codes that scan back to the attendee codes."""

# ruff: noqa: F811 - pytest fixtures imported from organizer_fixtures are used as arguments

from __future__ import annotations

import io
import re
import shutil
import subprocess
import zlib

import pytest
import uharfbuzz as hb
from fpdf import FPDF
from organizer_fixtures import admin_client, make_organizer  # noqa: F401

from necreg import pdf_fonts
from necreg.badges_pdf import LAYOUTS, Badge, BadgeSheet, write_badges
from necreg.pdf_fonts import PACKAGE_FONT_DIR

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


# --- Fonts and text shaping ---------------------------------------------------------------

ARABIC_NAME = "عبد الرحمن"  # 'Abd al-Rahman: joined letters, right to left
HEBREW_NAME = "שרה לוי"  # Sarah Levi: right to left, no joining


def content_streams(data: bytes) -> list[bytes]:
    """The content stream of each page of ``data``, inflated."""
    streams = []
    for ref in re.findall(rb"/Contents (\d+) 0 R", data):
        found = re.search(rb"\n" + ref + rb" 0 obj\n(.*?)stream\n(.*?)\nendstream", data, re.S)
        assert found, f"no object {ref!r}"
        head, body = found.groups()
        streams.append(zlib.decompress(body) if b"/FlateDecode" in head else body)
    return streams


ESCAPES = {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"b": b"\b", b"f": b"\f"}


def literal(raw: bytes) -> bytes:
    """The bytes of a PDF literal string's inside (escapes undone)."""
    return re.sub(
        rb"\\([0-7]{1,3}|.)",
        lambda m: bytes([int(m[1], 8)]) if m[1][:1].isdigit() else ESCAPES.get(m[1], m[1]),
        raw,
        flags=re.S,
    )


def written_glyphs(pdf, data: bytes) -> list[tuple[str, int]]:
    """Every glyph the page content draws, in the order written: (fpdf2 font key, glyph id in
    the font file). fpdf2 writes TrueType text as 2-byte codes of its subset; its subset map
    turns each code back into the glyph of the original file."""
    keys = {f"F{font.i}".encode(): key for key, font in pdf.fonts.items()}
    glyph_of = {
        key: {code: glyph.glyph_id for glyph, code in font.subset.items() if glyph}
        for key, font in pdf.fonts.items()
    }
    token = re.compile(rb"/(F\d+) [\d.]+ Tf|\(((?:\\.|[^\\)])*)\) ?Tj", re.S)
    glyphs, font = [], None
    for stream in content_streams(data):
        for match in token.finditer(stream):
            if match[1]:
                font = keys[match[1]]
                continue
            codes = literal(match[2])
            glyphs += [
                (font, glyph_of[font][int.from_bytes(codes[i : i + 2], "big")])
                for i in range(0, len(codes), 2)
            ]
    return glyphs


def harfbuzz_glyphs(path: str, text: str) -> list[int]:
    """``text`` shaped by HarfBuzz with the font at ``path``: glyph ids in visual order (left to
    right), spaces left out (the badge takes them from DejaVu Sans)."""
    face = hb.Face(hb.Blob.from_file_path(path))
    font = hb.Font(face)
    buffer = hb.Buffer()
    buffer.add_str(text)
    buffer.guess_segment_properties()
    hb.shape(font, buffer, {})
    space = hb.Font(face).get_nominal_glyph(ord(" "))
    return [info.codepoint for info in buffer.glyph_infos if info.codepoint != space]


def badge_glyphs(name: str, *, shaping: bool | None = None) -> tuple[list[tuple[str, int]], FPDF]:
    sheet = BadgeSheet(LAYOUTS["badge-4x3"], "NEC Symposium", font_dir="", shaping=shaping)
    sheet.add(Badge("NEC-AAAA", name, "family", "UNC", "Israel", False))
    out = io.BytesIO()
    sheet.output(out)
    return written_glyphs(sheet.pdf, out.getvalue()), sheet.pdf


@pytest.mark.parametrize(("name", "family"), [(ARABIC_NAME, "arabicB"), (HEBREW_NAME, "hebrewB")])
def test_right_to_left_names_print_shaped_in_visual_order(name, family):
    written, pdf = badge_glyphs(name)
    printed = [glyph for key, glyph in written if key == family]
    expected = harfbuzz_glyphs(pdf.fonts[family].ttffile, name)
    assert printed == expected
    # Without shaping the same name comes out otherwise: letters in typing order (left to
    # right), and in Arabic unjoined; so the comparison above would catch shaping turned off.
    unshaped = [glyph for key, glyph in badge_glyphs(name, shaping=False)[0] if key == family]
    assert unshaped != expected
    if family == "hebrewB":
        assert unshaped == expected[::-1]  # the same letters, mirrored
    else:
        assert set(unshaped) != set(expected)  # isolated forms, not the joined ones


needs_pdftotext = pytest.mark.skipif(
    not shutil.which("pdftotext"), reason="pdftotext needed (apt-get install poppler-utils)"
)
PT_PER_MM = 72 / 25.4
LONG_LATIN = "Dr. Maximiliana Alexandrina Featherstonehaugh-Worthington III"
LONG_ARABIC = "عبد الرحمن بن محمد بن عبد الله بن عبد العزيز آل سعود الكبير"


def name_boxes(name: str) -> list[tuple[float, float, float, float]]:
    """The words of ``name`` on a 4 x 3 in badge with nothing else below the band but the code,
    as poppler sees them: (x_min, y_min, x_max, y_max) in pt from the top left."""
    out = io.BytesIO()
    write_badges([Badge("NEC-AAAA", name, "family", "", "", False)], out, layout="badge-4x3")
    bbox = subprocess.run(
        ["pdftotext", "-bbox", "-", "-"], input=out.getvalue(), capture_output=True, check=True
    ).stdout.decode()
    words = re.findall(
        r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)</word>',
        bbox,
    )
    band = BadgeSheet.band * PT_PER_MM
    return [
        (float(x0), float(y0), float(x1), float(y1))
        for x0, y0, x1, y1, text in words
        if (float(y0) + float(y1)) / 2 > band and text != "NEC-AAAA"
    ]


@needs_pdftotext
@pytest.mark.parametrize(
    ("name", "lines"), [(LONG_LATIN, 2), (LONG_ARABIC, 2), ("Maximiliana Featherstonehaugh", 1)]
)
def test_long_names_shrink_then_wrap_inside_the_badge_when_shaped(name, lines):
    boxes = name_boxes(name)
    width = LAYOUTS["badge-4x3"].badge[0] * PT_PER_MM
    inside = (BadgeSheet.margin * PT_PER_MM - 0.5, width - BadgeSheet.margin * PT_PER_MM + 0.5)
    assert boxes and all(inside[0] <= x0 and x1 <= inside[1] for x0, _, x1, _ in boxes)
    assert len({round(y0) for _, y0, _, _ in boxes}) == lines
    # Shrunk: smaller letters than a short name's.
    short = name_boxes("Jae Kim" if name.isascii() else "علي")
    assert max(y1 - y0 for _, y0, _, y1 in boxes) < min(y1 - y0 for _, y0, _, y1 in short)


def test_without_any_font_the_export_says_which_and_how_to_fix_it(
    admin_client, people, monkeypatch, tmp_path
):
    monkeypatch.setattr(pdf_fonts, "PACKAGE_FONT_DIR", tmp_path / "no-package-fonts")
    monkeypatch.setattr(pdf_fonts, "SYSTEM_FONT_DIRS", (tmp_path / "no-system-fonts",))
    response = admin_client.get("/organizer/export/badges.pdf?role=family&layout=letter")
    assert response.status_code == 302
    assert response.headers["Location"] == "/organizer/attendees?role=family"
    page = admin_client.get(response.headers["Location"]).get_data(as_text=True)
    assert "The badge PDF cannot be made on this server." in page
    assert "DejaVuSans.ttf" in page and "FONT_DIR" in page
    assert "apt-get install fonts-dejavu-core" in page


def test_fonts_in_font_dir_alone_make_the_export(app, admin_client, people, monkeypatch, tmp_path):
    monkeypatch.setattr(pdf_fonts, "PACKAGE_FONT_DIR", tmp_path / "no-package-fonts")
    monkeypatch.setattr(pdf_fonts, "SYSTEM_FONT_DIRS", (tmp_path / "no-system-fonts",))
    for font in PACKAGE_FONT_DIR.glob("*.ttf"):
        shutil.copy(font, tmp_path)
    app.config["FONT_DIR"] = str(tmp_path)
    response = admin_client.get("/organizer/export/badges.pdf")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert b"/BaseFont /MPDFAA+DejaVuSansBold" in response.get_data()


def cjk_font() -> str | None:
    face = next(f for f in pdf_fonts.FACES if f.family == "cjk" and f.style == "B")
    return next((str(p) for p in pdf_fonts.candidates(face, pdf_fonts.font_dirs(""))), None)


@pytest.mark.skipif(
    cjk_font() is None,
    reason="Noto Sans CJK needed (apt-get install fonts-noto-cjk, or NotoSansCJK-Bold.ttc in"
    " FONT_DIR)",
)
def test_a_name_mixing_scripts_takes_each_letter_from_a_font_that_has_it():
    written, pdf = badge_glyphs("Zoë 李 محمد שרה")
    used = {key for key, _ in written}
    assert {"sansB", "cjkB", "arabicB", "hebrewB"} <= used
    assert 0 not in {glyph for _, glyph in written}  # no .notdef box anywhere


def test_badges_of_plain_latin_are_left_unshaped_to_stay_small_and_fast():
    def text_operations(name: str, shaping: bool | None) -> int:
        sheet = BadgeSheet(LAYOUTS["badge-4x3"], "NEC Symposium", font_dir="", shaping=shaping)
        sheet.add(Badge("NEC-AAAA", name, "family", "UNC", "Chile", False))
        out = io.BytesIO()
        sheet.output(out)
        return sum(stream.count(b" Tj") for stream in content_streams(out.getvalue()))

    # Shaped text places each glyph on its own; unshaped text is one string a line.
    assert text_operations("Zoë Núñez", None) == text_operations("Zoë Núñez", False)
    assert text_operations("Zoë Núñez", True) > text_operations("Zoë Núñez", None) + 8
    assert text_operations("שרה לוי", None) == text_operations("שרה לוי", True)
