"""Authorisation: every /organizer/ route refuses anonymous visitors and staff where it must.

The test walks the app's URL map, so a new organizer route without protection fails here.
"""

# ruff: noqa: F811 - pytest fixtures imported from organizer_fixtures are used as arguments

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from organizer_fixtures import admin_client, make_organizer, staff_client  # noqa: F401

from conftest import saved
from necreg.models import OrganizerMessage, ProgramItem, Question, SupportRequest

#: Routes open to anonymous visitors.
PUBLIC = {"organizer.login", "organizer.set_password_page"}
#: Routes check-in staff may use; every other organizer route is for administrators only.
STAFF_ALLOWED = {
    "organizer.check_in",
    "organizer.undo_check_in_attendee",
    "organizer.logout",
    *(f"organizer.{name}" for name in (
        "account", "account_password", "authenticator_start", "authenticator_confirm",
        "authenticator_disable", "recovery_codes", "sign_out_everywhere",
    )),
}  # fmt: skip


def _organizer_requests(app, ids: dict[str, int]):
    """(endpoint, method, path) for every organizer route and method in the URL map, with
    ``ids`` in their paths (``attendee_id``, ``question_id``)."""
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("organizer."):
            continue
        path = rule.build({name: ids[name] for name in rule.arguments})[1]
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield rule.endpoint, method, path


@pytest.fixture
def attendee(make_event, make_attendee):
    return make_attendee(make_event())


@pytest.fixture
def ids(app, attendee) -> dict[str, int]:
    """The ids in the organizer routes' paths: an attendee's, a question's, a program item's
    key, a support request's, a message's."""
    question = saved(app, Question(event_id=attendee.event_id, key="k", label="K", type="text"))
    start = datetime(2025, 9, 8, 14, tzinfo=UTC)
    item = saved(
        app,
        ProgramItem(
            event_id=attendee.event_id, key="ws-k", title="K", kind="workshop",
            starts_at=start, ends_at=start + timedelta(hours=1), capacity=5,
        ),
    )  # fmt: skip
    support = saved(app, SupportRequest(attendee_id=attendee.id, statement="S"))
    message = saved(app, OrganizerMessage(event_id=attendee.event_id, subject="S", body="B"))
    # A payment's id only reaches its refund button's route: access is decided before it is
    # looked up.
    return {
        "attendee_id": attendee.id,
        "question_id": question.id,
        "payment_id": 999_999,
        "key": item.key,
        "request_id": support.id,
        "delivery_id": 999_999,  # a webhook delivery's: like a payment's, never looked up
        "message_id": message.id,
        "outbox_id": 999_999,  # an e-mail's in the outbox: access is decided before it is looked up
        "organizer_id": 999_999,  # an account's: access is decided before it is looked up
        "token": "not-a-link",  # a set-password link's (public: it answers 404)
    }


def test_url_map_has_the_organizer_routes(app, ids):
    endpoints = {endpoint for endpoint, _m, _p in _organizer_requests(app, ids)}
    assert {
        "organizer.dashboard",
        "organizer.attendees",
        "organizer.check_in",
        "organizer.export_badges",
        "organizer.export_badges_pdf",
        "organizer.settings",
        "organizer.stats_json",
        "organizer.questions",
        "organizer.export_directory",
        "organizer.codes",
        "organizer.audit_log",
        "organizer.export_attendee_data",
        "organizer.erase_attendee",
        "organizer.outbox",
        "organizer.retry_outbox_message",
        "organizer.retry_failed_outbox",
    } <= endpoints


def test_anonymous_gets_login_redirect_or_401_and_never_data(app, client, attendee, ids):
    for endpoint, method, path in _organizer_requests(app, ids):
        if endpoint in PUBLIC:
            continue
        response = client.open(path, method=method)
        body = response.get_data(as_text=True)
        if path.endswith((".csv", ".json", ".pdf")):
            assert response.status_code == 401, (method, path)
            assert response.is_json
        elif method == "GET":
            assert response.status_code == 302, (method, path)
            assert "/organizer/login" in response.location
        else:
            # A POST without a CSRF token stops there (400); never a change, never data.
            assert response.status_code in {302, 400}, (method, path, response.status_code)
        assert attendee.email not in body
        assert attendee.code not in body


def test_anonymous_json_request_gets_401(client, attendee):
    response = client.get("/organizer/attendees", headers={"Accept": "application/json"})
    assert response.status_code == 401
    assert response.get_json()["status"] == 401


def test_staff_gets_403_on_admin_pages(app, staff_client, attendee, ids):
    checked = 0
    for endpoint, method, path in _organizer_requests(app, ids):
        if endpoint in PUBLIC or endpoint in STAFF_ALLOWED or method != "GET":
            continue
        response = staff_client.open(path, method=method)
        assert response.status_code == 403, (method, path)
        assert attendee.email not in response.get_data(as_text=True)
        checked += 1
    assert checked >= 5


def test_staff_cannot_post_to_admin_routes(app, staff_client, attendee, ids):
    from organizer_fixtures import page_csrf

    token = page_csrf(staff_client, "/organizer/check-in")
    for endpoint, method, path in _organizer_requests(app, ids):
        if endpoint in PUBLIC or endpoint in STAFF_ALLOWED or method != "POST":
            continue
        response = staff_client.post(path, data={"csrf_token": token, "first_name": "X"})
        assert response.status_code == 403, (method, path)
    from conftest import fresh

    attendee = fresh(app, attendee)
    assert attendee.status == "confirmed"
    assert attendee.first_name != "X"


def test_every_organizer_view_is_protected_by_the_decorator(app):
    """A view added without ``organizer_required`` fails here even before anyone requests it."""
    for endpoint, view in app.view_functions.items():
        if endpoint.startswith("organizer.") and endpoint not in PUBLIC:
            access = getattr(view, "organizer_access", None)
            expected = "staff" if endpoint in STAFF_ALLOWED else "admin"
            assert access == expected, f"{endpoint} is {access!r}, expected {expected!r}"


def test_admin_reaches_every_get_page(app, admin_client, ids):
    for endpoint, method, path in _organizer_requests(app, ids):
        if method == "GET" and endpoint not in PUBLIC:
            assert admin_client.get(path).status_code == 200, path
