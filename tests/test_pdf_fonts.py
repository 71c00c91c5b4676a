"""Where the fonts of every PDF come from: FONT_DIR first, then the fonts shipped in the
package, then the system's; a clear FontsMissing when DejaVu Sans is nowhere; the shipped
subsets cover the scripts names are written in, and carry their licences."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from fontTools.ttLib import TTFont
from fpdf import FPDF

from necreg import pdf_fonts
from necreg.pdf_fonts import (
    PACKAGE_FONT_DIR,
    FontsMissing,
    add_fonts,
    needs_shaping,
    pdf_with_fonts,
)

SHIPPED = {
    "sans": "DejaVuSans.ttf",
    "sansB": "DejaVuSans-Bold.ttf",
    "arabic": "NotoSansArabic-Regular.ttf",
    "arabicB": "NotoSansArabic-Bold.ttf",
    "hebrew": "NotoSansHebrew-Regular.ttf",
    "hebrewB": "NotoSansHebrew-Bold.ttf",
}


@pytest.fixture
def no_system_fonts(monkeypatch, tmp_path) -> Path:
    """The system's font folders, as on a machine without any: one empty folder."""
    empty = tmp_path / "system-fonts"
    empty.mkdir()
    monkeypatch.setattr(pdf_fonts, "SYSTEM_FONT_DIRS", (empty,))
    return empty


def fonts_used(font_dir) -> dict[str, Path]:
    """The file of each font a PDF gets, by fpdf2 font key, with ``font_dir`` as FONT_DIR."""
    pdf = FPDF()
    used = add_fonts(pdf, font_dir)
    for font in pdf.fonts.values():
        font.ttfont.close()  # the PDF is never written, which would have read them
    return used


def embedded_fonts(pdf: FPDF) -> set[str]:
    """The base names of the fonts embedded in the PDF, e.g. MPDFAA+NotoSansArabicBold."""
    return {m.decode() for m in re.findall(rb"/BaseFont /([A-Za-z0-9+-]+)", bytes(pdf.output()))}


def test_the_shipped_fonts_print_names_when_font_dir_is_empty_and_the_system_has_none(
    no_system_fonts,
):
    used = fonts_used("")
    assert used == {key: PACKAGE_FONT_DIR / name for key, name in SHIPPED.items()}
    pdf = pdf_with_fonts("A4", "t", font_dir="")
    pdf.add_page()
    pdf.set_font("sans", "B", 20)
    pdf.cell(text="Zoë Ωμέγα Олена محمد שרה")
    fonts = embedded_fonts(pdf)
    assert {"MPDFAA+DejaVuSansBold", "MPDFAA+NotoSansArabicBold", "MPDFAA+NotoSansHebrewBold"} <= (
        fonts
    )


def test_font_dir_wins_over_the_package_and_the_system(tmp_path, no_system_fonts):
    chosen = tmp_path / "chosen"
    chosen.mkdir()
    shutil.copy(PACKAGE_FONT_DIR / "DejaVuSans.ttf", chosen / "DejaVuSans.ttf")
    shutil.copy(PACKAGE_FONT_DIR / "NotoSansHebrew-Bold.ttf", no_system_fonts)
    used = fonts_used(chosen)
    assert used["sans"] == chosen / "DejaVuSans.ttf"
    # What FONT_DIR lacks still comes from the package, before the system.
    assert used["sansB"] == PACKAGE_FONT_DIR / "DejaVuSans-Bold.ttf"
    assert used["hebrewB"] == PACKAGE_FONT_DIR / "NotoSansHebrew-Bold.ttf"


def test_font_dir_is_read_from_the_running_app(app, tmp_path, no_system_fonts):
    shutil.copy(PACKAGE_FONT_DIR / "DejaVuSans-Bold.ttf", tmp_path / "DejaVuSans-Bold.ttf")
    app.config["FONT_DIR"] = str(tmp_path)
    with app.app_context():
        assert pdf_fonts.font_dirs()[0] == tmp_path
        used = fonts_used(None)
    assert used["sansB"] == tmp_path / "DejaVuSans-Bold.ttf"
    assert used["sans"] == PACKAGE_FONT_DIR / "DejaVuSans.ttf"


def test_a_damaged_font_file_is_passed_over_for_the_next(tmp_path, no_system_fonts):
    (tmp_path / "DejaVuSans.ttf").write_bytes(b"not a font at all" * 10)
    used = fonts_used(tmp_path)
    assert used["sans"] == PACKAGE_FONT_DIR / "DejaVuSans.ttf"


def test_without_dejavu_anywhere_the_error_says_what_is_missing_and_how_to_fix_it(
    monkeypatch, tmp_path, no_system_fonts
):
    bare = tmp_path / "package-fonts"
    bare.mkdir()
    monkeypatch.setattr(pdf_fonts, "PACKAGE_FONT_DIR", bare)
    with pytest.raises(FontsMissing) as caught:
        pdf_with_fonts("A4", "t", font_dir="")
    message = str(caught.value)
    assert "DejaVuSans.ttf" in message and "FONT_DIR (not set)" in message
    assert str(bare) in message and str(no_system_fonts) in message
    assert "apt-get install fonts-dejavu-core" in message
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "DejaVuSans.ttf").write_bytes(b"broken")
    with pytest.raises(FontsMissing) as caught:
        pdf_with_fonts("A4", "t", font_dir=tmp_path / "mine")
    assert f"Unusable: {tmp_path / 'mine' / 'DejaVuSans.ttf'} (" in str(caught.value)
    assert f"FONT_DIR ({tmp_path / 'mine'})" in str(caught.value)
    with pytest.raises(FontsMissing, match="no such folder"):
        pdf_with_fonts("A4", "t", font_dir=tmp_path / "nowhere")


