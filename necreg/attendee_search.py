"""The attendee query shared by the organizer list, the badge CSV and ``necreg export-badges``.

Search matches part of the name, e-mail, institution, code or badge name, ignoring letter case
and accents, on any database: each word is folded (folding.py) and looked for with ``LIKE`` in
the registration's ``search_text``, which holds those fields folded the same way.

The organizer list reads one page in sort order (an index on the default sort lets the database
stop once the page is full) and counts matches only up to COUNT_LIMIT: a common word matches a
third of a large event, and counting all of those on every page costs far more than the page.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any, Protocol

from sqlalchemy import ColumnElement, Row, Select, bindparam, func, select
from sqlalchemy.orm import Session, aliased

from .countries import country_names
from .folding import fold
from .formats import has_control_characters, parse_yes_no
from .models import (
    ROLES,
    STATUS_CANCELLED,
    STATUS_CONFIRMED,
    STATUS_WAITLISTED,
    STATUSES,
    Answer,
    Attendee,
    Payment,
    ProgramItem,
    ProgramSignup,
    Question,
)
from .program import KEY_RE as PROGRAM_KEY_RE
from .questions import KEY_RE, QuestionSpec

#: Sort keys offered in the list: name -> columns (the id last keeps pages stable).
SORTS: dict[str, tuple[Any, ...]] = {
    "name": (Attendee.last_name, Attendee.first_name),
    "registered": (Attendee.created_at,),
    "institution": (Attendee.institution, Attendee.last_name),
    "country": (Attendee.country, Attendee.last_name),
    "role": (Attendee.role, Attendee.last_name),
    "status": (Attendee.status, Attendee.last_name),
    "code": (Attendee.code,),
    "checked_in": (Attendee.checked_in_at,),
}
SORT_LABELS = {
    "name": "Name",
    "registered": "Registered",
    "institution": "Institution",
    "country": "Country",
    "role": "Role",
    "status": "Status",
    "code": "Code",
    "checked_in": "Checked in",
}
#: Payment states the list filters by (``payment``), of the attendee's party (the lead pays
#: for it): still owing, paid in full, with no fee, with a payment refunded.
PAYMENT_STATES = {
    "owing": "Still owes",
    "paid": "Paid in full",
    "free": "No fee",
    "refunded": "Refunded",
}
MAX_QUERY = 200
#: The list counts matches up to this many and above says "more than" (exact on request).
COUNT_LIMIT = 1000
#: What the organizer list shows of each attendee (rows, not ORM objects: a read-only page).
LIST_COLUMNS = (
    Attendee.id,
    Attendee.code,
    Attendee.first_name,
    Attendee.last_name,
    Attendee.early_career,
    Attendee.email,
    Attendee.role,
    Attendee.institution,
    Attendee.country,
    Attendee.status,
    Attendee.checked_in_at,
    Attendee.created_at,
)


class EventRef(Protocol):
    """An event, or what stands for one in a page: the queries need only its ``id``."""

    id: int


class FilterError(ValueError):
    """A filter value that makes no sense; ``str(exc)`` says which and why."""


@dataclass(frozen=True)
class AttendeeFilters:
    q: str = ""
    role: str = ""
    status: str = ""
    #: None: either; True/False: only those who are / are not.
    early_career: bool | None = None
    checked_in: bool | None = None
    country: str = ""
    #: One of PAYMENT_STATES, or "" for any.
    payment: str = ""
    #: (question key, choice): only attendees who took that choice, for each pair.
    answers: tuple[tuple[str, str], ...] = ()
    #: (program item key, signup status): only those with a place at the item ("confirmed")
    #: or on its waiting list ("waitlisted"); None: any.
    program: tuple[str, str] | None = None
    sort: str = "registered"
    descending: bool = False

    def as_args(self) -> dict[str, str]:
        """The query-string form, for links that keep the filters (empty values left out)."""
        args = {
            "q": self.q,
            "role": self.role,
            "status": self.status,
            "early_career": _yes_no(self.early_career),
            "checked_in": _yes_no(self.checked_in),
            "country": self.country,
            "payment": self.payment,
            **{f"q_{key}": choice for key, choice in self.answers},
            "program": _program_arg(self.program),
            "sort": self.sort if self.sort != "registered" else "",
            "order": "desc" if self.descending else "",
        }
        return {k: v for k, v in args.items() if v}

    def with_sort(self, sort: str) -> AttendeeFilters:
        """The same filters sorted by ``sort``; again by the same key flips the order."""
        return replace(
            self, sort=sort, descending=not self.descending if sort == self.sort else False
        )


def _program_arg(program: tuple[str, str] | None) -> str:
    """``program``'s query value: the item's key, with ``:waitlisted`` for its waiting list."""
    if program is None:
        return ""
    key, status = program
    return key if status == STATUS_CONFIRMED else f"{key}:{status}"


def _program_filter(raw: str) -> tuple[str, str] | None:
    """``program=<key>`` (a place at the item) or ``program=<key>:waitlisted``."""
    raw = raw.strip()
    if not raw:
        return None
    key, _, status = raw.partition(":")
    if not PROGRAM_KEY_RE.match(key) or status not in ("", STATUS_WAITLISTED):
        raise FilterError(
            f"program must be a program item's key, with :waitlisted for its waiting list,"
            f" not {raw!r}."
        )
    return key, status or STATUS_CONFIRMED


def _yes_no(value: bool | None) -> str:
    return "" if value is None else ("yes" if value else "no")


def _tristate(name: str, raw: str) -> bool | None:
    """yes, no, or either (empty or "any")."""
    if raw.strip().lower() == "any":
        return None
    try:
        return parse_yes_no(raw)
    except ValueError:
        raise FilterError(f"{name} must be yes, no or empty, not {raw!r}.") from None


def _answer_filters(
    args: Mapping[str, str], questions: Sequence[QuestionSpec] | None
) -> tuple[tuple[str, str], ...]:
    """``q_<key>=<choice>`` arguments: a choice-like question of ``questions`` (when given)
    and one of its choices."""
    known = {q.key: q for q in questions} if questions is not None else None
    found = []
    for name in sorted(n for n in args if n.startswith("q_")):
        key, choice = name[2:], str(args.get(name, "")).strip()
        if not choice:
            continue
        if not KEY_RE.match(key) or (known is not None and key not in known):
            raise FilterError(f"No question {key!r} to filter by.")
        if known is not None:
            question = known[key]
            if not question.is_choice:
                raise FilterError(f"Only questions with choices filter the list, not {key!r}.")
            if choice not in dict(question.options):
                offered = ", ".join(value for value, _label in question.options)
                raise FilterError(f"{key} has no choice {choice!r}; choices: {offered}.")
        found.append((key, choice))
    return tuple(found)


def parse_filters(
    args: Mapping[str, str], questions: Sequence[QuestionSpec] | None = None
) -> AttendeeFilters:
    """Read filters from a query string (or CLI options); FilterError for values that are wrong.

    ``questions``: the event's, which ``q_<key>`` filters must name (None: not checked)."""
    q = " ".join(str(args.get("q", "")).split())
    if len(q) > MAX_QUERY:
        raise FilterError(f"The search text is longer than {MAX_QUERY} characters.")
    if has_control_characters(q):  # PostgreSQL refuses a NUL in a text
        raise FilterError("The search text holds control characters; please type it again.")
    role = str(args.get("role", "")).strip()
    if role and role not in ROLES:
        raise FilterError(f"Unknown role {role!r}; roles: {', '.join(ROLES)}.")
    status = str(args.get("status", "")).strip()
    if status and status not in STATUSES:
        raise FilterError(f"Unknown status {status!r}; statuses: {', '.join(STATUSES)}.")
    country = str(args.get("country", "")).strip().upper()
    if country and country not in country_names():
        raise FilterError(f"Unknown country code {country!r}; use ISO codes such as US or DE.")
    payment = str(args.get("payment", "")).strip()
    if payment and payment not in PAYMENT_STATES:
        raise FilterError(
            f"Unknown payment state {payment!r}; states: {', '.join(PAYMENT_STATES)}."
        )
    sort = str(args.get("sort", "") or "registered").strip()
    if sort not in SORTS:
        raise FilterError(f"Cannot sort by {sort!r}; choose one of: {', '.join(SORTS)}.")
    order = str(args.get("order", "")).strip().lower()
    if order not in {"", "asc", "desc"}:
        raise FilterError(f"order must be asc or desc, not {order!r}.")
    return AttendeeFilters(
        q=q,
        role=role,
        status=status,
        early_career=_tristate("early_career", str(args.get("early_career", ""))),
        checked_in=_tristate("checked_in", str(args.get("checked_in", ""))),
        country=country,
        payment=payment,
        answers=_answer_filters(args, questions),
        program=_program_filter(str(args.get("program", ""))),
        sort=sort,
        descending=order == "desc",
    )


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _like_pattern(word: str) -> str:
    return f"%{_escape_like(fold(word))}%"


