"""QR codes of attendee codes, as the badge, the self-service page and the e-mail show them.

The payload is the bare attendee code, which the check-in page accepts as typed or scanned.
"""

from __future__ import annotations

import io

import segno
from markupsafe import Markup


def _make(code: str) -> segno.QRCode:
    return segno.make(code, error="m", micro=False)


def qr_svg(code: str, *, scale: int = 6) -> Markup:
    """Inline SVG (no script, no external reference), labelled for screen readers."""
    out = io.BytesIO()
    _make(code).save(
        out,
        kind="svg",
        scale=scale,
        border=4,
        xmldecl=False,
        svgclass="qr",
        lineclass=None,
        title=f"QR code of attendee code {code}",
    )
    svg = out.getvalue().decode()
    return Markup(svg.replace("<svg ", '<svg role="img" aria-label="QR code of ' + code + '" ', 1))  # noqa: S704 - segno's own SVG; code is [A-Z0-9-]


def qr_png(code: str, *, scale: int = 8) -> bytes:
    out = io.BytesIO()
    _make(code).save(out, kind="png", scale=scale, border=4)
    return out.getvalue()
