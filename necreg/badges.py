"""Badge rows: the one definition of the badge CSV's columns, for the web export and the CLI;
and the other CSVs of attendees: the directory to share with them, the treasurer's payments.

The CSV is produced as a stream: rows are fetched in batches (``yield_per``; a server-side
cursor on PostgreSQL) and written out chunk by chunk, so memory stays flat for any number of
attendees.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from .attendee_search import AttendeeFilters, attendee_select
from .badges_pdf import Badge
from .countries import country_name
from .formats import json_timestamp
from .models import ROLES, STATUS_CONFIRMED, Attendee, Event, Payment
from .money import from_minor
from .payments import PARTY, party_totals
from .questions import Answers, QuestionSpec, answer_text, answers_of

#: The badge CSV's columns in order (CONTRACT.md), then ``status``.
COLUMNS: tuple[str, ...] = (
    "code",
    "first_name",
    "last_name",
    "badge_name",
    "role",
    "institution",
    "country",
    "early_career",
    "status",
    "attendance",
    "party",
    "photo_consent",
)
#: Columns written as ``yes``/``no``.
FLAGS = ("early_career", "photo_consent")
#: Added at the end only when asked for: e-mail addresses are personal data.
EMAIL_COLUMN = "email"
#: A spreadsheet runs a cell starting with one of these as a formula (OWASP ASVS 5.0 1.2.10).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
#: The byte-order mark that makes Excel read the file as UTF-8.
EXCEL_BOM = "\ufeff"
#: Rows fetched from the database at a time, and rows per chunk written to the response.
BATCH_SIZE = 1000


def columns(include_email: bool = False, questions: Sequence[QuestionSpec] = ()) -> tuple[str, ...]:
    """The CSV's columns: COLUMNS, the e-mail if asked for, then ``q_<key>`` per question."""
    return COLUMNS + ((EMAIL_COLUMN,) if include_email else ()) + tuple(q.name for q in questions)


def exported_questions(
    questions: Sequence[QuestionSpec], include_sensitive: bool = False
) -> tuple[QuestionSpec, ...]:
    """The questions whose answers an export carries: sensitive ones only when asked for."""
    return tuple(q for q in questions if include_sensitive or not q.sensitive)


#: What a spreadsheet may take for the end of a cell: the separators of the CSV dialects it
#: guesses (``;`` where the decimal mark is a comma, ``|``, tab) and ours. A cell of ours that
#: holds ``x;=HYPERLINK(...)`` is one cell to a reader of "," files, and two, the second a
#: formula, to a reader of ";" files.
SEPARATORS = (";", ",", "|", "\t")


def neutralised(values: Iterable[Any]) -> list[Any]:
    """A row's cells, each that a spreadsheet would run as a formula shown as text: ``'``
    before the cell that starts with one of FORMULA_STARTS, and before each formula character
    that follows a separator (and spaces); other values (None, numbers) as they are. It runs
    for every cell of an export."""
    return [_text_cell(v) if v.__class__ is str and v else v for v in values]


_FORMULA_FIRST = "".join(FORMULA_STARTS)
#: A formula character after a separator (and spaces): where a separated piece would start.
_AFTER_SEPARATOR = re.compile("([" + "".join(SEPARATORS) + "][ \t\r]*)([=+@-])")


def _text_cell(value: str) -> str:
    if value[0] in _FORMULA_FIRST:
        value = "'" + value
    if _AFTER_SEPARATOR.search(value) is None:  # the usual case: nothing to change
        return value
    return _AFTER_SEPARATOR.sub(r"\1'\2", value)


def _chunks(
    rows: Iterable[Sequence[Any]],
    names: Sequence[str],
    size: int,
    progress: Callable[[int], None] | None,
) -> Iterator[str]:
    flags = [names.index(name) for name in FLAGS if name in names]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    batch: list[list[Any]] = []
    for values in rows:
        row = neutralised(values)  # None is written as an empty cell
        for flag in flags:
            row[flag] = "yes" if row[flag] else "no"
        batch.append(row)
        if len(batch) >= size:
            yield _flush(writer, buffer, batch, progress)
            batch = []
    if batch:
        yield _flush(writer, buffer, batch, progress)


