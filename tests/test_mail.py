"""The outbox: messages queued with the change that causes them, rendered, delivered, retried."""

from __future__ import annotations

import email
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from email import policy
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from conftest import detached
from necreg import registration
from necreg.extensions import db
from necreg.mail.delivery import FileBackend, build_message
from necreg.mail.ics import event_calendar, fold
from necreg.mail.worker import claim, deliver_due, retry_delay
from necreg.models import (
    MAIL_FAILED,
    MAIL_PENDING,
    MAIL_SENT,
    Attendee,
    OutboxMessage,
    utcnow,
)
from necreg.qr import qr_png
from necreg.registration import (
    DuplicateRegistration,
    Registrant,
    cancel,
    promote_waitlisted,
    register,
    restore,
)

SENDER = "NEC Symposium <registration@nec.example>"


def person(n: int, role: str = "clinician") -> Registrant:
    return Registrant(
        first_name=f"P{n}", last_name="Test", email=f"p{n}@example.org", role=role, country="US"
    )


def sign_up(event, n, role="clinician", *, fresh: bool = False) -> Attendee:
    attendee = register(db.session, event, person(n, role), code_prefix="NEC", fresh=fresh)
    db.session.commit()
    return attendee


def messages(**where) -> list[OutboxMessage]:
    query = select(OutboxMessage).order_by(OutboxMessage.id)
    for key, value in where.items():
        query = query.where(getattr(OutboxMessage, key) == value)
    return list(db.session.execute(query).scalars())


def kinds_for(attendee: Attendee) -> list[str]:
    return [m.kind for m in messages(attendee_id=attendee.id)]


class FailingBackend:
    """A backend whose server refuses: the real failure path of the worker, no mock of it."""

    def __init__(self) -> None:
        self.closed = 0

    def send(self, msg, message) -> None:
        raise ConnectionRefusedError(111, "Connection refused")

    def close(self) -> None:
        self.closed += 1


# --- queueing from the domain functions -------------------------------------------------


def test_register_queues_a_confirmation_with_link_code_and_calendar(app, make_event):
    app.config["SITE_URL"] = "https://reg.example.org/"
    with app.app_context():
        event = make_event(capacity=1)
        attendee = sign_up(event, 1)
        [message] = messages()
        assert (message.kind, message.status, message.to_address) == (
            "confirmation", "pending", "p1@example.org",
        )  # fmt: skip
        link = f"https://reg.example.org/registration/{attendee.token}"
        assert attendee.code in message.subject
        for body in (message.text_body, message.html_body):
            assert link in body
            assert attendee.code in body
        assert "<html" in message.html_body and "<html" not in message.text_body
        qr, attachment = message.attachments
        assert (qr["content_type"], qr["content_id"]) == ("image/png", "attendee-qr")
        assert attachment["filename"] == "nec-2099.ics"
        assert attachment["content_type"] == "text/calendar"
        assert f"UID:nec-2099-{attendee.code}@reg.example.org\r\n" in attachment["content"]


def test_waitlisted_registration_gets_the_notice_with_its_position(app, make_event):
    with app.app_context():
        event = make_event(capacity=1)
        sign_up(event, 1)
        sign_up(event, 2)
        third = sign_up(event, 3)
        [message] = messages(attendee_id=third.id)
        assert message.kind == "waitlisted"
        assert "number 2" in message.subject
        assert "number 2" in message.text_body and "number 2" in message.html_body
        assert message.attachments == []


@pytest.mark.parametrize("fresh", [False, True], ids=["savepoint", "fresh"])
def test_a_code_drawn_again_is_the_one_in_the_message(app, make_event, monkeypatch, fresh):
    """The confirmation is rendered before the code is known to be free; when it was taken,
    the registration gets another and the message is rendered again with it. Fresh: the
    first try, refused, was the whole transaction (PostgreSQL), rolled back."""
    with app.app_context():
        event = make_event()
        taken = sign_up(event, 1).code
        codes = iter([taken, "NEC-FRE5H2"])
        monkeypatch.setattr(registration, "new_code", lambda prefix: next(codes))
        attendee = sign_up(event, 2, fresh=fresh)
        assert attendee.code == "NEC-FRE5H2"
        [message] = messages(attendee_id=attendee.id)
        assert message.kind == "confirmation"
        for text in (message.subject, message.text_body, message.html_body):
            assert "NEC-FRE5H2" in text and taken not in text
        assert "NEC-FRE5H2" in message.attachments[1]["content"]


