"""Card payments through Stripe (issue 13), against localstripe, a stateful stand-in for
Stripe's API started on loopback: the card token becomes a PaymentIntent, and only the
webhook (verified, acted on once) records the payment and confirms the place. Webhook
signatures are also checked with events signed here: wrong secret, old, replayed."""

# ruff: noqa: F811 - pytest fixtures imported from organizer_fixtures are used as arguments

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import UTC, datetime, timedelta

import pytest
import stripe
from organizer_fixtures import admin_client, csrf_for, make_organizer  # noqa: F401
from sqlalchemy import func, select
from test_fees import event_file

from conftest import csrf_token
from necreg.card_payments import handle_event, refund_cancelled, stripe_gateway
from necreg.config import ConfigError
from necreg.events import load_event
from necreg.extensions import db
from necreg.mail.worker import expire_due_holds
from necreg.models import (
    STATUS_CANCELLED,
    STATUS_CONFIRMED,
    STATUS_PENDING,
    Attendee,
    AttendeeChange,
    Event,
    OutboxMessage,
    Payment,
    StripeEvent,
    utcnow,
)
from necreg.payments import payment_terms
from necreg.registration import Registrant, register
from servers import LocalStripe

SECRET = "whsec_test_necreg"
STRIPE = {
    "PAYMENT_PROVIDER": "stripe",
    "STRIPE_SECRET_KEY": "sk_test_necreg",
    "STRIPE_PUBLISHABLE_KEY": "pk_test_necreg",
    "STRIPE_WEBHOOK_SECRET": SECRET,
}


@pytest.fixture(scope="session")
def localstripe():
    server = LocalStripe()
    yield server
    server.stop()


def stripe_settings(localstripe) -> dict:
    return {
        **STRIPE,
        "STRIPE_API_BASE": localstripe.url,
        "STRIPE_JS_URL": localstripe.url + "/js.stripe.com/v3/",
    }


@pytest.fixture
def app_config(app_config, localstripe):
    localstripe.flush()  # each test sees its own payments only
    return {**app_config, **stripe_settings(localstripe)}


@pytest.fixture
def event(app):
    """Fees, two places, refunds until a month from now."""
    until = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
    with app.app_context():
        loaded, _ = load_event(db.session, event_file(capacity=2, refund_until=until))
        db.session.commit()
        return loaded.id


def registered(app, event_id: int, n: int = 1, *, now=None) -> tuple[int, str]:
    """A clinician (350 early bird) registered with payment collected: (id, token)."""
    from necreg.fees import event_prices, fee_for

    with app.app_context():
        e = db.session.get(Event, event_id)
        now = now or utcnow()
        fee = fee_for(
            db.session, e, event_prices(db.session, event_id), role="clinician",
            early_career=False, attendance="in_person", now=now,
        )  # fmt: skip
        person = Registrant(f"P{n}", "Card", f"p{n}@example.org", "clinician", "US")
        attendee = register(
            db.session, e, person, code_prefix="NEC", fee=fee,
            payment=payment_terms(app.config), now=now,
        )  # fmt: skip
        db.session.commit()
        return attendee.id, attendee.token


def pay(client, token: str, card_token: str):
    form = {
        "csrf_token": csrf_token(client, f"/registration/{token}/pay"),
        "stripe_token": card_token,
    }
    return client.post(f"/registration/{token}/pay", data=form)


