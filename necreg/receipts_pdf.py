"""A payment's receipt as a PDF (A4): who issued it, its number, the payer, the amount and
currency, the date, the method and the reference (payments.receipt_lines)."""

from __future__ import annotations

from typing import Any

from .models import PAYMENT_METHODS
from .money import format_amount
from .pdf_fonts import pdf_with_fonts


def receipt_pdf(lines: dict[str, Any]) -> bytes:
    """The receipt of ``lines`` (payments.receipt_lines)."""
    # Everything printed but the fixed English labels, so fallback fonts are read only when
    # a name needs one.
    amount = format_amount(lines["amount"], lines["currency"])
    printed = " ".join([amount, *(str(value) for value in lines.values())])
    pdf = pdf_with_fonts("A4", f"Receipt {lines['number']}", text=printed)
    pdf.set_margins(20, 20, 20)
    pdf.add_page()
    width = pdf.w - 40
    pdf.set_font("sans", "B", 18)
    pdf.multi_cell(width, 9, lines["issuer"])
    pdf.set_font("sans", "", 11)
    pdf.multi_cell(width, 6, lines["event"])
    pdf.ln(6)
    pdf.set_font("sans", "B", 14)
    pdf.cell(width, 8, f"Receipt no. {lines['number']}", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    rows = [
        ("Received from", lines["payer"]),
        ("Institution", lines["institution"] or "—"),
        ("Registration", lines["code"]),
        ("Amount", amount),
        ("Date", lines["paid_at"].strftime("%B %-d, %Y")),
        ("Method", PAYMENT_METHODS[lines["method"]]),
        ("Reference", lines["reference"] or "—"),
    ]
    if lines.get("refunded_at"):
        rows.append(("Refunded", lines["refunded_at"].strftime("%B %-d, %Y")))
    for label, value in rows:
        pdf.set_font("sans", "B", 11)
        pdf.cell(45, 8, label)
        pdf.set_font("sans", "", 11)
        pdf.multi_cell(width - 45, 8, value, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(8)
    pdf.set_font("sans", "", 9)
    pdf.multi_cell(
        width, 5, f"Registration fee for {lines['event']}, received with thanks.", align="L"
    )
    return bytes(pdf.output())
