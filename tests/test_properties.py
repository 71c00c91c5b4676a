"""Property-based tests (issue 16, item 9): arbitrary input, NUL, control and bidi characters,
huge strings and values of the wrong shape, sent to the registration form, the self-service
form, the sign-in, check-in codes, the attendee list's query and the event-file loader. Never
a 500 (the tests' app raises the exception instead), and nothing stored when refused.

Each test runs on the function-scoped ``app`` (a fresh database per test and database kind);
its examples share that database on purpose, and each example compares what is stored with
what was stored before it, so the health check about function-scoped fixtures is suppressed
knowingly. Examples are derandomized and bounded: the file runs in well under a minute per
database.
"""

# ruff: noqa: F811 - pytest fixtures imported from organizer_fixtures are used as arguments

from __future__ import annotations

from datetime import UTC, date, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from organizer_fixtures import (  # noqa: F401
    ADMIN_EMAIL,
    admin_client,
    make_organizer,
    page_csrf,
    staff_client,
)
from sqlalchemy import func, select

from conftest import csrf_token, registration_form
from necreg.events import EventFileError, load_event
from necreg.extensions import db
from necreg.models import Attendee, CheckInScan, Event, OutboxMessage

PROPERTIES = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

#: Characters that have broken sites: NUL, controls, bidi overrides, zero-width, a BOM, a
#: lone combining accent, full-width letters, the Unicode replacement character.
NASTY = "\x00\x01\x07\x1b\x7f\u0085\u202e\u202a\u2066\u2069\u200b\u200d\ufeff\u0301\uff21\ufffd"
#: Any character but lone surrogates (a form cannot carry them as UTF-8).
characters = st.characters(blacklist_categories=("Cs",))
#: A text with one character that has broken a database (NUL) or a page (bidi, zero-width).
dirty_text = st.tuples(
    st.text(max_size=8), st.sampled_from(["\x00", "\u202e", "\x1b", "\u200b"]), st.text(max_size=8)
).map("".join)
text = st.one_of(
    dirty_text,
    st.text(characters, max_size=40),
    st.text(st.sampled_from(NASTY + "aé李 @.-="), max_size=20),
    st.sampled_from(["", " ", "x" * 5000, "=HYPERLINK(1)", "a\x00b", "NEC-" + "\u202e" * 3]),
)
#: A form value: one text, or several (a field sent twice), as a browser could never.
value = st.one_of(text, st.lists(text, min_size=2, max_size=3))


def count(model) -> int:
    return db.session.execute(select(func.count()).select_from(model)).scalar_one()


def counts(app) -> tuple[int, int]:
    with app.app_context():
        return count(Attendee), count(OutboxMessage)


REGISTRATION_FIELDS = [
    "first_name", "last_name", "email", "role", "institution", "country", "early_career",
    "credential", "badge_name", "attendance", "consent", "consent_photo", "consent_list",
    "code", "support_request", "support_statement", "program", "website", "form_shown",
    "guests-0-first_name", "guests-0-age_band", "q_diet", "csrf_token",
]  # fmt: skip


@PROPERTIES
@given(changes=st.dictionaries(st.sampled_from(REGISTRATION_FIELDS) | text, value, max_size=5))
def test_the_registration_form_never_fails_and_stores_nothing_it_refuses(
    app, client, make_event, changes
):
    if not hasattr(app, "_property_event"):
        app._property_event = make_event(max_guests=2)
        app._property_token = csrf_token(client)
    form = registration_form(csrf_token=app._property_token)
    form.update(changes)
    before = counts(app)
    response = client.post("/register", data=form)
    assert response.status_code in (303, 400, 409, 413), response.status_code
    after = counts(app)
    if response.status_code == 303 and "/registration/" in response.location:
        assert after[0] > before[0] and after[1] > before[1]
    else:  # refused, or refused as a script's (the honeypot): nothing stored, nothing sent
        assert after == before


DETAIL_FIELDS = [
    "first_name", "last_name", "role", "institution", "country", "early_career", "credential",
    "badge_name", "attendance", "consent_photo", "consent_list", "csrf_token",
]  # fmt: skip


@PROPERTIES
@given(changes=st.dictionaries(st.sampled_from(DETAIL_FIELDS) | text, value, max_size=4))
def test_the_self_service_form_never_fails_and_refusals_change_nothing(
    app, client, make_event, make_attendee, changes
):
    if not hasattr(app, "_property_person"):
        event = make_event()
        app._property_person = make_attendee(event, first_name="Ada", last_name="Lovelace")
        app._property_path = f"/registration/{app._property_person.token}"
        app._property_token = csrf_token(client, app._property_path)
    form = {
        "csrf_token": app._property_token, "first_name": "Ada", "last_name": "Lovelace",
        "role": "clinician", "country": "GB", "attendance": "in_person",
    }  # fmt: skip
    form.update(changes)
    with app.app_context():
        before = db.session.get(Attendee, app._property_person.id).updated_at
    response = client.post(app._property_path, data=form)
    assert response.status_code in (303, 400, 409, 413), response.status_code
    if response.status_code != 303:
        with app.app_context():
            assert db.session.get(Attendee, app._property_person.id).updated_at == before


