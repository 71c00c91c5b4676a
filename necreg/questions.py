"""The event's own questions (``[[questions]]`` in the event file) and their answers.

One module holds the rules: what a question may be (``definitions``), what an answer to it
may be (``clean_answers``), how answers are stored (a row of Answer per answer, per choice
taken of a ``multi``) and shown (``answer_text``). The public form, the self-service page,
the CSV, the JSON and the attendee list's filter all read them from here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from .formats import LINE_CONTROLS, has_control_characters
from .models import (
    QUESTION_MAX_LENGTHS,
    QUESTION_TYPES,
    ROLES,
    Answer,
    Event,
    Question,
    utcnow,
)

KEY_RE = re.compile(r"^[a-z0-9_]{1,40}$")
#: The value of the "Other" choice of a question with ``other = true``.
OTHER = "other"
#: Types whose answers are choices (stored in Answer.choice, the list filters by them).
CHOICE_TYPES = ("choice", "multi", "yes_no")
YES_NO = (("yes", "Yes"), ("no", "No"))
#: The label of the "Other" choice and of its text.
OTHER_LABEL = "Other"
OTHER_TEXT_LABEL = "If other, please say what"

#: What an answer is in Python: text, a choice's value, several values, or yes/no.
AnswerValue = str | tuple[str, ...] | bool


class QuestionError(ValueError):
    """A question's definition is not valid; the message names the question and the problem."""


@dataclass(frozen=True)
class QuestionSpec:
    """A question as the pages and rules need it: plain values, safe to keep between requests."""

    id: int
    key: str
    label: str
    type: str
    choices: tuple[tuple[str, str], ...] = ()
    other: bool = False
    required: bool = False
    roles: tuple[str, ...] = ()
    sensitive: bool = False
    help: str = ""

    @property
    def name(self) -> str:
        """The form input and CSV column: ``q_<key>``."""
        return f"q_{self.key}"

    @property
    def other_name(self) -> str:
        """The form input of the "Other" text."""
        return f"q_{self.key}_other"

    @property
    def anchor(self) -> str:
        """The id of the question's first input, where a message about it links to."""
        return self.name if self.type in ("text", "textarea") else f"{self.name}-0"

    @property
    def is_choice(self) -> bool:
        return self.type in CHOICE_TYPES

    @property
    def options(self) -> tuple[tuple[str, str], ...]:
        """(value, label) of every choice offered, "Other" last."""
        if self.type == "yes_no":
            return YES_NO
        return self.choices + (((OTHER, OTHER_LABEL),) if self.other else ())

    def asked_of(self, role: str | None) -> bool:
        return not self.roles or role in self.roles

    def roles_label(self) -> str:
        """Who is asked, e.g. "Patient-family and Advocate"; empty when everyone is."""
        return " and ".join(ROLES[role] for role in self.roles)

    def choice_label(self, value: str) -> str:
        return dict(self.options).get(value, value)


@dataclass(frozen=True)
class Answers:
    """A registrant's answers by question key, and the texts given with "Other"."""

    values: Mapping[str, AnswerValue] = field(default_factory=dict)
    details: Mapping[str, str] = field(default_factory=dict)

    def form_values(self, questions: Iterable[QuestionSpec]) -> dict[str, list[str]]:
        """The answers as a form would send them: input name -> values."""
        shown: dict[str, list[str]] = {}
        for question in questions:
            value = self.values.get(question.key)
            if value is None:
                continue
            if isinstance(value, bool):
                shown[question.name] = ["yes" if value else "no"]
            elif isinstance(value, tuple):
                shown[question.name] = list(value)
            else:
                shown[question.name] = [value]
            if question.key in self.details:
                shown[question.other_name] = [self.details[question.key]]
        return shown

    def as_json(self) -> dict[str, Any]:
        """``{"<key>": value}``: text, a choice, a list of choices or true/false; the text of
        an "Other" as ``"<key>_other"``."""
        out: dict[str, Any] = {}
        for key, value in self.values.items():
            out[key] = list(value) if isinstance(value, tuple) else value
            if key in self.details:
                out[f"{key}_other"] = self.details[key]
        return out


