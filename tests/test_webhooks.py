"""Webhooks (setting WEBHOOKS): each change of a registration queued with the change, signed,
delivered by the mail worker to a real receiver on loopback, retried while it is down, and
logged for admins."""

# ruff: noqa: F811 - pytest fixtures imported from organizer_fixtures are used as arguments

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from organizer_fixtures import admin_client, make_organizer, page_csrf, staff_client  # noqa: F401
from sqlalchemy import select

from conftest import csrf_token, detached, registration_form, saved
from necreg import webhooks
from necreg.api.resources import attendee_resources
from necreg.checkin import check_in, undo_check_in
from necreg.config import WEBHOOK_EVENTS, ConfigError, load
from necreg.extensions import db
from necreg.mail.worker import WEBHOOK_MAX_ATTEMPTS, Round, deliver_webhooks, retry_delay
from necreg.models import Attendee, Event, Question, WebhookDelivery, utcnow
from necreg.payments import record_payment, refund_payment
from necreg.questions import clean_answers, event_questions
from necreg.registration import Companion, Registrant, cancel, register, update_answers
from servers import free_port

SECRET = "the receiver's secret, long and random"
#: An event whose registration is open now and for a while.
OPEN = {"starts_on": date(2030, 9, 7), "ends_on": date(2030, 9, 10)}


class Receiver:
    """A webhook receiver on a free loopback port: http.server in a thread, answering
    ``status`` to each POST and keeping what came. Down (nothing listening) until start()."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/necreg"
        self.status = 200
        #: (status answered, headers with lower-case names, body) of each request.
        self.requests: list[tuple[int, dict[str, str], bytes]] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                headers = {name.lower(): value for name, value in self.headers.items()}
                receiver.requests.append((receiver.status, headers, body))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *_args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            assert self._thread is not None
            self._thread.join()
            self._server = None

    @property
    def accepted(self) -> list[tuple[dict[str, str], bytes]]:
        """The requests it answered with 2xx: the deliveries it took."""
        return [(h, b) for status, h, b in self.requests if 200 <= status < 300]


@pytest.fixture
def receiver():
    found = Receiver()
    yield found
    found.stop()


@pytest.fixture
def hooks(request, receiver) -> list[dict]:
    """The setting WEBHOOKS of the test's app: one receiver of every event, unless the test
    gives (indirectly) a function of the receiver's URL."""
    make = getattr(request, "param", lambda url: [{"url": url, "secret": SECRET}])
    return make(receiver.url)


@pytest.fixture
def app_config(app_config, hooks):
    return {**app_config, "WEBHOOKS": hooks}


def signed(headers: dict[str, str], body: bytes, secret: str = SECRET) -> bool:
    """The check a receiver makes (the README's): the HMAC of the raw body."""
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(headers["x-necreg-signature"], expected)


def deliveries(app) -> list[WebhookDelivery]:
    with app.app_context():
        rows = db.session.execute(select(WebhookDelivery).order_by(WebhookDelivery.id))
        return [detached(row) for row in rows.scalars().all()]


def told(app) -> list[tuple[str, str]]:
    """(event type, attendee code) of each delivery queued, in order."""
    return [(d.event_type, json.loads(d.body)["data"]["code"]) for d in deliveries(app)]


def worker_round(app, now: datetime, **options) -> Round:
    with app.app_context():
        return deliver_webhooks(
            db.session, webhooks.receivers_of(app.config), now=now, worker_id="t", **options
        )


def register_through_form(client, email: str) -> str:
    """Register through the public form; return the registration's self-service path."""
    form = registration_form(email=email, csrf_token=csrf_token(client))
    response = client.post("/register", data=form)
    assert response.status_code == 303, response.text
    return response.location


def cancel_through_link(client, path: str) -> None:
    token = csrf_token(client, f"{path}/cancel")
    response = client.post(f"{path}/cancel", data={"csrf_token": token})
    assert response.status_code == 303