def test_missing_fallbacks_leave_their_scripts_out_but_still_print(
    monkeypatch, tmp_path, no_system_fonts
):
    only_dejavu = tmp_path / "package-fonts"
    only_dejavu.mkdir()
    for name in ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf"):
        shutil.copy(PACKAGE_FONT_DIR / name, only_dejavu)
    monkeypatch.setattr(pdf_fonts, "PACKAGE_FONT_DIR", only_dejavu)
    pdf = pdf_with_fonts("A4", "t", font_dir="")
    assert set(pdf.fonts) == {"sans", "sansB"}
    pdf.add_page()
    pdf.set_font("sans", "", 12)
    pdf.cell(text="Zoë محمد")
    assert bytes(pdf.output()).startswith(b"%PDF-")


def covered(path: Path) -> set[int]:
    return set(TTFont(path)["cmap"].getBestCmap())


def test_the_shipped_dejavu_subsets_cover_the_letters_of_names():
    letters = {
        "Latin-1 and Latin Extended-A": range(0xC0, 0x180),
        "Latin Extended-B (e.g. Romanian ș ț)": [0x218, 0x219, 0x21A, 0x21B, 0x1CD, 0x1F0],
        "Vietnamese": range(0x1EA0, 0x1EFA),
        "Greek": [c for c in range(0x386, 0x3CF) if c not in (0x387, 0x38B, 0x38D, 0x3A2)],
        "Cyrillic": range(0x400, 0x460),
        "Cyrillic Supplement (e.g. Komi, Abkhaz)": range(0x500, 0x510),
        "combining marks (those DejaVu draws)": range(0x300, 0x350),
        "modifier letters (ʻokina, ʼ)": [0x2BB, 0x2BC],
        "punctuation": [0x2013, 0x2014, 0x2018, 0x2019, 0x201C, 0x201D, 0x2026, 0x2022],
        "currency": [0x20AC, 0xA3, 0xA5, 0x20B9],
    }
    for name in ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf"):
        cmap = covered(PACKAGE_FONT_DIR / name)
        for label, codes in letters.items():
            lacking = [f"U+{c:04X}" for c in codes if c not in cmap]
            assert not lacking, f"{name} lacks {label}: {lacking}"
        # Arabic and Hebrew come from Noto, which is drawn for them.
        assert 0x627 not in cmap and 0x5D0 not in cmap
    assert 0x627 in covered(PACKAGE_FONT_DIR / "NotoSansArabic-Bold.ttf")
    assert 0x5D0 in covered(PACKAGE_FONT_DIR / "NotoSansHebrew-Bold.ttf")


def test_the_shipped_fonts_carry_their_licences_and_stay_small():
    files = sorted(PACKAGE_FONT_DIR.glob("*.ttf"))
    assert [f.name for f in files] == sorted(SHIPPED.values())
    assert sum(f.stat().st_size for f in files) < 2_000_000
    readme = (PACKAGE_FONT_DIR / "README.md").read_text()
    assert all(f.name in readme for f in files)
    dejavu = (PACKAGE_FONT_DIR / "LICENSE-DejaVu.txt").read_text()
    assert "Bitstream Vera Fonts Copyright" in dejavu and "Arev Fonts Copyright" in dejavu
    ofl = (PACKAGE_FONT_DIR / "OFL-1.1.txt").read_text()
    assert "SIL OPEN FONT LICENSE" in ofl and "Version 1.1" in ofl
    for path in files:
        notice = TTFont(path)["name"].getDebugName(13) or ""
        if path.name.startswith("Noto"):
            assert "SIL Open Font License, Version 1.1" in notice
        # The licences allow modified fonts only under names without these words.
        family = TTFont(path)["name"].getDebugName(1) or ""
        assert not any(word in family for word in ("Bitstream", "Vera", "Arev"))


@pytest.mark.parametrize(
    ("text", "shaped"),
    [
        ("Zoë Núñez-García, Łódź", False),
        ("Nguyễn Thị Minh Khai", False),  # precomposed
        ("Γιώργος Олександра — €12", False),
        ("Nguye\u0302\u0303n", True),  # decomposed: the marks need placing
        ("محمد", True),
        ("Dr שרה", True),
        ("李小龙", True),
        ("Ana\u200f", True),  # a bidi control
    ],
)
def test_only_text_that_prints_wrong_unshaped_needs_shaping(text, shaped):
    assert needs_shaping(text) is shaped


def test_fallbacks_are_read_only_when_the_text_to_print_needs_them(no_system_fonts):
    """A receipt or certificate says beforehand all it prints: Latin alone reads no fallback
    (Noto Sans CJK is 20 MB), an Arabic or Hebrew name reads them and prints with them."""

    def used_for(text):
        pdf = FPDF()
        used = add_fonts(pdf, "", text=text)
        for font in pdf.fonts.values():
            font.ttfont.close()
        return set(used)

    assert used_for("Zoë Núñez, Hôpital Necker — €120.00") == {"sans", "sansB"}
    assert used_for("دانا حداد  Hôpital") == set(SHIPPED)
    assert used_for("נועה כהן") == set(SHIPPED)
    assert used_for(None) == set(SHIPPED)  # badges: every fallback found
