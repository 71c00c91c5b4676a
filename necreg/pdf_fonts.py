"""The fonts every PDF necreg prints (badges, receipts, certificates) is set in, and where they
are found.

A name may be in any script, so a PDF gets DejaVu Sans (regular and bold: Latin, Greek,
Cyrillic ...) and, for the letters it lacks, fallbacks: Noto Sans Arabic and Hebrew, and Noto
Sans CJK where it is installed. Each font is looked for by its file name in ``FONT_DIR`` first
(an operator's choice wins), then in the fonts shipped in this package (``necreg/fonts``: all
but CJK, which is tens of megabytes), then in the usual system folders; the first file that
loads is used. DejaVu Sans is needed: without it ``FontsMissing`` says what to install. A
missing fallback only leaves its script unprinted (fpdf2 logs the characters it lacked).

Text shaping (HarfBuzz, through uharfbuzz) is on: Arabic letters join, right-to-left runs are
laid out in visual order, marks sit on their letters and Latin is kerned. It costs time and
bytes, each glyph being placed on its own (bench/badges_shaping.py: two thirds longer for a
thousand badges), so the badge export, the one long job, shapes only the badges whose text
needs it (``needs_shaping``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from flask import current_app, has_app_context
from fontTools.ttLib import TTFont
from fpdf import FPDF

log = logging.getLogger(__name__)

#: The fonts shipped with the package (their licences and origin are in its README.md).
PACKAGE_FONT_DIR = Path(__file__).resolve().parent / "fonts"

#: Where systems keep fonts: Debian and Ubuntu, Fedora, Arch and Alpine, Homebrew and macOS,
#: a local install. Searched after FONT_DIR and the package's fonts; tests point it elsewhere.
SYSTEM_FONT_DIRS: tuple[Path, ...] = tuple(
    Path(p)
    for p in (
        "/usr/share/fonts/truetype/dejavu",
        "/usr/share/fonts/truetype/noto",
        "/usr/share/fonts/opentype/noto",
        "/usr/share/fonts/dejavu-sans-fonts",
        "/usr/share/fonts/google-noto",
        "/usr/share/fonts/google-noto-vf",
        "/usr/share/fonts/google-noto-sans-cjk-fonts",
        "/usr/share/fonts/google-noto-cjk",
        "/usr/share/fonts/TTF",
        "/usr/share/fonts/noto",
        "/usr/share/fonts/noto-cjk",
        "/usr/share/fonts/dejavu",
        "/usr/local/share/fonts",
        "/Library/Fonts",
    )
)


@dataclass(frozen=True)
class Face:
    """One font a PDF uses: the fpdf2 family and style it is set as, and the file names it may
    have, preferred first."""

    family: str
    style: str
    files: tuple[str, ...]
    #: What to install when no file is found.
    hint: str

    @property
    def label(self) -> str:
        return f"{self.family} {'bold' if self.style == 'B' else 'regular'}"


#: The font every PDF needs: DejaVu Sans.
MAIN_FAMILY = "sans"
DEJAVU_HINT = "fonts-dejavu-core"
FACES: tuple[Face, ...] = (
    Face("sans", "", ("DejaVuSans.ttf",), DEJAVU_HINT),
    Face("sans", "B", ("DejaVuSans-Bold.ttf",), DEJAVU_HINT),
    # Fallbacks, in the order fpdf2 tries them for a letter the main font lacks.
    Face("arabic", "", ("NotoSansArabic-Regular.ttf",), "fonts-noto-core"),
    Face("arabic", "B", ("NotoSansArabic-Bold.ttf",), "fonts-noto-core"),
    Face("hebrew", "", ("NotoSansHebrew-Regular.ttf",), "fonts-noto-core"),
    Face("hebrew", "B", ("NotoSansHebrew-Bold.ttf",), "fonts-noto-core"),
    Face(
        "cjk",
        "",
        ("NotoSansCJK-Regular.ttc", "NotoSansCJKsc-Regular.otf", "NotoSansCJKjp-Regular.otf"),
        "fonts-noto-cjk",
    ),
    Face(
        "cjk",
        "B",
        ("NotoSansCJK-Bold.ttc", "NotoSansCJKsc-Bold.otf", "NotoSansCJKjp-Bold.otf"),
        "fonts-noto-cjk",
    ),
)


#: Letters that print the same unshaped: precomposed Latin, Greek and Cyrillic letters,
#: punctuation and currency signs, all left to right with nothing to join or place. Bidi
#: controls (U+200E, U+200F, U+202A-U+202E) and combining marks are not among them.
_PLAIN_RANGES = (
    (0x0000, 0x02FF),
    (0x0370, 0x0482),
    (0x048A, 0x052F),
    (0x1E00, 0x1FFF),
    (0x2010, 0x2027),
    (0x2030, 0x205E),
    (0x20A0, 0x20CF),
)


def needs_shaping(text: str) -> bool:
    """Whether ``text`` prints wrong without shaping: a right-to-left or joined script, a
    combining mark, CJK or anything else beyond plain Latin, Greek and Cyrillic."""
    return any(not any(low <= ord(char) <= high for low, high in _PLAIN_RANGES) for char in text)


class FontsMissing(RuntimeError):
    """No usable file of a font every PDF needs; ``str(exc)`` says which file, where it was
    looked for and what puts it there."""


def configured_font_dir() -> str:
    """The FONT_DIR setting of the running app ("" outside one, e.g. in a script)."""
    return str(current_app.config.get("FONT_DIR", "")) if has_app_context() else ""


def font_dirs(font_dir: str | os.PathLike[str] | None = None) -> list[Path]:
    """Where fonts are looked for, in order: ``font_dir`` (FONT_DIR of the running app when
    None), the package's fonts, the system's folders."""
    if font_dir is None:
        font_dir = configured_font_dir()
    dirs = [Path(font_dir).expanduser()] if str(font_dir) else []
    return [*dirs, PACKAGE_FONT_DIR, *SYSTEM_FONT_DIRS]


def candidates(face: Face, dirs: Sequence[Path]) -> Iterator[Path]:
    """The files that may hold ``face``, best first: each folder in turn, each name in turn."""
    for folder in dirs:
        for name in face.files:
            path = folder / name
            if path.is_file():
                yield path


def _check_font_file(path: Path) -> None:
    """Raise if ``path`` is not a font file: its table directory is read through a file this
    function closes (fontTools leaves its own file open when the header is wrong)."""
    with path.open("rb") as fh:
        TTFont(fh, lazy=True, fontNumber=0)


def _missing_message(face: Face, dirs: Sequence[Path], font_dir: str, broken: list[str]) -> str:
    looked = ", ".join(str(d) for d in dirs)
    setting = f"FONT_DIR ({font_dir})" if font_dir else "FONT_DIR (not set)"
    if font_dir and not Path(font_dir).expanduser().is_dir():
        setting = f"FONT_DIR ({font_dir}: no such folder)"
    unusable = f" Unusable: {'; '.join(broken)}." if broken else ""
    return (
        f"No usable font file {face.files[0]} ({face.label}) for printing PDFs.{unusable}"
        f" Looked in: {looked}. Put {face.files[0]} in the folder named by {setting},"
        f" reinstall necreg (its package ships the file in {PACKAGE_FONT_DIR.name}/),"
        f" or install the system's fonts (Debian: apt-get install {face.hint})."
    )


def _main_family_lacks(pdf: FPDF, text: str) -> bool:
    """Whether a letter of ``text`` is missing from the main family's faces added to ``pdf``."""
    letters = {ord(char) for char in text if not char.isspace()}
    faces = [font for key, font in pdf.fonts.items() if key.startswith(MAIN_FAMILY)]
    return any(letter not in font.cmap for font in faces for letter in letters)