@PROPERTIES
@given(email=value, password=value, extra=st.dictionaries(text, value, max_size=2))
def test_sign_in_never_fails_on_strange_input(app, make_organizer, client, email, password, extra):
    if not hasattr(app, "_property_token"):
        make_organizer(ADMIN_EMAIL)
        app.config["LOGIN_RATE_LIMIT"] = "100000 per minute"
        app._property_token = page_csrf(client, "/organizer/login")
    form = {**extra, "email": email, "password": password, "csrf_token": app._property_token}
    response = client.post("/organizer/login", data=form)
    assert response.status_code in (400, 401, 413, 429), response.status_code


@PROPERTIES
@given(code=value, program=st.one_of(st.just(""), text))
def test_check_in_codes_never_fail_and_check_in_nobody(
    app, staff_client, make_event, make_attendee, code, program
):
    if not hasattr(app, "_property_token"):
        make_attendee(make_event())
        app.config["CHECK_IN_RATE_LIMIT"] = "100000 per minute"
        app._property_token = page_csrf(staff_client, "/organizer/check-in")
    form = {"code": code, "program": program, "csrf_token": app._property_token}
    response = staff_client.post(
        "/organizer/check-in", data=form, headers={"Accept": "application/json"}
    )
    assert response.status_code in (400, 404, 409, 413), response.status_code
    with app.app_context():
        assert db.session.execute(select(Attendee.checked_in_at)).scalar_one() is None
        # Every scan is logged, a scan that found no one too; nothing else is stored.
        assert count(CheckInScan) >= 0


LIST_ARGS = [
    "q", "role", "status", "country", "payment", "sort", "order", "early_career", "checked_in",
    "program", "page", "count", "q_diet",
]  # fmt: skip


@PROPERTIES
@given(args=st.dictionaries(st.sampled_from(LIST_ARGS) | text, value, max_size=5))
def test_the_attendee_list_answers_any_query(app, admin_client, make_event, make_attendee, args):
    if not hasattr(app, "_property_event"):
        app._property_event = make_event()
        make_attendee(app._property_event)
    for path in ("/organizer/attendees", "/organizer/export/badges.csv"):
        response = admin_client.get(path, query_string=args)
        assert response.status_code in (200, 400), (path, response.status_code)


# --- the event-file loader --------------------------------------------------------------------

toml_value = st.recursive(
    st.one_of(
        text, st.text(st.sampled_from(NASTY), min_size=1, max_size=3), st.none(), st.booleans(),
        st.integers(), st.floats(allow_nan=True), st.dates(), st.datetimes(),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(["a", "key", "name"]) | text, inner, max_size=3),
    ),
    max_leaves=8,
)  # fmt: skip
EVENT_KEYS = [
    "slug", "name", "tagline", "starts_on", "ends_on", "venue", "hosts", "current", "sessions",
    "faculty", "capacity", "registration_opens_at", "registration_closes_at", "description",
    "capacity_by_role", "testimonials", "questions", "virtual", "virtual_capacity", "join_url",
    "max_guests", "infants_count", "consent_version", "currency", "prices", "refund_until",
    "program", "cme_statement", "certificates_from", "support_budget", "timezone",
    "highlights_url",
]  # fmt: skip
BASE_EVENT = {
    "slug": "nec-2099", "name": "NEC Symposium", "starts_on": date(2099, 9, 7),
    "ends_on": date(2099, 9, 10), "current": True,
    "registration_opens_at": datetime(2099, 1, 1, tzinfo=UTC),
}  # fmt: skip


#: The event's texts.
TEXT_KEYS = ["name", "tagline", "venue", "description", "consent_version", "cme_statement"]


@PROPERTIES
@given(
    changes=st.one_of(
        st.dictionaries(st.sampled_from(EVENT_KEYS), toml_value, min_size=1, max_size=2),
        st.dictionaries(st.sampled_from(TEXT_KEYS), dirty_text, min_size=1, max_size=2),
    ),
    unknown=st.dictionaries(text, toml_value, max_size=1),
    removed=st.lists(st.sampled_from(sorted(BASE_EVENT)), max_size=2),
)
def test_the_event_loader_refuses_with_its_own_error_and_stores_nothing(
    app, changes, unknown, removed
):
    data = {k: v for k, v in {**BASE_EVENT, **changes, **unknown}.items() if k not in removed}
    with app.app_context():
        try:
            load_event(db.session, data)
            db.session.commit()  # what the command does with a file it takes
        except EventFileError:
            db.session.rollback()  # ... and with one it refuses
            stored = db.session.execute(select(Event.slug)).scalars().all()
            assert stored in ([], ["nec-2099"]), stored
        finally:
            db.session.rollback()
