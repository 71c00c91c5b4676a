"""The attendee list: search, filters, sorting and pages (each attendee's page is in
``attendee``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, tzinfo

from flask import abort, render_template, request, url_for
from markupsafe import Markup, escape

from ..attendee_search import (
    PAYMENT_STATES,
    SORT_LABELS,
    AttendeeFilters,
    FilterError,
    ListPage,
    list_page,
    parse_filters,
)
from ..auth import organizer_required
from ..countries import country_name
from ..extensions import db
from ..formats import clock_text
from ..forms import country_menu
from ..models import ATTENDEE_ROLES, STATUS_LABELS
from ..pages import current_snapshot, event_heading, organizer_page, program_of, questions_of
from ..program import ItemSpec
from ..questions import QuestionSpec
from ..speed.memo import kept
from . import bp

#: Attendees per page of the list.
PER_PAGE = 50
#: The last page number the attendee list accepts (far beyond any event's size).
MAX_PAGE = 100_000
#: How many renderings of the list each process keeps (while no attendee or event changes).
LIST_RENDERINGS_KEPT = 64
#: Stands for the list's content in the page around it kept per organizer.
CONTENT_SLOT = "attendee-list-content-of-this-request"


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
    filters: AttendeeFilters,
    error: str | None,
    questions: tuple[QuestionSpec, ...],
    workshops: tuple[ItemSpec, ...],
) -> _ListFrame:
    def build() -> _ListFrame:
        def part(name: str) -> Markup:
            html = render_template(
                "organizer/_attendees_frame.html",
                part=name,
                filters=filters,
                chosen=dict(filters.answers),
                questions=[q for q in questions if q.is_choice],
                workshops=workshops,
                program_arg=filters.as_args().get("program", ""),
                has_sensitive=any(q.sensitive for q in questions),
                error=error,
                country_options=country_menu(filters.country),
                sort_labels=SORT_LABELS,
                payment_states=PAYMENT_STATES,
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

    key = (request.script_root, filters, error, questions, workshops)
    return kept("attendee_list_frame", key, build, size=LIST_RENDERINGS_KEPT, watched=False)


def _rows_html(rows, attendee_url: str, zone: tzinfo) -> Markup:
    """The table's rows, written here rather than by the template: 50 rows of 9 cells are most
    of a list's rendering. Every value is escaped; times and days are on the clock of ``zone``
    (the event's)."""
    url = escape(attendee_url)
    out = []
    for a in rows:
        early = ' <abbr title="early career">EC</abbr>' if a.early_career else ""
        checked = clock_text(a.checked_in_at, zone) if a.checked_in_at else ""
        out.append(
            "\n    <tr>"
            f'\n      <td class="nowrap"><a href="{url}{a.id}">{escape(a.code)}</a></td>'
            f"\n      <td>{escape(a.last_name)}, {escape(a.first_name)}{early}</td>"
            f"\n      <td>{escape(a.email)}</td>"
            f"\n      <td>{escape(ATTENDEE_ROLES[a.role])}</td>"
            f'\n      <td class="wrap">{escape(a.institution)}</td>'
            f"\n      <td>{escape(country_name(a.country))}</td>"
            f'\n      <td class="status-{escape(a.status)}">{escape(STATUS_LABELS[a.status])}</td>'
            f"\n      <td>{checked}</td>"
            f'\n      <td class="nowrap">{a.created_at.astimezone(zone).date()}</td>'
            "\n    </tr>"
        )
    return Markup("".join(out))  # noqa: S704 - every value above is escaped


def _render_list_content(
    filters: AttendeeFilters,
    questions: tuple[QuestionSpec, ...],
    workshops: tuple[ItemSpec, ...],
    zone: tzinfo = UTC,
    page: ListPage | None = None,
    count_all: bool = False,
    error=None,
) -> Markup:
    """The list page's content (form, total, rows, pager): the same for every organizer."""
    frame = _list_frame(filters, error, questions, workshops)
    html = render_template(
        "organizer/_attendees_content.html",
        frame=frame,
        filters=filters,
        page=page,
        count_all=count_all,
        rows=_rows_html(page.items, frame.attendee_url, zone) if page else Markup(),
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
    # The items people sign up for: the list filters by a place there, or by its waiting list.
    workshops = tuple(item for item in program_of(snapshot) if item.capacity is not None)
    try:
        filters, page_number, count_all = parse_list_args(request.args, questions)
    except FilterError as exc:
        content = _render_list_content(AttendeeFilters(), questions, workshops, error=str(exc))
        return render_template("organizer/attendees.html", event=event, content=content), 400

    def render() -> Markup:
        page = list_page(db.session, event, filters, page_number, PER_PAGE, exact_total=count_all)
        return _render_list_content(filters, questions, workshops, event.zone, page, count_all)

    # Kept while nothing changes: a list looked at again (a reload, paging or sorting back)
    # costs no query and no rendering. Its links depend on where the app is mounted; nothing
    # else of the request goes in.
    key = (request.script_root, event.id, filters, page_number, count_all)
    content = kept("attendee_list", key, render, size=LIST_RENDERINGS_KEPT)
    # The layout around the list, kept per event heading and organizer whatever the watch
    # says: a list read afresh (right after a change) renders only its own content.
    return organizer_page(
        "attendee_list.page",
        event,
        "organizer/attendees.html",
        lambda: {"event": event, "content": Markup(CONTENT_SLOT)},  # noqa: S704 - a constant
        slots={CONTENT_SLOT: content},
    )
