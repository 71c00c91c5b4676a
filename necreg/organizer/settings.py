"""The event's settings that organizers change themselves: counters, caps, window, texts."""

from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, url_for

from ..auth import organizer_required
from ..events import SETTINGS_FIELDS, EventFileError, update_settings
from ..extensions import db
from ..fees import event_prices
from ..models import ROLES, Event
from ..pages import current_event_or_404
from ..payments import payment_terms
from . import bp
from .audit import audit
from .fees import price_rows, render_fees
from .forms import SettingsForm, on_clock_of, role_cap_name


def _settings_as_form_data(event: Event) -> dict[str, object]:
    data: dict[str, object] = {key: getattr(event, key) for key in SETTINGS_FIELDS}
    for role in ROLES:
        data[role_cap_name(role)] = (event.capacity_by_role or {}).get(role)
    return data


def _settings_from_form(form: SettingsForm) -> dict[str, object]:
    return {
        "sessions": form.sessions.data,
        "faculty": form.faculty.data,
        "capacity": form.capacity.data,
        "capacity_by_role": {role: form[role_cap_name(role)].data for role in ROLES},
        "registration_opens_at": form.registration_opens_at.data,
        "registration_closes_at": form.registration_closes_at.data,
        "tagline": form.tagline.data or "",
        "description": (form.description.data or "").strip(),
        "virtual": bool(form.virtual.data),
        "virtual_capacity": form.virtual_capacity.data,
        "join_url": form.join_url.data or "",
        "max_guests": form.max_guests.data,
        "infants_count": bool(form.infants_count.data),
        "consent_version": form.consent_version.data or "",
        "highlights_url": form.highlights_url.data or "",
    }


@bp.route("/settings", methods=["GET", "POST"])
@organizer_required(admin=True)
def settings():
    event = current_event_or_404()
    form = SettingsForm(data=None if request.method == "POST" else _settings_as_form_data(event))
    # The window is typed and shown on the event's clock, and stored in UTC.
    on_clock_of(form, event.zone)

    def page(status: int = 200, error: str = ""):
        cap_fields = [form[role_cap_name(role)] for role in ROLES]
        prices = price_rows(event_prices(db.session, event.id), event.currency, event.zone)
        html = render_template(
            "organizer/settings.html",
            event=event,
            form=form,
            cap_fields=cap_fields,
            error=error,
            fees=render_fees(event, prices, event.currency),
        )
        return html, status

    if not form.is_submitted():
        return page()
    if not form.validate():
        return page(400)
    try:
        changes = update_settings(
            db.session,
            event,
            _settings_from_form(form),
            payment=payment_terms(current_app.config),
        )
    except EventFileError as exc:
        db.session.rollback()
        return page(400, str(exc))
    if changes:
        audit("settings.update", event.slug, changes)
    db.session.commit()
    flash(f"Saved: {', '.join(sorted(changes))}." if changes else "Nothing changed.", "success")
    return redirect(url_for(".settings"), 303)
