"""Input hygiene (issue 16, item 5): control and invisible formatting characters refused in
every text, text kept in NFC, NUL bytes and ids out of range answered 404/400 (never 500, on
PostgreSQL above all), rate-limit keys of one address however it is spelled, and CSV cells
that no separator turns into a formula."""

# ruff: noqa: F811 - pytest fixtures imported from organizer_fixtures are used as arguments

from __future__ import annotations

import re

import pytest
from flask_wtf import FlaskForm
from organizer_fixtures import (  # noqa: F401
    admin_client,
    make_organizer,
    page_csrf,
    staff_client,
)
from sqlalchemy import func, select
from werkzeug.routing import IntegerConverter
from wtforms import StringField, TextAreaField

from conftest import EVENT_DEFAULTS, csrf_token, registration_form
from necreg.badges import neutralised
from necreg.extensions import db
from necreg.formats import email_limit_key, has_control_characters
from necreg.forms import strip
from necreg.models import Attendee, Event, InterestSignup, OutboxMessage, Payment, Question
from necreg.web import MAX_ID

#: Characters that show a text other than it is stored, or hide in it.
INVISIBLE = [
    "\u202e",  # RIGHT-TO-LEFT OVERRIDE
    "\u202a",  # LEFT-TO-RIGHT EMBEDDING
    "\u2066",  # LEFT-TO-RIGHT ISOLATE
    "\u2069",  # POP DIRECTIONAL ISOLATE
    "\u200b",  # ZERO WIDTH SPACE
    "\u200d",  # ZERO WIDTH JOINER
    "\ufeff",  # ZERO WIDTH NO-BREAK SPACE (BOM)
    "\u00ad",  # SOFT HYPHEN
    "\x00",  # NUL
    "\x1b",  # ESCAPE
    "\x7f",  # DELETE
]


def count(app, model) -> int:
    with app.app_context():
        return db.session.execute(select(func.count()).select_from(model)).scalar_one()


# --- control and format characters in every text --------------------------------------------


@pytest.mark.parametrize("char", INVISIBLE)
def test_has_control_characters_finds_control_and_format_characters(char):
    assert has_control_characters(f"Zo{char}ë")
    assert not has_control_characters("Zoë Núñez-李, O'Brien")
    assert not has_control_characters("a\nb", "\n")


@pytest.mark.parametrize(
    "field", ["first_name", "last_name", "institution", "badge_name", "code", "support_statement"]
)
@pytest.mark.parametrize("char", ["\u202e", "\u2066", "\u200b", "\ufeff"])
def test_invisible_characters_are_refused_in_every_registration_text(
    app, client, make_event, field, char
):
    make_event(currency="USD", support_budget=100_000)  # support offered: statements read
    over = {field: f"Ann{char}a"}
    if field == "support_statement":
        over["support_request"] = "y"
    response = client.post(
        "/register", data=registration_form(csrf_token=csrf_token(client), **over)
    )
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    # At the field; the statement is checked where it is stored (support.py), as before.
    assert "invisible formatting characters" in page or "cannot be stored" in page
    assert count(app, Attendee) == 0
    assert count(app, OutboxMessage) == 0


def test_a_statement_of_several_lines_keeps_its_line_breaks(app, client, make_event):
    make_event(currency="USD", support_budget=100_000)
    form = registration_form(
        csrf_token=csrf_token(client), support_request="y", support_statement="One.\r\nTwo."
    )
    assert client.post("/register", data=form).status_code == 303


def test_text_is_stored_in_nfc(app, client, make_event):
    make_event()
    decomposed = "Zoe\u0301"  # e + COMBINING ACUTE ACCENT
    form = registration_form(
        csrf_token=csrf_token(client), first_name=decomposed, institution=" Cafe\u0301 "
    )
    assert client.post("/register", data=form).status_code == 303
    with app.app_context():
        attendee = db.session.execute(select(Attendee)).scalar_one()
        assert attendee.first_name == "Zo\u00e9" and len(attendee.first_name) == 3
        assert attendee.institution == "Caf\u00e9"