def code_of(app, path: str) -> str:
    with app.app_context():
        token = path.rstrip("/").rsplit("/", 1)[1]
        return db.session.execute(select(Attendee.code).where(Attendee.token == token)).scalar_one()


def person(n: int) -> Registrant:
    return Registrant(
        first_name=f"P{n}", last_name="Test", email=f"p{n}@example.org", role="clinician",
        country="US",
    )  # fmt: skip


# --- delivery: down, then up ---------------------------------------------------------------


def test_a_receiver_down_for_an_hour_then_up_gets_every_event_once_signed(
    app, client, make_event, receiver
):
    event = make_event(**OPEN)
    ann = register_through_form(client, "ann@example.org")
    bob = register_through_form(client, "bob@example.org")
    cancel_through_link(client, ann)
    with app.app_context():
        check_in(db.session, db.session.get(Event, event.id), code_of(app, bob), prefix="NEC",
                 organizer_id=None)  # fmt: skip
        db.session.commit()
    expected = {
        ("registration.created", code_of(app, ann)),
        ("registration.created", code_of(app, bob)),
        ("registration.cancelled", code_of(app, ann)),
        ("registration.checked_in", code_of(app, bob)),
    }
    assert set(told(app)) == expected and len(told(app)) == 4

    # Down (nothing listening) for an hour, the worker trying every five minutes.
    start = utcnow()
    for minute in range(0, 61, 5):
        done = worker_round(app, start + timedelta(minutes=minute))
        assert done.sent == done.failed == 0
    queued = deliveries(app)
    assert {d.status for d in queued} == {"pending"}
    tried = [d for d in queued if d.attempts]
    assert tried and all("Connection refused" in d.last_error for d in tried)
    assert all(d.last_status is None for d in tried)

    receiver.start()
    for minute in range(65, 65 + 3 * 60, 5):
        worker_round(app, start + timedelta(minutes=minute))
    queued = deliveries(app)
    assert {d.status for d in queued} == {"sent"}

    accepted = receiver.accepted
    ids = [headers["x-necreg-delivery"] for headers, _body in accepted]
    assert sorted(ids) == sorted(str(d.id) for d in queued)  # each exactly once
    stored = {str(d.id): d for d in queued}
    for headers, body in accepted:
        assert signed(headers, body)
        assert not signed(headers, body, secret="another secret")
        sent = json.loads(body)
        delivery = stored[headers["x-necreg-delivery"]]
        assert body == delivery.body.encode()  # the body stored at queue time, exactly
        assert sent["id"] == delivery.id
        assert headers["x-necreg-event"] == sent["type"] == delivery.event_type
        assert headers["content-type"] == "application/json"
        assert headers["user-agent"].startswith("necreg")
        moment = datetime.fromtimestamp(int(headers["x-necreg-timestamp"]), UTC)
        assert sent["created_at"] == moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert {(json.loads(b)["type"], json.loads(b)["data"]["code"]) for _h, b in accepted} == (
        expected
    )


def test_a_receiver_answering_503_for_a_day_loses_nothing(app, make_event, receiver):
    with app.app_context():
        event = db.session.get(Event, make_event(**OPEN).id)
        for n in range(3):
            register(db.session, event, person(n), code_prefix="NEC")
        db.session.commit()
    receiver.status = 503
    receiver.start()
    start = utcnow()
    for half_hour in range(48):
        before = len(receiver.requests)
        worker_round(app, start + timedelta(minutes=30 * half_hour))
        # A receiver that is down costs a round one request, not one per delivery.
        assert len(receiver.requests) - before <= 1
    refused = [d for d in deliveries(app) if d.attempts]
    assert len(refused) == 3 and all(d.status == "pending" for d in deliveries(app))
    assert all(d.last_status == 503 and d.last_error.startswith("HTTP 503") for d in refused)
    assert receiver.accepted == []

    receiver.status = 200
    later = start + timedelta(days=1)
    for hour in range(1, 4):
        worker_round(app, later + timedelta(hours=hour))
    assert {d.status for d in deliveries(app)} == {"sent"}
    ids = [h["x-necreg-delivery"] for h, _b in receiver.accepted]
    assert sorted(ids) == sorted(str(d.id) for d in deliveries(app))
    # Every request, refused or taken, carried a delivery's own id and body, signed.
    bodies = {str(d.id): d.body.encode() for d in deliveries(app)}
    for _status, headers, body in receiver.requests:
        assert body == bodies[headers["x-necreg-delivery"]] and signed(headers, body)


