"""Privacy tools: a person's data (``person_data``), erasure on request (``erase``), and the
retention periods applied by ``necreg purge`` (``purge``).

**Anonymised** (``anonymise``, the one definition used by both): first name "Erased", last
name "registration" (the column may not be empty), badge name "Erased", e-mail
``erased-<id>@invalid`` (unique, so the one-active-registration-per-address index holds; a
companion's stays empty), institution cleared, a new token (the old link stops working),
photo and attendee-list consents withdrawn, every answer deleted, the support statement and
the organizers' note on it cleared, the free-text references of offline payments cleared
(amounts, dates and receipt numbers are kept for the accounts; a card payment's reference
is the payment provider's id, not the person's, and is kept), the values of identifying
fields in the change history replaced by "(erased)", every e-mail queued for the person
emptied (subject, bodies, attachments, address; one not yet sent is never sent), the
bodies of webhook deliveries already sent about them emptied, and ``erased_at`` set. Kept:
the code, role, country, status, attendance, early-career flag, credential, check-in, age
band, program sign-ups and attendance, certificates: none identifies a person alone, and
the figures and places are made of them.

**The figures stay as they were.** The database tallies (triggers.py) count an active
attendee's institution and the choices of their answers; clearing those would lower the
public "institutions" counter and the dashboard's totals of a meeting that was held. So
for an attendee still counted (confirmed) the figures their institution and answers made
are added back (``counters.add_to_figure``) in the same transaction: the counters, the
dashboard and /api/stats read the same before and after. (A recount from the rows,
``counters.recount`` after a bulk load, would lose them; an erased registration is not
changed afterwards: the organizer's page refuses it.)

**Erasure on request** (``erase``): before the event is over, a registration that holds a
place or waits for one is cancelled first (``registration.cancel``: its place goes to the
waiting list, the caps stay right), then anonymised; once the event is over it stays
counted as it was (it was there) and is anonymised. Erasing a party's lead erases its
companions (whose data the lead gave); a companion is erased alone.

**Retention** (``purge``): every attendee of an event over for more than
RETENTION_DAYS_AFTER_EVENT days, and every cancelled attendee whose cancellation is older
than that, is anonymised; the bodies of e-mails delivered (``sent``) and of webhook
deliveries sent more than OUTBOX_RETENTION_DAYS ago are emptied. Running it again changes
nothing more. The per-choice totals of a purged past event stay (added back as above).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from .audit import record
from .counters import add_to_figure
from .extensions import db
from .formats import json_timestamp
from .models import (
    MAIL_FAILED,
    MAIL_PENDING,
    MAIL_SENT,
    STATUS_CANCELLED,
    STATUS_CONFIRMED,
    Answer,
    Attendee,
    AttendeeChange,
    Certificate,
    CodeUse,
    DiscountCode,
    Event,
    OutboxMessage,
    Payment,
    ProgramAttendance,
    ProgramItem,
    ProgramSignup,
    Question,
    SupportRequest,
    WebhookDelivery,
    new_token,
    utcnow,
)
from .money import amount_text
from .payments import PaymentTerms
from .registration import RegistrationError, cancel, companions_of

ERASED_FIRST_NAME = "Erased"
ERASED_LAST_NAME = "registration"
ERASED_BADGE_NAME = "Erased"
#: What stands for an erased value in the change history and in e-mails kept.
ERASED = "(erased)"
#: Why an e-mail queued for an erased person is not sent.
NOT_SENT = "Not sent: the recipient's data was erased."
#: Fields of the change history whose values stay at erasure: none identifies a person.
KEPT_IN_HISTORY = frozenset(
    {
        "status", "role", "country", "attendance", "early_career", "credential", "age_band",
        "takes_place", "amount_due", "price_name", "payment_due_at", "checked_in_at",
    }
)  # fmt: skip
#: Attendee columns left out of a person's data: the link's secret and a search index.
NOT_EXPORTED = frozenset({"token", "search_text"})
OFFLINE = "offline"


class ErasureError(RegistrationError):
    """The registration cannot be erased (it is already); ``str(exc)`` says why."""


def erased_email(attendee_id: int) -> str:
    """The placeholder address of an erased registration: unique and never deliverable
    (``.invalid`` is reserved, RFC 2606)."""
    return f"erased-{attendee_id}@invalid"


#: Figures to add back after erasure: {(event id, kind, key): n}.
Kept = Counter[tuple[int, str, str]]


def anonymise(
    session: Session,
    attendee: Attendee,
    kept: Kept,
    *,
    organizer_id: int | None = None,
    now: datetime | None = None,
) -> None:
    """Erase ``attendee``'s personal data (the module's docstring says what goes and what
    stays), noting in ``kept`` the figures to add back (``keep_figures``) when they are still
    counted. The caller adds them back and commits."""
    now = now or utcnow()
    counted = attendee.status == STATUS_CONFIRMED
    if counted:
        chosen = session.execute(
            select(Answer.question_id, Answer.choice).where(
                Answer.attendee_id == attendee.id, Answer.choice.is_not(None)
            )
        )
        for question_id, choice in chosen:
            kept[(attendee.event_id, "answer", f"{question_id}:{choice}")] += 1
        institution = attendee.institution.strip(" ")  # as the tally's trim() keys it
        if institution:
            kept[(attendee.event_id, "institution", institution)] += 1
    session.execute(delete(Answer).where(Answer.attendee_id == attendee.id))
    address = erased_email(attendee.id) if attendee.email else ""
    attendee.first_name = ERASED_FIRST_NAME
    attendee.last_name = ERASED_LAST_NAME
    attendee.badge_name = ERASED_BADGE_NAME
    attendee.email = address
    attendee.institution = ""
    attendee.token = new_token()
    attendee.photo_consent_at = attendee.photo_consent_version = None
    attendee.list_consent_at = attendee.list_consent_version = None
    attendee.erased_at = now
    attendee.updated_at = now
    session.execute(
        update(Payment)
        .where(Payment.attendee_id == attendee.id, Payment.method == OFFLINE)
        .values(reference="", refund_reference="")
    )
    session.execute(
        update(SupportRequest)
        .where(SupportRequest.attendee_id == attendee.id)
        .values(statement="", note="")
    )
    for change in session.execute(
        select(AttendeeChange).where(AttendeeChange.attendee_id == attendee.id)
    ).scalars():
        scrubbed = {
            name: values if name in KEPT_IN_HISTORY else [ERASED, ERASED]
            for name, values in (change.changes or {}).items()
        }
        if scrubbed != change.changes:
            change.changes = scrubbed
    session.add(
        AttendeeChange(
            attendee_id=attendee.id, organizer_id=organizer_id, action="erase", changed_at=now
        )
    )
    mail = OutboxMessage.attendee_id == attendee.id
    session.execute(
        update(OutboxMessage)
        .where(mail, OutboxMessage.status == MAIL_PENDING)
        .values(status=MAIL_FAILED, last_error=NOT_SENT, claimed_until=None)
    )
    session.execute(
        update(OutboxMessage)
        .where(mail)
        .values(to_address=address, subject=ERASED, text_body="", html_body="", attachments=[])
    )
    session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.status == MAIL_SENT,
            WebhookDelivery.body.contains(f'"{attendee.code}"', autoescape=True),
        )
        .values(body="")
    )


def keep_figures(session: Session, kept: Kept) -> None:
    """Add back the figures ``anonymise`` noted: the tallies read as before the erasure."""
    for (event_id, kind, key), n in sorted(kept.items()):
        add_to_figure(session, event_id, kind, key, n)
    kept.clear()


@dataclass
class Erasure:
    """What ``erase`` did: the registrations erased, whether it cancelled them first, and
    who was promoted from the waiting list to the places freed."""

    erased: list[Attendee]
    cancelled: bool
    promoted: list[Attendee] = field(default_factory=list)


def erase(
    session: Session,
    attendee: Attendee,
    *,
    organizer_id: int | None = None,
    payment: PaymentTerms | None = None,
    now: datetime | None = None,
) -> Erasure:
    """Erase a registration on request (with its companions when it is a party's lead):
    cancelled first while the event is not over and it holds or waits for a place, then
    anonymised. Raises ErasureError when it is erased already. Flushes, never commits."""
    now = now or utcnow()
    if attendee.erased_at is not None:
        raise ErasureError("This registration's data is erased already.")
    event = session.get(Event, attendee.event_id)
    assert event is not None
    # A lead's companions go with it: the lead gave their data.
    party = [] if attendee.is_companion else companions_of(session, attendee)
    members = [attendee] + [companion for companion in party if companion.erased_at is None]
    promoted: list[Attendee] = []
    cancelled = False
    if not event.is_over(now):
        for member in members:  # cancelling the lead cancels its companions too
            session.refresh(member)
            if member.status != STATUS_CANCELLED:
                promoted += cancel(
                    session, member, organizer_id=organizer_id, payment=payment, now=now
                )
                cancelled = True
    kept: Kept = Counter()
    for member in members:
        anonymise(session, member, kept, organizer_id=organizer_id, now=now)
    keep_figures(session, kept)
    session.flush()
    return Erasure(members, cancelled, promoted)


# --- Retention -----------------------------------------------------------------------------


@dataclass
class PurgeReport:
    """What ``purge`` did (or would do): attendees anonymised per event slug, how many of
    them still count (their figures kept), and bodies of e-mails and webhook deliveries
    emptied."""

    anonymised: dict[str, int] = field(default_factory=dict)
    counted: int = 0
    mail_bodies: int = 0
    webhook_bodies: int = 0

    @property
    def attendees(self) -> int:
        return sum(self.anonymised.values())

    def as_details(self) -> dict[str, Any]:
        return {
            "attendees": self.attendees,
            "by_event": dict(self.anonymised),
            "still_counted": self.counted,
            "mail_bodies": self.mail_bodies,
            "webhook_bodies": self.webhook_bodies,
        }

    def lines(self, *, dry_run: bool) -> list[str]:
        verb = "Would anonymise" if dry_run else "Anonymised"
        empty = "Would empty" if dry_run else "Emptied"
        lines = [
            f"{verb} {n} attendee(s) of {slug}." for slug, n in sorted(self.anonymised.items())
        ]
        if not self.anonymised:
            lines.append(f"{verb} no attendee.")
        lines.append(f"{empty} {self.mail_bodies} delivered e-mail(s).")
        lines.append(f"{empty} {self.webhook_bodies} sent webhook delivery body(ies).")
        return lines


def due_for_erasure(session: Session, retention_days: int, now: datetime) -> list[Attendee]:
    """Attendees not yet erased of events over for more than ``retention_days`` days, and
    those cancelled more than ``retention_days`` ago (their cancellation's time; its last
    change if that is unknown)."""
    cutoff = now - timedelta(days=retention_days)
    events = session.execute(select(Event)).scalars().all()
    past = [event.id for event in events if event.over_at <= cutoff]
    cancelled_at = func.coalesce(Attendee.cancelled_at, Attendee.updated_at)
    query = (
        select(Attendee)
        .where(
            Attendee.erased_at.is_(None),
            or_(
                Attendee.event_id.in_(past),
                (Attendee.status == STATUS_CANCELLED) & (cancelled_at <= cutoff),
            ),
        )
        .order_by(Attendee.id)
    )
    return list(session.execute(query).scalars())


_OLD_MAIL = (OutboxMessage.status == MAIL_SENT) & (
    (OutboxMessage.text_body != "") | (OutboxMessage.html_body != "")
)
_OLD_WEBHOOKS = (WebhookDelivery.status == MAIL_SENT) & (WebhookDelivery.body != "")


def purge(
    session: Session,
    *,
    retention_days: int,
    outbox_days: int,
    dry_run: bool = False,
    now: datetime | None = None,
) -> PurgeReport:
    """Apply the retention periods (the module's docstring says what they are); with
    ``dry_run`` only count what would be done. Flushes, never commits; records the purge in
    the audit trail (not a dry run)."""
    now = now or utcnow()
    report = PurgeReport()
    attendees = due_for_erasure(session, retention_days, now)
    slugs = dict(session.execute(select(Event.id, Event.slug)).all())
    for attendee in attendees:
        slug = slugs[attendee.event_id]
        report.anonymised[slug] = report.anonymised.get(slug, 0) + 1
        report.counted += attendee.status == STATUS_CONFIRMED
    mail_cutoff = now - timedelta(days=outbox_days)
    old_mail = _OLD_MAIL & (OutboxMessage.sent_at <= mail_cutoff)
    old_webhooks = _OLD_WEBHOOKS & (WebhookDelivery.sent_at <= mail_cutoff)
    if dry_run:
        count = func.count()
        report.mail_bodies = session.execute(
            select(count).select_from(OutboxMessage).where(old_mail)
        ).scalar_one()
        report.webhook_bodies = session.execute(
            select(count).select_from(WebhookDelivery).where(old_webhooks)
        ).scalar_one()
        return report
    # Old bodies first, so that the run says what its dry run said (the erasures below empty
    # the rest of an erased person's mail).
    report.mail_bodies = session.execute(
        update(OutboxMessage)
        .where(old_mail)
        .values(text_body="", html_body="", attachments=[])
        .execution_options(synchronize_session=False)
    ).rowcount
    report.webhook_bodies = session.execute(
        update(WebhookDelivery)
        .where(old_webhooks)
        .values(body="")
        .execution_options(synchronize_session=False)
    ).rowcount
    kept: Kept = Counter()
    for attendee in attendees:
        anonymise(session, attendee, kept, now=now)
    keep_figures(session, kept)
    session.flush()
    details = {
        **report.as_details(),
        "retention_days": retention_days,
        "outbox_retention_days": outbox_days,
    }
    record(session, organizer_id=None, action="purge", details=details)
    return report


@click.command("purge")
@click.option("--dry-run", is_flag=True, help="Say what would be done; change nothing.")
@with_appcontext
def purge_command(dry_run: bool) -> None:
    """Apply the retention periods: anonymise attendees of events over for more than
    RETENTION_DAYS_AFTER_EVENT days and those cancelled longer ago than that (their counts
    kept), and empty the bodies of e-mails and webhook deliveries sent more than
    OUTBOX_RETENTION_DAYS ago."""
    config = current_app.config
    report = purge(
        db.session,
        retention_days=int(config["RETENTION_DAYS_AFTER_EVENT"]),
        outbox_days=int(config["OUTBOX_RETENTION_DAYS"]),
        dry_run=dry_run,
    )
    if dry_run:
        db.session.rollback()
    else:
        db.session.commit()
    for line in report.lines(dry_run=dry_run):
        click.echo(line)
    if dry_run:
        click.echo("Dry run: nothing was changed.")


#: The commands of this module, added to the ``necreg`` command by cli.register_commands.
PRIVACY_COMMANDS: list[click.Command] = [purge_command]


# --- A person's data -----------------------------------------------------------------------


def _value(value: Any) -> Any:
    if isinstance(value, datetime):
        return json_timestamp(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def _columns(attendee: Attendee) -> dict[str, Any]:
    return {
        column.key: _value(getattr(attendee, column.key))
        for column in Attendee.__table__.columns
        if column.key not in NOT_EXPORTED
    }


def _person(session: Session, attendee: Attendee, currency: str, *, internal: bool) -> dict:
    """One registration's data: its columns and everything kept about it."""
    aid = attendee.id
    answers = session.execute(
        select(Question.key, Question.label, Question.sensitive, Answer.choice, Answer.text)
        .join(Question, Question.id == Answer.question_id)
        .where(Answer.attendee_id == aid)
        .order_by(Question.position, Question.id, Answer.id)
    )
    payments = session.execute(
        select(Payment).where(Payment.attendee_id == aid).order_by(Payment.paid_at, Payment.id)
    ).scalars()
    signups = session.execute(
        select(ProgramItem.key, ProgramItem.title, ProgramSignup.status, ProgramSignup.created_at)
        .join(ProgramItem, ProgramItem.id == ProgramSignup.item_id)
        .where(ProgramSignup.attendee_id == aid)
        .order_by(ProgramItem.starts_at, ProgramItem.id)
    )
    attended = session.execute(
        select(ProgramItem.key, ProgramItem.title, ProgramAttendance.checked_in_at)
        .join(ProgramItem, ProgramItem.id == ProgramAttendance.item_id)
        .where(ProgramAttendance.attendee_id == aid)
        .order_by(ProgramAttendance.checked_in_at)
    )
    certificate = session.execute(
        select(Certificate).where(Certificate.attendee_id == aid)
    ).scalar_one_or_none()
    support = session.execute(
        select(SupportRequest).where(SupportRequest.attendee_id == aid)
    ).scalar_one_or_none()
    codes = session.execute(
        select(DiscountCode.code, CodeUse.used_at)
        .join(DiscountCode, DiscountCode.id == CodeUse.code_id)
        .where(CodeUse.attendee_id == aid)
    )
    messages = session.execute(
        select(OutboxMessage).where(OutboxMessage.attendee_id == aid).order_by(OutboxMessage.id)
    ).scalars()
    history = session.execute(
        select(AttendeeChange)
        .where(AttendeeChange.attendee_id == aid)
        .order_by(AttendeeChange.changed_at, AttendeeChange.id)
    ).scalars()

    def by(change: AttendeeChange) -> str:
        if change.organizer_id is None:
            return "the attendee or the system"
        if internal and change.organizer is not None:
            return change.organizer.email
        return "an organizer"

    data: dict[str, Any] = {
        "registration": _columns(attendee),
        "consents": {
            "registration": {
                "at": _value(attendee.consent_at),
                "version": attendee.consent_version,
            },
            "photos": None
            if attendee.photo_consent_at is None
            else {
                "at": _value(attendee.photo_consent_at),
                "version": attendee.photo_consent_version,
            },
            "attendee_list": None
            if attendee.list_consent_at is None
            else {
                "at": _value(attendee.list_consent_at),
                "version": attendee.list_consent_version,
            },
        },
        "answers": [
            {"question": key, "label": label, "sensitive": sensitive, "choice": c, "text": t}
            for key, label, sensitive, c, t in answers
        ],
        "payments": [
            {
                "receipt_number": p.receipt_number,
                "amount": amount_text(p.amount, p.currency),
                "currency": p.currency,
                "method": p.method,
                "reference": p.reference,
                "paid_at": _value(p.paid_at),
                "refunded_at": _value(p.refunded_at),
                "refund_reference": p.refund_reference,
            }
            for p in payments
        ],
        "codes_used": [{"code": code, "used_at": _value(at)} for code, at in codes],
        "program_signups": [
            {"item": key, "title": title, "status": status, "at": _value(at)}
            for key, title, status, at in signups
        ],
        "program_attendance": [
            {"item": key, "title": title, "checked_in_at": _value(at)}
            for key, title, at in attended
        ],
        "certificate": None
        if certificate is None
        else {
            "verification_code": certificate.verification_code,
            "credits": certificate.credits / 100,
            "issued_at": _value(certificate.issued_at),
        },
        "support_request": None
        if support is None
        else {
            "statement": support.statement,
            "requested_at": _value(support.requested_at),
            "decision": support.decision,
            "award": amount_text(support.award, currency),
            "decided_at": _value(support.decided_at),
        }
        | ({"score": support.score, "note": support.note} if internal else {}),
        "messages": [
            {
                "kind": m.kind,
                "to": m.to_address,
                "subject": m.subject,
                "status": m.status,
                "queued_at": _value(m.created_at),
                "sent_at": _value(m.sent_at),
            }
            for m in messages
        ],
        "history": [
            {"at": _value(c.changed_at), "action": c.action, "by": by(c), "changes": c.changes}
            for c in history
        ],
    }
    return data


def person_data(session: Session, attendee: Attendee, *, internal: bool = False) -> dict:
    """Everything kept about ``attendee``, as JSON: the registration's columns (its link's
    token aside), consents with their versions, answers, payments, codes used, program
    sign-ups and attendance, certificate, support request, the e-mails sent to them
    (subjects and dates, not bodies) and the change history; a lead's companions with
    theirs. ``internal`` (for organizers): with the organizers' notes and scores and who
    made each change; without it (for the person): "an organizer"."""
    event = session.get(Event, attendee.event_id)
    assert event is not None
    data: dict[str, Any] = {
        "exported_at": json_timestamp(utcnow()),
        "event": {
            "slug": event.slug,
            "name": event.name,
            "starts_on": event.starts_on.isoformat(),
            "ends_on": event.ends_on.isoformat(),
            "currency": event.currency,
        },
    }
    data |= _person(session, attendee, event.currency, internal=internal)
    if attendee.is_companion:
        lead = session.get(Attendee, attendee.party_id)
        data["party_lead"] = None if lead is None else {"code": lead.code}
    else:
        data["companions"] = [
            _person(session, companion, event.currency, internal=internal)
            for companion in companions_of(session, attendee)
        ]
    return data