@pytest.mark.parametrize("char", ["\u202e", "\u200b"])
def test_self_service_details_refuse_invisible_characters(
    app, client, make_event, make_attendee, char
):
    event = make_event()
    person = make_attendee(event, first_name="Ada")
    path = f"/registration/{person.token}"
    form = {
        "csrf_token": csrf_token(client, path), "first_name": f"Ada{char}", "last_name": "L",
        "role": "clinician", "country": "US", "attendance": "in_person",
    }  # fmt: skip
    response = client.post(path, data=form)
    assert response.status_code == 400
    with app.app_context():
        assert db.session.get(Attendee, person.id).first_name == "Ada"


def test_interest_sign_up_refuses_a_bidi_override(app, client, make_event):
    make_event()
    token = csrf_token(client, "/interest")
    form = {
        "csrf_token": token,
        "name": "Eve\u202egnp.exe",
        "email": "e@example.org",
        "consent": "y",
    }
    assert client.post("/interest", data=form).status_code == 400
    assert count(app, InterestSignup) == 0


def test_the_shared_filter_puts_every_forms_text_in_nfc(app):
    """Every form's text goes through forms.strip (the organizer forms' fields too): NFC and
    trimmed, line breaks kept."""

    class Form(FlaskForm):
        title = StringField(filters=[strip])
        body = TextAreaField(filters=[strip])

    with app.test_request_context(
        method="POST", data={"title": " Galá ", "body": " Line one\nCafé "}
    ):
        form = Form(meta={"csrf": False})
        assert form.validate()
        assert form.title.data == "Galá"
        assert form.body.data == "Line one\nCafé"


# --- NUL bytes, control characters and ids out of range: 404/400, never 500 -------------------


def _routes(app, kind: str):
    """Each route's rule and methods, with its arguments of ``kind`` (int or string)."""
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        converters = rule._converters  # werkzeug: argument name -> converter
        ints = [n for n, c in converters.items() if isinstance(c, IntegerConverter)]
        strings = [n for n, c in converters.items() if not isinstance(c, IntegerConverter)]
        if (kind == "int" and ints) or (kind == "string" and strings):
            yield rule, ints, strings


def _path(rule, ints, strings, *, int_value, string_value) -> str:
    path = rule.rule
    for name in ints:
        path = re.sub(rf"<int(\([^)]*\))?:{name}>", str(int_value), path)
    for name in strings:
        path = re.sub(rf"<(\w+:)?{name}>", string_value, path)
    return path


def _statuses(client, path, methods) -> dict[str, int]:
    return {
        m: client.open(path, method=m).status_code for m in sorted(methods - {"OPTIONS", "HEAD"})
    }


def test_ids_beyond_the_databases_integers_are_not_found(app, admin_client, make_event):
    """Every ``<int:...>`` route, as an administrator (who may reach every page): an id of
    2**40 answered 500 on PostgreSQL (its integer is 32 bits)."""
    make_event()
    routes = list(_routes(app, "int"))
    assert len(routes) >= 10
    for big in (2**40, 2**31, 10**30):
        for rule, ints, strings in routes:
            path = _path(rule, ints, strings, int_value=big, string_value="x")
            for method, status in _statuses(admin_client, path, rule.methods).items():
                assert status in (400, 404), (method, path, status)


def test_the_largest_id_is_looked_up_and_not_found(app, admin_client, make_event):
    make_event()
    assert admin_client.get(f"/organizer/attendees/{MAX_ID}").status_code == 404
    assert admin_client.get(f"/organizer/attendees/{MAX_ID + 1}").status_code == 404


def test_nul_bytes_in_tokens_and_codes_are_not_found(app, admin_client, make_event):
    """Every route with a text argument (tokens, codes, slugs, keys), signed in as an
    administrator: a NUL in it answered 500 on PostgreSQL."""
    make_event()
    routes = list(_routes(app, "string"))
    assert any("<token>" in rule.rule for rule, _i, _s in routes)
    for rule, ints, strings in routes:
        path = _path(rule, ints, strings, int_value=1, string_value="a%00b")
        for method, status in _statuses(admin_client, path, rule.methods).items():
            # 400: a POST refused for its missing CSRF token before anything is looked up.
            assert status in (400, 404), (method, path, status)