def test_the_attempts_cover_more_than_a_day_before_giving_up():
    waited = sum((retry_delay(n) for n in range(1, WEBHOOK_MAX_ATTEMPTS)), timedelta())
    assert waited > timedelta(days=2)


def test_a_delivery_sent_again_after_a_lost_answer_has_the_same_id(app, make_event, receiver):
    """The receiver took it but its answer was lost (a timeout): sent again, as the same
    delivery, which the receiver recognises by its id."""
    with app.app_context():
        register(db.session, db.session.get(Event, make_event(**OPEN).id), person(1),
                 code_prefix="NEC")  # fmt: skip
        db.session.commit()
    receiver.start()
    lost = []

    def answer_lost(delivery, secret):
        status, answer = webhooks.deliver(delivery, secret)
        if not lost:
            lost.append(status)
            raise TimeoutError("timed out")
        return status, answer

    start = utcnow()
    assert worker_round(app, start, send=answer_lost).retrying == 1
    assert worker_round(app, start + timedelta(minutes=2), send=answer_lost).sent == 1
    assert worker_round(app, start + timedelta(hours=2)).attempted == 0
    (first, body), (second, again) = receiver.accepted
    assert first["x-necreg-delivery"] == second["x-necreg-delivery"]
    assert body == again and signed(first, body) and signed(second, again)
    [delivery] = deliveries(app)
    assert (delivery.status, delivery.attempts, delivery.last_status) == ("sent", 2, 200)


def test_a_delivery_is_given_up_after_its_attempts_then_retried_from_the_admin_page(
    app, make_event, receiver, admin_client
):
    with app.app_context():
        register(db.session, db.session.get(Event, make_event(**OPEN).id), person(1),
                 code_prefix="NEC")  # fmt: skip
        db.session.commit()
    start = utcnow()
    for attempt in range(3):
        done = worker_round(app, start + timedelta(hours=attempt), max_attempts=3)
    assert done.failed == 1
    [delivery] = deliveries(app)
    assert (delivery.status, delivery.attempts) == ("failed", 3)
    assert worker_round(app, start + timedelta(days=1)).attempted == 0  # given up: left alone

    page = admin_client.get("/organizer/webhooks?status=failed").text
    assert f'id="delivery-{delivery.id}"' in page and "Retry now" in page
    assert "Connection refused" in page
    token = page_csrf(admin_client, "/organizer/webhooks")
    url = f"/organizer/webhooks/{delivery.id}/retry"
    response = admin_client.post(url, data={"csrf_token": token})
    assert response.status_code == 303
    [delivery] = deliveries(app)
    assert (delivery.status, delivery.attempts, delivery.claimed_until) == ("pending", 0, None)
    # Sent twice, the button changes nothing the second time.
    admin_client.post(url, data={"csrf_token": token})
    assert "was not given up on" in admin_client.get("/organizer/webhooks").text

    receiver.start()
    assert worker_round(app, utcnow()).sent == 1
    assert len(receiver.accepted) == 1


