"""Registration abuse (issue 16, item 4): per-address limits on the form and on changes from
personal links, the honeypot and the minimum fill time that refuse without saying so, the
check-in limit per staff account, and an undo that names nobody it did not check out."""

# ruff: noqa: F811 - pytest fixtures imported from organizer_fixtures are used as arguments

from __future__ import annotations

import logging
import re
import time

import pytest
from organizer_fixtures import (  # noqa: F401
    ADMIN_EMAIL,
    STAFF_EMAIL,
    admin_client,
    make_organizer,
    page_csrf,
    sign_in,
    staff_client,
)
from sqlalchemy import func, select

from conftest import csrf_token, fresh, registration_form
from necreg.extensions import db, limiter
from necreg.models import Attendee, OutboxMessage
from necreg.public.landing import HONEYPOT_FIELD, STAMP_FIELD, form_stamp

STAMP_RE = re.compile(rf'name="{STAMP_FIELD}" value="([^"]+)"')


def count(app, model) -> int:
    with app.app_context():
        return db.session.execute(select(func.count()).select_from(model)).scalar_one()


def form_page(client) -> tuple[str, str]:
    """The blank form's CSRF token and stamp, as a visitor gets them."""
    page = client.get("/register").get_data(as_text=True)
    return csrf_token(client), STAMP_RE.search(page).group(1)


def stamp_seconds_ago(app, seconds: float) -> str:
    with app.test_request_context():
        return form_stamp(time.time() - seconds)


# --- the limit on the form ------------------------------------------------------------------


def test_registrations_are_limited_per_address_and_the_form_says_so(app, client, make_event):
    make_event()
    app.config["REGISTER_RATE_LIMIT"] = "2 per minute; 100 per hour"
    token = csrf_token(client)
    for n in range(2):
        form = registration_form(csrf_token=token, email=f"p{n}@example.org")
        assert client.post("/register", data=form).status_code == 303
    form = registration_form(csrf_token=token, email="third@example.org", first_name="Third")
    refused = client.post("/register", data=form)
    assert refused.status_code == 429
    page = refused.get_data(as_text=True)
    assert "Registrations were sent too often from here" in page
    assert "at most 2 per 1 minute" in page
    assert 'value="Third"' in page  # the form as sent, to send again later
    assert count(app, Attendee) == 2
    # Another address is not limited.
    other = registration_form(csrf_token=token, email="fourth@example.org")
    answer = client.post("/register", data=other, environ_base={"REMOTE_ADDR": "10.9.9.9"})
    assert answer.status_code == 303
    assert count(app, Attendee) == 3


def test_the_form_page_itself_is_not_limited(app, client, make_event, monkeypatch):
    make_event()
    app.config["REGISTER_RATE_LIMIT"] = "1 per minute"
    for _ in range(3):
        assert client.get("/register").status_code == 200
    # Nor checked: the limit's decorator would look up the limits on every request it wraps
    # (GET too, only to find them for POST), about 8% of the form page's instructions.
    checks = []
    check = limiter._check_request_limit
    monkeypatch.setattr(
        limiter, "_check_request_limit", lambda **kw: checks.append(1) or check(**kw)
    )
    token = csrf_token(client)
    assert checks == []
    assert client.post("/register", data=registration_form(csrf_token=token)).status_code == 303
    assert checks == [1]


# --- the limit on changes from personal links -------------------------------------------------


def test_changes_from_personal_links_are_limited_per_address(
    app, client, make_event, make_attendee
):
    event = make_event()
    person = make_attendee(event, first_name="Ada")
    app.config["SELF_SERVICE_RATE_LIMIT"] = "2 per minute"
    path = f"/registration/{person.token}"
    token = csrf_token(client, path)
    # Changes of any kind count together: a companion removal that finds nobody, then a cancel.
    assert (
        client.post(f"{path}/companions/99/remove", data={"csrf_token": token}).status_code == 404
    )
    assert client.get(f"{path}/cancel").status_code == 200  # reading is not limited
    assert client.post(f"{path}/cancel", data={"csrf_token": token}).status_code == 303
    refused = client.post(f"{path}/cancel", data={"csrf_token": token})
    assert refused.status_code == 429
    page = refused.get_data(as_text=True)
    assert "Changes were sent too often from here" in page and "Ada" in page
    assert refused.headers["Cache-Control"] == "no-store"
    assert client.get(path).status_code == 200