def word_matches(word: str) -> ColumnElement[bool]:
    """The registration's name, e-mail, institution, code or badge name contains ``word``,
    ignoring letter case and accents (both sides folded the same way, see folding.py)."""
    return Attendee.search_text.like(_like_pattern(word), escape="\\")


def _shape(filters: AttendeeFilters) -> tuple[Any, ...]:
    """What the statements of ``filters`` depend on besides values: which filters, how many
    words, how sorted."""
    words = len(filters.q.split(" ")) if filters.q else 0
    return (
        words,
        bool(filters.role),
        bool(filters.status),
        filters.early_career,
        filters.checked_in,
        bool(filters.country),
        filters.payment,
        len(filters.answers),
        filters.program is not None,
        filters.sort,
        filters.descending,
    )


def _where(shape: tuple[Any, ...]) -> list[Any]:
    """The conditions of filters of this shape, their values left as parameters (_values):
    the one rule of what matches."""
    words, role, status, early_career, checked_in, country, payment, answers, program, *_ = shape
    where: list[Any] = [Attendee.event_id == bindparam("event")]
    # Every word must be found.
    where += [Attendee.search_text.like(bindparam(f"w{n}"), escape="\\") for n in range(words)]
    if role:
        where.append(Attendee.role == bindparam("role"))
    if status:
        where.append(Attendee.status == bindparam("status"))
    if early_career is not None:
        where.append(Attendee.early_career.is_(early_career))
    if checked_in is not None:
        column = Attendee.checked_in_at
        where.append(column.is_not(None) if checked_in else column.is_(None))
    if country:
        where.append(Attendee.country == bindparam("country"))
    if payment:
        where.append(_payment_state(payment))
    # Took the choice: among the attendees of the answer rows of the question (found by key)
    # with that choice, which the index on (question_id, choice, attendee_id) lists.
    for n in range(answers):
        question = select(Question.id).where(
            Question.event_id == bindparam("event"), Question.key == bindparam(f"ak{n}")
        )
        took = select(Answer.attendee_id).where(
            Answer.question_id == question.scalar_subquery(),
            Answer.choice == bindparam(f"av{n}"),
        )
        where.append(Attendee.id.in_(took))
    if program:  # signed up for the item (found by key), with a place or waiting
        signed_up = (
            select(ProgramSignup.attendee_id)
            .join(ProgramItem, ProgramItem.id == ProgramSignup.item_id)
            .where(
                ProgramItem.event_id == bindparam("event"),
                ProgramItem.key == bindparam("program_key"),
                ProgramSignup.status == bindparam("program_status"),
            )
        )
        where.append(Attendee.id.in_(signed_up))
    return where


