"""Organizer pages. Views are thin: parse a form, call a domain function, commit, redirect."""

from __future__ import annotations

import io
from datetime import UTC, tzinfo
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    stream_with_context,
    url_for,
)
from flask_limiter.errors import RateLimitExceeded
from flask_login import current_user, login_user, logout_user
from markupsafe import Markup
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
from ..auth import authenticate, organizer_required, signed_in, wants_machine_answer
from ..badges import for_printing, iter_badge_csv, iter_badges
from ..badges_pdf import LAYOUTS, write_badges
from ..checkin import (
    ALREADY,
    CANCELLED,
    CHECKED_IN,
    INVALID,
    UNKNOWN,
    WAITLISTED,
    CheckInResult,
    undo_check_in,
)
from ..checkin import check_in as check_in_domain
from ..config import ConfigError
from ..countries import country_name, country_options
from ..database import change_watch
from ..events import SETTINGS_FIELDS, EventFileError, update_settings
from ..extensions import db, limiter
from ..freshness import KeyedMemo
from ..models import ROLES, Attendee, AttendeeChange, Event, utcnow
from ..registration import (
    RegistrationError,
    cancel,
    current_event,
    restore,
    update_details,
    waitlist_position,
)
from ..stats import COUNTERS, current_snapshot, dashboard_stats, event_heading
from .charts import daily_bars
from .forms import (
    ActionForm,
    AttendeeForm,
    CheckInForm,
    LoginForm,
    SettingsForm,
    role_cap_name,
)

bp = Blueprint("organizer", __name__, url_prefix="/organizer")
#: The last page number the attendee list accepts (far beyond any event's size).
MAX_PAGE = 100_000

LOGIN_FAILED = "Wrong e-mail or password."


def display_timezone(name: str) -> tzinfo:
    """The zone that times are shown in at the door (setting DISPLAY_TIMEZONE, default UTC)."""
    if name.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"DISPLAY_TIMEZONE {name!r} is not a time zone; use a name such as America/Chicago"
        ) from None


@bp.record_once
def _check_settings(state) -> None:
    # A wrong time zone stops the app at start-up, not at the first scan at the door.
    display_timezone(state.app.config["DISPLAY_TIMEZONE"])


def _timezone() -> tzinfo:
    return display_timezone(current_app.config["DISPLAY_TIMEZONE"])


def _login_limit() -> str:
    return current_app.config["LOGIN_RATE_LIMIT"]


def _login_email_key() -> str:
    """Rate-limit key of the account being tried, whoever tries it from wherever."""
    return "login-email:" + request.form.get("email", "").strip().lower()[:254]


