"""Certificates of attendance with CME/CE credits.

From the event's ``certificates_from``, a confirmed registrant checked in at the door of at
least one program item has a certificate: the items attended with their credits, the total,
and the event's ``cme_statement`` worded for their credential (the AMA PRA wording is for
physicians, MD and DO; others get a certificate of participation that quotes it). Each
certificate has a verification code whose public page (``/certificates/<code>``) confirms it
and shows nothing else about the person; the code is kept (``Certificate``) so it stays
valid whatever the site's keys become. The CME office gets ``credits.csv``.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import astuple, dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .models import (
    CODE_ALPHABET,
    CREDENTIALS,
    Attendee,
    Certificate,
    Event,
    ProgramAttendance,
    ProgramItem,
    utcnow,
)
from .pdf_fonts import pdf_with_fonts
from .program import credits_text
from .qr import qr_png

#: Credentials whose certificates carry the event's CME statement as it is written.
PHYSICIANS = ("MD", "DO")
#: A verification code: 12 letters and digits of the attendee codes' alphabet, in groups.
VERIFICATION_LENGTH = 12
#: The columns of credits.csv, for the CME office.
CREDITS_COLUMNS = ("code", "first_name", "last_name", "email", "credential", "credits", "items")


class CertificateError(Exception):
    """No certificate (yet) for this person; ``str(exc)`` says why."""


def certificates_open(event: Event, now: datetime) -> bool:
    return event.certificates_from is not None and now >= event.certificates_from


def attended(session: Session, attendee_id: int) -> list[ProgramItem]:
    """The program items the attendee was checked in at, in time order."""
    return list(
        session.execute(
            select(ProgramItem)
            .join(ProgramAttendance, ProgramAttendance.item_id == ProgramItem.id)
            .where(ProgramAttendance.attendee_id == attendee_id)
            .order_by(ProgramItem.starts_at, ProgramItem.key)
        ).scalars()
    )


def statement_for(event: Event, credential: str, total: int) -> str:
    """The event's CME statement as this credential's certificate says it."""
    statement = event.cme_statement.strip()
    if credential in PHYSICIANS:
        return statement
    hours = credits_text(total)
    participation = (
        f"Certificate of participation: {hours} hours of education. The AMA PRA credit"
        " designation applies to physicians (MD, DO); other professions may claim these hours"
        " as their boards allow."
    )
    return f"{participation} {statement}".strip() if statement else participation


def _new_code() -> str:
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(VERIFICATION_LENGTH))
    return "-".join(raw[i : i + 4] for i in range(0, VERIFICATION_LENGTH, 4))


def issue(session: Session, attendee: Attendee, *, now: datetime | None = None) -> Certificate:
    """The attendee's certificate, made (with its verification code) the first time and its
    credits brought up to date after; CertificateError when there is none to give."""
    now = now or utcnow()
    event = session.get(Event, attendee.event_id)
    assert event is not None
    if not certificates_open(event, now):
        raise CertificateError("Certificates are not given yet.")
    if not attendee.is_active:
        raise CertificateError("Only a confirmed registration has a certificate.")
    items = attended(session, attendee.id)
    if not items:
        raise CertificateError("A certificate lists the sessions you were checked in at: none yet.")
    total = sum(item.credits for item in items)
    certificate = session.execute(
        select(Certificate).where(Certificate.attendee_id == attendee.id)
    ).scalar_one_or_none()
    if certificate is not None:
        certificate.credits = total
        session.flush()
        return certificate
    for _attempt in range(5):
        try:
            with session.begin_nested():
                certificate = Certificate(
                    attendee_id=attendee.id, verification_code=_new_code(), credits=total,
                    issued_at=now,
                )  # fmt: skip
                session.add(certificate)
        except IntegrityError:
            found = session.execute(
                select(Certificate).where(Certificate.attendee_id == attendee.id)
            ).scalar_one_or_none()
            if found is not None:  # made at the same moment by another request
                return found
            continue  # the code was taken: draw again
        return certificate
    raise RuntimeError("could not draw an unused verification code")


@dataclass(frozen=True)
class CertificateLines:
    """What a certificate says (the PDF is made from it; tests read it back)."""

    name: str
    credential: str
    event: str
    dates: str
    venue: str
    items: list[tuple[str, str, str]]  # (title, when, credits)
    total: str
    statement: str
    verification_code: str
    verify_url: str
    issuer: str


def certificate_lines(
    session: Session, attendee: Attendee, certificate: Certificate, *, site_url: str, dates: str
) -> CertificateLines:
    event = session.get(Event, attendee.event_id)
    assert event is not None
    items = attended(session, attendee.id)
    return CertificateLines(
        name=attendee.full_name,
        credential=CREDENTIALS.get(attendee.credential, ""),
        event=event.name,
        dates=dates,
        venue=event.venue,
        items=[
            (item.title, f"{item.starts_at:%B %-d, %Y}", credits_text(item.credits))
            for item in items
        ],
        total=credits_text(certificate.credits),
        statement=statement_for(event, attendee.credential, certificate.credits),
        verification_code=certificate.verification_code,
        verify_url=f"{site_url.rstrip('/')}/certificates/{certificate.verification_code}",
        issuer=", ".join(event.hosts) if event.hosts else event.name,
    )


def certificate_pdf(lines: CertificateLines) -> bytes:
    """The certificate as a PDF (A4 landscape), with the verification page's QR code."""
    # Everything printed but the fixed English text, so fallback fonts are read only when a
    # name or a title needs one.
    printed = " ".join(str(value) for value in astuple(lines))
    pdf = pdf_with_fonts("A4", f"Certificate of attendance, {lines.event}", text=printed)
    pdf.set_margins(20, 18, 20)
    pdf.add_page(orientation="landscape")
    width = pdf.w - 40
    pdf.set_font("sans", "B", 22)
    pdf.cell(width, 12, "Certificate of Attendance", align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("sans", "", 12)
    pdf.cell(width, 7, "This certifies that", align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("sans", "B", 18)
    name = lines.name + (f", {lines.credential}" if lines.credential else "")
    pdf.multi_cell(width, 10, name, align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("sans", "", 12)
    where = f"{lines.dates}" + (f", {lines.venue}" if lines.venue else "")
    pdf.multi_cell(
        width, 7, f"attended {lines.event}, {where}:", align="C", new_x="LMARGIN", new_y="NEXT"
    )
    pdf.ln(3)
    for title, when, credits in lines.items:
        pdf.set_font("sans", "", 11)
        pdf.cell(width - 50, 7, f"{title} ({when})")
        pdf.cell(50, 7, f"{credits} credit hours", align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("sans", "B", 12)
    pdf.cell(width - 50, 8, "Total")
    pdf.cell(50, 8, f"{lines.total} credit hours", align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    pdf.set_font("sans", "", 9)
    pdf.multi_cell(width - 45, 5, lines.statement, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    pdf.multi_cell(
        width - 45,
        5,
        f"Issued by {lines.issuer}. Verify at {lines.verify_url}"
        f" (verification code {lines.verification_code}).",
        new_x="LMARGIN",
        new_y="NEXT",
    )
    pdf.image(qr_png(lines.verify_url, scale=4), x=pdf.w - 20 - 38, y=pdf.h - 18 - 38, w=38, h=38)
    return bytes(pdf.output())


def verify(session: Session, code: str) -> tuple[Certificate, Attendee, Event] | None:
    """The certificate of a verification code, with its holder and event; None if none."""
    row = session.execute(
        select(Certificate, Attendee, Event)
        .join(Attendee, Attendee.id == Certificate.attendee_id)
        .join(Event, Event.id == Attendee.event_id)
        .where(Certificate.verification_code == code.strip().upper()[:20])
    ).first()
    return None if row is None else (row[0], row[1], row[2])


def credit_rows(session: Session, event: Event) -> Iterator[dict[str, str]]:
    """A row per confirmed attendee checked in at an item: the CME office's list."""
    query = (
        select(Attendee, ProgramItem)
        .join(ProgramAttendance, ProgramAttendance.attendee_id == Attendee.id)
        .join(ProgramItem, ProgramItem.id == ProgramAttendance.item_id)
        .where(Attendee.event_id == event.id, Attendee.is_active)
        .order_by(Attendee.last_name, Attendee.first_name, Attendee.id, ProgramItem.starts_at)
    )
    current: Attendee | None = None
    items: list[ProgramItem] = []
    for attendee, item in session.execute(query):
        if current is not None and attendee.id != current.id:
            yield _credit_row(current, items)
            items = []
        current = attendee
        items.append(item)
    if current is not None:
        yield _credit_row(current, items)


def _credit_row(attendee: Attendee, items: list[ProgramItem]) -> dict[str, str]:
    return {
        "code": attendee.code,
        "first_name": attendee.first_name,
        "last_name": attendee.last_name,
        "email": attendee.email,
        "credential": attendee.credential,
        "credits": credits_text(sum(item.credits for item in items)),
        "items": "; ".join(item.key for item in items),
    }


def notify_ready(session: Session, *, now: datetime | None = None) -> int:
    """Once certificates open, queue "your certificate is ready" to everyone who has one, once
    per event (the event's row lock and ``certificates_notified_at`` see to it, whatever runs
    at the same time). Returns how many were queued."""
    from .mail.outbox import queue_certificate_ready
    from .registration import lock_event

    now = now or utcnow()
    due = (
        session.execute(
            select(Event.id).where(
                Event.certificates_from <= now, Event.certificates_notified_at.is_(None)
            )
        )
        .scalars()
        .all()
    )
    queued = 0
    for event_id in due:
        event = session.get(Event, event_id)
        assert event is not None
        lock_event(session, event)
        if event.certificates_notified_at is not None:
            continue
        holders = session.execute(
            select(Attendee)
            .where(
                Attendee.event_id == event.id,
                Attendee.is_active,
                Attendee.email != "",
                Attendee.id.in_(select(ProgramAttendance.attendee_id)),
            )
            .order_by(Attendee.id)
        ).scalars()
        for attendee in holders:
            queue_certificate_ready(session, event, attendee, now=now)
            queued += 1
        event.certificates_notified_at = now
        session.flush()
    return queued