def signed(payload: bytes, secret: str = SECRET, at: int | None = None) -> str:
    at = int(time.time()) if at is None else at
    digest = hmac.new(secret.encode(), f"{at}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={at},v1={digest}"


def deliver(client, event: dict, **signing):
    payload = json.dumps(event).encode()
    return client.post(
        "/payments/stripe/webhook",
        data=payload,
        headers={
            "Stripe-Signature": signed(payload, **signing),
            "Content-Type": "application/json",
        },
    )


def succeeded_events(app) -> list[dict]:
    """localstripe's payment_intent.succeeded events, as its webhook would send them."""
    with app.app_context():
        gateway = stripe_gateway(app.config)
        events = gateway.client.v1.events.list(params={"type": "payment_intent.succeeded"})
        return [e.to_dict() for e in events.data]


def event_of(app, intent_id: str) -> dict:
    return next(e for e in succeeded_events(app) if e["data"]["object"]["id"] == intent_id)


def status_of(app, attendee_id: int) -> str:
    with app.app_context():
        return db.session.get(Attendee, attendee_id).status


def count(app, model) -> int:
    with app.app_context():
        return db.session.execute(select(func.count()).select_from(model)).scalar_one()


def test_stripe_needs_its_keys_and_https(tmp_path):
    from necreg import create_app

    settings = {"INSTANCE_PATH": str(tmp_path), "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    with pytest.raises(ConfigError, match="needs STRIPE_SECRET_KEY"):
        create_app({**settings, "PAYMENT_PROVIDER": "stripe", "STRIPE_PUBLISHABLE_KEY": "pk"})
    with pytest.raises(ConfigError, match="STRIPE_API_BASE must be an https:// address"):
        create_app({**settings, **STRIPE, "STRIPE_API_BASE": "http://evil.example"})


def test_a_card_payment_is_recorded_by_the_webhook_and_confirms_the_place(
    app, client, event, localstripe
):
    ana, token = registered(app, event)
    assert status_of(app, ana) == STATUS_PENDING
    page = client.get(f"/registration/{token}/pay")
    assert page.status_code == 200
    policy = page.headers["Content-Security-Policy"]
    assert f"script-src 'self' {localstripe.url}" in policy and "frame-ancestors 'none'" in policy
    assert page.headers["X-Frame-Options"] == "DENY"
    html = page.get_data(as_text=True)
    assert 'id="card-element"' in html and "Pay USD 350.00" in html
    # Other pages keep the site's policy.
    other = client.get(f"/registration/{token}").headers["Content-Security-Policy"]
    assert localstripe.url not in other

    response = pay(client, token, localstripe.card_token())
    assert response.status_code == 303
    assert status_of(app, ana) == STATUS_PENDING  # the browser's word is not enough
    [payment_event] = succeeded_events(app)
    intent = payment_event["data"]["object"]
    assert intent["amount"] == 35000 and intent["currency"] == "usd"
    assert intent["metadata"]["attendee_code"].startswith("NEC-")

    assert deliver(client, payment_event).get_json() == {"received": "recorded"}
    assert status_of(app, ana) == STATUS_CONFIRMED
    with app.app_context():
        payment = db.session.execute(select(Payment)).scalar_one()
        assert (payment.method, payment.reference, payment.amount) == ("card", intent["id"], 35000)
        mail = (
            db.session.execute(
                select(OutboxMessage)
                .where(OutboxMessage.attendee_id == ana)
                .order_by(OutboxMessage.id.desc())
            )
            .scalars()
            .first()
        )
        assert mail.kind == "confirmation"
        assert any(a["filename"] == "receipt-nec-2099-1.pdf" for a in mail.attachments)
    receipt = client.get(f"/registration/{token}/receipt.pdf")
    assert receipt.status_code == 200 and receipt.data.startswith(b"%PDF")


def test_a_webhook_delivered_twice_or_out_of_order_changes_nothing_the_second_time(
    app, client, event, localstripe
):
    ana, token = registered(app, event)
    assert pay(client, token, localstripe.card_token()).status_code == 303
    [payment_event] = succeeded_events(app)
    assert deliver(client, payment_event).get_json() == {"received": "recorded"}
    before = (count(app, Payment), count(app, OutboxMessage), count(app, AttendeeChange))
    # Stripe retries the same event; another event about the same payment; a late failure.
    assert deliver(client, payment_event).get_json() == {"received": "duplicate"}
    again = {**payment_event, "id": "evt_another_about_the_same_intent"}
    assert deliver(client, again).get_json() == {"received": "duplicate"}
    failed = {**payment_event, "id": "evt_failed_late", "type": "payment_intent.payment_failed"}
    assert deliver(client, failed).get_json() == {"received": "ignored"}
    assert (count(app, Payment), count(app, OutboxMessage), count(app, AttendeeChange)) == before
    assert status_of(app, ana) == STATUS_CONFIRMED


@pytest.mark.parametrize(
    ("signing", "why"),
    [
        ({"secret": "whsec_wrong"}, "wrong secret"),
        ({"at": int(time.time()) - 600}, "ten minutes old: a replay"),
    ],
)
def test_a_webhook_not_signed_by_stripe_now_is_refused(
    app, client, event, localstripe, signing, why
):
    ana, token = registered(app, event)
    assert pay(client, token, localstripe.card_token()).status_code == 303
    [payment_event] = succeeded_events(app)
    response = deliver(client, payment_event, **signing)
    assert response.status_code == 400, why
    assert count(app, Payment) == 0 and count(app, StripeEvent) == 0
    assert status_of(app, ana) == STATUS_PENDING
    unsigned = client.post("/payments/stripe/webhook", data=b"{}")
    assert unsigned.status_code == 400


def test_a_declined_card_says_so_and_nothing_is_stored(app, client, event, localstripe):
    ana, token = registered(app, event)
    response = pay(client, token, localstripe.card_token("4000000000000341"))
    assert response.status_code == 400
    assert "declined" in response.get_data(as_text=True)
    assert succeeded_events(app) == [] and count(app, Payment) == 0
    assert pay(client, token, "not-a-token").status_code == 400
    assert status_of(app, ana) == STATUS_PENDING


def paid_after_expiry(app, client, event, localstripe) -> tuple[int, dict]:
    """A registration paid for by card whose hold expired before Stripe's webhook came:
    its id and the webhook's event."""
    start = utcnow() - timedelta(hours=2)
    ana, token = registered(app, event, now=start)
    assert pay(client, token, localstripe.card_token()).status_code == 303
    with app.app_context():
        assert expire_due_holds(db.session, payment_terms(app.config)) == 1
    assert status_of(app, ana) == STATUS_CANCELLED
    [payment_event] = succeeded_events(app)
    return ana, payment_event


def test_a_payment_after_the_hold_expired_is_taken_if_the_place_is_free(
    app, client, event, localstripe
):
    ana, payment_event = paid_after_expiry(app, client, event, localstripe)
    assert deliver(client, payment_event).get_json() == {"received": "recorded"}
    assert status_of(app, ana) == STATUS_CONFIRMED


def test_a_payment_after_the_place_went_to_another_is_refunded_and_the_person_told(
    app, client, event, localstripe
):
    ana, payment_event = paid_after_expiry(app, client, event, localstripe)
    registered(app, event, 2), registered(app, event, 3)  # the two places are taken again
    assert deliver(client, payment_event).get_json() == {"received": "refunded"}
    assert status_of(app, ana) == STATUS_CANCELLED and count(app, Payment) == 0
    intent_id = payment_event["data"]["object"]["id"]
    with app.app_context():
        refunds = stripe_gateway(app.config).client.v1.refunds.list().data
        assert [r.payment_intent for r in refunds] == [intent_id]
        mail = db.session.execute(
            select(OutboxMessage).where(OutboxMessage.kind == "refunded")
        ).scalar_one()
        assert mail.attendee_id == ana and "USD 350.00" in mail.text_body


def test_cancelling_before_refund_until_refunds_the_card_and_after_it_does_not(
    app, client, event, localstripe
):
    ana, token = registered(app, event)
    assert pay(client, token, localstripe.card_token()).status_code == 303
    [payment_event] = succeeded_events(app)
    deliver(client, payment_event)
    form = {"csrf_token": csrf_token(client, f"/registration/{token}/cancel")}
    assert client.post(f"/registration/{token}/cancel", data=form).status_code == 303
    with app.app_context():
        payment = db.session.execute(select(Payment)).scalar_one()
        assert payment.refunded_at is not None and payment.refund_reference.startswith("re_")
        assert stripe_gateway(app.config).client.v1.refunds.list().data[0].id == (
            payment.refund_reference
        )
        # Past refund_until, a cancellation gives nothing back.
        db.session.get(Event, event).refund_until = utcnow() - timedelta(days=1)
        payment.refunded_at = None
        db.session.commit()
        lead = db.session.get(Attendee, ana)
        assert refund_cancelled(db.session, stripe_gateway(app.config), lead) == 0


def test_handle_event_ignores_what_names_no_registration(app, event):
    with app.app_context():
        gateway = stripe_gateway(app.config)
        intent = {"id": "pi_x", "amount": 100, "currency": "usd", "metadata": {}}
        assert handle_event(db.session, gateway, "evt_1", "payment_intent.succeeded", intent) == (
            "ignored"
        )
        assert stripe.Webhook  # the SDK's verifier is what the view uses


def test_an_organizer_refunds_a_card_payment_to_the_card(
    app, client, admin_client, event, localstripe
):
    ana, token = registered(app, event)
    assert pay(client, token, localstripe.card_token()).status_code == 303
    [payment_event] = succeeded_events(app)
    deliver(client, payment_event)
    admin = admin_client
    path = f"/organizer/attendees/{ana}"
    page = admin.get(path).get_data(as_text=True)
    assert "Refund to the card" in page
    with app.app_context():
        payment_id = db.session.execute(select(Payment.id)).scalar_one()
    form = {"csrf_token": csrf_for(admin, path)}
    assert admin.post(f"{path}/payments/{payment_id}/refund", data=form).status_code == 303
    with app.app_context():
        payment = db.session.get(Payment, payment_id)
        [refund] = stripe_gateway(app.config).client.v1.refunds.list().data
        assert payment.refunded_at is not None and payment.refund_reference == refund.id
        assert refund.payment_intent == payment.reference