def test_a_limited_detail_change_changes_nothing(app, client, make_event, make_attendee):
    event = make_event()
    person = make_attendee(event, first_name="Ada", country="US")
    app.config["SELF_SERVICE_RATE_LIMIT"] = "1 per minute"
    path = f"/registration/{person.token}"
    token = csrf_token(client, path)
    details = {
        "csrf_token": token, "first_name": "Ada", "last_name": "L", "role": "clinician",
        "country": "US", "attendance": "in_person",
    }  # fmt: skip
    assert client.post(path, data=details).status_code == 303
    refused = client.post(path, data={**details, "first_name": "Changed"})
    assert refused.status_code == 429
    assert fresh(app, person).first_name == "Ada"


# --- the honeypot and the minimum fill time ---------------------------------------------------


@pytest.fixture
def slow_form(app):
    """Registrations checked for the fill time (3 s, the default) as in production."""
    app.config["REGISTER_MIN_SECONDS"] = 3


def test_the_form_carries_a_hidden_honeypot_and_a_stamp_per_visitor(app, client, make_event):
    make_event()
    page = client.get("/register").get_data(as_text=True)
    trap = re.search(r'<div class="trap" aria-hidden="true">(.*?)</div>', page, re.S).group(1)
    assert "Leave this field empty" in trap
    assert f'name="{HONEYPOT_FIELD}"' in trap and 'tabindex="-1"' in trap
    assert 'value=""' in trap
    # Each visitor gets a stamp of their own, though the page is rendered once for all.
    first = STAMP_RE.search(page).group(1)
    time.sleep(0.01)
    second = STAMP_RE.search(app.test_client().get("/register").get_data(as_text=True)).group(1)
    assert first != second
    assert "form-shown-stamp-of-this-visitor" not in page


def test_the_style_sheet_hides_the_honeypot():
    from servers import ROOT

    css = (ROOT / "static" / "css" / "site.css").read_text()
    assert re.search(r"\.trap \{[^}]*position: absolute[^}]*left: -10000px", css)


def test_a_filled_honeypot_looks_taken_but_stores_and_sends_nothing(
    app, client, make_event, caplog
):
    make_event()
    form = registration_form(csrf_token=csrf_token(client), **{HONEYPOT_FIELD: "http://spam"})
    with caplog.at_level(logging.INFO, logger="necreg.security"):
        response = client.post("/register", data=form)
    assert response.status_code == 303
    assert response.location.endswith("/register/received")
    thanks = client.get(response.location)
    assert thanks.status_code == 200
    assert "Thank you" in thanks.get_data(as_text=True)
    assert count(app, Attendee) == 0
    assert count(app, OutboxMessage) == 0
    assert "honeypot" in caplog.text and "127.0.0.1" in caplog.text


def test_a_form_sent_back_too_soon_is_refused_silently(app, client, make_event, slow_form):
    make_event()
    token, stamp = form_page(client)
    form = registration_form(csrf_token=token, **{STAMP_FIELD: stamp})
    response = client.post("/register", data=form)  # well within 3 s of reading the form
    assert response.status_code == 303 and response.location.endswith("/register/received")
    assert count(app, Attendee) == 0
    assert count(app, OutboxMessage) == 0


@pytest.mark.parametrize("stamp", [None, "", "1700000000.000", "1700000000.000.forged"])
def test_a_form_without_a_stamp_of_ours_is_refused_silently(
    app, client, make_event, slow_form, stamp
):
    make_event()
    form = registration_form(csrf_token=csrf_token(client), **{STAMP_FIELD: stamp})
    response = client.post("/register", data=form)
    assert response.status_code == 303 and response.location.endswith("/register/received")
    assert count(app, Attendee) == 0