def _flush(writer: Any, buffer: io.StringIO, batch: list[list[Any]], progress) -> str:
    writer.writerows(batch)
    if progress:
        progress(len(batch))
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text


_lead = aliased(Attendee)
#: The columns that are not an attendee's own: the lead's code of a companion's party, and
#: whether the attendee agreed to photos.
_COMPUTED: dict[str, Any] = {
    "party": select(_lead.code).where(_lead.id == Attendee.party_id).scalar_subquery(),
    "photo_consent": Attendee.photo_consent_at.is_not(None),
}


def iter_badge_csv(
    session: Session,
    event: Event,
    filters: AttendeeFilters,
    *,
    include_email: bool = False,
    excel: bool = False,
    questions: Sequence[QuestionSpec] = (),
    batch_size: int = BATCH_SIZE,
    progress: Callable[[int], None] | None = None,
) -> Iterator[str]:
    """The badge CSV of the attendees ``filters`` selects, in their list order, as text chunks,
    with a ``q_<key>`` column of answers per question of ``questions`` (see
    ``exported_questions``)."""
    names = columns(include_email, questions)
    header = io.StringIO()
    csv.writer(header, lineterminator="\r\n").writerow(names)
    yield (EXCEL_BOM if excel else "") + header.getvalue()
    fields = names[: len(names) - len(questions)]
    selected = [_COMPUTED.get(name, getattr(Attendee, name, None)) for name in fields]
    stmt = attendee_select(event, filters, *selected, *([Attendee.id] if questions else []))
    # Core rows, not ORM ones: plain values are all a CSV needs.
    result = session.connection().execute(stmt.execution_options(yield_per=batch_size))
    try:
        parts = result.partitions()
        if questions:
            parts = (_with_answers(session, part, questions) for part in parts)
        rows = (row for part in parts for row in part)
        yield from _chunks(rows, names, batch_size, progress)
    finally:
        result.close()


def _with_answers(
    session: Session, part: Sequence[Sequence[Any]], questions: Sequence[QuestionSpec]
) -> list[tuple[Any, ...]]:
    """Rows that end with the attendee's id, with the id replaced by their answers' cells:
    one query for the answers of a whole batch."""
    found = answers_of(session, [row[-1] for row in part], questions)
    none = Answers()
    rows = []
    for row in part:
        answers = found.get(row[-1], none)
        cells = (
            answer_text(q, answers.values.get(q.key), answers.details.get(q.key)) for q in questions
        )
        rows.append((*row[:-1], *cells))
    return rows


#: The attendee directory's columns: what attendees see of one another.
DIRECTORY_COLUMNS = ("first_name", "last_name", "institution", "country", "role")


def iter_directory_csv(
    session: Session, event: Event, *, batch_size: int = BATCH_SIZE
) -> Iterator[str]:
    """The directory shared with attendees: confirmed registrants who agreed to appear on it
    (``list_consent_at``), by name; companions never appear."""
    header = io.StringIO()
    csv.writer(header, lineterminator="\r\n").writerow(DIRECTORY_COLUMNS)
    yield EXCEL_BOM + header.getvalue()
    stmt = (
        select(*(getattr(Attendee, name) for name in DIRECTORY_COLUMNS))
        .where(
            Attendee.event_id == event.id,
            Attendee.status == STATUS_CONFIRMED,
            Attendee.party_id.is_(None),
            Attendee.list_consent_at.is_not(None),
        )
        .order_by(Attendee.last_name, Attendee.first_name, Attendee.id)
    )
    result = session.connection().execute(stmt.execution_options(yield_per=batch_size))
    try:
        rows = (
            (first, last, institution, country_name(country), ROLES[role])
            for part in result.partitions()
            for first, last, institution, country, role in part
        )
        yield from _chunks(rows, DIRECTORY_COLUMNS, batch_size, None)
    finally:
        result.close()


#: Fields of an attendee that a printed badge shows (see badges_pdf.Badge).
PRINTED = (
    "code", "badge_name", "role", "institution", "country", "early_career", "party",
    "photo_consent",
)  # fmt: skip


