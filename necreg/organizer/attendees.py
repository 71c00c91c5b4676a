"""The attendee list (search, filters, pages) and each attendee's page: correct, cancel,
restore, check in."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from flask import (
    Response,
    abort,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from markupsafe import Markup, escape
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from ..attendee_search import (
    SORT_LABELS,
    AttendeeFilters,
    FilterError,
    ListPage,
    list_page,
    parse_filters,
)
from ..auth import organizer_required
from ..checkin import ALREADY, CHECKED_IN, check_in
from ..countries import country_name
from ..extensions import db
from ..forms import country_menu
from ..models import ROLES, Attendee, AttendeeChange
from ..pages import current_snapshot, event_attendee_or_404, event_heading, questions_of
from ..questions import Answers, QuestionSpec, answers_of, event_questions
from ..registration import (
    RegistrationError,
    cancel,
    companions_of,
    party_lead,
    restore,
    update_details,
    waitlist_position,
)
from ..speed.memo import kept
from . import bp
from .checkin import door_settings
from .forms import ActionForm, AttendeeForm

#: Attendees per page of the list.
PER_PAGE = 50
#: The last page number the attendee list accepts (far beyond any event's size).
MAX_PAGE = 100_000
#: How many renderings of the list each process keeps (while no attendee or event changes).
LIST_RENDERINGS_KEPT = 64


def parse_list_args(
    args: Mapping[str, str], questions: tuple[QuestionSpec, ...] = ()
) -> tuple[AttendeeFilters, int, bool]:
    """The list's filters, page number and whether to count every match; FilterError says what
    is wrong."""
    filters = parse_filters(args, questions)
    page = args.get("page", "1")
    # isdecimal, not isdigit: "²" is a digit that int() refuses.
    if not (page.isdecimal() and 1 <= int(page) <= MAX_PAGE):
        raise FilterError(f"page must be from 1 to {MAX_PAGE}.")
    count = args.get("count", "")
    if count not in {"", "all"}:
        raise FilterError(f"count must be all or left out, not {count!r}.")
    return filters, int(page), count == "all"


@dataclass(frozen=True)
class _ListFrame:
    """What the list page shows that depends only on the filters: kept per filters, so a list
    read afresh (right after a change) renders only its rows and figures."""

    form: Markup
    thead: Markup
    exports: Markup
    count_all_url: str
    attendee_url: str
    _page_urls: tuple[str, str]  # page 0 with the filters, and with count=all too

    def page_url(self, number: int, count_all: bool) -> str:
        return self._page_urls[count_all].replace("?page=0", f"?page={number}", 1)


def _list_frame(
    filters: AttendeeFilters, error: str | None, questions: tuple[QuestionSpec, ...]
) -> _ListFrame:
    def build() -> _ListFrame:
        def part(name: str) -> Markup:
            html = render_template(
                "organizer/_attendees_frame.html",
                part=name,
                filters=filters,
                chosen=dict(filters.answers),
                questions=[q for q in questions if q.is_choice],
                has_sensitive=any(q.sensitive for q in questions),
                error=error,
                country_options=country_menu(filters.country),
                sort_labels=SORT_LABELS,
            )
            return Markup(html)  # noqa: S704 - rendered by Jinja with autoescaping

        args = filters.as_args()
        return _ListFrame(
            form=part("form"),
            thead=part("thead"),
            exports=part("exports"),
            count_all_url=url_for("organizer.attendees", count="all", **args),
            attendee_url=url_for("organizer.attendees") + "/",
            _page_urls=(
                url_for("organizer.attendees", page=0, **args),
                url_for("organizer.attendees", page=0, **{**args, "count": "all"}),
            ),
        )

    key = (request.script_root, filters, error, questions)
    return kept("attendee_list_frame", key, build, size=LIST_RENDERINGS_KEPT, watched=False)


def _rows_html(rows, attendee_url: str) -> Markup:
    """The table's rows, written here rather than by the template: 50 rows of 9 cells are most
    of a list's rendering. Every value is escaped."""
    url = escape(attendee_url)
    out = []
    for a in rows:
        early = ' <abbr title="early career">EC</abbr>' if a.early_career else ""
        checked = a.checked_in_at.strftime("%Y-%m-%d %H:%M") if a.checked_in_at else ""
        out.append(
            "\n    <tr>"
            f'\n      <td class="nowrap"><a href="{url}{a.id}">{escape(a.code)}</a></td>'
            f"\n      <td>{escape(a.last_name)}, {escape(a.first_name)}{early}</td>"
            f"\n      <td>{escape(a.email)}</td>"
            f"\n      <td>{escape(ROLES[a.role])}</td>"
            f'\n      <td class="wrap">{escape(a.institution)}</td>'
            f"\n      <td>{escape(country_name(a.country))}</td>"
            f'\n      <td class="status-{escape(a.status)}">{escape(a.status)}</td>'
            f"\n      <td>{checked}</td>"
            f'\n      <td class="nowrap">{a.created_at.date()}</td>'
            "\n    </tr>"
        )
    return Markup("".join(out))  # noqa: S704 - every value above is escaped


def _render_list_content(
    filters: AttendeeFilters,
    questions: tuple[QuestionSpec, ...],
    page: ListPage | None = None,
    count_all: bool = False,
    error=None,
) -> Markup:
    """The list page's content (form, total, rows, pager): the same for every organizer."""
    frame = _list_frame(filters, error, questions)
    html = render_template(
        "organizer/_attendees_content.html",
        frame=frame,
        filters=filters,
        page=page,
        count_all=count_all,
        rows=_rows_html(page.items, frame.attendee_url) if page else Markup(),
    )
    return Markup(html)  # noqa: S704 - rendered by Jinja with autoescaping


