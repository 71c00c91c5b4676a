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


# --- what a party owes, and who is asked to pay (from a review of this step) -------------------


def family_with_child(app, client) -> tuple[int, str]:
    form = registration_form(
        csrf_token=csrf_token(client),
        role="family",
        early_career=None,
        **{"guests-0-first_name": "Ava", "guests-0-last_name": "Z", "guests-0-age_band": "child"},
    )
    assert client.post("/register", data=form).status_code == 303
    with app.app_context():
        lead = db.session.execute(select(Attendee).where(Attendee.role == "family")).scalar_one()
        return lead.id, lead.token


def test_the_lead_pays_for_the_party_and_the_pages_say_so(app, client, admin_client, event):
    app.config.update(PAYMENT_PROVIDER="offline", PAYMENT_INSTRUCTIONS=INSTRUCTIONS)
    lead, token = family_with_child(app, client)  # the family pays 0, the child 25.00
    text = client.get(f"/registration/{token}/pay").get_data(as_text=True)
    assert "USD 25.00" in text and "Ava Z" in text
    assert "with your companions, USD 25.00 in all" in client.get(
        f"/registration/{token}"
    ).get_data(as_text=True)
    with app.app_context():
        assert event_revenue(db.session, db.session.get(Event, event).id).outstanding == 2500
    assert pay(admin_client, lead, amount="25").status_code == 303
    assert "nothing: thank you" in client.get(f"/registration/{token}/pay").get_data(as_text=True)
    with app.app_context():
        assert event_revenue(db.session, db.session.get(Event, event).id).outstanding == 0


def test_a_companion_added_later_owes_the_companions_price(app, client, event):
    lead, token = family_with_child(app, client)
    path = f"/registration/{token}"
    form = {
        "csrf_token": csrf_token(client, path),
        "guests-0-first_name": "Bo",
        "guests-0-last_name": "Z",
        "guests-0-age_band": "child",
    }
    assert client.post(f"{path}/companions", data=form).status_code == 303
    with app.app_context():
        bo = db.session.execute(select(Attendee).where(Attendee.first_name == "Bo")).scalar_one()
        assert (bo.amount_due, bo.price_name) == (2500, "Child")


def test_who_waits_is_not_asked_to_pay_nor_counted_as_owing(app, client, make_event, event):
    app.config.update(PAYMENT_PROVIDER="offline", PAYMENT_INSTRUCTIONS=INSTRUCTIONS)
    with app.app_context():
        e = db.session.get(Event, event)
        e.capacity = 1
        db.session.commit()
    registered(app, client)
    waiting = registered(app, client, email="w@example.org")
    with app.app_context():
        attendee = db.session.get(Attendee, waiting)
        assert attendee.status == "waitlisted" and attendee.amount_due == 35000
        token = attendee.token
        from necreg.models import OutboxMessage

        mail = db.session.execute(
            select(OutboxMessage.text_body).where(OutboxMessage.attendee_id == waiting)
        ).scalar_one()
        assert event_revenue(db.session, event).outstanding == 35000  # the confirmed one
    assert "/pay" not in mail and "IBAN" not in mail
    text = client.get(f"/registration/{token}/pay").get_data(as_text=True)
    assert "nothing while you have no place" in text and "IBAN" not in text


def test_a_payment_received_today_is_taken_whatever_the_hour(app, client, admin_client, event):
    from necreg.models import utcnow

    ana = registered(app, client)
    today = utcnow().date().isoformat()
    assert pay(admin_client, ana, paid_on=today).status_code == 303


def test_each_payment_row_of_the_csv_has_its_own_amount(app, client, admin_client, event):
    ana = registered(app, client)
    assert pay(admin_client, ana, amount="100").status_code == 303
    assert pay(admin_client, ana, amount="250").status_code == 303
    text = admin_client.get("/organizer/export/payments.csv").get_data(as_text=True)
    rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
    assert [(r["amount_paid"], r["amount_due"]) for r in rows] == [
        ("100.00", "350.00"),
        ("250.00", "350.00"),
    ]


