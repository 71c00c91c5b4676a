"""QR codes of attendee codes, as the badge, the self-service page and the e-mail show them
(and of an authenticator's enrolment address on the organizer's account page).

The payload is the bare attendee code, which the check-in page accepts as typed or scanned.
"""

from __future__ import annotations

import io

import segno
from markupsafe import Markup, escape


def _make(code: str) -> segno.QRCode:
    return segno.make(code, error="m", micro=False)


def qr_svg(code: str, *, scale: int = 6, label: str | None = None) -> Markup:
    """Inline SVG (no script, no external reference), labelled for screen readers: ``label``,
    or "QR code of <code>" for an attendee code."""
    label = label or f"QR code of {code}"
    out = io.BytesIO()
    _make(code).save(
        out,
        kind="svg",
        scale=scale,
        border=4,
        xmldecl=False,
        svgclass="qr",
        lineclass=None,
        title=label,
    )
    svg = out.getvalue().decode()
    named = f'<svg role="img" aria-label="{escape(label)}" '
    return Markup(svg.replace("<svg ", named, 1))  # noqa: S704 - segno's own SVG, label escaped


def qr_png(code: str, *, scale: int = 8) -> bytes:
    out = io.BytesIO()
    _make(code).save(out, kind="png", scale=scale, border=4)
    return out.getvalue()
