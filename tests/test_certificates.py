"""Certificates of attendance (issue 14): from certificates_from, for people checked in at
program items' doors; the PDF read back (pdftotext) lists exactly the items attended and
their credits, its QR code decodes to the verification page that confirms it; the CME
office's credits.csv; the CLI export; the "ready" e-mail sent once."""

# ruff: noqa: F811 - pytest fixtures imported from organizer_fixtures are used as arguments

from __future__ import annotations

import csv
import io
import shutil
import subprocess
from datetime import UTC, datetime, timedelta

import pytest
from organizer_fixtures import admin_client, make_organizer  # noqa: F401
from sqlalchemy import func, select
from test_program import PROGRAM, event_file

from necreg.certificates import statement_for
from necreg.checkin import check_in
from necreg.events import load_event
from necreg.extensions import db
from necreg.models import Attendee, Certificate, Event, OutboxMessage
from necreg.program import choose, event_program
from necreg.registration import Registrant, register

STATEMENT = (
    "The NEC Society designates this live activity for a maximum of 6.75 AMA PRA Category 1"
    " Credits. Physicians should claim only the credit commensurate with their participation."
)


@pytest.fixture
def event(app):
    opened = datetime.now(UTC) - timedelta(days=1)
    with app.app_context():
        loaded, _ = load_event(
            db.session,
            event_file(cme_statement=STATEMENT, certificates_from=opened, venue="Chicago"),
        )
        db.session.commit()
        return loaded.id


def attended(app, event_id: int, keys: list[str], credential: str = "MD", n: int = 1) -> str:
    """A registrant checked in at the doors of ``keys``; their token."""
    with app.app_context():
        e = db.session.get(Event, event_id)
        person = Registrant(f"Ana{n}", "Silva", f"ana{n}@example.org", "clinician", "BR")
        attendee = register(db.session, e, person, code_prefix="NEC")
        attendee.credential = credential
        choose(db.session, attendee, [k for k in keys if k.startswith("ws-")])
        items = {item.key: item for item in event_program(db.session, event_id)}
        for key in keys:
            result = check_in(
                db.session, e, attendee.code, prefix="NEC", organizer_id=None, item=items[key]
            )
            assert result.outcome == "checked_in"
        db.session.commit()
        return attendee.token


def pdf_text(pdf: bytes) -> str:
    return subprocess.run(
        ["pdftotext", "-layout", "-", "-"], input=pdf, capture_output=True, check=True
    ).stdout.decode()


needs_poppler = pytest.mark.skipif(
    not shutil.which("pdftotext"), reason="needs pdftotext (apt-get install poppler-utils)"
)