# --- definitions --------------------------------------------------------------------------

_DEFINITION_KEYS = {
    "key", "label", "type", "choices", "other", "required", "roles", "sensitive", "help",
}  # fmt: skip


def _text(item: Mapping[str, Any], name: str, where: str, *, required: bool = False) -> str:
    value = item.get(name, "")
    limit = QUESTION_MAX_LENGTHS[name]
    if not isinstance(value, str) or len(value.strip()) > limit:
        raise QuestionError(f"{where}: {name} must be text of at most {limit} characters")
    if required and not value.strip():
        raise QuestionError(f"{where}: {name} is required")
    return value.strip()


def _flag(item: Mapping[str, Any], name: str, where: str) -> bool:
    value = item.get(name, False)
    if not isinstance(value, bool):
        raise QuestionError(f"{where}: {name} must be true or false")
    return value


def _choices(item: Mapping[str, Any], where: str, other: bool) -> list[dict[str, str]]:
    """``choices``: a list of labels (each its own value), or of {value, label} tables."""
    raw = item.get("choices")
    if not isinstance(raw, list) or not raw:
        raise QuestionError(f"{where}: choices must be a list of at least one choice")
    choices: list[dict[str, str]] = []
    for entry in raw:
        if isinstance(entry, str):
            value = label = entry.strip()
        elif isinstance(entry, dict) and set(entry) <= {"value", "label"}:
            value = str(entry.get("value", "")).strip()
            label = str(entry.get("label", value)).strip()
        else:
            raise QuestionError(f"{where}: each choice is a text or a {{value, label}} table")
        if not value or len(value) > QUESTION_MAX_LENGTHS["choice"]:
            limit = QUESTION_MAX_LENGTHS["choice"]
            raise QuestionError(f"{where}: a choice's value must have 1 to {limit} characters")
        if len(label) > QUESTION_MAX_LENGTHS["choice_label"]:
            limit = QUESTION_MAX_LENGTHS["choice_label"]
            raise QuestionError(f"{where}: a choice's label must have at most {limit} characters")
        if any(c["value"] == value for c in choices) or (other and value == OTHER):
            raise QuestionError(f"{where}: the choice {value!r} is offered twice")
        choices.append({"value": value, "label": label})
    return choices


def definition(item: Any, where: str = "question") -> dict[str, Any]:
    """Check one question's definition (a ``[[questions]]`` table, or the settings form's
    values) and return its Question column values (all but ``position``)."""
    if not isinstance(item, dict):
        raise QuestionError(f"{where} must be a table")
    unknown = sorted(set(item) - _DEFINITION_KEYS)
    if unknown:
        raise QuestionError(f"{where}: unknown key(s): {', '.join(unknown)}")
    key = item.get("key")
    if not isinstance(key, str) or not KEY_RE.match(key):
        raise QuestionError(f"{where}: key must be 1 to 40 of a-z, 0-9 and _, e.g. dietary")
    where = f"question {key}"
    kind = item.get("type", "text")
    if kind not in QUESTION_TYPES:
        raise QuestionError(f"{where}: type must be one of {', '.join(QUESTION_TYPES)}")
    other = _flag(item, "other", where)
    if other and kind not in ("choice", "multi"):
        raise QuestionError(f"{where}: only choice and multi questions can offer other")
    if kind in ("choice", "multi"):
        choices = _choices(item, where, other)
    elif "choices" in item:
        raise QuestionError(f"{where}: only choice and multi questions have choices")
    else:
        choices = []
    roles = item.get("roles", [])
    if not isinstance(roles, list) or any(role not in ROLES for role in roles):
        raise QuestionError(f"{where}: roles must be a list of {', '.join(ROLES)}")
    return {
        "key": key,
        "label": _text(item, "label", where, required=True),
        "help": _text(item, "help", where),
        "type": kind,
        "choices": choices,
        "other": other,
        "required": _flag(item, "required", where),
        "roles": [role for role in ROLES if role in roles],
        "sensitive": _flag(item, "sensitive", where),
    }