def test_cancel_queues_cancellation_and_promotion_mails(app, make_event):
    with app.app_context():
        event = make_event(capacity=1)
        first, second, third = (sign_up(event, n) for n in range(3))
        promoted = cancel(db.session, first)
        db.session.commit()
        assert promoted == [second]
        assert kinds_for(first) == ["confirmation", "cancelled"]
        assert kinds_for(second) == ["waitlisted", "promoted"]
        assert kinds_for(third) == ["waitlisted"]
        [promotion] = messages(kind="promoted")
        assert second.code in promotion.text_body
        names = [a["filename"] for a in promotion.attachments]
        assert names == [f"{second.code}.png", "nec-2099.ics"]


def test_leaving_the_waiting_list_promotes_nobody(app, make_event):
    with app.app_context():
        event = make_event(capacity=1)
        sign_up(event, 1)
        waiting = sign_up(event, 2)
        assert cancel(db.session, waiting) == []
        db.session.commit()
        assert kinds_for(waiting) == ["waitlisted", "cancelled"]
        assert messages(kind="promoted") == []


def test_raising_a_cap_promotes_with_mail(app, make_event):
    with app.app_context():
        event = make_event(capacity=1)
        sign_up(event, 1)
        waiting = sign_up(event, 2)
        event.capacity = 2
        promote_waitlisted(db.session, event)
        db.session.commit()
        assert kinds_for(waiting) == ["waitlisted", "promoted"]


def test_restore_queues_the_status_message(app, make_event):
    with app.app_context():
        event = make_event(capacity=1)
        first = sign_up(event, 1)
        cancel(db.session, first)
        db.session.commit()
        restore(db.session, first)
        db.session.commit()
        assert kinds_for(first) == ["confirmation", "cancelled", "confirmation"]


def test_html_part_escapes_what_registrants_typed(app, make_event):
    with app.app_context():
        event = make_event()
        register(
            db.session,
            event,
            Registrant(
                first_name="<script>alert(1)</script>",
                last_name="O'Neil & Co",
                email="x@example.org",
                role="family",
                country="US",
            ),
            code_prefix="NEC",
        )
        db.session.commit()
        [message] = messages()
        assert "<script>" not in message.html_body
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in message.html_body
        assert "Dear <script>alert(1)</script>," in message.text_body  # plain text stays as typed


def test_a_refused_registration_queues_nothing(app, make_event):
    with app.app_context():
        event = make_event()
        sign_up(event, 1)
        with pytest.raises(DuplicateRegistration):
            register(db.session, event, person(1), code_prefix="NEC")
        db.session.rollback()
        assert len(messages()) == 1


def test_mail_is_rolled_back_with_the_change(app, make_event):
    with app.app_context():
        event = make_event()
        register(db.session, event, person(1), code_prefix="NEC")
        db.session.rollback()
        assert messages() == []
        assert db.session.execute(select(Attendee)).first() is None


# --- the calendar file ------------------------------------------------------------------


def test_calendar_is_all_day_with_exclusive_end_crlf_and_folded_lines():
    text = event_calendar(
        uid="nec-2025-NEC-ABCDEF@reg.example.org",
        summary="NEC Symposium; Building a World Without NEC, 2025",
        location="Chicago",
        starts_on=date(2025, 9, 7),
        ends_on=date(2025, 9, 10),
        stamp=datetime(2025, 3, 1, 12, 30, tzinfo=UTC),
        description="Ünïcode " * 30,
    )
    assert text.startswith("BEGIN:VCALENDAR\r\n") and text.endswith("END:VCALENDAR\r\n")
    assert "\n" not in text.replace("\r\n", "")
    lines = text.split("\r\n")[:-1]
    assert "DTSTART;VALUE=DATE:20250907" in lines
    assert "DTEND;VALUE=DATE:20250911" in lines  # exclusive: the day after the last day
    assert "DTSTAMP:20250301T123000Z" in lines
    assert "SUMMARY:NEC Symposium\\; Building a World Without NEC\\, 2025" in lines
    assert "LOCATION:Chicago" in lines
    assert all(len(line.encode()) <= 75 for line in lines)
    unfolded = text.replace("\r\n ", "")
    assert "DESCRIPTION:" + "Ünïcode " * 30 in unfolded.replace("\\n", "\n")


def test_fold_never_splits_a_multibyte_character():
    folded = fold("X:" + "é" * 100)
    for line in folded.split("\r\n"):
        assert len(line.encode()) <= 75
        line.encode().decode("utf-8")  # each line is whole UTF-8
    assert folded.replace("\r\n ", "") == "X:" + "é" * 100


