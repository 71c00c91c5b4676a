"""Registration through the form: success, duplicates, bad input, CSRF, size, window."""

import re
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from conftest import csrf_token, registration_form
from necreg.extensions import db
from necreg.models import CODE_ALPHABET, Attendee, Event


def stored(app) -> list[Attendee]:
    """The registrations as the database holds them now (read in an app context of their own)."""
    with app.app_context():
        return list(db.session.execute(select(Attendee).order_by(Attendee.id)).scalars())


def post(client, **over):
    return client.post("/register", data=registration_form(csrf_token=csrf_token(client), **over))


def test_form_has_the_contract_fields(client, make_event):
    make_event()
    html = client.get("/register").get_data(as_text=True)
    for name in (
        "first_name", "last_name", "email", "role", "institution", "country",
        "early_career", "consent", "badge_name", "csrf_token",
    ):  # fmt: skip
        assert f'name="{name}"' in html, name
    for value, label in (
        ("clinician", "Clinician"),
        ("scientist", "Scientist"),
        ("family", "Patient-family"),
        ("advocate", "Advocate"),
    ):
        assert f'<option value="{value}">{label}</option>' in html
    assert '<option value="US">United States</option>' in html
    assert "trainee or early-career investigator" in html
    assert 'href="/privacy"' in html
    # Every input has a label.
    for field_id in re.findall(r'<(?:input|select)[^>]*id="(\w+)"', html):
        if field_id != "csrf_token":
            assert f'for="{field_id}"' in html, field_id


def test_successful_registration(app, client, make_event):
    make_event()
    response = post(client, email="Zoe@Example.ORG")
    assert response.status_code == 303
    (attendee,) = stored(app)
    assert response.location.endswith(f"/registration/{attendee.token}")
    assert (attendee.first_name, attendee.last_name) == ("Zoë", "Núñez-李")  # kept exactly
    assert attendee.email == "Zoe@example.org"  # the domain normalised, the local part kept
    assert attendee.status == "confirmed"
    assert attendee.role == "scientist"
    assert attendee.early_career is True
    assert attendee.badge_name == "Zoë Núñez-李"
    assert attendee.country == "US"
    assert re.fullmatch(f"NEC-[{CODE_ALPHABET}]{{6}}", attendee.code)
    assert len(attendee.token) >= 40
    assert attendee.consent_at.tzinfo is not None

    page = client.get(response.location)
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert attendee.code in html
    assert "You are registered" in html
    assert "Zoë Núñez-李" in html
    assert "Scientist" in html and "early-career" in html
    assert page.headers["Cache-Control"] == "no-store"


def test_optional_fields_may_be_left_out(app, client, make_event):
    make_event()
    response = post(client, institution="", badge_name="Dr Z", early_career=None)
    assert response.status_code == 303
    (attendee,) = stored(app)
    assert (attendee.institution, attendee.badge_name, attendee.early_career) == ("", "Dr Z", False)


def test_second_registration_with_the_same_email_in_any_case_is_refused(app, client, make_event):
    make_event()
    assert post(client, email="zoe@example.org").status_code == 303
    response = post(client, email="ZOE@EXAMPLE.ORG", first_name="Other")
    assert response.status_code == 409
    assert "already registered" in response.get_data(as_text=True)
    assert [a.first_name for a in stored(app)] == ["Zoë"]


def test_a_cancelled_registration_does_not_block_a_new_one(app, client, make_event, make_attendee):
    event = make_event()
    make_attendee(event, email="zoe@example.org", status="cancelled")
    assert post(client, email="zoe@example.org").status_code == 303
    assert [a.status for a in stored(app)] == ["cancelled", "confirmed"]


BAD_INPUT = [
    ("first_name", "", "Please enter your first name."),
    ("first_name", "   ", "Please enter your first name."),
    ("last_name", "\t \n", "Please enter your last name."),
    ("first_name", "x" * 101, "at most 100 characters"),
    ("last_name", "x" * 101, "at most 100 characters"),
    ("badge_name", "x" * 101, "at most 100 characters"),
    ("institution", "x" * 201, "at most 200 characters"),
    ("email", "a" * 250 + "@example.org", "at most 254 characters"),
    ("email", "", "Please enter your e-mail address."),
    ("email", "not-an-address", "does not look right"),
    ("email", "zoe@localhost", "does not look right"),
    ("first_name", "Zo\x00ë", "control characters"),
    ("last_name", "Núñez\x1b[31m", "control characters"),
    ("institution", "UNC\r\nChildren's", "control characters"),
    ("badge_name", "Dr\tZ", "control characters"),
    ("role", "surgeon", "Please choose one of the roles"),
    ("role", "", "Please choose how you attend."),
    ("country", "XX", "Please choose a country from the list."),
    ("country", "", "Please choose your country."),
    ("consent", None, "Please agree to the privacy notice"),
]