@pytest.mark.parametrize(
    "path",
    [
        "/organizer/attendees?q=a%00b",
        "/organizer/attendees?role=%00",
        "/organizer/check-in?program=%00",
        "/organizer/login?next=/organizer/%0d%0aSet-Cookie:x=y",
        "/organizer/login?next=%00",
        "/register?x=%00",
    ],
)
def test_control_characters_in_a_query_are_refused(admin_client, make_event, path):
    make_event()
    response = admin_client.get(path)
    assert response.status_code == 400
    assert "control characters" in response.get_data(as_text=True)


def test_the_api_checks_its_query_itself(client, make_event):
    make_event()
    assert client.get("/api/stats?x=%00").status_code == 200  # no parameter: none read


def test_nul_in_a_receipt_number_and_a_token_of_the_api(app, client, make_event, make_attendee):
    event = make_event()
    person = make_attendee(event)
    assert client.get(f"/registration/{person.token}/receipt.pdf?number=%00").status_code == 400
    assert client.get("/api/registrations/a%00b").status_code == 404
    assert client.get(f"/registration/{person.token}%00").status_code == 404


def test_nul_bytes_at_sign_in_are_refused(app, make_organizer, client):
    make_organizer("admin@example.org")
    token = page_csrf(client, "/organizer/login")
    for email, password in (("admin\x00@example.org", "x"), ("admin@example.org\x00", "pw\x00")):
        form = {"email": email, "password": password, "csrf_token": token}
        response = client.post("/organizer/login", data=form)
        assert response.status_code in (400, 401), response.status_code
    assert client.get("/organizer/").status_code == 302  # not signed in


@pytest.mark.parametrize("code", ["NEC-\x00AAAAA", "\x00", "NEC-\u202eAAAAA", "x" * 5000])
def test_strange_check_in_codes_are_answered(app, staff_client, make_event, code):
    make_event()
    token = page_csrf(staff_client, "/organizer/check-in")
    response = staff_client.post(
        "/organizer/check-in",
        data={"code": code, "csrf_token": token},
        headers={"Accept": "application/json"},
    )
    assert response.status_code in (400, 404)
    assert response.get_json()["outcome"] in ("invalid", "unknown")


def test_nul_in_the_registration_code_stores_nothing(app, client, make_event):
    make_event()
    form = registration_form(csrf_token=csrf_token(client), code="FREE\x00")
    assert client.post("/register", data=form).status_code == 400
    assert count(app, Attendee) == 0


# --- rate-limit keys of one address however it is spelled -----------------------------------

SPELLINGS = [
    "ada@example.org",
    "Ada@EXAMPLE.org",
    "ada@\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45.org",  # full-width "example"
    "ADA\uff20\uff25\uff38\uff21\uff2d\uff30\uff2c\uff25\uff0e\uff2f\uff32\uff27",  # all of it
    "ada@example\u3002org",  # the ideographic full stop, a dot to IDNA
]


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_email_limit_key_is_the_same_for_every_spelling(spelling):
    assert email_limit_key(spelling) == "ada@example.org"


def test_lost_link_limit_per_address_holds_for_full_width_domains(
    app, client, make_event, make_attendee
):
    event = make_event()
    make_attendee(event, email="ada@example.org")
    app.config["LOST_LINK_RATE_LIMIT"] = "2 per hour"
    token = csrf_token(client, "/registration/lost-link")
    statuses = []
    for n, spelling in enumerate(SPELLINGS[1:4]):
        response = client.post(
            "/registration/lost-link",
            data={"csrf_token": token, "email": spelling},
            environ_base={"REMOTE_ADDR": f"10.0.0.{n + 1}"},  # each asks from elsewhere
        )
        statuses.append(response.status_code)
    assert statuses == [303, 303, 429]
    assert count(app, OutboxMessage) == 2