def _payment_state(state: str) -> ColumnElement[bool]:
    """The attendee's party is in payment ``state`` (PAYMENT_STATES): its fees (of members
    not cancelled) against its payments kept, or a payment of it refunded."""
    member, payer = aliased(Attendee), aliased(Attendee)
    party = func.coalesce(Attendee.party_id, Attendee.id)
    due = (
        select(func.coalesce(func.sum(member.amount_due), 0))
        .where(
            func.coalesce(member.party_id, member.id) == party, member.status != STATUS_CANCELLED
        )
        .scalar_subquery()
    )
    payments = select(Payment.id).join(payer, payer.id == Payment.attendee_id)
    payments = payments.where(func.coalesce(payer.party_id, payer.id) == party)
    if state == "refunded":
        return payments.where(Payment.refunded_at.is_not(None)).exists()
    paid = (
        select(func.coalesce(func.sum(Payment.amount), 0))
        .join(payer, payer.id == Payment.attendee_id)
        .where(func.coalesce(payer.party_id, payer.id) == party, Payment.refunded_at.is_(None))
        .scalar_subquery()
    )
    if state == "free":
        return due == 0
    if state == "paid":
        return (due > 0) & (paid >= due)
    return due > paid  # owing


def _values(event: EventRef, filters: AttendeeFilters) -> dict[str, Any]:
    """The parameters of ``_where(_shape(filters))``."""
    values: dict[str, Any] = {"event": event.id}
    for n, word in enumerate(filters.q.split(" ") if filters.q else []):
        values[f"w{n}"] = _like_pattern(word)
    for name in ("role", "status", "country"):
        if getattr(filters, name):
            values[name] = getattr(filters, name)
    for n, (key, choice) in enumerate(filters.answers):
        values[f"ak{n}"], values[f"av{n}"] = key, choice
    if filters.program is not None:
        values["program_key"], values["program_status"] = filters.program
    return values