def _safe_next(target: str | None) -> str | None:
    """Only a path on this site under /organizer/ (no scheme, host or protocol-relative //)."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/organizer/"):
        return None
    if "\\" in target or target.startswith("//"):
        return None
    return target


def _home_url() -> str:
    return url_for(".dashboard") if current_user.is_admin else url_for(".check_in")


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
@limiter.limit(_login_limit, methods=["POST"], key_func=_login_email_key)
def login():
    if current_user.is_authenticated and request.method == "GET":
        return redirect(_home_url())
    form = LoginForm()
    if not form.is_submitted():
        return render_template("organizer/login.html", form=form)
    if not form.validate():
        return render_template("organizer/login.html", form=form), 400
    organizer = authenticate(db.session, form.email.data, form.password.data)
    if organizer is None:
        db.session.rollback()
        return render_template("organizer/login.html", form=form, failure=LOGIN_FAILED), 401
    db.session.commit()
    login_user(signed_in(organizer))
    return redirect(_safe_next(request.args.get("next")) or _home_url(), 303)


@bp.errorhandler(RateLimitExceeded)
def too_many_attempts(exc: RateLimitExceeded):
    form = LoginForm()
    message = (
        "Too many sign-in attempts for this address or account "
        f"(at most {exc.description}). Please wait a little and try again."
    )
    return render_template("organizer/login.html", form=form, failure=message), 429


@bp.post("/logout")
@organizer_required()
def logout():
    logout_user()
    return redirect(url_for(".login"), 303)


@bp.get("/")
@organizer_required(admin=True)
def dashboard():
    event = current_event(db.session)
    if event is None:
        return render_template("organizer/no_event.html")
    figures = dashboard_stats(db.session, event)
    return render_template(
        "organizer/dashboard.html",
        event=event,
        figures=figures,
        counters=COUNTERS,
        chart=daily_bars(figures.per_day),
        country_name=country_name,
        refresh_seconds=current_app.config["STATS_REFRESH_SECONDS"],
    )


@bp.get("/stats.json")
@organizer_required(admin=True)
def stats_json():
    event = current_event(db.session)
    if event is None:
        return jsonify(error="There is no current event.", status=404), 404
    response = jsonify(dashboard_stats(db.session, event).as_json())
    response.cache_control.no_store = True
    return response


def _current_event_or_404() -> Event:
    event = current_event(db.session)
    if event is None:
        abort(404)
    return event


def _filters_or_400() -> AttendeeFilters | str:
    try:
        return parse_filters(request.args)
    except FilterError as exc:
        return str(exc)


#: Attendees per page of the list.
PER_PAGE = 50


def _list_args_or_400() -> tuple[AttendeeFilters, int, bool] | str:
    """The list's filters, page number and whether to count every match; or what is wrong."""
    filters = _filters_or_400()
    if isinstance(filters, str):
        return filters
    page = request.args.get("page", "1")
    # isdecimal, not isdigit: "²" is a digit that int() refuses.
    if not (page.isdecimal() and 1 <= int(page) <= MAX_PAGE):
        return f"page must be from 1 to {MAX_PAGE}."
    count = request.args.get("count", "")
    if count not in {"", "all"}:
        return f"count must be all or left out, not {count!r}."
    return filters, int(page), count == "all"


#: How many renderings of the list each process keeps (while no attendee or event changes).
LIST_RENDERINGS_KEPT = 64


def _list_content(
    filters: AttendeeFilters, page: ListPage | None = None, count_all: bool = False, error=None
) -> Markup:
    """The list page's content (form, total, rows, pager): the same for every organizer."""
    html = render_template(
        "organizer/_attendees_content.html",
        filters=filters,
        error=error,
        page=page,
        count_all=count_all,
        country_options=country_options(filters.country),
        sort_labels=SORT_LABELS,
        country_name=country_name,
    )
    return Markup(html)  # noqa: S704 - rendered by Jinja with autoescaping


@bp.get("/attendees")
@organizer_required(admin=True)
def attendees():
    # The event as the layout shows it, known without a query while nothing changes.
    snapshot = current_snapshot(db.session, utcnow(), change_watch(current_app))
    if snapshot is None:
        abort(404)
    event = event_heading(current_app, db.session, snapshot)
    args = _list_args_or_400()
    if isinstance(args, str):
        content = _list_content(AttendeeFilters(), error=args)
        return render_template("organizer/attendees.html", event=event, content=content), 400
    filters, page_number, count_all = args

    def render() -> Markup:
        page = list_page(db.session, event, filters, page_number, PER_PAGE, exact_total=count_all)
        return _list_content(filters, page, count_all)

    # Kept while nothing changes: a list looked at again (a reload, paging or sorting back)
    # costs no query and no rendering. Its links depend on where the app is mounted; nothing
    # else of the request goes in.
    memo = current_app.extensions.setdefault("necreg.list_memo", KeyedMemo(LIST_RENDERINGS_KEPT))
    key = (request.script_root, event.id, filters, page_number, count_all)
    content = memo.get(change_watch(current_app), key, render)
    return render_template("organizer/attendees.html", event=event, content=content)


def _attendee_or_404(attendee_id: int) -> Attendee:
    event = _current_event_or_404()
    attendee = db.session.get(Attendee, attendee_id)
    if attendee is None or attendee.event_id != event.id:
        abort(404)
    return attendee


def _attendee_page(attendee: Attendee, form: AttendeeForm, status: int = 200, error: str = ""):
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
    page = render_template(
        "organizer/attendee.html",
        event=attendee.event,
        attendee=attendee,
        form=form,
        action_form=ActionForm(),
        history=history,
        error=error,
        country_name=country_name,
        position=waitlist_position(db.session, attendee),
    )
    return page, status