# --- delivery ---------------------------------------------------------------------------


def test_built_message_has_text_html_and_calendar_with_crlf(app, make_event):
    with app.app_context():
        event = make_event()
        attendee = sign_up(event, 1)
        [message] = messages()
        parsed = email.message_from_bytes(
            build_message(message, SENDER).as_bytes(policy=policy.SMTP), policy=policy.default
        )
        assert parsed["To"] == "p1@example.org"
        assert parsed["From"] == SENDER
        assert parsed["Message-ID"] == f"<necreg.{message.id}.confirmation@nec.example>"
        assert attendee.token in parsed.get_body(("plain",)).get_content()
        assert attendee.token in parsed.get_body(("html",)).get_content()
        [ics] = list(parsed.iter_attachments())
        assert ics.get_content_type() == "text/calendar"
        assert ics.get_filename() == "nec-2099.ics"
        payload = ics.get_payload(decode=True)
        assert b"BEGIN:VEVENT\r\n" in payload and b"\n" not in payload.replace(b"\r\n", b"")
        # The QR code of the attendee code is an image inside the HTML part, shown inline.
        html = parsed.get_body(("html",)).get_content()
        assert 'src="cid:attendee-qr"' in html
        [qr] = [part for part in parsed.walk() if part.get_content_type() == "image/png"]
        assert qr["Content-ID"] == "<attendee-qr>"
        assert qr.get_payload(decode=True) == qr_png(attendee.code)


def test_file_backend_writes_one_eml_per_message(app, make_event, tmp_path):
    with app.app_context():
        event = make_event(capacity=1)
        sign_up(event, 1)
        sign_up(event, 2)
        backend = FileBackend(tmp_path / "outbox")
        done = deliver_due(db.session, backend, sender=SENDER, worker_id="t")
        assert (done.sent, done.retrying) == (2, 0)
        first, second = messages()
        names = sorted(p.name for p in (tmp_path / "outbox").iterdir())
        assert names == [f"{first.id}-confirmation.eml", f"{second.id}-waitlisted.eml"]
        parsed = email.message_from_bytes(
            (tmp_path / "outbox" / names[0]).read_bytes(), policy=policy.default
        )
        assert parsed["Subject"] == first.subject
        assert {m.status for m in messages()} == {MAIL_SENT}
        assert all(m.attempts == 1 and m.sent_at and m.claimed_until is None for m in messages())
        # Delivered messages are not delivered again.
        assert deliver_due(db.session, backend, sender=SENDER).sent == 0


def test_failure_keeps_the_message_and_backs_off_then_gives_up(app, make_event):
    with app.app_context():
        event = make_event()
        sign_up(event, 1)
        backend = FailingBackend()
        start = datetime(2030, 1, 1, tzinfo=UTC)
        [message] = messages()
        message.next_attempt_at = start
        db.session.commit()

        done = deliver_due(db.session, backend, sender=SENDER, now=start, max_attempts=3)
        assert (done.sent, done.retrying, done.failed) == (0, 1, 0)
        db.session.refresh(message)
        assert message.status == MAIL_PENDING
        assert message.attempts == 1
        assert "Connection refused" in message.last_error
        assert message.next_attempt_at == start + timedelta(minutes=1)
        assert message.claimed_until is None
        assert backend.closed == 1

        # Not due yet: nothing is attempted.
        almost = start + timedelta(seconds=59)
        assert deliver_due(db.session, backend, sender=SENDER, now=almost).attempted == 0

        second = start + timedelta(minutes=1)
        deliver_due(db.session, backend, sender=SENDER, now=second, max_attempts=3)
        db.session.refresh(message)
        assert (message.attempts, message.status) == (2, MAIL_PENDING)
        assert message.next_attempt_at == second + timedelta(minutes=2)

        third = second + timedelta(minutes=2)
        done = deliver_due(db.session, backend, sender=SENDER, now=third, max_attempts=3)
        assert done.failed == 1
        db.session.refresh(message)
        assert (message.attempts, message.status) == (3, MAIL_FAILED)
        later = third + timedelta(days=1)
        assert deliver_due(db.session, backend, sender=SENDER, now=later).attempted == 0


def test_retry_delay_doubles_and_is_capped():
    assert [retry_delay(n).total_seconds() for n in (1, 2, 3, 4)] == [60, 120, 240, 480]
    assert retry_delay(50) == timedelta(hours=1)