@needs_poppler
def test_the_certificate_lists_the_items_attended_and_its_qr_code_verifies_it(
    app, client, event, tmp_path
):
    token = attended(app, event, ["opening", "ws-family"])
    response = client.get(f"/registration/{token}/certificate.pdf")
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    text = pdf_text(response.data)
    assert "Ana1 Silva, MD" in text and "NEC Symposium" in text
    assert "Opening plenary" in text and "Families as partners" in text
    assert "Feeding protocols" not in text and "Imaging NEC" not in text
    assert "1.5 credit hours" in text and "0 credit hours" in text
    assert "Total" in text and "AMA PRA Category 1" in text
    with app.app_context():
        certificate = db.session.execute(select(Certificate)).scalar_one()
        code = certificate.verification_code
        assert certificate.credits == 150
    assert code in text
    if shutil.which("zbarimg") and shutil.which("pdftoppm"):
        from browser import qr_in_pdf

        assert qr_in_pdf(response.data, tmp_path).endswith(f"/certificates/{code}")
    page = client.get(f"/certificates/{code}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "This certificate is valid" in html and "Ana1 Silva" in html and "1.5" in html
    assert "ana1@example.org" not in html and "NEC-" not in html
    # The same certificate, its code unchanged, however often it is downloaded.
    client.get(f"/registration/{token}/certificate.pdf")
    with app.app_context():
        assert db.session.execute(select(func.count(Certificate.id))).scalar_one() == 1
    missing = client.get("/certificates/AAAA-BBBB-CCCC")
    assert missing.status_code == 404 and "No such certificate" in missing.get_data(as_text=True)


def test_no_certificate_before_certificates_from_or_without_attendance(app, client, event):
    token = attended(app, event, [])
    response = client.get(f"/registration/{token}/certificate.pdf")
    assert response.status_code == 404
    token = attended(app, event, ["opening"], n=2)
    with app.app_context():
        db.session.get(Event, event).certificates_from = datetime.now(UTC) + timedelta(days=1)
        db.session.commit()
    assert client.get(f"/registration/{token}/certificate.pdf").status_code == 404
    with app.app_context():
        assert db.session.execute(select(func.count(Certificate.id))).scalar_one() == 0


def test_the_statement_is_worded_for_the_credential(app, event):
    with app.app_context():
        e = db.session.get(Event, event)
        assert statement_for(e, "MD", 150) == STATEMENT
        nurse = statement_for(e, "RN", 150)
        assert nurse.startswith("Certificate of participation: 1.5 hours of education.")
        assert "applies to physicians" in nurse


def test_the_cme_office_gets_credits_csv_and_the_cli_exports_every_certificate(
    app, admin_client, runner, event, tmp_path
):
    attended(app, event, ["opening", "ws-feeding"], credential="DO")
    attended(app, event, ["ws-imaging"], credential="RN", n=2)
    response = admin_client.get("/organizer/export/credits.csv")
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [(r["first_name"], r["credential"], r["credits"], r["items"]) for r in rows] == [
        ("Ana1", "DO", "3.5", "opening; ws-feeding"),
        ("Ana2", "RN", "1.25", "ws-imaging"),
    ]
    result = runner.invoke(args=["export-certificates", "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert len(files) == 2 and all(name.endswith(".pdf") for name in files)
    assert "2 certificates" in result.output


def test_the_certificate_ready_mail_goes_once_when_certificates_open(app, event, runner):
    attended(app, event, ["opening"])
    attended(app, event, [], n=2)  # not at any door: no certificate, no mail
    for _round in range(2):
        result = runner.invoke(args=["mail-worker", "--once"])
        assert result.exit_code == 0, result.output
    with app.app_context():
        mails = (
            db.session.execute(select(OutboxMessage).where(OutboxMessage.kind == "certificate"))
            .scalars()
            .all()
        )
        assert len(mails) == 1 and mails[0].to_address == "ana1@example.org"
        assert "/certificate.pdf" in mails[0].text_body
        assert db.session.get(Event, event).certificates_notified_at is not None


def test_the_private_page_offers_the_certificate(app, client, event):
    token = attended(app, event, ["opening"])
    page = client.get(f"/registration/{token}").get_data(as_text=True)
    assert f"/registration/{token}/certificate.pdf" in page
    with app.app_context():
        attendee = db.session.execute(select(Attendee)).scalar_one()
        assert attendee.credential == "MD"
    assert PROGRAM  # the program these tests attend


def test_without_fonts_the_certificate_is_a_plain_503_and_the_cli_a_clear_error(
    app, client, runner, event, monkeypatch, tmp_path
):
    from necreg import pdf_fonts

    token = attended(app, event, ["opening"])
    monkeypatch.setattr(pdf_fonts, "PACKAGE_FONT_DIR", tmp_path / "no-package-fonts")
    monkeypatch.setattr(pdf_fonts, "SYSTEM_FONT_DIRS", (tmp_path / "no-system-fonts",))
    response = client.get(f"/registration/{token}/certificate.pdf")
    assert response.status_code == 503
    page = response.get_data(as_text=True)
    assert "lacks a font it needs" in page
    assert "no-package-fonts" not in page  # the server's folders are for the log, not the public
    result = runner.invoke(args=["export-certificates", "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert "DejaVuSans.ttf" in result.output and "FONT_DIR" in result.output
    assert not any((tmp_path / "out").iterdir())
    result = runner.invoke(args=["export-badges", "--pdf", "--out", str(tmp_path / "b.pdf")])
    assert result.exit_code == 1 and "DejaVuSans.ttf" in result.output
    assert not (tmp_path / "b.pdf").exists()  # nothing half-written to print
    with app.app_context():  # issued once by the page (kept for the next try), not again
        assert db.session.execute(select(func.count()).select_from(Certificate)).scalar_one() == 1