def for_printing(filters: AttendeeFilters) -> AttendeeFilters:
    """Printed badges are for people who come: confirmed attendees, unless a status is chosen."""
    return filters if filters.status else replace(filters, status=STATUS_CONFIRMED)


def iter_badges(
    session: Session, event: Event, filters: AttendeeFilters, *, batch_size: int = BATCH_SIZE
) -> Iterator[Badge]:
    """The badges of the attendees ``filters`` selects, in list order, fetched in batches:
    one per person who takes a place (an infant in arms has none)."""
    printed = (_COMPUTED.get(n, getattr(Attendee, n, None)) for n in PRINTED)
    stmt = attendee_select(event, filters, *printed).where(Attendee.takes_place)
    result = session.execute(stmt.execution_options(yield_per=batch_size))
    try:
        for code, name, role, institution, country, early, party, photos in result:
            yield Badge(
                code, name, role, institution, country_name(country), early, party or "", photos
            )
    finally:
        result.close()


#: The payments CSV's columns (CONTRACT.md): one row per payment, and one per confirmed party
#: that owes and has paid nothing.
PAYMENT_COLUMNS = (
    "code", "first_name", "last_name", "amount_due", "amount_paid", "currency", "method",
    "reference", "paid_at", "receipt_number", "refunded",
)  # fmt: skip


def iter_payments_csv(session: Session, event: Event) -> Iterator[str]:
    """The treasurer's CSV: every payment of the event (``amount_paid`` is that payment's,
    so the column adds up; ``amount_due`` is the party's), then every confirmed party that
    owes a fee and has paid nothing (on its lead's row)."""
    header = io.StringIO()
    csv.writer(header, lineterminator="\r\n").writerow(PAYMENT_COLUMNS)
    yield EXCEL_BOM + header.getvalue()
    due, paid = party_totals(event.id)
    party_due = func.coalesce(due.c.due, 0)
    payments = (
        select(Attendee.code, Attendee.first_name, Attendee.last_name, party_due,
               Payment.amount, Payment.currency, Payment.method, Payment.reference,
               Payment.paid_at, Payment.receipt_number, Payment.refunded_at)
        .join(Attendee, Attendee.id == Payment.attendee_id)
        .outerjoin(due, due.c.party == PARTY)
        .where(Payment.event_id == event.id)
        .order_by(Payment.receipt_number)
    )  # fmt: skip
    owing = (
        select(Attendee.code, Attendee.first_name, Attendee.last_name, due.c.due)
        .join(due, due.c.party == Attendee.id)
        .outerjoin(paid, paid.c.party == Attendee.id)
        .where(due.c.due > 0, paid.c.paid.is_(None))
        .order_by(Attendee.created_at, Attendee.id)
    )
    currency = event.currency

    def money(minor: int, unit: str = currency) -> str:
        return str(from_minor(minor, unit)) if unit else str(minor)

    rows: list[list[Any]] = []
    for row in session.execute(payments):
        code, first, last, owed, amount, unit, method, reference, paid_at, number, back = row
        rows.append([code, first, last, money(owed, unit), money(amount, unit), unit, method,
                     reference, json_timestamp(paid_at), number,
                     "no" if back is None else "yes"])  # fmt: skip
    for code, first, last, owed in session.execute(owing):
        rows.append([code, first, last, money(owed), money(0), currency, "", "", "", "", "no"])
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(neutralised(row) for row in rows)
    yield buffer.getvalue()


def iter_credits_csv(session: Session, event: Event) -> Iterator[str]:
    """The CME office's CSV: each confirmed attendee checked in at program items, with the
    credits they add up to and the items' keys (certificates.credit_rows)."""
    from .certificates import CREDITS_COLUMNS, credit_rows

    header = io.StringIO()
    csv.writer(header, lineterminator="\r\n").writerow(CREDITS_COLUMNS)
    yield EXCEL_BOM + header.getvalue()
    rows = ([row[name] for name in CREDITS_COLUMNS] for row in credit_rows(session, event))
    yield from _chunks(rows, CREDITS_COLUMNS, BATCH_SIZE, None)
