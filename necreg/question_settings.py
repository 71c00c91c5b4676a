"""An organizer's changes to the event's questions (``/organizer/questions``): add one, change
its label, help and rules, move it up or down the form, retire it, ask it again.

The same rules hold as when the event file is loaded (questions.py): a question with answers
keeps its key, its type and every choice someone took. Each change moves the event's
``updated_at``, so the pages that show the questions are made again everywhere. Loading the
event file again makes the questions the file's: it is the source when both are used.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .models import Event, Question, utcnow
from .questions import QuestionError, definition, save_question

#: Written between a choice's value and its label on the form's list of choices.
CHOICE_SEPARATOR = "|"


def choices_from_text(text: str) -> list[str | dict[str, str]]:
    """The choices typed one per line: ``Label`` (its own value) or ``value | Label``."""
    choices: list[str | dict[str, str]] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        if CHOICE_SEPARATOR in line:
            value, label = line.split(CHOICE_SEPARATOR, 1)
            choices.append({"value": value.strip(), "label": label.strip()})
        else:
            choices.append(line.strip())
    return choices


def choices_as_text(choices: Sequence[Mapping[str, str]]) -> str:
    """A question's choices one per line, as ``choices_from_text`` reads them back."""
    return "\n".join(
        c["label"] if c["value"] == c["label"] else f"{c['value']} {CHOICE_SEPARATOR} {c['label']}"
        for c in choices
    )


def _questions(session: Session, event: Event) -> list[Question]:
    """The event's questions asked, in form order."""
    return list(
        session.execute(
            select(Question)
            .where(Question.event_id == event.id, Question.retired_at.is_(None))
            .order_by(Question.position, Question.id)
        ).scalars()
    )


def _check_key(session: Session, event: Event, values: Mapping[str, Any], own: int | None) -> None:
    """A key is the event's once, and never the "Other" text input of another question."""
    others = session.execute(
        select(Question.id, Question.key, Question.other, Question.retired_at).where(
            Question.event_id == event.id
        )
    ).all()
    key = values["key"]
    for question_id, other_key, has_other, retired_at in others:
        if question_id == own:
            continue
        if other_key == key:
            hint = " (a retired question: ask it again instead)" if retired_at else ""
            raise QuestionError(f"question {key}: the key is taken{hint}")
        if has_other and key == f"{other_key}_other":
            raise QuestionError(f"question {key}: the key is {other_key}'s Other text")
        if values["other"] and other_key == f"{key}_other":
            raise QuestionError(f"question {key}: its Other text would be question {other_key}")


def add_question(
    session: Session, event: Event, item: Mapping[str, Any], *, now: datetime | None = None
) -> Question:
    """Ask a new question, last on the form. ``item`` is checked as an event file's
    ``[[questions]]`` table is (QuestionError says what is wrong; nothing is stored)."""
    values = definition(dict(item))
    _check_key(session, event, values, None)
    last = session.execute(
        select(func.coalesce(func.max(Question.position), -1)).where(Question.event_id == event.id)
    ).scalar_one()
    question = Question(event_id=event.id, position=last + 1, **values)
    session.add(question)
    event.updated_at = now or utcnow()
    session.flush()
    return question


def change_question(
    session: Session, question: Question, item: Mapping[str, Any], *, now: datetime | None = None
) -> dict[str, list[Any]]:
    """Change a question to ``item`` (checked as ``add_question``'s); return {field: [old,
    new]} of what changed."""
    values = definition(dict(item))
    event = session.get(Event, question.event_id)
    assert event is not None
    _check_key(session, event, values, question.id)
    if question.retired_at is not None:
        raise QuestionError(f"question {question.key}: ask it again before changing it")
    changes = save_question(session, question, values)
    if changes:
        event.updated_at = now or utcnow()
        session.flush()
    return changes


def move_question(
    session: Session, question: Question, offset: int, *, now: datetime | None = None
) -> bool:
    """Move an asked question ``offset`` places down the form (up if negative); return whether
    it moved (not past either end)."""
    event = session.get(Event, question.event_id)
    assert event is not None
    order = _questions(session, event)
    if question not in order:
        raise QuestionError(f"question {question.key}: it is retired, so not on the form")
    at = order.index(question)
    to = min(max(at + offset, 0), len(order) - 1)
    if to == at:
        return False
    order.insert(to, order.pop(at))
    for position, each in enumerate(order):
        each.position = position
    event.updated_at = now or utcnow()
    session.flush()
    return True


def retire_question(session: Session, question: Question, *, now: datetime | None = None) -> bool:
    """Stop asking a question; its answers stay (and show where answers are shown). Return
    whether it was asked."""
    if question.retired_at is not None:
        return False
    now = now or utcnow()
    question.retired_at = now
    event = session.get(Event, question.event_id)
    assert event is not None
    event.updated_at = now
    session.flush()
    return True


def ask_again(session: Session, question: Question, *, now: datetime | None = None) -> bool:
    """Ask a retired question again, last on the form; return whether it was retired."""
    if question.retired_at is None:
        return False
    event = session.get(Event, question.event_id)
    assert event is not None
    order = _questions(session, event)
    question.retired_at = None
    question.position = (max(q.position for q in order) + 1) if order else 0
    event.updated_at = now or utcnow()
    session.flush()
    return True
