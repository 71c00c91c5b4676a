"""Certificates of attendance: the holder's PDF from their private link, and the public page
that confirms a certificate by its verification code (certificates.py)."""

from __future__ import annotations

from flask import abort, make_response, render_template

from ..certificates import CertificateError, certificate_lines, certificate_pdf, issue, verify
from ..extensions import db
from ..mail.outbox import site_url
from ..program import credits_text
from ..web import date_range
from . import bp
from .selfservice import PRIVATE, attendee_or_404


@bp.get("/registration/<token>/certificate.pdf")
def certificate(token: str):
    """The holder's certificate; 404 while there is none (before ``certificates_from``, or
    not checked in at any program item)."""
    attendee = attendee_or_404(token)
    try:
        issued = issue(db.session, attendee)
    except CertificateError:
        db.session.rollback()
        abort(404)
    event = attendee.event
    lines = certificate_lines(
        db.session,
        attendee,
        issued,
        site_url=site_url(),
        dates=date_range(event.starts_on, event.ends_on),
    )
    db.session.commit()
    response = make_response(certificate_pdf(lines))
    response.headers.update(PRIVATE)
    response.headers["Content-Type"] = "application/pdf"
    response.headers["Content-Disposition"] = (
        f'inline; filename="certificate-{event.slug}-{attendee.code}.pdf"'
    )
    return response


@bp.get("/certificates/<code>")
def verify_certificate(code: str):
    """Whether a certificate with this code was given: its holder's name, the event and the
    credits, nothing else."""
    found = verify(db.session, code)
    if found is None:
        page = render_template("public/certificate.html", found=False, code=code[:20])
        return page, 404, {"X-Robots-Tag": "noindex"}
    issued, attendee, event = found
    page = render_template(
        "public/certificate.html",
        found=True,
        code=issued.verification_code,
        name=attendee.full_name,
        event_name=event.name,
        dates=date_range(event.starts_on, event.ends_on),
        credits=credits_text(issued.credits),
        issued_on=f"{issued.issued_at:%B %-d, %Y}",
        issuer=", ".join(event.hosts) if event.hosts else event.name,
    )
    return page, 200, {"X-Robots-Tag": "noindex"}