def test_interest_limit_per_address_holds_for_full_width_domains(app, client, make_event):
    make_event()
    app.config["INTEREST_RATE_LIMIT"] = "1 per hour"
    token = csrf_token(client, "/interest")
    statuses = []
    for n, spelling in enumerate(SPELLINGS[:2] + SPELLINGS[3:4]):
        form = {"csrf_token": token, "name": "Ada", "email": spelling, "consent": "y"}
        response = client.post(
            "/interest", data=form, environ_base={"REMOTE_ADDR": f"10.0.1.{n + 1}"}
        )
        statuses.append(response.status_code)
    assert statuses == [303, 429, 429]


# --- CSV cells that no separator turns into a formula ----------------------------------------

FORMULAS = [
    'x;=HYPERLINK("http://evil.example","click")',
    "a,=1+1",
    "a|=cmd|' /C calc'!A0",
    "b; +1",
    "c;\t@SUM(1)",
    "d\t-2+3",
    "=direct",
]


def _pieces(text: str):
    for separator in (";", ",", "|", "\t"):
        for line in text.splitlines():
            yield from line.split(separator)


@pytest.mark.parametrize("value", FORMULAS)
def test_neutralised_cells_start_no_formula_after_any_separator(value):
    (cell,) = neutralised([value])
    for piece in _pieces(cell):
        assert not piece.lstrip(" \t\r").startswith(("=", "+", "-", "@")), (value, cell, piece)


def test_the_badge_csv_split_as_a_semicolon_locale_would_holds_no_formula(
    app, admin_client, make_event, make_attendee
):
    event = make_event()
    stored = {
        "first_name": FORMULAS[1], "last_name": FORMULAS[2], "institution": FORMULAS[0],
        "badge_name": FORMULAS[3],
    }  # fmt: skip
    make_attendee(event, **stored)
    make_attendee(event, first_name=FORMULAS[4], last_name=FORMULAS[5], badge_name=FORMULAS[6])
    response = admin_client.get("/organizer/export/badges.csv?email=yes")
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert "HYPERLINK" in text
    for piece in _pieces(text):
        assert not piece.lstrip(' \t\r"').startswith(("=", "+", "-", "@")), piece
    with app.app_context():  # the stored data is untouched
        names = db.session.execute(select(Attendee.institution).order_by(Attendee.id)).scalars()
        assert next(iter(names)) == FORMULAS[0]


def test_organizers_texts_refuse_control_and_invisible_characters(
    app, admin_client, make_event, make_attendee
):
    """A NUL would reach PostgreSQL (a 500), a bidi override would mislead: both refused, 400,
    nothing stored, in the settings, a question, a code and a payment's reference."""
    from test_audit import settings_form

    event = make_event(currency="USD")
    attendee = make_attendee(event, amount_due=20000)
    for over in ({"tagline": "NEC\x00"}, {"description": "Hello \u202egnp.exe"}):
        answer = admin_client.post("/organizer/settings", data=settings_form(admin_client, **over))
        assert answer.status_code == 400, over
    question = {"csrf_token": page_csrf(admin_client, "/organizer/questions"), "key": "k",
                "label": "Diet\u200b", "type": "text"}  # fmt: skip
    assert admin_client.post("/organizer/questions", data=question).status_code == 400
    path = f"/organizer/attendees/{attendee.id}"
    payment = {"csrf_token": page_csrf(admin_client, path), "amount": "200.00",
               "reference": "TR\x00-1"}  # fmt: skip
    assert admin_client.post(f"{path}/payments", data=payment).status_code == 400
    with app.app_context():
        stored = db.session.get(Event, event.id)
        assert stored.tagline == EVENT_DEFAULTS["tagline"]
        assert stored.description == EVENT_DEFAULTS["description"]
        assert db.session.execute(select(func.count(Question.id))).scalar_one() == 0
        assert db.session.execute(select(func.count(Payment.id))).scalar_one() == 0
