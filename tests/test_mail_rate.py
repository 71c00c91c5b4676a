"""MAIL_RATE_PER_MINUTE: each mail worker sends at most that many e-mails in any minute, the
system's own (confirmations, links) before an organizers' message to many."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from necreg.extensions import db
from necreg.mail.worker import RateBudget, deliver_due
from necreg.models import MAIL_PENDING, MAIL_SENT, Event, OrganizerMessage, OutboxMessage
from necreg.registration import Registrant, register

SENDER = "NEC Symposium <registration@nec.example>"
#: An event whose registration is open now and for a while.
OPEN = {"starts_on": date(2030, 9, 7), "ends_on": date(2030, 9, 10)}


@pytest.fixture
def app_config(app_config):
    return {**app_config, "MAIL_RATE_PER_MINUTE": 5}


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Recorder:
    """A backend that keeps what it was given to send."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def send(self, msg, message) -> None:
        self.sent.append(message.to_address)

    def close(self) -> None:
        pass


def queue_confirmations(event_id: int, count: int) -> None:
    event = db.session.get(Event, event_id)
    for n in range(count):
        person = Registrant(first_name=f"P{n}", last_name="Test", email=f"p{n}@example.org",
                            role="clinician", country="US")  # fmt: skip
        register(db.session, event, person, code_prefix="NEC")
    db.session.commit()


def statuses() -> list[str]:
    query = select(OutboxMessage.status).order_by(OutboxMessage.id)
    return list(db.session.execute(query).scalars())


def test_the_budget_counts_a_rolling_minute():
    clock = Clock()
    budget = RateBudget(5, clock)
    assert budget.available() == 5
    for _ in range(3):
        budget.spend()
    clock.now += 30
    budget.spend()
    assert budget.available() == 1
    clock.now += 29.9
    assert budget.available() == 1  # the first three were less than a minute ago
    clock.now += 0.1
    assert budget.available() == 4
    assert RateBudget(0, clock).available() is None  # 0: no limit


def test_twelve_due_go_five_a_minute(app, make_event):
    clock = Clock()
    budget = RateBudget(app.config["MAIL_RATE_PER_MINUTE"], clock)
    backend = Recorder()
    with app.app_context():
        queue_confirmations(make_event(**OPEN).id, 12)
        done = deliver_due(db.session, backend, sender=SENDER, budget=budget)
        assert (done.sent, len(backend.sent)) == (5, 5)
        clock.now += 59
        assert deliver_due(db.session, backend, sender=SENDER, budget=budget).attempted == 0
        clock.now += 1
        assert deliver_due(db.session, backend, sender=SENDER, budget=budget).sent == 5
        clock.now += 60
        assert deliver_due(db.session, backend, sender=SENDER, budget=budget).sent == 2
        assert statuses() == [MAIL_SENT] * 12
        assert budget.available() == 3


def test_no_limit_sends_every_due_message(app, make_event):
    with app.app_context():
        queue_confirmations(make_event(**OPEN).id, 12)
        done = deliver_due(db.session, Recorder(), sender=SENDER, budget=RateBudget(0))
        assert done.sent == 12


def test_the_systems_own_mail_goes_before_an_organizers_message(app, make_event):
    clock = Clock()
    with app.app_context():
        event_id = make_event(**OPEN).id
        message = OrganizerMessage(event_id=event_id, subject="News", body="Hello")
        db.session.add(message)
        db.session.flush()
        for n in range(3):
            db.session.add(
                OutboxMessage(
                    kind="message",
                    to_address=f"all{n}@example.org",
                    subject="News",
                    text_body="Hello",
                    message_id=message.id,
                )  # fmt: skip
            )
        db.session.commit()
        queue_confirmations(event_id, 1)  # queued after the message to everyone
        budget = RateBudget(1, clock)
        backend = Recorder()
        deliver_due(db.session, backend, sender=SENDER, budget=budget)
        assert backend.sent == ["p0@example.org"]
        assert statuses() == [MAIL_PENDING] * 3 + [MAIL_SENT]


def test_the_mail_worker_keeps_to_the_rate(app, runner, make_event):
    with app.app_context():
        queue_confirmations(make_event(**OPEN).id, 7)
    result = runner.invoke(args=["mail-worker", "--once"])
    assert result.exit_code == 0, result.output
    assert "sent 5," in result.output
    with app.app_context():
        assert statuses().count(MAIL_SENT) == 5