@pytest.mark.parametrize(("field", "value", "message"), BAD_INPUT)
def test_bad_input_is_refused_at_its_field_and_stores_nothing(
    app, client, make_event, field, value, message
):
    make_event()
    response = post(client, **{field: value})
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert message in html
    # The message stands at the field, linked for screen readers, and in the summary.
    assert f'id="{field}-error"' in html
    assert f'aria-describedby="{field}-hint {field}-error"' in html or (
        f'aria-describedby="{field}-error"' in html
    )
    assert f'href="#{field}"' in html
    assert stored(app) == []


def test_many_errors_at_once_are_all_shown(app, client, make_event):
    make_event()
    response = post(client, first_name="", email="bad", consent=None)
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    for field in ("first_name", "email", "consent"):
        assert f'id="{field}-error"' in html
    assert 'value="Núñez-李"' in html  # what was typed right is kept
    assert '<option value="US" selected>United States</option>' in html
    assert stored(app) == []


@pytest.mark.parametrize("token", [None, "forged-token"])
def test_missing_or_wrong_csrf_token_is_refused(app, client, make_event, token):
    make_event()
    client.get("/register")  # a session exists, as for a real visitor
    response = client.post("/register", data=registration_form(csrf_token=token))
    assert response.status_code == 400
    assert "reload the page" in response.get_data(as_text=True)
    assert stored(app) == []


def test_a_body_over_the_limit_is_413(app, client, make_event):
    make_event()
    form = registration_form(csrf_token=csrf_token(client), institution="x" * 70_000)
    response = client.post("/register", data=form)
    assert response.status_code == 413
    assert "too large" in response.get_data(as_text=True)
    assert stored(app) == []


def test_registration_closed_after_the_window(app, client, make_event):
    event = make_event()
    token = csrf_token(client)  # the form was opened while registration was open
    with app.app_context():
        event = db.session.get(Event, event.id)
        event.registration_closes_at = datetime.now(UTC) - timedelta(minutes=1)
        db.session.commit()
    page = client.get("/register")
    assert page.status_code == 200
    assert "Registration is closed" in page.get_data(as_text=True)
    assert 'name="first_name"' not in page.get_data(as_text=True)
    response = client.post("/register", data=registration_form(csrf_token=token))
    assert response.status_code == 403
    assert "Registration is closed" in response.get_data(as_text=True)
    assert stored(app) == []


def test_registration_not_yet_open(app, client, make_event):
    event = make_event()
    token = csrf_token(client)
    with app.app_context():
        event = db.session.get(Event, event.id)
        event.registration_opens_at = datetime(2099, 3, 1, 9, 0, tzinfo=UTC)
        db.session.commit()
    html = client.get("/register").get_data(as_text=True)
    assert "Registration opens on March 01, 2099 at 09:00 UTC" in html
    response = client.post("/register", data=registration_form(csrf_token=token))
    assert response.status_code == 403
    assert stored(app) == []


def test_simultaneous_submissions_of_one_email_make_one_registration(app, make_event):
    """Two real connections race: one registration, one clear 409, never a 500."""
    make_event()
    barrier = threading.Barrier(2)
    statuses: list[int] = []
    errors: list[BaseException] = []

    def submit(n: int) -> None:
        try:
            client = app.test_client()
            form = registration_form(csrf_token=csrf_token(client), first_name=f"Racer{n}")
            barrier.wait(timeout=10)
            statuses.append(client.post("/register", data=form).status_code)
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    for _round in range(5):
        statuses.clear()
        threads = [threading.Thread(target=submit, args=(n,)) for n in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert not errors, errors
        assert sorted(statuses) == [303, 409]
        count = select(func.count()).select_from(Attendee).where(Attendee.status != "cancelled")
        with app.app_context():
            assert db.session.execute(count).scalar_one() == 1
            # Free the e-mail for the next round.
            db.session.execute(Attendee.__table__.update().values(status="cancelled"))
            db.session.commit()


def test_each_visitor_gets_their_own_token_in_the_shared_blank_form(app, make_event):
    """The empty form is rendered once for everyone; the CSRF token in it is each visitor's."""
    make_event()
    one, two = app.test_client(), app.test_client()
    # No app context is held around the requests: each has its own, as in production (a held
    # one would carry one visitor's token to the next).
    token_one, token_two = csrf_token(one), csrf_token(two)
    page = one.get("/register").get_data(as_text=True)
    crossed = two.post("/register", data=registration_form(csrf_token=token_one))
    two_ok = two.post("/register", data=registration_form(csrf_token=token_two))
    one_ok = one.post(
        "/register", data=registration_form(csrf_token=token_one, email="o@example.org")
    )
    assert token_one != token_two
    assert "csrf-token-of-this-visitor" not in page
    assert crossed.status_code == 400  # a token works with its own visitor's session
    assert two_ok.status_code == 303
    assert one_ok.status_code == 303
    assert len(stored(app)) == 2


def test_the_blank_form_follows_the_counts(client, make_event, make_attendee):
    event = make_event(capacity_by_role={"family": 1})
    assert "full: joins the waiting list" not in client.get("/register").get_data(as_text=True)
    make_attendee(event, role="family")
    page = client.get("/register").get_data(as_text=True)
    assert "Patient-family (full: joins the waiting list)" in page
