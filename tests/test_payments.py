"""Payments received outside the site, with receipts numbered without gaps per event (issue
13): recorded by organizers, added up, read back from the PDF, listed for the treasurer."""

# ruff: noqa: F811 - pytest fixtures imported from organizer_fixtures are used as arguments

from __future__ import annotations

import csv
import io
import shutil
import subprocess
import threading

import pytest
from organizer_fixtures import admin_client, csrf_for, make_organizer  # noqa: F401
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session
from test_fees import event, event_file  # noqa: F401

from conftest import csrf_token, registration_form
from necreg.extensions import db
from necreg.models import Attendee, AttendeeChange, Event, Payment
from necreg.payments import PaymentError, event_revenue, record_payment
from necreg.registration import Registrant, register


def registered(app, client, email="a@example.org", **over) -> int:
    form = registration_form(
        csrf_token=csrf_token(client), role="clinician", early_career=None, email=email, **over
    )
    assert client.post("/register", data=form).status_code == 303
    with app.app_context():
        return db.session.execute(select(Attendee.id).where(Attendee.email == email)).scalar_one()


def pay(admin_client, attendee_id: int, **over):
    path = f"/organizer/attendees/{attendee_id}"
    form = {"csrf_token": csrf_for(admin_client, path), "amount": "200.00", "reference": "TR-1"}
    form.update(over)
    return admin_client.post(f"{path}/payments", data=form)


def payments(app) -> int:
    with app.app_context():
        return db.session.execute(select(func.count(Payment.id))).scalar_one()


def test_an_organizer_records_payments_that_add_up_with_numbered_receipts(
    app, client, admin_client, event
):
    ana = registered(app, client)
    ben = registered(app, client, email="b@example.org")
    assert pay(admin_client, ana).status_code == 303
    assert pay(admin_client, ben, amount="350", reference="CHQ 77").status_code == 303
    assert (
        pay(admin_client, ana, amount="150.00", reference="TR-2", paid_on="2025-05-02").status_code
        == 303
    )
    with app.app_context():
        rows = db.session.execute(select(Payment).order_by(Payment.id)).scalars().all()
        assert [(p.attendee_id, p.amount, p.receipt_number) for p in rows] == [
            (ana, 20000, 1), (ben, 35000, 2), (ana, 15000, 3),
        ]  # fmt: skip
        assert rows[2].paid_at.isoformat().startswith("2025-05-02")
        audit = (
            db.session.execute(
                select(AttendeeChange.changes).where(AttendeeChange.action == "payment")
            )
            .scalars()
            .all()
        )
        assert audit[0]["receipt"] == [None, 1] and audit[0]["amount"] == [None, "200.00"]
        revenue = event_revenue(db.session, db.session.get(Event, event).id)
        assert (revenue.received, revenue.outstanding) == (70000, 0)
        token = db.session.get(Attendee, ana).token
    page = admin_client.get(f"/organizer/attendees/{ana}").get_data(as_text=True)
    assert "No. 1" in page and "No. 3" in page and "USD 350.00" in page
    data = client.get(f"/api/registrations/{token}").get_json()
    assert (data["amount_due"], data["amount_paid"]) == ("350.00", "350.00")
    page = client.get(f"/registration/{token}").get_data(as_text=True)
    assert "receipt no. 3 (PDF)" in page


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"amount": "0"}, "A payment is more than 0."),
        ({"amount": "-5"}, "0 or more"),
        ({"amount": "12.345"}, "at most 2 decimals"),
        ({"amount": "lots"}, "must be a number"),
        ({"paid_on": "2999-01-01"}, "cannot be dated in the future"),
        ({"reference": "a\u0007b"}, "one line of at most 200 characters"),
    ],
)
def test_a_wrong_payment_is_refused_and_nothing_is_stored(
    app, client, admin_client, event, over, message
):
    ana = registered(app, client)
    response = pay(admin_client, ana, **over)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert payments(app) == 0
    # The next good payment still gets receipt 1: a refused one takes no number.
    assert pay(admin_client, ana).status_code == 303
    with app.app_context():
        assert db.session.execute(select(Payment.receipt_number)).scalar_one() == 1


def test_no_payment_for_a_cancelled_registration_or_an_event_without_fees(app, make_event):
    with app.app_context():
        free = make_event()
        person = Registrant("A", "B", "a@example.org", "clinician", "US")
        attendee = register(db.session, free, person, code_prefix="NEC")
        db.session.commit()
        with pytest.raises(PaymentError, match="no currency"):
            record_payment(db.session, attendee, "10")
        db.session.rollback()


