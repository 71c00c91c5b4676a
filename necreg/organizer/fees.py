"""The event's fees on the settings page: its currency and prices, one row per price
(fees.price_definitions checks them as it checks the event file's ``[[prices]]``)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, tzinfo

from flask import flash, redirect, render_template, request, url_for
from markupsafe import Markup

from ..auth import organizer_required
from ..extensions import db
from ..fees import FeeError, PriceSpec, update_fees
from ..formats import local_input, local_moment
from ..models import ATTENDANCE, ATTENDEE_ROLES, Event
from ..money import from_minor
from ..pages import current_event_or_404
from . import bp
from .audit import audit
from .forms import ActionForm

#: Empty rows the form offers for new prices.
BLANK_ROWS = 2
_FLAGS = {"yes": True, "no": False}


def price_rows(
    prices: tuple[PriceSpec, ...], currency: str, zone: tzinfo = UTC
) -> list[dict[str, object]]:
    """The event's prices as the form's rows show them, and BLANK_ROWS empty ones; a price's
    end on the clock of ``zone`` (the event's)."""
    rows: list[dict[str, object]] = [
        {
            "name": p.name,
            "amount": str(from_minor(p.amount, currency)) if currency else "",
            "roles": list(p.roles),
            "early_career": {True: "yes", False: "no", None: ""}[p.early_career],
            "attendance": p.attendance or "",
            "until": local_input(p.until, zone),
        }
        for p in prices
    ]
    blank = {"name": "", "amount": "", "roles": [], "early_career": "", "attendance": ""}
    return rows + [{**blank, "until": ""} for _ in range(BLANK_ROWS)]


def rows_sent(form: Mapping[str, str], getlist) -> list[dict[str, object]]:
    """The rows as sent (``prices-<i>-<field>``), to show again with an error."""
    rows = []
    index = 0
    while f"prices-{index}-name" in form:
        field = f"prices-{index}-"
        rows.append(
            {
                "name": form.get(field + "name", "").strip(),
                "amount": form.get(field + "amount", "").strip(),
                "roles": getlist(field + "roles"),
                "early_career": form.get(field + "early_career", ""),
                "attendance": form.get(field + "attendance", ""),
                "until": form.get(field + "until", ""),
            }
        )
        index += 1
    return rows


def as_items(rows: list[dict[str, object]], zone: tzinfo = UTC) -> list[dict[str, object]]:
    """The filled rows as ``[[prices]]`` tables (an empty row is no price), a price's end typed
    on the clock of ``zone`` (the event's) and given in UTC."""
    items = []
    for number, row in enumerate(rows, start=1):
        if not row["name"] and not row["amount"]:
            continue
        item: dict[str, object] = {"name": row["name"], "amount": row["amount"]}
        if row["roles"]:
            item["roles"] = row["roles"]
        if row["early_career"] in _FLAGS:
            item["early_career"] = _FLAGS[str(row["early_career"])]
        if row["attendance"]:
            item["attendance"] = row["attendance"]
        if row["until"]:
            try:
                until = datetime.fromisoformat(str(row["until"]))
            except ValueError:
                raise FeeError(f"price {number}: until must be a date and time") from None
            try:
                item["until"] = local_moment(until, zone)
            except ValueError as exc:
                raise FeeError(f"price {number}: {exc}") from None
        items.append(item)
    return items


def render_fees(
    event: Event, rows: list[dict[str, object]], currency: str, error: str = ""
) -> Markup:
    """The fees section of the settings page, to put in a page as it is."""
    return Markup(  # noqa: S704 - the output of an autoescaped template
        render_template(
            "organizer/_fees.html",
            event=event,
            rows=rows,
            currency=currency,
            error=error,
            fees_form=ActionForm(),
            attendance=ATTENDANCE,
            roles=ATTENDEE_ROLES,
        )
    )


@bp.post("/settings/fees")
@organizer_required(admin=True)
def settings_fees():
    """Save the currency and the prices; a wrong one is refused and nothing changes."""
    event = current_event_or_404()
    currency = request.form.get("currency", "").strip().upper()
    rows = rows_sent(request.form, request.form.getlist)
    if not ActionForm().validate():
        return _refused(event, rows, currency, "This form has expired. Please send it again.")
    try:
        items = as_items(rows, event.zone)
        changed = update_fees(db.session, event, currency, items)
    except FeeError as exc:
        return _refused(event, rows, currency, str(exc))
    if changed:
        audit("settings.fees", event.slug, {"currency": currency, "prices": items})
    db.session.commit()
    flash("Fees saved." if changed else "Nothing changed.", "success")
    return redirect(url_for(".settings") + "#fees", 303)


def _refused(event: Event, rows, currency: str, error: str):
    db.session.rollback()
    html = render_template(
        "organizer/settings_fees_error.html",
        event=event,
        fees=render_fees(event, rows, currency, error),
    )
    return html, 400