def test_retry_every_failed_delivery_at_once(app, make_event, admin_client):
    with app.app_context():
        event = db.session.get(Event, make_event(**OPEN).id)
        for n in range(3):
            register(db.session, event, person(n), code_prefix="NEC")
        db.session.commit()
    # A receiver that is no longer in WEBHOOKS: its deliveries fail at once.
    with app.app_context():
        done = deliver_webhooks(db.session, {}, now=utcnow())
    assert done.failed == 3
    assert all("no longer in the setting WEBHOOKS" in d.last_error for d in deliveries(app))
    token = page_csrf(admin_client, "/organizer/webhooks")
    response = admin_client.post("/organizer/webhooks/retry-failed", data={"csrf_token": token})
    assert response.status_code == 303
    assert "3 deliveries are queued again." in admin_client.get(response.location).text
    assert {d.status for d in deliveries(app)} == {"pending"}


def test_the_mail_worker_delivers_webhooks(app, runner, make_event, receiver):
    with app.app_context():
        register(db.session, db.session.get(Event, make_event(**OPEN).id), person(1),
                 code_prefix="NEC")  # fmt: skip
        db.session.commit()
    receiver.start()
    result = runner.invoke(args=["mail-worker", "--once"])
    assert result.exit_code == 0, result.output
    assert "webhooks sent 1" in result.output
    [(headers, body)] = receiver.accepted
    assert signed(headers, body) and json.loads(body)["type"] == "registration.created"


# --- queued with the change ----------------------------------------------------------------


def test_a_registration_through_the_form_queues_one_created_event(app, client, make_event):
    make_event(**OPEN)
    path = register_through_form(client, "zoe@example.org")
    [delivery] = deliveries(app)
    assert (delivery.event_type, delivery.status, delivery.attempts) == (
        "registration.created", "pending", 0,
    )  # fmt: skip
    body = json.loads(delivery.body)
    assert set(body) == {"id", "type", "created_at", "data"}
    assert body["id"] == delivery.id and body["type"] == "registration.created"
    with app.app_context():
        attendee = db.session.execute(select(Attendee)).scalar_one()
        event = db.session.get(Event, attendee.event_id)
        assert body["data"] == attendee_resources(db.session, event, [attendee])[0]
    assert body["data"]["code"] == code_of(app, path) and body["data"]["status"] == "confirmed"
    # The same address again is refused, and queues nothing more.
    form = registration_form(email="zoe@example.org", csrf_token=csrf_token(client))
    assert client.post("/register", data=form).status_code != 303
    assert len(deliveries(app)) == 1


def test_a_change_rolled_back_queues_nothing(app, make_event, make_attendee):
    event = make_event(**OPEN)
    ann = make_attendee(event)
    assert told(app) == [("registration.created", ann.code)]  # made through the ORM too
    with app.app_context():
        register(db.session, db.session.get(Event, event.id), person(1), code_prefix="NEC")
        db.session.get(Attendee, ann.id).institution = "Rolled back"
        db.session.flush()
        db.session.rollback()
        assert len(db.session.execute(select(WebhookDelivery)).all()) == 1
        other = register(db.session, db.session.get(Event, event.id), person(2), code_prefix="NEC")
        db.session.commit()
        assert told(app)[1:] == [("registration.created", other.code)]


def test_a_savepoint_rolled_back_takes_its_events_with_it(app, make_event, make_attendee):
    event = make_event(**OPEN)
    ann, bob = make_attendee(event), make_attendee(event)
    with app.app_context():
        savepoint = db.session.begin_nested()
        db.session.get(Attendee, ann.id).institution = "Undone"
        db.session.flush()
        savepoint.rollback()
        with db.session.begin_nested():
            db.session.get(Attendee, bob.id).institution = "Kept"
        db.session.commit()
    assert told(app)[2:] == [("registration.updated", bob.code)]


