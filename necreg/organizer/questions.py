"""The event's questions, managed by admins: add, change, reorder, retire, ask again
(question_settings.py holds the rules)."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from sqlalchemy import func, select

from ..auth import organizer_required
from ..extensions import db
from ..models import Answer, Event, Question
from ..pages import current_event_or_404
from ..question_settings import (
    add_question,
    ask_again,
    change_question,
    choices_as_text,
    move_question,
    retire_question,
)
from ..questions import QuestionError
from . import bp
from .audit import audit
from .forms import ActionForm, QuestionForm


def _question_or_404(event: Event, question_id: int) -> Question:
    question = db.session.get(Question, question_id)
    if question is None or question.event_id != event.id:
        abort(404)
    return question


def _answered(event: Event) -> dict[int, int]:
    """{question id: attendees who answered it}, for the event's questions."""
    rows = db.session.execute(
        select(Answer.question_id, func.count(func.distinct(Answer.attendee_id)))
        .join(Question, Question.id == Answer.question_id)
        .where(Question.event_id == event.id)
        .group_by(Answer.question_id)
    )
    return {question_id: int(n) for question_id, n in rows}


def _roles_sent() -> list[str]:
    return request.form.getlist("roles")


def _list_page(event: Event, form: QuestionForm, roles: list[str], status=200, error=""):
    questions = list(
        db.session.execute(
            select(Question)
            .where(Question.event_id == event.id)
            .order_by(Question.retired_at.is_not(None), Question.position, Question.id)
        ).scalars()
    )
    page = render_template(
        "organizer/questions.html",
        event=event,
        asked=[q for q in questions if q.retired_at is None],
        retired=[q for q in questions if q.retired_at is not None],
        answered=_answered(event),
        form=form,
        roles=roles,
        action_form=ActionForm(),
        error=error,
    )
    return page, status


@bp.route("/questions", methods=["GET", "POST"])
@organizer_required(admin=True)
def questions():
    event = current_event_or_404()
    form = QuestionForm()
    if not form.is_submitted():
        return _list_page(event, form, [])
    roles = _roles_sent()
    if not form.validate():
        return _list_page(event, form, roles, 400)
    try:
        question = add_question(db.session, event, form.item(roles))
    except QuestionError as exc:
        db.session.rollback()
        return _list_page(event, form, roles, 400, str(exc))
    audit("question.add", event.slug, {"key": question.key, "label": question.label})
    db.session.commit()
    flash(f"The question “{question.label}” is asked now, last on the form.", "success")
    return redirect(url_for(".questions"), 303)


@bp.route("/questions/<int:question_id>", methods=["GET", "POST"])
@organizer_required(admin=True)
def question(question_id: int):
    event = current_event_or_404()
    question = _question_or_404(event, question_id)
    if request.method == "GET":
        form = QuestionForm(obj=question)
        form.choices.data = choices_as_text(question.choices or [])
        roles = list(question.roles or [])
    else:
        form = QuestionForm()
        roles = _roles_sent()

    def page(status: int = 200, error: str = ""):
        html = render_template(
            "organizer/question.html",
            event=event,
            question=question,
            answered=_answered(event).get(question.id, 0),
            form=form,
            roles=roles,
            error=error,
        )
        return html, status

    if request.method == "GET":
        return page()
    if not form.validate():
        return page(400)
    try:
        changes = change_question(db.session, question, form.item(roles))
    except QuestionError as exc:
        db.session.rollback()
        return page(400, str(exc))
    if changes:
        audit("question.change", event.slug, {"key": question.key, "changes": changes})
    db.session.commit()
    flash(f"Saved: {', '.join(sorted(changes))}." if changes else "Nothing changed.", "success")
    return redirect(url_for(".questions"), 303)


def _act(question_id: int, action, done: str, audited: str):
    """A button of the list: run ``action(session, question)``, say ``done`` if it did (and
    record it in the audit trail as ``audited``)."""
    event = current_event_or_404()
    question = _question_or_404(event, question_id)
    if not ActionForm().validate():
        abort(400)
    try:
        acted = action(db.session, question)
    except QuestionError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(url_for(".questions"), 303)
    if acted:
        audit(audited, event.slug, {"key": question.key})
    db.session.commit()
    if acted:
        flash(done.format(label=question.label), "success")
    return redirect(url_for(".questions"), 303)


@bp.post("/questions/<int:question_id>/up")
@organizer_required(admin=True)
def question_up(question_id: int):
    return _act(
        question_id, lambda s, q: move_question(s, q, -1), "“{label}” moved up.", "question.move"
    )


@bp.post("/questions/<int:question_id>/down")
@organizer_required(admin=True)
def question_down(question_id: int):
    return _act(
        question_id, lambda s, q: move_question(s, q, 1), "“{label}” moved down.", "question.move"
    )


@bp.post("/questions/<int:question_id>/retire")
@organizer_required(admin=True)
def question_retire(question_id: int):
    return _act(
        question_id,
        retire_question,
        "“{label}” is no longer asked; its answers are kept.",
        "question.retire",
    )


@bp.post("/questions/<int:question_id>/ask-again")
@organizer_required(admin=True)
def question_ask_again(question_id: int):
    return _act(
        question_id, ask_again, "“{label}” is asked again, last on the form.", "question.ask_again"
    )
