"""Printable badges: one badge per attendee on label sheets or single badge stock, with a QR
code of the attendee code that the check-in page accepts.

The role is shown by a coloured band *and* its name, never by colour alone. Names of any
script fit: the text, shaped (Arabic joined, right-to-left in visual order), shrinks to the
badge's width and wraps when even the smallest size is too wide; letters missing from DejaVu
Sans come from the fallbacks pdf_fonts finds (Noto Sans Arabic, Hebrew, CJK).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import BinaryIO

import segno

from .models import ATTENDEE_ROLES
from .pdf_fonts import needs_shaping, pdf_with_fonts

INCH = 25.4


@dataclass(frozen=True)
class Layout:
    """A sheet of ``columns`` x ``rows`` badges of ``badge`` size (mm), centred on ``page``."""

    label: str
    page: tuple[float, float]
    badge: tuple[float, float]
    columns: int
    rows: int

    @property
    def per_page(self) -> int:
        return self.columns * self.rows


LAYOUTS: dict[str, Layout] = {
    "a4": Layout("A4 sheet, 2 x 4 badges of 90 x 62 mm", (210, 297), (90, 62), 2, 4),
    "letter": Layout(
        "US Letter sheet, 2 x 4 badges of 3⅜ x 2⅓ in",
        (8.5 * INCH, 11 * INCH),
        (3.375 * INCH, 2.333 * INCH),
        2,
        4,
    ),
    "badge-4x3": Layout("Single 4 x 3 in badge", (4 * INCH, 3 * INCH), (4 * INCH, 3 * INCH), 1, 1),
}

#: Band colour of each role: dark enough that white text on it reads (contrast >= 7:1).
ROLE_COLOURS: dict[str, tuple[int, int, int]] = {
    "clinician": (7, 54, 64),
    "scientist": (74, 35, 120),
    "family": (140, 29, 24),
    "advocate": (20, 80, 40),
    "guest": (64, 64, 64),
}


@dataclass(frozen=True)
class Badge:
    """What one badge shows."""

    code: str
    badge_name: str
    role: str
    institution: str
    country: str
    early_career: bool
    #: The lead registrant's code of a companion's party ("" for a lead or someone alone).
    party: str = ""
    #: False: the person declined photos, and the badge says so.
    photo_consent: bool = True


class BadgeSheet:
    """Lays badges out on pages; ``add`` one at a time, then ``output``."""

    margin = 5.0  # mm inside each badge
    band = 12.0  # height of the role band

    def __init__(
        self,
        layout: Layout,
        event_name: str,
        *,
        font_dir: str | os.PathLike[str] | None = None,
        shaping: bool | None = None,
    ) -> None:
        """``shaping``: None shapes the badges whose text needs it; True or False every badge
        or none (for comparison: tests, bench/badges_shaping.py)."""
        self.layout = layout
        self.event_name = event_name
        self.count = 0
        self.shaping = shaping
        pdf = pdf_with_fonts(layout.page, f"{event_name} badges", font_dir=font_dir)
        pdf.set_text_shaping(shaping is not False)
        pdf.set_auto_page_break(False)
        pdf.set_margins(0, 0, 0)
        self.pdf = pdf

    def _origin(self, index: int) -> tuple[float, float]:
        layout = self.layout
        (page_w, page_h), (badge_w, badge_h) = layout.page, layout.badge
        left = (page_w - layout.columns * badge_w) / 2
        top = (page_h - layout.rows * badge_h) / 2
        column, row = index % layout.columns, index // layout.columns
        return left + column * badge_w, top + row * badge_h

    def _fit(self, text: str, style: str, largest: float, smallest: float, width: float) -> float:
        """The largest font size (pt) at which ``text`` fits ``width`` mm, not below smallest."""
        size = largest
        while size > smallest:
            self.pdf.set_font("sans", style, size)
            if self.pdf.get_string_width(text) <= width:
                return size
            size -= 1
        self.pdf.set_font("sans", style, smallest)
        return smallest

    def add(self, badge: Badge) -> None:
        slot = self.count % self.layout.per_page
        if slot == 0:
            self.pdf.add_page()
        self.count += 1
        x, y = self._origin(slot)
        self._draw(badge, x, y)

    def _draw(self, badge: Badge, x: float, y: float) -> None:
        pdf, margin = self.pdf, self.margin
        if self.shaping is None:
            # Shaped only when its text needs it: faster, and smaller, for the rest.
            texts = (self.event_name, badge.badge_name, badge.institution, badge.country)
            pdf.set_text_shaping(any(needs_shaping(text) for text in texts))
        width, height = self.layout.badge
        inner = width - 2 * margin

        # Cut guide.
        pdf.set_draw_color(190, 190, 190)
        pdf.set_line_width(0.2)
        pdf.rect(x, y, width, height)

        # Role band: colour and the role's name in words.
        pdf.set_fill_color(*ROLE_COLOURS[badge.role])
        pdf.rect(x, y, width, self.band, style="F")
        pdf.set_text_color(255, 255, 255)
        pdf.set_font("sans", "B", 8)
        pdf.set_xy(x + margin, y)
        pdf.cell(inner * 0.6, self.band, self.event_name[:40], align="L")
        pdf.set_font("sans", "B", 12)
        pdf.set_xy(x + margin, y)
        pdf.cell(inner, self.band, ATTENDEE_ROLES[badge.role].upper(), align="R")

        # The QR code, bottom right, with the code written under it.
        qr_size = min(24.0, height - self.band - 16)
        qr_x = x + width - margin - qr_size
        qr_y = y + height - margin - qr_size - 3.5
        self._qr(badge.code, qr_x, qr_y, qr_size)
        pdf.set_text_color(40, 40, 40)
        pdf.set_font("sans", "", 7)
        pdf.set_xy(qr_x - 4, qr_y + qr_size)
        pdf.cell(qr_size + 8, 3.5, badge.code, align="C")

        # Name, large, shrunk to fit; two lines when even the smallest size is too wide.
        pdf.set_text_color(20, 20, 20)
        top = y + self.band + 3
        size = self._fit(badge.badge_name, "B", 26, 11, inner)
        line = size * 0.3528 * 1.2  # pt -> mm, with leading
        pdf.set_xy(x + margin, top)
        if pdf.get_string_width(badge.badge_name) <= inner:
            pdf.cell(inner, line, badge.badge_name)
            top += line
        else:
            pdf.multi_cell(inner, line, badge.badge_name, align="L")
            top = pdf.get_y()

        # Institution and country, beside the QR code.
        text_width = qr_x - x - margin - 2
        if badge.institution:
            size = self._fit(badge.institution, "", 11, 9, text_width)
            pdf.set_xy(x + margin, top + 1.5)
            pdf.multi_cell(text_width, size * 0.3528 * 1.25, badge.institution, align="L")
            top = pdf.get_y()
        pdf.set_text_color(70, 70, 70)
        pdf.set_font("sans", "", 9)
        pdf.set_xy(x + margin, top + 0.5)
        pdf.cell(text_width, 4.5, badge.country)

        if badge.party:
            pdf.set_text_color(40, 40, 40)
            pdf.set_font("sans", "", 8)
            pdf.set_xy(x + margin, pdf.get_y() + 5)
            pdf.cell(text_width, 4, f"Party of {badge.party}")

        # Marks along the bottom: early career; "no photos", inverted, for photographers.
        left = x + margin
        if badge.early_career:
            left += self._pill("EARLY CAREER", left, y + height - margin - 5) + 2
        if not badge.photo_consent:
            self._pill("NO PHOTOS", left, y + height - margin - 5, inverted=True)

    def _pill(self, label: str, x: float, y: float, *, inverted: bool = False) -> float:
        """A boxed label at (x, y); its width in mm."""
        pdf = self.pdf
        pdf.set_draw_color(20, 20, 20)
        pdf.set_line_width(0.4)
        pdf.set_font("sans", "B", 7.5)
        width = pdf.get_string_width(label) + 4
        if inverted:
            pdf.set_fill_color(20, 20, 20)
            pdf.set_text_color(255, 255, 255)
        else:
            pdf.set_text_color(20, 20, 20)
        pdf.set_xy(x, y)
        pdf.cell(width, 5, label, border=1, align="C", fill=inverted)
        return width

    def _qr(self, payload: str, x: float, y: float, size: float) -> None:
        qr = segno.make(payload, error="m", micro=False)
        matrix = qr.matrix
        quiet = 2
        modules = len(matrix) + 2 * quiet
        unit = size / modules
        pdf = self.pdf
        pdf.set_fill_color(255, 255, 255)
        pdf.rect(x, y, size, size, style="F")
        pdf.set_fill_color(0, 0, 0)
        for row_index, row in enumerate(matrix):
            column = 0
            while column < len(row):
                if not row[column]:
                    column += 1
                    continue
                start = column  # draw a run of dark modules as one rectangle
                while column < len(row) and row[column]:
                    column += 1
                pdf.rect(
                    x + (quiet + start) * unit,
                    y + (quiet + row_index) * unit,
                    (column - start) * unit,
                    unit,
                    style="F",
                )

    def output(self, out: BinaryIO) -> None:
        if self.count == 0:
            # An empty export is still a valid PDF: one page that says so.
            self.pdf.add_page()
            self.pdf.set_font("sans", "", 14)
            self.pdf.set_xy(10, 20)
            self.pdf.cell(text="No attendees match these filters.")
        out.write(bytes(self.pdf.output()))


def write_badges(
    badges: Iterable[Badge],
    out: BinaryIO,
    *,
    layout: str = "a4",
    event_name: str = "",
    font_dir: str | os.PathLike[str] | None = None,
) -> int:
    """Write a PDF of ``badges`` to ``out``; return how many badges it holds. FontsMissing
    (pdf_fonts) before anything is written when DejaVu Sans is nowhere to be found;
    ``font_dir`` overrides the FONT_DIR setting."""
    sheet = BadgeSheet(LAYOUTS[layout], event_name, font_dir=font_dir)
    for badge in badges:
        sheet.add(badge)
    sheet.output(out)
    return sheet.count