def definitions(items: Any) -> list[dict[str, Any]]:
    """Check the event file's ``[[questions]]``; their order is the form's order."""
    if not isinstance(items, list):
        raise QuestionError("questions must be a list of [[questions]] tables")
    checked = [definition(item, f"question {n}") for n, item in enumerate(items, start=1)]
    keys = [d["key"] for d in checked]
    for key in keys:
        if keys.count(key) > 1:
            raise QuestionError(f"question {key}: the key is used twice")
        for d in checked:
            if d["other"] and f"{d['key']}_other" == key:
                raise QuestionError(f"question {key}: the key is {d['key']}'s Other text")
    return checked


# --- questions of an event -----------------------------------------------------------------


def spec(question: Question) -> QuestionSpec:
    return QuestionSpec(
        id=question.id,
        key=question.key,
        label=question.label,
        type=question.type,
        choices=tuple((c["value"], c["label"]) for c in question.choices or ()),
        other=question.other,
        required=question.required,
        roles=tuple(question.roles or ()),
        sensitive=question.sensitive,
        help=question.help,
    )


def event_questions(
    session: Session, event_id: int, *, retired: bool = False
) -> tuple[QuestionSpec, ...]:
    """The questions ``event_id`` asks, in form order (with ``retired``: also those no longer
    asked, which still have answers to show)."""
    stmt = select(Question).where(Question.event_id == event_id)
    if not retired:
        stmt = stmt.where(Question.retired_at.is_(None))
    stmt = stmt.order_by(Question.retired_at.is_not(None), Question.position, Question.id)
    return tuple(spec(q) for q in session.execute(stmt).scalars())


def _has_answers(session: Session, question_id: int) -> bool:
    found = select(Answer.id).where(Answer.question_id == question_id).limit(1)
    return session.execute(found).first() is not None


def save_question(
    session: Session, question: Question, values: Mapping[str, Any]
) -> dict[str, list[Any]]:
    """Change a question to ``values`` (``definition``'s); return {field: [old, new]}.

    A question that has answers keeps its key and type (QuestionError): its answers would
    otherwise mean something else. A choice that has answers cannot be taken away either.
    """
    changes = {k: [getattr(question, k), v] for k, v in values.items() if getattr(question, k) != v}
    if {"key", "type"} & set(changes) and _has_answers(session, question.id):
        raise QuestionError(
            f"question {question.key}: it has answers, so its key and type stay as they are"
        )
    if {"choices", "other"} & set(changes) and question.type in ("choice", "multi"):
        offered = {c["value"] for c in values.get("choices", question.choices)}
        if values.get("other", question.other):
            offered.add(OTHER)
        taken = session.execute(
            select(Answer.choice)
            .where(Answer.question_id == question.id, Answer.choice.not_in(offered))
            .limit(1)
        ).first()
        if taken is not None:
            raise QuestionError(
                f"question {question.key}: the choice {taken[0]!r} has answers and must stay"
            )
    if question.retired_at is not None and "retired_at" not in values:
        changes["retired_at"] = [question.retired_at, None]  # asked again
    for name, (_old, new) in changes.items():
        setattr(question, name, new)
    return changes


def sync_questions(
    session: Session,
    event: Event,
    items: Sequence[Mapping[str, Any]],
    *,
    now: datetime | None = None,
) -> bool:
    """Make ``event`` ask the questions ``items`` (``definitions``), in their order: new ones
    added, others changed (``save_question``'s rules), those not named retired with their
    answers kept. Return whether anything changed."""
    now = now or utcnow()
    existing = {
        q.key: q
        for q in session.execute(select(Question).where(Question.event_id == event.id)).scalars()
    }
    changed = False
    for position, values in enumerate(items):
        question = existing.pop(values["key"], None)
        if question is None:
            session.add(Question(event_id=event.id, position=position, **values))
            changed = True
            continue
        changes = save_question(session, question, {**values, "position": position})
        changed = changed or bool(changes)
    for question in existing.values():
        if question.retired_at is None:
            question.retired_at = now
            changed = True
    session.flush()
    return changed