def test_a_claimed_message_cannot_be_claimed_again_until_the_claim_expires(app, make_event):
    with app.app_context():
        event = make_event()
        sign_up(event, 1)
        [message] = messages()
        now = message.next_attempt_at + timedelta(seconds=1)
        assert claim(db.session, message.id, now, now + timedelta(minutes=5))
        assert not claim(db.session, message.id, now, now + timedelta(minutes=5))
        # Another worker now finds it claimed and skips it.
        done = deliver_due(db.session, FailingBackend(), sender=SENDER, now=now)
        assert (done.attempted, done.skipped) == (0, 0)
        # A worker that died holding the claim does not block the message for ever.
        expired = now + timedelta(minutes=6)
        assert claim(db.session, message.id, expired, expired + timedelta(minutes=5))


class ClaimCheckingBackend:
    """While sending, another worker (its own session) tries to take the same message."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self.stolen: list[bool] = []

    def send(self, msg, message) -> None:
        with Session(self.engine) as other:
            now = utcnow()
            self.stolen.append(claim(other, message.id, now, now + timedelta(minutes=5)))

    def close(self) -> None:
        pass


def test_a_claim_covers_the_real_time_of_sending_even_late_in_a_long_round(app, make_event):
    with app.app_context():
        event = make_event()
        sign_up(event, 1)
        sign_up(event, 2)
        backend = ClaimCheckingBackend(db.engine)
        # A round that began ten minutes ago (longer than a claim lasts) is still sending.
        started = utcnow() - timedelta(minutes=10)
        for message in messages():
            message.next_attempt_at = started
        db.session.commit()
        done = deliver_due(db.session, backend, sender=SENDER, now=started)
        assert done.sent == 2
        assert backend.stolen == [False, False]


def test_mail_worker_once_delivers_to_files(app, runner, make_event):
    with app.app_context():
        sign_up(make_event(), 1)
    result = runner.invoke(args=["mail-worker", "--once"])
    assert result.exit_code == 0, result.output
    assert "sent 1" in result.output
    outbox = Path(app.instance_path) / "outbox"
    [path] = list(outbox.glob("*.eml"))
    assert path.name.endswith("-confirmation.eml")
    with app.app_context():
        assert [m.status for m in messages()] == [MAIL_SENT]


def test_mail_worker_refuses_an_unknown_backend(app, runner, make_event):
    app.config["MAIL_BACKEND"] = "carrier-pigeon"
    result = runner.invoke(args=["mail-worker", "--once"])
    assert result.exit_code != 0
    assert "MAIL_BACKEND" in str(result.exception)


def test_mail_worker_loop_delivers_as_mail_is_queued_and_stops_on_sigterm(
    app, make_event, database_url, tmp_path
):
    event = make_event()
    instance = tmp_path / "worker-instance"
    env = {
        **os.environ,
        "NECREG_DATABASE_URL": database_url,
        "NECREG_INSTANCE_PATH": str(instance),
        "NECREG_SECRET_KEY": "test-secret",
        "NECREG_MAIL_BACKEND": "file",
    }
    necreg = Path(sys.executable).with_name("necreg")
    worker = subprocess.Popen(
        [str(necreg), "mail-worker", "--interval", "0.2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        with app.app_context():
            sign_up(db.session.merge(event), 1)  # queued while the worker runs
        deadline = time.monotonic() + 20
        while not list((instance / "outbox").glob("*.eml")):
            assert time.monotonic() < deadline, "the worker delivered nothing in 20 s"
            assert worker.poll() is None, worker.stdout.read().decode()
            time.sleep(0.05)
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=20) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        worker.stdout.close()
    with app.app_context():
        assert [m.status for m in messages()] == [MAIL_SENT]


def test_raising_the_cap_with_load_event_promotes_and_mails(app, runner, make_event, tmp_path):
    with app.app_context():
        event = make_event(capacity=1)
        sign_up(event, 1)
        waiting = detached(sign_up(event, 2))
        still_waiting = detached(sign_up(event, 3))
    event_file = tmp_path / "event.toml"
    event_file.write_text(
        'slug = "nec-2099"\nname = "NEC Symposium"\nstarts_on = 2099-09-07\n'
        "ends_on = 2099-09-10\ncurrent = true\ncapacity = 2\n"
    )
    result = runner.invoke(args=["load-event", str(event_file)])
    assert result.exit_code == 0, result.output
    with app.app_context():
        assert kinds_for(waiting) == ["waitlisted", "promoted"]
        assert kinds_for(still_waiting) == ["waitlisted"]
