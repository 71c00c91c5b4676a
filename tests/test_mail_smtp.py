"""Delivery to a real SMTP server (aiosmtpd) started by the tests: down, back, two workers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from necreg.extensions import db
from necreg.mail.delivery import SMTPBackend
from necreg.mail.worker import deliver_due
from necreg.models import MAIL_PENDING, MAIL_SENT, Event, OutboxMessage, utcnow
from necreg.registration import Registrant, register
from servers import SMTPServer

SENDER = "NEC Symposium <registration@nec.example>"


def register_people(app, event, count: int, start: int = 0) -> None:
    """Register ``count`` people for ``event``, in an app context of their own."""
    with app.app_context():
        event = db.session.get(Event, event.id)
        for n in range(start, start + count):
            register(
                db.session,
                event,
                Registrant(
                    first_name=f"P{n}",
                    last_name="Test",
                    email=f"p{n}@example.org",
                    role="clinician",
                    country="US",
                ),
                code_prefix="NEC",
            )
        db.session.commit()


def backend(server: SMTPServer) -> SMTPBackend:
    return SMTPBackend("127.0.0.1", server.port, timeout=5)


def deliver(app, server: SMTPServer, **options):
    """One round of the worker over SMTP, in an app context of its own."""
    with app.app_context():
        return deliver_due(db.session, backend(server), sender=SENDER, **options)


def outbox(app) -> list[OutboxMessage]:
    """The messages as the database holds them now (read in an app context of their own)."""
    with app.app_context():
        query = select(OutboxMessage).order_by(OutboxMessage.id)
        return list(db.session.execute(query).scalars())


def test_confirmation_reaches_a_real_smtp_server(app, make_event, smtp_server):
    app.config["SITE_URL"] = "https://reg.example.org"
    event = make_event(capacity=1)
    register_people(app, event, 2)
    done = deliver(app, smtp_server)
    assert done.sent == 2
    confirmation, notice = smtp_server.inbox.received
    assert smtp_server.inbox.envelopes == [
        ("registration@nec.example", ["p0@example.org"]),
        ("registration@nec.example", ["p1@example.org"]),
    ]
    first = outbox(app)[0]
    assert confirmation["Subject"] == first.subject
    body = confirmation.get_body(("plain",)).get_content()
    assert "https://reg.example.org/registration/" in body
    [ics] = list(confirmation.iter_attachments())
    assert ics.get_content_type() == "text/calendar"
    assert b"DTSTART;VALUE=DATE:20990907\r\n" in ics.get_payload(decode=True)
    assert "waiting list" in notice["Subject"]
    assert all(m.status == MAIL_SENT for m in outbox(app))


def test_server_down_then_back_loses_nothing_and_sends_nothing_twice(app, make_event):
    server = SMTPServer()  # not started: the mail server is down
    try:
        event = make_event()
        register_people(app, event, 5)
        now = utcnow()
        done = deliver(app, server, now=now)
        assert (done.sent, done.retrying) == (0, 5)
        rows = outbox(app)
        assert all(m.status == MAIL_PENDING and m.attempts == 1 for m in rows)
        assert all("Connection refused" in m.last_error or "Errno" in m.last_error for m in rows)
        assert all(m.next_attempt_at == now + timedelta(minutes=1) for m in rows)

        server.start()  # back up, but nothing is due before the back-off ends
        assert deliver(app, server, now=now).attempted == 0
        assert server.inbox.received == []

        later = now + timedelta(minutes=1)
        done = deliver(app, server, now=later)
        assert done.sent == 5
        rows = outbox(app)
        assert all(m.status == MAIL_SENT and m.attempts == 2 for m in rows)
        assert all(m.last_error == "" for m in rows)
        assert sorted(server.inbox.message_ids().values()) == [1] * 5

        # Down again for a moment, and new registrations meanwhile: the sent ones stay sent.
        server.stop()
        register_people(app, event, 2, start=5)
        deliver(app, server)
        server.start()
        deliver(app, server, now=utcnow() + timedelta(hours=1))
        ids = server.inbox.message_ids()
        assert len(ids) == 7 and set(ids.values()) == {1}
        assert {(m.to_address, m.status) for m in outbox(app)} == {
            (f"p{n}@example.org", MAIL_SENT) for n in range(7)
        }
    finally:
        server.stop()


def test_two_workers_at_once_deliver_each_message_exactly_once(app, make_event, smtp_server):
    event = make_event()
    register_people(app, event, 40)
    with app.app_context():
        engine = db.engine
    barrier = threading.Barrier(2)
    results = []
    errors: list[BaseException] = []

    def work(name: str) -> None:
        try:
            with app.app_context(), Session(engine) as session:
                barrier.wait(timeout=10)
                total = 0
                # Small rounds, so the two workers interleave over the same rows.
                while True:
                    done = deliver_due(
                        session, backend(smtp_server), sender=SENDER, worker_id=name, limit=5
                    )
                    total += done.sent
                    if done.attempted + done.skipped == 0:
                        break
                results.append((name, total))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert sum(total for _name, total in results) == 40
    ids = smtp_server.inbox.message_ids()
    assert len(ids) == 40
    assert set(ids.values()) == {1}
    assert all(m.status == MAIL_SENT and m.attempts == 1 for m in outbox(app))


def test_mail_worker_command_sends_over_smtp(app, runner, make_event, smtp_server):
    app.config.update(MAIL_BACKEND="smtp", MAIL_SERVER="127.0.0.1", MAIL_PORT=smtp_server.port)
    event = make_event()
    register_people(app, event, 3)
    result = runner.invoke(args=["mail-worker", "--once"])
    assert result.exit_code == 0, result.output
    assert "sent 3" in result.output
    assert len(smtp_server.inbox.received) == 3


def worker_process(database_url: str, instance, port: int, *args: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "NECREG_DATABASE_URL": database_url,
        "NECREG_INSTANCE_PATH": str(instance),
        "NECREG_SECRET_KEY": "test-secret",
        "NECREG_MAIL_BACKEND": "smtp",
        "NECREG_MAIL_SERVER": "127.0.0.1",
        "NECREG_MAIL_PORT": str(port),
        "NECREG_MAIL_SENDER": SENDER,
    }
    necreg = os.path.join(os.path.dirname(sys.executable), "necreg")
    return subprocess.Popen(
        [necreg, "mail-worker", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )


def test_two_worker_processes_after_an_outage_deliver_each_message_once(
    app, make_event, database_url, tmp_path
):
    server = SMTPServer()  # down
    workers: list[subprocess.Popen] = []
    try:
        event = make_event()
        register_people(app, event, 30)
        once = worker_process(database_url, tmp_path, server.port, "--once")
        output = once.communicate(timeout=60)[0].decode()
        assert once.returncode == 0, output
        assert "sent 0, retrying 30" in output
        assert all(m.status == MAIL_PENDING and m.attempts == 1 for m in outbox(app))

        server.start()
        # The back-off has passed (rather than waiting a minute for it).
        with app.app_context():
            db.session.execute(update(OutboxMessage).values(next_attempt_at=utcnow()))
            db.session.commit()
        workers = [
            worker_process(database_url, tmp_path, server.port, "--interval", "0.2", "--limit", "3")
            for _ in range(2)
        ]
        deadline = time.monotonic() + 30
        while any(m.status != MAIL_SENT for m in outbox(app)):
            assert time.monotonic() < deadline, "not all messages delivered within 30 s"
            assert all(w.poll() is None for w in workers), "a worker stopped"
            time.sleep(0.1)
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
            assert worker.wait(timeout=20) == 0
        ids = server.inbox.message_ids()
        assert len(ids) == 30 and set(ids.values()) == {1}
        assert all(m.attempts == 2 and m.last_error == "" for m in outbox(app))
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
            worker.stdout.close()
        server.stop()