# --- answers --------------------------------------------------------------------------------


def _written(question: QuestionSpec, raw: str, errors: dict[str, str]) -> str:
    kind = "textarea" if question.type == "textarea" else "text"
    text = raw.strip()
    limit = QUESTION_MAX_LENGTHS[kind]
    if len(text) > limit:
        errors[question.key] = f"Please use at most {limit} characters."
    elif has_control_characters(text, LINE_CONTROLS if kind == "textarea" else ""):
        errors[question.key] = "Please remove tabs and other control characters."
    return text


def _first(form: Mapping[str, Any], name: str) -> str:
    values = _getlist(form, name)
    return values[0] if values else ""


def _getlist(form: Mapping[str, Any], name: str) -> list[str]:
    if hasattr(form, "getlist"):
        return [str(v) for v in form.getlist(name)]
    value = form.get(name)
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list | tuple) else [str(value)]


def clean_answers(
    questions: Iterable[QuestionSpec], role: str | None, form: Mapping[str, Any]
) -> tuple[Answers, dict[str, str]]:
    """The answers in ``form`` (input name -> value or values, as a form sends them) to the
    questions asked of ``role``, and a message per question key for each that is wrong.

    Questions not asked of the role are left out, whatever the form holds.
    """
    values: dict[str, AnswerValue] = {}
    details: dict[str, str] = {}
    errors: dict[str, str] = {}
    for question in questions:
        if not question.asked_of(role):
            continue
        offered = {value for value, _label in question.options}
        if question.type in ("text", "textarea"):
            text = _written(question, _first(form, question.name), errors)
            if text and question.key not in errors:
                values[question.key] = text
        elif question.type == "multi":
            chosen = tuple(dict.fromkeys(v for v in _getlist(form, question.name) if v))
            if any(v not in offered for v in chosen):
                errors[question.key] = "Please choose from the choices offered."
            elif chosen:
                values[question.key] = chosen
        else:
            chosen = _first(form, question.name)
            if chosen and chosen not in offered:
                errors[question.key] = "Please choose one of the choices offered."
            elif chosen:
                values[question.key] = (chosen == "yes") if question.type == "yes_no" else chosen
        taken = values.get(question.key)
        if question.other and (taken == OTHER or (isinstance(taken, tuple) and OTHER in taken)):
            detail = _written(question, _first(form, question.other_name), errors)
            if question.key in errors:
                continue
            if not detail:
                errors[question.key] = f"Please say what “{OTHER_LABEL}” is."
            details[question.key] = detail
        if question.required and question.key not in values and question.key not in errors:
            errors[question.key] = (
                "Please answer this question."
                if question.type in ("text", "textarea")
                else "Please choose an answer."
            )
    return Answers(values, details), errors


def sent_values(questions: Iterable[QuestionSpec], form: Mapping[str, Any]) -> dict[str, list[str]]:
    """What a form sent for ``questions``, to show again with its errors."""
    names = [name for q in questions for name in (q.name, q.other_name)]
    return {name: _getlist(form, name) for name in names}


def error_links(
    questions: Iterable[QuestionSpec], errors: Mapping[str, str]
) -> list[tuple[str, str, str]]:
    """(anchor, label, message) of each question with an error, in form order: the lines of a
    page's error summary."""
    return [(q.anchor, q.label, errors[q.key]) for q in questions if q.key in errors]


def _chosen(value: AnswerValue) -> tuple[str, ...]:
    """The choice values of a choice-like answer: yes/no, one choice or several."""
    if isinstance(value, bool):
        return ("yes" if value else "no",)
    return value if isinstance(value, tuple) else (value,)


def answer_rows(
    question: QuestionSpec, value: AnswerValue, detail: str | None
) -> list[dict[str, Any]]:
    """The Answer rows (``choice`` and ``text``; the ids are the caller's) of one answer."""
    if not question.is_choice:
        return [{"choice": None, "text": value}]
    return [{"choice": c, "text": detail if c == OTHER else None} for c in _chosen(value)]