def test_a_party_that_waits_is_told_once_each_as_it_is_stored(app, make_event):
    """The party first tries for places in a savepoint the database refuses, then waits: one
    created event for the lead and one for its companion, both waitlisted."""
    with app.app_context():
        event = db.session.get(Event, make_event(**OPEN, capacity=1, max_guests=2).id)
        register(db.session, event, person(1), code_prefix="NEC")
        db.session.commit()
        lead = register(db.session, event, person(2), code_prefix="NEC",
                        guests=[Companion("Kid", "Test", "child")])  # fmt: skip
        db.session.commit()
        assert lead.status == "waitlisted"
    queued = deliveries(app)[1:]
    assert [d.event_type for d in queued] == ["registration.created"] * 2
    data = [json.loads(d.body)["data"] for d in queued]
    assert [d["status"] for d in data] == ["waitlisted", "waitlisted"]
    assert data[1]["party_of"] == data[0]["code"]


def test_each_event_type_comes_from_the_real_flows(app, client, admin_client, make_event):
    event = make_event(**OPEN, currency="USD", capacity=1)
    path = register_through_form(client, "ann@example.org")
    ann = code_of(app, path)
    assert told(app)[-1] == ("registration.created", ann)

    with app.app_context():
        attendee_id = db.session.execute(select(Attendee.id).where(Attendee.code == ann)).scalar()
    form = {
        "csrf_token": page_csrf(admin_client, f"/organizer/attendees/{attendee_id}"),
        "first_name": "Anne", "last_name": "Núñez-李", "email": "ann@example.org",
        "role": "scientist", "institution": "UNC Children's", "country": "US",
        "badge_name": "Anne", "early_career": "y",
    }  # fmt: skip
    assert admin_client.post(f"/organizer/attendees/{attendee_id}", data=form).status_code == 303
    assert told(app)[-1] == ("registration.updated", ann)
    assert json.loads(deliveries(app)[-1].body)["data"]["first_name"] == "Anne"

    with app.app_context():
        attendee = db.session.get(Attendee, attendee_id)
        payment = record_payment(db.session, attendee, "25.00", reference="wire 1")
        db.session.commit()
        assert told(app)[-1] == ("registration.paid", ann)
        assert json.loads(deliveries(app)[-1].body)["data"]["amount_paid"] == "25.00"
        refund_payment(db.session, payment)
        db.session.commit()
        assert told(app)[-1] == ("registration.updated", ann)
        assert json.loads(deliveries(app)[-1].body)["data"]["amount_paid"] == "0.00"

        event_row = db.session.get(Event, event.id)
        check_in(db.session, event_row, ann, prefix="NEC", organizer_id=None)
        db.session.commit()
        assert told(app)[-1] == ("registration.checked_in", ann)
        check_in(db.session, event_row, ann, prefix="NEC", organizer_id=None)  # already in
        db.session.commit()
        assert told(app)[-1] == ("registration.checked_in", ann) and len(told(app)) == 5
        undo_check_in(db.session, db.session.get(Attendee, attendee_id), organizer_id=None)
        db.session.commit()
        assert told(app)[-1] == ("registration.updated", ann)
        assert json.loads(deliveries(app)[-1].body)["data"]["checked_in_at"] is None

        waiting = register(db.session, event_row, person(9), code_prefix="NEC")
        db.session.commit()
        assert waiting.status == "waitlisted"
        assert told(app)[-1] == ("registration.created", waiting.code)

    count = len(told(app))
    cancel_through_link(client, path)
    # The place freed goes to the one who waited: cancelled, and promoted (an update).
    assert sorted(told(app)[count:]) == [
        ("registration.cancelled", ann),
        ("registration.updated", waiting.code),
    ]
    promoted = json.loads(deliveries(app)[-1].body)["data"]
    assert (promoted["code"], promoted["status"]) == (waiting.code, "confirmed")


def test_a_change_that_leaves_the_registration_as_it_shows_tells_nothing(
    app, make_event, make_attendee
):
    attendee = make_attendee(make_event(**OPEN))
    with app.app_context():
        row = db.session.get(Attendee, attendee.id)
        row.institution = row.institution  # set to what it was
        db.session.commit()
        row.payment_due_at = utcnow()  # not shown, and not a change of the registration's
        db.session.commit()
        assert told(app) == [("registration.created", attendee.code)]
        row.institution = "Elsewhere"
        db.session.commit()
    assert told(app)[1:] == [("registration.updated", attendee.code)]