@bp.route("/attendees/<int:attendee_id>", methods=["GET", "POST"])
@organizer_required(admin=True)
def attendee(attendee_id: int):
    attendee = _attendee_or_404(attendee_id)
    form = AttendeeForm(obj=attendee)
    if not form.is_submitted():
        return _attendee_page(attendee, form)
    if not form.validate():
        return _attendee_page(attendee, form, 400)
    try:
        changes = update_details(db.session, attendee, form.values(), organizer_id=current_user.id)
    except RegistrationError as exc:
        db.session.rollback()
        return _attendee_page(attendee, form, 409, str(exc))
    db.session.commit()
    if changes:
        flash(f"Saved: {', '.join(sorted(changes))} changed.", "success")
    else:
        flash("Nothing changed.", "success")
    return redirect(url_for(".attendee", attendee_id=attendee.id), 303)


def _attendee_action(attendee_id: int, action) -> Response:
    attendee = _attendee_or_404(attendee_id)
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
        attendee = _attendee_or_404(attendee_id)
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

    return _attendee_action(attendee_id, action)


@bp.post("/attendees/<int:attendee_id>/restore")
@organizer_required(admin=True)
def restore_attendee(attendee_id: int):
    def action(attendee: Attendee) -> str:
        restore(db.session, attendee, organizer_id=current_user.id)
        return f"Registration restored: {attendee.status}."

    return _attendee_action(attendee_id, action)


@bp.post("/attendees/<int:attendee_id>/check-in")
@organizer_required(admin=True)
def check_in_attendee(attendee_id: int):
    def action(attendee: Attendee) -> str:
        result = check_in_domain(
            db.session,
            attendee.event,
            attendee.code,
            prefix=current_app.config["ATTENDEE_CODE_PREFIX"],
            organizer_id=current_user.id,
            tz=_timezone(),
        )
        if result.outcome not in {CHECKED_IN, ALREADY}:
            raise RegistrationError(result.message)
        return result.message

    return _attendee_action(attendee_id, action)


@bp.post("/attendees/<int:attendee_id>/undo-check-in")
@organizer_required()
def undo_check_in_attendee(attendee_id: int):
    """Undo a check-in (staff may: a wrong scan at the door must be put right there)."""
    attendee = _attendee_or_404(attendee_id)
    if not ActionForm().validate():
        abort(400)
    done = undo_check_in(db.session, attendee, organizer_id=current_user.id)
    db.session.commit()
    if done:
        flash(f"Check-in of {attendee.full_name} ({attendee.code}) undone.", "success")
    else:
        flash(f"{attendee.full_name} was not checked in; nothing to undo.", "error")
    if current_user.is_admin and request.form.get("back") != "check-in":
        return redirect(url_for(".attendee", attendee_id=attendee.id), 303)
    return redirect(url_for(".check_in"), 303)


#: HTTP status of each check-in outcome, for the JSON answer.
CHECK_IN_STATUS = {
    CHECKED_IN: 200,
    ALREADY: 409,
    UNKNOWN: 404,
    CANCELLED: 409,
    WAITLISTED: 409,
    INVALID: 400,
}
LAST_CHECK_IN = "organizer_last_check_in"


@bp.route("/check-in", methods=["GET", "POST"])
@organizer_required()
def check_in():
    event = _current_event_or_404()
    form = CheckInForm()
    wants_json = wants_machine_answer()
    if not form.is_submitted():
        shown = session.pop(LAST_CHECK_IN, None)
        result = None
        if shown:
            found = db.session.get(Attendee, shown["attendee_id"]) if shown["attendee_id"] else None
            result = CheckInResult(shown["outcome"], shown["message"], found, shown["code"])
        return render_template(
            "organizer/check_in.html", event=event, form=form, result=result, undo=ActionForm()
        )
    if not form.validate():
        message = "; ".join(e for errors in form.errors.values() for e in errors)
        if wants_json:
            return jsonify(outcome=INVALID, message=message, code=None, attendee=None), 400
        return render_template(
            "organizer/check_in.html", event=event, form=form, result=None, undo=ActionForm()
        ), 400
    result = check_in_domain(
        db.session,
        event,
        form.code.data or "",
        prefix=current_app.config["ATTENDEE_CODE_PREFIX"],
        organizer_id=current_user.id,
        tz=_timezone(),
    )
    db.session.commit()
    if wants_json:
        return jsonify(result.as_json()), CHECK_IN_STATUS[result.outcome]
    session[LAST_CHECK_IN] = {
        "outcome": result.outcome,
        "message": result.message,
        "code": result.code,
        "attendee_id": result.attendee.id if result.attendee else None,
    }
    return redirect(url_for(".check_in"), 303)