@bp.get("/attendees")
@organizer_required(admin=True)
def attendees():
    # The event as the layout shows it, known without a query while nothing changes.
    snapshot = current_snapshot()
    if snapshot is None:
        abort(404)
    event = event_heading(snapshot)
    questions = questions_of(snapshot)
    try:
        filters, page_number, count_all = parse_list_args(request.args, questions)
    except FilterError as exc:
        content = _render_list_content(AttendeeFilters(), questions, error=str(exc))
        return render_template("organizer/attendees.html", event=event, content=content), 400

    def render() -> Markup:
        page = list_page(db.session, event, filters, page_number, PER_PAGE, exact_total=count_all)
        return _render_list_content(filters, questions, page, count_all)

    # Kept while nothing changes: a list looked at again (a reload, paging or sorting back)
    # costs no query and no rendering. Its links depend on where the app is mounted; nothing
    # else of the request goes in.
    key = (request.script_root, event.id, filters, page_number, count_all)
    content = kept("attendee_list", key, render, size=LIST_RENDERINGS_KEPT)
    return render_template("organizer/attendees.html", event=event, content=content)


def _render_attendee_page(
    attendee: Attendee, form: AttendeeForm, status: int = 200, error: str = ""
):
    history = (
        db.session.execute(
            select(AttendeeChange)
            .options(joinedload(AttendeeChange.organizer))
            .where(AttendeeChange.attendee_id == attendee.id)
            .order_by(AttendeeChange.changed_at.desc(), AttendeeChange.id.desc())
        )
        .scalars()
        .all()
    )
    # Questions no longer asked too: their answers were given and stay.
    questions = event_questions(db.session, attendee.event_id, retired=True)
    answers = answers_of(db.session, [attendee.id], questions).get(attendee.id, Answers())
    page = render_template(
        "organizer/attendee.html",
        event=attendee.event,
        questions=questions,
        answers=answers,
        attendee=attendee,
        form=form,
        action_form=ActionForm(),
        history=history,
        error=error,
        country_name=country_name,
        position=waitlist_position(db.session, attendee),
        lead=party_lead(db.session, attendee) if attendee.is_companion else None,
        party=[] if attendee.is_companion else companions_of(db.session, attendee),
    )
    return page, status


@bp.route("/attendees/<int:attendee_id>", methods=["GET", "POST"])
@organizer_required(admin=True)
def attendee(attendee_id: int):
    attendee = event_attendee_or_404(attendee_id)
    form = AttendeeForm.of(attendee)
    if not form.is_submitted():
        return _render_attendee_page(attendee, form)
    if not form.validate():
        return _render_attendee_page(attendee, form, 400)
    try:
        changes = update_details(db.session, attendee, form.values(), organizer_id=current_user.id)
    except RegistrationError as exc:
        db.session.rollback()
        return _render_attendee_page(attendee, form, 409, str(exc))
    db.session.commit()
    if changes:
        flash(f"Saved: {', '.join(sorted(changes))} changed.", "success")
    else:
        flash("Nothing changed.", "success")
    return redirect(url_for(".attendee", attendee_id=attendee.id), 303)


def _act_on_attendee(attendee_id: int, action: Callable[[Attendee], str]) -> Response:
    """Run ``action`` (a button on the attendee's page), commit, and go back to the page with
    the message it returns, or the RegistrationError it raises."""
    attendee = event_attendee_or_404(attendee_id)
    if not ActionForm().validate():
        abort(400)
    try:
        message = action(attendee)
    except RegistrationError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(url_for(".attendee", attendee_id=attendee.id), 303)
    db.session.commit()
    flash(message, "success")
    return redirect(url_for(".attendee", attendee_id=attendee.id), 303)


@bp.route("/attendees/<int:attendee_id>/cancel", methods=["GET", "POST"])
@organizer_required(admin=True)
def cancel_attendee(attendee_id: int):
    """GET asks "are you sure?" (the attendee gets an e-mail, places move); POST cancels."""
    if request.method != "POST":
        attendee = event_attendee_or_404(attendee_id)
        return render_template(
            "organizer/cancel.html",
            event=attendee.event,
            attendee=attendee,
            action_form=ActionForm(),
            position=waitlist_position(db.session, attendee),
        )

    def action(attendee: Attendee) -> str:
        promoted = cancel(db.session, attendee, organizer_id=current_user.id)
        names = ", ".join(p.full_name for p in promoted)
        return "Registration cancelled." + (
            f" Promoted from the waiting list: {names}." if names else ""
        )

    return _act_on_attendee(attendee_id, action)


@bp.post("/attendees/<int:attendee_id>/restore")
@organizer_required(admin=True)
def restore_attendee(attendee_id: int):
    def action(attendee: Attendee) -> str:
        restore(db.session, attendee, organizer_id=current_user.id)
        return f"Registration restored: {attendee.status}."

    return _act_on_attendee(attendee_id, action)


@bp.post("/attendees/<int:attendee_id>/check-in")
@organizer_required(admin=True)
def check_in_attendee(attendee_id: int):
    def action(attendee: Attendee) -> str:
        result = check_in(
            db.session,
            attendee.event,
            attendee.code,
            organizer_id=current_user.id,
            **door_settings(),
        )
        if result.outcome not in {CHECKED_IN, ALREADY}:
            raise RegistrationError(result.message)
        return result.message

    return _act_on_attendee(attendee_id, action)