def test_a_changed_answer_is_an_update(app, make_event, make_attendee):
    event = make_event(**OPEN)
    saved(app, Question(event_id=event.id, key="dietary", label="Diet", type="text"))
    attendee = make_attendee(event)
    with app.app_context():
        asked = event_questions(db.session, event.id)
        answers, errors = clean_answers(asked, attendee.role, {"q_dietary": "vegan"})
        assert errors == {}
        assert update_answers(db.session, db.session.get(Attendee, attendee.id), asked, answers)
        db.session.commit()
    assert told(app)[1:] == [("registration.updated", attendee.code)]
    assert json.loads(deliveries(app)[-1].body)["data"]["answers"] == {"dietary": "vegan"}


def test_every_column_the_api_shows_is_watched(app, make_event, make_attendee):
    """A key added to the API's shape that is a column of the attendee must be watched, or
    its changes would tell nothing."""
    event = make_event(**OPEN)
    attendee = make_attendee(event)
    with app.app_context():
        [shape] = attendee_resources(db.session, event, [db.session.get(Attendee, attendee.id)])
    columns = {c.key for c in Attendee.__table__.columns}
    never_change = {"code", "created_at"}
    shown = (set(shape) & columns) - never_change | {"party_id"}  # party_of: the lead's code
    assert "updated_at" in shown  # answers (not a column) move it
    assert shown <= set(webhooks.WATCHED)


@pytest.mark.parametrize(
    "hooks",
    [
        lambda url: [
            {"url": url, "secret": SECRET, "events": ["registration.cancelled"]},
            {"url": "http://127.0.0.1:9/all", "secret": "another secret"},
        ]
    ],
    indirect=True,
)
def test_a_receiver_is_told_only_the_events_it_wants(app, make_event, receiver):
    with app.app_context():
        event = db.session.get(Event, make_event(**OPEN).id)
        attendee = register(db.session, event, person(1), code_prefix="NEC")
        db.session.commit()
        cancel(db.session, attendee)
        db.session.commit()
    by_receiver = {(d.url, d.event_type) for d in deliveries(app)}
    assert by_receiver == {
        (receiver.url, "registration.cancelled"),
        ("http://127.0.0.1:9/all", "registration.created"),
        ("http://127.0.0.1:9/all", "registration.cancelled"),
    }
    receiver.start()
    worker_round(app, utcnow())
    [(headers, body)] = receiver.accepted
    assert signed(headers, body) and json.loads(body)["type"] == "registration.cancelled"


@pytest.mark.parametrize("hooks", [lambda url: []], indirect=True)
def test_without_webhooks_nothing_is_queued(app, client, make_event):
    make_event(**OPEN)
    register_through_form(client, "zoe@example.org")
    assert deliveries(app) == []


# --- the admin's log -----------------------------------------------------------------------


def test_admins_see_the_deliveries_and_filter_them_staff_do_not(
    app, make_event, admin_client, staff_client, receiver
):
    with app.app_context():
        event = db.session.get(Event, make_event(**OPEN).id)
        for n in range(2):
            register(db.session, event, person(n), code_prefix="NEC")
        db.session.commit()
    receiver.status = 503
    receiver.start()
    worker_round(app, utcnow())  # one refused, the other left for the next round
    refused, waiting = deliveries(app)
    page = admin_client.get("/organizer/webhooks")
    assert page.status_code == 200
    html = page.text
    assert receiver.url in html and "registration.created" in html
    assert "HTTP 503" in html and f'id="delivery-{waiting.id}"' in html
    assert SECRET not in html
    only_sent = admin_client.get("/organizer/webhooks?status=sent").text
    assert f'id="delivery-{refused.id}"' not in only_sent and "No deliveries delivered" in only_sent
    pending = admin_client.get("/organizer/webhooks?status=pending").text
    assert f'id="delivery-{refused.id}"' in pending and f'id="delivery-{waiting.id}"' in pending

    assert staff_client.get("/organizer/webhooks").status_code == 403
    assert app.view_functions["organizer.webhooks"].organizer_access == "admin"