@bp.get("/export/badges.csv")
@organizer_required(admin=True)
def export_badges():
    event = _current_event_or_404()
    filters = _filters_or_400()
    if isinstance(filters, str):
        return Response(filters + "\n", 400, mimetype="text/plain")
    include_email = request.args.get("email") in {"1", "yes", "y", "true"}
    excel = request.args.get("excel") in {"1", "yes", "y", "true"}
    chunks = iter_badge_csv(db.session, event, filters, include_email=include_email, excel=excel)
    response = Response(
        stream_with_context(chunks), mimetype="text/csv", content_type="text/csv; charset=utf-8"
    )
    stamp = utcnow().strftime("%Y%m%d-%H%M")
    filename = f"badges-{event.slug}-{stamp}.csv"
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/export/badges.pdf")
@organizer_required(admin=True)
def export_badges_pdf():
    """Printable badges with QR codes; ``layout`` is one of LAYOUTS (default A4)."""
    event = _current_event_or_404()
    filters = _filters_or_400()
    if isinstance(filters, str):
        return Response(filters + "\n", 400, mimetype="text/plain")
    layout = request.args.get("layout", "a4")
    if layout not in LAYOUTS:
        choices = ", ".join(LAYOUTS)
        return Response(
            f"Unknown layout {layout!r}; use one of {choices}.\n", 400, mimetype="text/plain"
        )
    out = io.BytesIO()
    badges = iter_badges(db.session, event, for_printing(filters))
    write_badges(badges, out, layout=layout, event_name=event.name)
    stamp = utcnow().strftime("%Y%m%d-%H%M")
    response = Response(out.getvalue(), mimetype="application/pdf")
    filename = f"badges-{event.slug}-{layout}-{stamp}.pdf"
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"
    return response


def _settings_form_data(event: Event) -> dict[str, object]:
    data: dict[str, object] = {key: getattr(event, key) for key in SETTINGS_FIELDS}
    for role in ROLES:
        data[role_cap_name(role)] = (event.capacity_by_role or {}).get(role)
    return data


def _settings_values(form: SettingsForm) -> dict[str, object]:
    return {
        "sessions": form.sessions.data,
        "faculty": form.faculty.data,
        "capacity": form.capacity.data,
        "capacity_by_role": {role: form[role_cap_name(role)].data for role in ROLES},
        "registration_opens_at": form.registration_opens_at.data,
        "registration_closes_at": form.registration_closes_at.data,
        "tagline": form.tagline.data or "",
        "description": (form.description.data or "").strip(),
    }


@bp.route("/settings", methods=["GET", "POST"])
@organizer_required(admin=True)
def settings():
    event = _current_event_or_404()
    form = SettingsForm(data=None if request.method == "POST" else _settings_form_data(event))

    def page(status: int = 200, error: str = ""):
        cap_fields = [form[role_cap_name(role)] for role in ROLES]
        html = render_template(
            "organizer/settings.html", event=event, form=form, cap_fields=cap_fields, error=error
        )
        return html, status

    if not form.is_submitted():
        return page()
    if not form.validate():
        return page(400)
    try:
        changes = update_settings(db.session, event, _settings_values(form))
    except EventFileError as exc:
        db.session.rollback()
        return page(400, str(exc))
    db.session.commit()
    flash(f"Saved: {', '.join(sorted(changes))}." if changes else "Nothing changed.", "success")
    return redirect(url_for(".settings"), 303)
