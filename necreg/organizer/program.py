"""The event's program, edited by admins: items added, changed and taken out (program.py
holds the rules; the event file's ``[[program]]`` sets it too)."""

from __future__ import annotations

from datetime import tzinfo

from flask import abort, flash, redirect, render_template, request, url_for

from ..auth import organizer_required
from ..extensions import db
from ..models import PROGRAM_KINDS, ProgramItem
from ..pages import current_event_or_404
from ..program import (
    ProgramError,
    credits_text,
    event_program,
    item_from_form,
    remove_item,
    save_item,
)
from ..registration import lock_event
from . import bp
from .audit import audit
from .forms import ActionForm

#: The form's inputs, as the item's page and the list's "add" form send them.
FIELDS = ("key", "title", "kind", "starts_at", "ends_at", "room", "capacity", "credits", "speakers")


def _values_of(item: ProgramItem, zone: tzinfo) -> dict[str, str]:
    """An item as the form shows it: times on the event's clock (``zone``)."""
    return {
        "key": item.key,
        "title": item.title,
        "kind": item.kind,
        "starts_at": item.starts_at.astimezone(zone).strftime("%Y-%m-%dT%H:%M"),
        "ends_at": item.ends_at.astimezone(zone).strftime("%Y-%m-%dT%H:%M"),
        "room": item.room,
        "capacity": "" if item.capacity is None else str(item.capacity),
        "credits": credits_text(item.credits),
        "speakers": "\n".join(item.speakers),
    }


def _render(template: str, status: int = 200, **context):
    event = current_event_or_404()
    html = render_template(
        template,
        event=event,
        kinds=PROGRAM_KINDS,
        zone=event.zone,
        zone_name=event.timezone,
        action_form=ActionForm(),
        **context,
    )
    return html, status


@bp.route("/program", methods=["GET", "POST"])
@organizer_required(admin=True)
def program():
    """The program in time order, and a new item."""
    event = current_event_or_404()
    sent = {name: request.form.get(name, "") for name in FIELDS}
    if request.method == "POST":
        if not ActionForm().validate():
            abort(400)
        try:
            lock_event(db.session, event)
            spec = item_from_form(sent, event.zone)
            save_item(db.session, event, spec, new=True)
        except ProgramError as exc:
            db.session.rollback()
            items = event_program(db.session, event.id)
            return _render("organizer/program.html", 400, items=items, sent=sent, error=str(exc))
        audit("program.add", event.slug, {"key": spec.key, "title": spec.title})
        db.session.commit()
        flash(f"{spec.title} is in the program.", "success")
        return redirect(url_for(".program"), 303)
    items = event_program(db.session, event.id)
    return _render("organizer/program.html", items=items, sent={"kind": "session"}, error="")


def _item_or_404(key: str) -> ProgramItem:
    event = current_event_or_404()
    item = next((i for i in event_program(db.session, event.id) if i.key == key), None)
    if item is None:
        abort(404)
    return item


@bp.route("/program/<key>", methods=["GET", "POST"])
@organizer_required(admin=True)
def program_item(key: str):
    """One item: change it (its key stays)."""
    item = _item_or_404(key)
    if request.method == "GET":
        return _render(
            "organizer/program_item.html",
            item=item,
            sent=_values_of(item, current_event_or_404().zone),
            error="",
        )
    if not ActionForm().validate():
        abort(400)
    sent = {name: request.form.get(name, "") for name in FIELDS} | {"key": item.key}
    event = current_event_or_404()
    before = _values_of(item, event.zone)
    try:
        lock_event(db.session, event)
        spec = item_from_form(sent, event.zone)
        saved = save_item(db.session, event, spec, new=False)
    except ProgramError as exc:
        db.session.rollback()
        item = _item_or_404(key)
        return _render("organizer/program_item.html", 400, item=item, sent=sent, error=str(exc))
    after = _values_of(saved, event.zone)
    changes = {name: [before[name], after[name]] for name in FIELDS if before[name] != after[name]}
    if changes:
        audit("program.change", event.slug, {"key": key, "changes": changes})
    db.session.commit()
    flash(f"{spec.title} is saved.", "success")
    return redirect(url_for(".program"), 303)


@bp.post("/program/<key>/remove")
@organizer_required(admin=True)
def remove_program_item(key: str):
    """Take an item out: deleted, or kept aside with its sign-ups if people signed up."""
    item = _item_or_404(key)
    if not ActionForm().validate():
        abort(400)
    event = current_event_or_404()
    lock_event(db.session, event)
    title = item.title
    outcome = remove_item(db.session, event, key)
    audit("program.remove", event.slug, {"key": key, "title": title, "outcome": outcome})
    db.session.commit()
    flash(
        f"{title} is out of the program"
        + (" (its sign-ups and check-ins are kept)." if outcome == "retired" else "."),
        "success",
    )
    return redirect(url_for(".program"), 303)