# --- the setting ---------------------------------------------------------------------------


def test_webhooks_setting_is_checked_at_start_up(tmp_path):
    url = "https://crm.example.org/necreg"

    def refused(value, match):
        with pytest.raises(ConfigError, match=match):
            load(tmp_path, {"WEBHOOKS": value}, environ={})

    refused({"url": url, "secret": "s"}, "must be a list of receivers")
    refused(["https://x.example"], "receiver 1 must be a table")
    refused([{"url": url, "secret": "s", "event": ["registration.paid"]}], "unknown key 'event'")
    refused([{"url": "ftp://x.example/", "secret": "s"}], "http:// or https://")
    refused([{"url": "crm.example.org", "secret": "s"}], "http:// or https://")
    refused([{"url": "https://", "secret": "s"}], "http:// or https://")
    refused([{"url": url}], "secret must be set")
    refused([{"url": url, "secret": "  "}], "secret must be set")
    refused([{"url": url, "secret": "s", "events": ["registration.deleted"]}], "events must list")
    refused([{"url": url, "secret": "s", "events": []}], "events must list")
    refused([{"url": url, "secret": "s", "events": "registration.paid"}], "events must list")
    refused([{"url": url, "secret": "s"}, {"url": url, "secret": "t"}], "receiver 2: .* twice")
    with pytest.raises(ConfigError) as refusal:
        load(tmp_path, {"WEBHOOKS": [{"url": url, "secret": "hush", "x": 1}]}, environ={})
    assert "hush" not in str(refusal.value)  # a secret never shows in an error

    settings = load(tmp_path, {"WEBHOOKS": [{"url": url, "secret": "s"}]}, environ={})
    assert settings["WEBHOOKS"] == [{"url": url, "secret": "s", "events": list(WEBHOOK_EVENTS)}]
    assert load(tmp_path, environ={})["WEBHOOKS"] == []


def test_webhooks_from_the_file_and_from_the_environment_as_json(tmp_path):
    (tmp_path / "config.toml").write_text(
        '[[WEBHOOKS]]\nurl = "https://a.example/hook"\nsecret = "s"\n'
        'events = ["registration.created", "registration.paid"]\n'
    )
    [receiver] = load(tmp_path, environ={})["WEBHOOKS"]
    assert receiver["events"] == ["registration.created", "registration.paid"]

    value = json.dumps([{"url": "http://127.0.0.1:8080/h", "secret": "t"}])
    [receiver] = load(tmp_path, environ={"NECREG_WEBHOOKS": value})["WEBHOOKS"]
    assert receiver["url"] == "http://127.0.0.1:8080/h"
    with pytest.raises(ConfigError, match="NECREG_WEBHOOKS must be JSON"):
        load(tmp_path, environ={"NECREG_WEBHOOKS": "[{url = 1}]"})


def test_mail_rate_setting_is_a_whole_number_from_zero(tmp_path):
    for wrong in (-1, 1.5, "300", True, None):
        with pytest.raises(ConfigError, match="MAIL_RATE_PER_MINUTE must be a whole number"):
            load(tmp_path, {"MAIL_RATE_PER_MINUTE": wrong}, environ={})
    with pytest.raises(ConfigError, match="NECREG_MAIL_RATE_PER_MINUTE must be a whole number"):
        load(tmp_path, environ={"NECREG_MAIL_RATE_PER_MINUTE": "lots"})
    assert load(tmp_path, {"MAIL_RATE_PER_MINUTE": 0}, environ={})["MAIL_RATE_PER_MINUTE"] == 0
    assert (
        load(tmp_path, environ={"NECREG_MAIL_RATE_PER_MINUTE": "60"})["MAIL_RATE_PER_MINUTE"] == 60
    )