def answer_text(
    question: QuestionSpec,
    value: AnswerValue | None,
    detail: str | None,
    *,
    labels: bool = False,
) -> str:
    """An answer as a person reads it: several choices joined with ``; ``, and "other: <text>".
    Choices as their values (the CSV cell, the audit trail: yes, no, vegan), or with
    ``labels`` as the form words them (the pages: Yes, No, Vegan)."""
    if value is None:
        return ""
    if not question.is_choice:
        return str(value)
    words = question.choice_label if labels else str
    return "; ".join(
        f"{words(c)}: {detail}" if c == OTHER and detail else words(c) for c in _chosen(value)
    )


def _read(
    rows: Iterable[tuple[int, int, str | None, str | None]],
    by_id: Mapping[int, QuestionSpec],
) -> dict[int, Answers]:
    """Answers per attendee id from (attendee_id, question_id, choice, text) rows in id order."""
    gathered: dict[int, tuple[dict[str, Any], dict[str, str]]] = {}
    for attendee_id, question_id, choice, text in rows:
        question = by_id.get(question_id)
        if question is None:
            continue
        values, details = gathered.setdefault(attendee_id, ({}, {}))
        if question.type in ("text", "textarea"):
            values[question.key] = text or ""
        elif question.type == "yes_no":
            values[question.key] = choice == "yes"
        elif question.type == "multi":
            values[question.key] = (*values.get(question.key, ()), choice)
        else:
            values[question.key] = choice
        if choice == OTHER and text:
            details[question.key] = text
    return {aid: Answers(values, details) for aid, (values, details) in gathered.items()}


_ANSWER_COLUMNS = (Answer.attendee_id, Answer.question_id, Answer.choice, Answer.text)


def answers_of(
    session: Session, attendee_ids: Sequence[int], questions: Iterable[QuestionSpec]
) -> dict[int, Answers]:
    """The stored answers of these attendees to ``questions``, by attendee id."""
    by_id = {q.id: q for q in questions}
    if not attendee_ids or not by_id:
        return {}
    rows = session.execute(
        select(*_ANSWER_COLUMNS)
        .where(Answer.attendee_id.in_(attendee_ids), Answer.question_id.in_(by_id))
        .order_by(Answer.attendee_id, Answer.question_id, Answer.id)
    )
    return _read(rows, by_id)


def save_answers(
    session: Session,
    attendee_id: int,
    questions: Iterable[QuestionSpec],
    answers: Answers,
    *,
    replace: bool = True,
) -> dict[str, list[str]]:
    """Store ``answers`` of an attendee to ``questions`` (those answers stand for the whole of
    them: a question left unanswered loses its old answer). Return {"q_<key>": [old, new]}
    of the answers that changed, as text, for the audit trail.

    ``replace=False`` skips reading and deleting old answers: for a new registration.
    """
    asked = tuple(questions)
    old = (
        answers_of(session, [attendee_id], asked).get(attendee_id, Answers())
        if replace
        else Answers()
    )
    changes: dict[str, list[str]] = {}
    changed_ids: list[int] = []
    for question in asked:
        before = answer_text(question, old.values.get(question.key), old.details.get(question.key))
        after = answer_text(
            question, answers.values.get(question.key), answers.details.get(question.key)
        )
        if before != after:
            changes[question.name] = [before, after]
            changed_ids.append(question.id)
    if replace and changed_ids:
        session.execute(
            delete(Answer).where(
                Answer.attendee_id == attendee_id, Answer.question_id.in_(changed_ids)
            )
        )
    rows = [
        {"attendee_id": attendee_id, "question_id": question.id, **row}
        for question in asked
        if question.id in changed_ids and question.key in answers.values
        for row in answer_rows(
            question, answers.values[question.key], answers.details.get(question.key)
        )
    ]
    if rows:
        session.execute(Answer.__table__.insert(), rows)
    return changes