def _order(shape: tuple[Any, ...]) -> list[Any]:
    *_filters, sort, descending = shape
    keys = [*SORTS[sort], Attendee.id]
    return [key.desc() for key in keys] if descending else keys


def _count(where: list[Any]) -> Select[Any]:
    return select(func.count()).select_from(Attendee).where(*where)


def _bounded_count(where: list[Any]) -> Select[Any]:
    matches = select(Attendee.id).where(*where).limit(COUNT_LIMIT + 1).subquery()
    return select(func.count()).select_from(matches)


def attendee_select(event: EventRef, filters: AttendeeFilters, *columns: Any) -> Select[Any]:
    """SELECT ``columns`` (default: whole Attendee rows) matching ``filters``, sorted."""
    shape = _shape(filters)
    stmt = select(*(columns or (Attendee,))).where(*_where(shape)).order_by(*_order(shape))
    return stmt.params(_values(event, filters))


def count_select(event: EventRef, filters: AttendeeFilters) -> Select[Any]:
    return _count(_where(_shape(filters))).params(_values(event, filters))


def bounded_count_select(event: EventRef, filters: AttendeeFilters) -> Select[Any]:
    """How many attendees match, counted up to COUNT_LIMIT + 1 (more means "more than")."""
    return _bounded_count(_where(_shape(filters))).params(_values(event, filters))


@dataclass(frozen=True)
class ListPage:
    """One page of the organizer list and how many attendees match in all."""

    items: Sequence[Row[Any]]
    page: int
    per_page: int
    #: The number of matches, or COUNT_LIMIT when ``total_exact`` is false: more than that match.
    total: int
    total_exact: bool
    has_next: bool

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def prev_num(self) -> int:
        return self.page - 1

    @property
    def next_num(self) -> int:
        return self.page + 1

    @property
    def pages(self) -> int | None:
        """The number of pages, or None when only a lower bound of the total is known."""
        return max(1, -(-self.total // self.per_page)) if self.total_exact else None


@dataclass(frozen=True)
class _ListStatements:
    """The organizer list's statements for one shape of filters, with the values left as
    parameters: built once, then only run (building one costs about as much as running it)."""

    page: Select[Any]
    bounded_count: Select[Any]
    count: Select[Any]


@lru_cache(maxsize=256)
def _list_statements(shape: tuple[Any, ...]) -> _ListStatements:
    where = _where(shape)
    page = (
        select(*LIST_COLUMNS)
        .where(*where)
        .order_by(*_order(shape))
        .limit(bindparam("limit"))
        .offset(bindparam("offset"))
    )
    return _ListStatements(
        page=page,
        bounded_count=_bounded_count(where),
        count=_count(where),
    )


def list_page(
    session: Session,
    event: EventRef,
    filters: AttendeeFilters,
    page: int,
    per_page: int,
    exact_total: bool = False,
) -> ListPage:
    """Page ``page`` (from 1) of the attendees matching ``filters``, with their number: exact up
    to COUNT_LIMIT, above it only "more than COUNT_LIMIT" unless ``exact_total`` is asked for.

    One query for the page (a row more than shown, to know whether a next page exists) and at
    most one for the count, which is skipped when the page itself tells the total. The
    statements are those of ``attendee_select`` and ``bounded_count_select``, built once per
    shape of filters.
    """
    statements = _list_statements(_shape(filters))
    values = _values(event, filters)
    offset = (page - 1) * per_page
    rows = session.execute(
        statements.page, {**values, "limit": per_page + 1, "offset": offset}
    ).all()
    has_next = len(rows) > per_page
    items = rows[:per_page]
    seen = offset + len(items)
    if not has_next and (items or page == 1):
        total, exact = seen, True  # the last page: everything before it matched too
    elif exact_total:
        total = session.execute(statements.count, values).scalar_one()
        exact = True
    elif seen > COUNT_LIMIT:
        total, exact = COUNT_LIMIT, False
    else:
        total = session.execute(statements.bounded_count, values).scalar_one()
        exact = total <= COUNT_LIMIT
        total = min(total, COUNT_LIMIT)
    return ListPage(items, page, per_page, total, exact, has_next)