def test_the_currency_cannot_change_once_fees_are_owed(app, client, admin_client, event):
    registered(app, client)
    form = {"csrf_token": csrf_for(admin_client, "/organizer/settings"), "currency": "JPY"}
    response = admin_client.post("/organizer/settings/fees", data=form)
    assert response.status_code == 400
    assert "The currency cannot change once fees are owed" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Event, event).currency == "USD"


def test_the_payer_is_thanked_with_the_receipt_attached(app, client, admin_client, event):
    from necreg.mail.delivery import build_message
    from necreg.models import OutboxMessage

    lead, _token = family_with_child(app, client)
    with app.app_context():
        ava = db.session.execute(
            select(Attendee.id).where(Attendee.first_name == "Ava")
        ).scalar_one()
    # Paid on the companion's page: the lead, who has the e-mail address, is thanked.
    assert pay(admin_client, ava, amount="25", reference="TR-5").status_code == 303
    with app.app_context():
        message = db.session.execute(
            select(OutboxMessage).where(OutboxMessage.kind == "payment")
        ).scalar_one()
        lead_row = db.session.get(Attendee, lead)
        assert message.to_address == lead_row.email
        assert "receipt no. 1" in message.subject and "USD 25.00" in message.text_body
        mime = build_message(message, "NEC <registration@example.org>")
    pdfs = [
        part for part in mime.iter_attachments() if part.get_content_type() == "application/pdf"
    ]
    assert len(pdfs) == 1 and pdfs[0].get_content().startswith(b"%PDF-")
    assert pdfs[0].get_filename() == "receipt-nec-2099-1.pdf"


def test_a_refund_is_recorded_once_and_the_sums_leave_it_out(app, client, admin_client, event):
    ana = registered(app, client)
    assert pay(admin_client, ana, amount="350").status_code == 303
    with app.app_context():
        payment_id = db.session.execute(select(Payment.id)).scalar_one()
        token = db.session.get(Attendee, ana).token
    path = f"/organizer/attendees/{ana}"
    url = f"{path}/payments/{payment_id}/refund"
    form = {"csrf_token": csrf_for(admin_client, path), "refund_reference": "RF-1"}
    assert admin_client.post(url, data=form).status_code == 303
    again = admin_client.post(url, data={**form, "csrf_token": csrf_for(admin_client, path)})
    assert again.status_code == 400 and "refunded already" in again.get_data(as_text=True)
    with app.app_context():
        payment = db.session.get(Payment, payment_id)
        assert payment.refunded_at is not None and payment.refund_reference == "RF-1"
        revenue = event_revenue(db.session, event)
        assert (revenue.received, revenue.outstanding, revenue.refunded) == (0, 35000, 35000)
        actions = (
            db.session.execute(
                select(AttendeeChange.action).where(AttendeeChange.attendee_id == ana)
            )
            .scalars()
            .all()
        )
        assert actions.count("refund") == 1
    text = admin_client.get("/organizer/export/payments.csv").get_data(as_text=True)
    assert list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))[0]["refunded"] == "yes"
    assert client.get(f"/api/registrations/{token}").get_json()["amount_paid"] == "0.00"
    assert ", refunded" in client.get(f"/registration/{token}").get_data(as_text=True)


def test_a_payment_of_another_attendee_cannot_be_refunded_from_this_page(
    app, client, admin_client, event
):
    ana = registered(app, client)
    ben = registered(app, client, email="b@example.org")
    assert pay(admin_client, ana).status_code == 303
    with app.app_context():
        payment_id = db.session.execute(select(Payment.id)).scalar_one()
    path = f"/organizer/attendees/{ben}"
    form = {"csrf_token": csrf_for(admin_client, path)}
    assert admin_client.post(f"{path}/payments/{payment_id}/refund", data=form).status_code == 404
    with app.app_context():
        assert db.session.get(Payment, payment_id).refunded_at is None


def test_the_dashboard_shows_a_payment_at_once(app, client, admin_client, event):
    ana = registered(app, client)
    assert "USD 350.00" in admin_client.get("/organizer/").get_data(as_text=True)  # owed
    assert pay(admin_client, ana, amount="120").status_code == 303
    page = admin_client.get("/organizer/").get_data(as_text=True)  # kept until a change
    assert "USD 120.00" in page and "USD 230.00" in page