@pytest.mark.skipif(not shutil.which("pdftotext"), reason="pdftotext needed (poppler-utils)")
def test_the_receipt_reads_back_with_its_number_payer_amount_and_currency(
    app, client, admin_client, event, tmp_path
):
    ana = registered(app, client, first_name="Ana", last_name="Núñez", institution="Charité")
    assert pay(admin_client, ana, amount="1450.50", reference="TR-9").status_code == 303
    with app.app_context():
        token = db.session.get(Attendee, ana).token
    response = client.get(f"/registration/{token}/receipt.pdf")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert response.headers["Cache-Control"] == "no-store"
    (tmp_path / "r.pdf").write_bytes(response.get_data())
    text = subprocess.run(
        ["pdftotext", str(tmp_path / "r.pdf"), "-"], capture_output=True, text=True, check=True
    ).stdout
    for expected in (
        "Receipt no. 1",
        "Ana Núñez",
        "Charité",
        "USD 1,450.50",
        "TR-9",
        "NEC Symposium",
    ):
        assert expected in text, expected
    assert client.get(f"/registration/{token}/receipt.pdf?number=7").status_code == 404


def test_the_treasurers_csv_lists_payments_and_who_still_owes(app, client, admin_client, event):
    ana = registered(app, client)
    registered(app, client, email="owes@example.org", first_name="Owen")
    assert pay(admin_client, ana, amount="350", reference="=cmd").status_code == 303
    response = admin_client.get("/organizer/export/payments.csv")
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
    assert [
        (r["amount_due"], r["amount_paid"], r["receipt_number"], r["method"]) for r in rows
    ] == [
        ("350.00", "350.00", "1", "offline"),
        ("350.00", "0.00", "", ""),
    ]
    assert rows[0]["reference"] == "'=cmd" and rows[1]["first_name"] == "Owen"
    assert rows[0]["currency"] == "USD" and rows[0]["paid_at"].endswith("Z")
    page = admin_client.get("/organizer/").get_data(as_text=True)
    assert "USD 350.00" in page and "Still owed" in page


def test_receipt_numbers_run_without_gap_under_simultaneous_payments(
    app, database_url, is_postgres, event
):
    if not is_postgres:
        pytest.skip("needs PostgreSQL: set NECREG_TEST_DATABASE_URL")
    with app.app_context():
        e = db.session.get(Event, event)
        ids = []
        for n in range(20):
            person = Registrant(f"P{n}", "X", f"p{n}@example.org", "clinician", "US")
            ids.append(register(db.session, e, person, code_prefix="NEC").id)
        db.session.commit()
    engine = create_engine(database_url, pool_size=22, max_overflow=0)
    barrier = threading.Barrier(20)
    errors: list[BaseException] = []

    def paying(attendee_id: int, fail: bool) -> None:
        try:
            with app.app_context(), Session(engine) as session:
                session.connection()
                barrier.wait(timeout=30)
                record_payment(session, session.get(Attendee, attendee_id), "10")
                if fail:  # a payment rolled back gives its number back
                    session.rollback()
                else:
                    session.commit()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=paying, args=(i, n % 5 == 0)) for n, i in enumerate(ids)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    engine.dispose()
    assert errors == []
    with app.app_context():
        numbers = db.session.execute(select(Payment.receipt_number)).scalars().all()
    assert sorted(numbers) == list(range(1, 17))  # 16 committed: 1..16, none twice


INSTRUCTIONS = "Bank transfer to NEC Society\nIBAN US00 0000 0000"


def test_without_a_provider_there_is_no_pay_page(app, client, event):
    ana = registered(app, client)
    with app.app_context():
        token = db.session.get(Attendee, ana).token
    assert client.get(f"/registration/{token}/pay").status_code == 404
    assert "how to pay</a>" not in client.get(f"/registration/{token}").get_data(as_text=True)


def test_offline_the_pay_page_and_the_email_say_how_to_pay(app, client, admin_client, event):
    app.config.update(PAYMENT_PROVIDER="offline", PAYMENT_INSTRUCTIONS=INSTRUCTIONS)
    ana = registered(app, client)
    with app.app_context():
        attendee = db.session.get(Attendee, ana)
        token, code = attendee.token, attendee.code
        from necreg.models import OutboxMessage

        mail = db.session.execute(
            select(OutboxMessage.text_body).where(OutboxMessage.attendee_id == ana)
        ).scalar_one()
    assert "IBAN US00 0000 0000" in mail and f"/registration/{token}/pay" in mail
    assert f"Give your code {code} as the reference." in mail
    page = client.get(f"/registration/{token}/pay")
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    text = page.get_data(as_text=True)
    assert "USD 350.00" in text and "IBAN US00 0000 0000" in text and "nothing yet" in text
    assert "how to pay</a>" in client.get(f"/registration/{token}").get_data(as_text=True)
    assert pay(admin_client, ana, amount="350").status_code == 303
    text = client.get(f"/registration/{token}/pay").get_data(as_text=True)
    assert "nothing: thank you" in text and "receipt no. 1" in text
    assert "IBAN" not in text


def test_a_wrong_payment_provider_stops_the_app(tmp_path):
    from necreg import create_app
    from necreg.config import ConfigError

    settings = {"INSTANCE_PATH": str(tmp_path), "DATABASE_URL": f"sqlite:///{tmp_path}/x.db"}
    with pytest.raises(ConfigError, match="PAYMENT_PROVIDER must be one of none, offline"):
        create_app({**settings, "PAYMENT_PROVIDER": "paypal"})