def test_a_form_filled_in_at_a_persons_pace_is_taken(app, client, make_event, slow_form):
    make_event()
    form = registration_form(
        csrf_token=csrf_token(client), **{STAMP_FIELD: stamp_seconds_ago(app, 4)}
    )
    response = client.post("/register", data=form)
    assert response.status_code == 303 and "/registration/" in response.location
    assert count(app, Attendee) == 1
    assert count(app, OutboxMessage) == 1


def test_a_form_shown_again_with_errors_keeps_its_first_stamp(app, client, make_event, slow_form):
    make_event()
    stamp = stamp_seconds_ago(app, 4)
    form = registration_form(csrf_token=csrf_token(client), first_name="", **{STAMP_FIELD: stamp})
    refused = client.post("/register", data=form)
    assert refused.status_code == 400
    assert STAMP_RE.search(refused.get_data(as_text=True)).group(1) == stamp
    # Put right at once, it is taken: the person spent their time on the first try.
    form = registration_form(csrf_token=csrf_token(client), **{STAMP_FIELD: stamp})
    assert client.post("/register", data=form).status_code == 303
    assert count(app, Attendee) == 1


# --- check-in attempts per staff account ----------------------------------------------------


def _scan(client, code, **kw):
    token = page_csrf(client, "/organizer/check-in")
    return client.post("/organizer/check-in", data={"code": code, "csrf_token": token}, **kw)


def test_check_in_attempts_are_limited_per_account(
    app, staff_client, make_organizer, make_event, make_attendee
):
    event = make_event()
    person = make_attendee(event)
    app.config["CHECK_IN_RATE_LIMIT"] = "3 per minute"
    json = {"Accept": "application/json"}
    for letter in "BCD":  # codes nobody has
        assert _scan(staff_client, f"NEC-AAAAA{letter}", headers=json).status_code == 404
    refused = _scan(staff_client, person.code, headers=json)
    assert refused.status_code == 429
    assert refused.get_json()["outcome"] == "limited"
    assert "at most 3 per minute" in refused.get_json()["message"]
    page = _scan(staff_client, person.code)
    assert page.status_code == 429 and "Too many codes tried" in page.get_data(as_text=True)
    assert fresh(app, person).checked_in_at is None
    # Counted per account, not per address: another account at the same desk goes on.
    make_organizer("second-door@example.org", role="staff")
    other = app.test_client()
    assert sign_in(other, "second-door@example.org").status_code == 303
    assert _scan(other, person.code, headers=json).status_code == 200
    assert fresh(app, person).checked_in_at is not None


# --- undo says nothing about a person who was not checked in --------------------------------


def test_undo_answers_the_same_for_unknown_ids_and_people_not_checked_in(
    app, staff_client, make_event, make_attendee
):
    event = make_event()
    secret = make_attendee(event, first_name="Hidden", last_name="Person")

    def undo(attendee_id):
        token = page_csrf(staff_client, "/organizer/check-in")
        response = staff_client.post(
            f"/organizer/attendees/{attendee_id}/undo-check-in", data={"csrf_token": token}
        )
        shown = staff_client.get(response.location).get_data(as_text=True)
        return response.status_code, response.location, shown

    known = undo(secret.id)
    unknown = undo(secret.id + 1000)
    assert known[:2] == unknown[:2] == (303, "/organizer/check-in")
    assert "There was no check-in to undo." in known[2]
    assert "There was no check-in to undo." in unknown[2]
    assert "Hidden" not in known[2] and "Person" not in known[2]
    # A check-in done is undone with the person's name, as before.
    _scan(staff_client, secret.code)
    status, _where, shown = undo(secret.id)
    assert status == 303 and "Check-in of Hidden Person" in shown
    assert fresh(app, secret).checked_in_at is None