def add_fonts(
    pdf: FPDF, font_dir: str | os.PathLike[str] | None = None, *, text: str | None = None
) -> dict[str, Path]:
    """Add every face found to ``pdf`` and make the fallbacks found its fallback fonts; the
    file each face was loaded from, by fpdf2 font key ("sans", "sansB", "arabic" ...).
    FontsMissing when no file of the main family loads.

    ``text``, when the whole of what the PDF will print is known beforehand (a receipt, a
    certificate): the fallbacks are added only if the main family lacks one of its letters.
    Reading a fallback costs time (Noto Sans CJK, 20 MB, about 0.3 s a face), and most
    documents need none. None (badges: names come one by one): every fallback found."""
    if font_dir is None:
        font_dir = configured_font_dir()
    dirs = font_dirs(font_dir)
    used: dict[str, Path] = {}
    for face in FACES:
        if face.family != MAIN_FAMILY and text is not None and not _main_family_lacks(pdf, text):
            break  # the fallbacks come after the main family in FACES
        broken: list[str] = []
        for path in candidates(face, dirs):
            try:
                _check_font_file(path)
                pdf.add_font(face.family, face.style, str(path))
            except Exception as exc:  # a damaged or foreign file: try the next one
                log.warning("font file %s cannot be used: %s", path, exc)
                broken.append(f"{path} ({type(exc).__name__})")
                continue
            used[face.family + face.style] = path
            break
        else:
            if face.family == MAIN_FAMILY:
                raise FontsMissing(_missing_message(face, dirs, str(font_dir), broken))
    fallbacks = list(dict.fromkeys(f.family for f in FACES if f.family + f.style in used))
    fallbacks.remove(MAIN_FAMILY)
    if fallbacks:
        # A bold name whose script has only a regular fallback prints regular, not as boxes.
        pdf.set_fallback_fonts(fallbacks, exact_match=False)
    return used


def pdf_with_fonts(
    page: tuple[float, float] | str,
    title: str,
    *,
    font_dir: str | os.PathLike[str] | None = None,
    text: str | None = None,
) -> FPDF:
    """A PDF (mm) with the fonts names of any script need, as family ``sans`` (regular and
    bold) with its fallbacks, and text shaping on. Badges, receipts and certificates use it.
    ``font_dir`` overrides the FONT_DIR setting; ``text``: all the PDF will print, when known
    (see add_fonts)."""
    pdf = FPDF(unit="mm", format=page)
    pdf.set_creator("necreg")
    pdf.set_title(title)
    add_fonts(pdf, font_dir, text=text)
    pdf.set_text_shaping(True)
    return pdf
