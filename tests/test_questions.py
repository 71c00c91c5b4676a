"""The event's own questions: definitions, the form, self-service, JSON, CSV and the list filter."""

# ruff: noqa: F811 - pytest fixtures imported from organizer_fixtures are used as arguments

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime
from html import unescape

import pytest
from organizer_fixtures import admin_client, make_organizer  # noqa: F401
from sqlalchemy import delete, func, select
from werkzeug.datastructures import MultiDict

from conftest import EDITION_YEAR, csrf_token, registration_form
from necreg.events import EventFileError, load_event
from necreg.extensions import db
from necreg.models import Answer, Attendee, AttendeeChange, Event, Question
from necreg.questions import (
    QuestionError,
    QuestionSpec,
    answer_text,
    clean_answers,
    definitions,
    event_questions,
)
from necreg.registration import SENSITIVE_CHANGE, update_answers

QUESTIONS = [
    {
        "key": "dietary",
        "label": "Dietary requirements",
        "type": "choice",
        "choices": ["None", {"value": "vegan", "label": "Vegan"}],
        "other": True,
        "required": True,
    },
    {
        "key": "access",
        "label": "Accessibility needs",
        "type": "multi",
        "choices": [{"value": "wheelchair", "label": "Wheelchair access"}, "Captioning"],
        "other": True,
        "sensitive": True,
    },
    {"key": "photo_ok", "label": "Photos of me are fine", "type": "yes_no"},
    {"key": "title", "label": "Your title", "type": "text"},
    {"key": "notes", "label": "Anything else?", "type": "textarea", "help": "Tell us."},
    {
        "key": "children",
        "label": "Children coming",
        "type": "text",
        "roles": ["family"],
        "required": True,
    },
]


def event_file(**over) -> dict:
    data = {
        "slug": "nec-2099",
        "name": "NEC Symposium",
        "starts_on": date(EDITION_YEAR, 9, 7),
        "ends_on": date(EDITION_YEAR, 9, 10),
        "current": True,
        "questions": QUESTIONS,
    }
    data.update(over)
    return data


@pytest.fixture
def event(app):
    with app.app_context():
        loaded, _created = load_event(db.session, event_file())
        db.session.commit()
        return loaded.id


def answered_form(client, **over) -> dict:
    form = registration_form(
        csrf_token=csrf_token(client),
        q_dietary="other",
        q_dietary_other="No shellfish",
        q_access=["wheelchair", "other"],
        q_access_other="Step-free seat",
        q_photo_ok="no",
        q_title="Dr",
        q_notes="Line one\nline two",
    )
    form.update(over)
    return {k: v for k, v in form.items() if v is not None}


def stored_answers(app) -> int:
    with app.app_context():
        return db.session.execute(select(func.count()).select_from(Answer)).scalar_one()


def attendees(app) -> int:
    with app.app_context():
        return db.session.execute(select(func.count()).select_from(Attendee)).scalar_one()


# --- definitions ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ({"key": "Bad Key", "label": "x"}, "key must be"),
        ({"key": "k", "label": "x", "type": "date"}, "type must be one of"),
        ({"key": "k", "label": "x", "type": "choice"}, "choices must be a list"),
        ({"key": "k", "label": "x", "type": "choice", "choices": ["a", "a"]}, "offered twice"),
        ({"key": "k", "label": "x", "other": True}, "only choice and multi"),
        ({"key": "k", "label": "x", "choices": ["a"]}, "only choice and multi questions have"),
        ({"key": "k", "label": ""}, "label is required"),
        ({"key": "k", "label": "x", "roles": ["pilot"]}, "roles must be"),
        ({"key": "k", "label": "x", "colour": "red"}, "unknown key"),
        ({"key": "k", "label": "x", "required": "yes"}, "required must be true or false"),
    ],
)
def test_a_wrong_definition_is_refused_with_what_is_wrong(item, message):
    with pytest.raises(QuestionError, match=message):
        definitions([item])


def test_a_key_used_twice_or_taken_by_an_other_text_is_refused():
    with pytest.raises(QuestionError, match="used twice"):
        definitions([{"key": "a", "label": "A"}, {"key": "a", "label": "B"}])
    other = {"key": "diet", "label": "D", "type": "choice", "choices": ["x"], "other": True}
    with pytest.raises(QuestionError, match="Other text"):
        definitions([other, {"key": "diet_other", "label": "E"}])


def test_an_event_file_with_a_wrong_question_stores_nothing(app):
    bad = event_file(questions=[*QUESTIONS, {"key": "x", "label": "X", "type": "nope"}])
    with app.app_context():
        with pytest.raises(EventFileError, match="question x: type"):
            load_event(db.session, bad)
        db.session.rollback()
        assert db.session.execute(select(func.count()).select_from(Event)).scalar_one() == 0
        assert db.session.execute(select(func.count()).select_from(Question)).scalar_one() == 0


def test_reloading_the_file_retires_questions_it_no_longer_names_and_keeps_their_answers(
    app, client, event
):
    assert client.post("/register", data=answered_form(client)).status_code == 303
    with app.app_context():
        load_event(db.session, event_file(questions=QUESTIONS[:1]))
        db.session.commit()
        retired = db.session.execute(
            select(Question.key).where(Question.retired_at.is_not(None))
        ).scalars()
        assert sorted(retired) == ["access", "children", "notes", "photo_ok", "title"]
    assert stored_answers(app) == 6  # dietary, access x2, photo_ok, title, notes
    page = client.get("/register").get_data(as_text=True)
    assert 'name="q_dietary"' in page and 'name="q_title"' not in page
    with app.app_context():  # named again: asked again, its answers as they were
        load_event(db.session, event_file())
        db.session.commit()
        assert not db.session.execute(
            select(Question.key).where(Question.retired_at.is_not(None))
        ).all()


def test_a_question_with_answers_keeps_its_type_and_its_answered_choices(app, client, event):
    assert client.post("/register", data=answered_form(client)).status_code == 303
    changed_type = [{**QUESTIONS[3], "type": "textarea"}, *QUESTIONS[:3], *QUESTIONS[4:]]
    with app.app_context():
        with pytest.raises(EventFileError, match="key and type stay"):
            load_event(db.session, event_file(questions=changed_type))
        db.session.rollback()
        no_vegan_other = [{**QUESTIONS[0], "other": False}, *QUESTIONS[1:]]
        with pytest.raises(EventFileError, match="'other' has answers"):
            load_event(db.session, event_file(questions=no_vegan_other))
        db.session.rollback()
        relabelled = [{**QUESTIONS[3], "label": "Title, e.g. Dr"}, *QUESTIONS[:3], *QUESTIONS[4:]]
        load_event(db.session, event_file(questions=relabelled))
        db.session.commit()
        title = db.session.execute(select(Question).where(Question.key == "title")).scalar_one()
        assert (title.type, title.label, title.position) == ("text", "Title, e.g. Dr", 0)


# --- the rules of answers ---------------------------------------------------------------------


def spec(**over) -> QuestionSpec:
    values = {"id": 1, "key": "q", "label": "Q", "type": "choice", "choices": (("a", "A"),)}
    values.update(over)
    return QuestionSpec(**values)


def test_answers_to_questions_not_asked_of_the_role_are_left_out():
    question = spec(type="text", roles=("family",), required=True)
    answers, errors = clean_answers([question], "scientist", {"q_q": "three"})
    assert (answers.values, errors) == ({}, {})
    answers, errors = clean_answers([question], "family", {})
    assert errors == {"q": "Please answer this question."}
    answers, errors = clean_answers([question], "family", {"q_q": " three "})
    assert answers.values == {"q": "three"}


@pytest.mark.parametrize(
    ("question", "form", "message"),
    [
        (spec(), {"q_q": "b"}, "choose one of the choices"),
        (spec(type="multi"), {"q_q": ["a", "b"]}, "choose from the choices"),
        (spec(type="yes_no"), {"q_q": "maybe"}, "choose one of the choices"),
        (spec(other=True), {"q_q": "other"}, "say what"),
        (spec(type="text"), {"q_q": "x" * 201}, "at most 200"),
        (spec(type="textarea"), {"q_q": "x" * 2001}, "at most 2000"),
        (spec(type="text"), {"q_q": "a\x00b"}, "control characters"),
        (spec(type="multi", required=True), {}, "choose an answer"),
    ],
)
def test_a_wrong_answer_gets_a_message(question, form, message):
    answers, errors = clean_answers([question], "clinician", form)
    assert message in errors["q"]
    assert "q" not in answers.values or question.other


def test_answer_text_is_what_a_person_reads():
    diet = spec(other=True)
    assert answer_text(diet, "other", "No nuts") == "other: No nuts"
    assert answer_text(spec(type="multi"), ("a", "b"), None) == "a; b"
    assert answer_text(spec(type="yes_no"), False, None) == "no"
    assert answer_text(spec(type="text"), "Dr", None) == "Dr"
    assert answer_text(diet, None, None) == ""


# --- through the site -------------------------------------------------------------------------


def test_every_question_type_round_trips_form_store_self_service_csv_and_filter(
    app, client, admin_client, event
):
    page = client.get("/register").get_data(as_text=True)
    # Choices are a fieldset with a legend; a written answer a labelled input.
    assert re.search(r"<fieldset class=\"choices\"[^>]*>\s*<legend>Dietary requirements", page)
    assert '<label for="q_title">Your title' in page
    assert "Asked of Patient-family only." in page

    response = client.post("/register", data=answered_form(client, role="family", q_children="2"))
    assert response.status_code == 303
    token = response.headers["Location"].rsplit("/", 1)[1]

    data = client.get(f"/api/registrations/{token}").get_json()
    assert data["answers"] == {
        "dietary": "other",
        "dietary_other": "No shellfish",
        "access": ["wheelchair", "other"],
        "access_other": "Step-free seat",
        "photo_ok": False,
        "title": "Dr",
        "notes": "Line one\nline two",
        "children": "2",
    }

    own = client.get(f"/registration/{token}").get_data(as_text=True)
    assert "Other: No shellfish" in unescape(own)
    assert re.search(r'value="vegan"(?! checked)', own)
    assert re.search(r'name="q_photo_ok" value="no" checked', own)

    edit = {
        "csrf_token": csrf_token(client, f"/registration/{token}"),
        "first_name": "Zoë",
        "last_name": "Núñez",
        "role": "family",
        "country": "US",
        "q_dietary": "vegan",
        "q_access": ["Captioning"],
        "q_photo_ok": "yes",
        "q_children": "3",
    }
    assert client.post(f"/registration/{token}", data=edit).status_code == 303
    data = client.get(f"/api/registrations/{token}").get_json()
    assert data["answers"] == {
        "dietary": "vegan",
        "access": ["Captioning"],
        "photo_ok": True,
        "children": "3",
    }

    exported = admin_client.get("/organizer/export/badges.csv").get_data(as_text=True)
    (row,) = csv.DictReader(io.StringIO(exported))
    assert (row["q_dietary"], row["q_photo_ok"], row["q_children"]) == ("vegan", "yes", "3")
    assert "q_access" not in row  # sensitive: only when asked for
    exported = admin_client.get("/organizer/export/badges.csv?sensitive=yes").get_data(as_text=True)
    (row,) = csv.DictReader(io.StringIO(exported))
    assert row["q_access"] == "Captioning"

    listed = admin_client.get("/organizer/attendees?q_dietary=vegan").get_data(as_text=True)
    assert data["code"] in listed
    listed = admin_client.get("/organizer/attendees?q_dietary=None").get_data(as_text=True)
    assert data["code"] not in listed
    listed = admin_client.get("/organizer/attendees?q_photo_ok=yes").get_data(as_text=True)
    assert data["code"] in listed
    exported = admin_client.get("/organizer/export/badges.csv?q_access=Captioning&sensitive=yes")
    assert data["code"] in exported.get_data(as_text=True)


def test_a_choice_not_offered_is_refused_and_nothing_is_stored(app, client, event):
    response = client.post("/register", data=answered_form(client, q_dietary="caviar"))
    assert response.status_code == 400
    page = unescape(response.get_data(as_text=True))
    assert '<p class="error" id="q_dietary-error">Please choose one of the choices offered.' in page
    assert '<a href="#q_dietary-0">Dietary requirements: Please choose one' in page
    assert 'value="Dr"' in page  # what was typed is shown again
    assert attendees(app) == 0
    assert stored_answers(app) == 0


def test_a_required_question_left_empty_is_refused(app, client, event):
    response = client.post("/register", data=answered_form(client, q_dietary=None))
    assert response.status_code == 400
    assert "Please choose an answer." in response.get_data(as_text=True)
    response = client.post("/register", data=answered_form(client, role="family"))
    assert response.status_code == 400  # children: asked of families, required
    assert attendees(app) == 0


def test_a_refused_self_service_edit_changes_no_answer(app, client, event):
    response = client.post("/register", data=answered_form(client))
    token = response.headers["Location"].rsplit("/", 1)[1]
    before = client.get(f"/api/registrations/{token}").get_json()["answers"]
    edit = {
        "csrf_token": csrf_token(client, f"/registration/{token}"),
        "first_name": "Changed",
        "last_name": "Name",
        "role": "scientist",
        "country": "US",
        "q_dietary": "vegan",
        "q_access": ["teleport"],
    }
    response = client.post(f"/registration/{token}", data=edit)
    assert response.status_code == 400
    assert "Please choose from the choices offered." in response.get_data(as_text=True)
    data = client.get(f"/api/registrations/{token}").get_json()
    assert data["answers"] == before
    assert data["first_name"] == "Zoë"


def test_the_audit_trail_records_a_sensitive_answer_without_its_text(app, client, event):
    response = client.post("/register", data=answered_form(client))
    token = response.headers["Location"].rsplit("/", 1)[1]
    edit = {
        "csrf_token": csrf_token(client, f"/registration/{token}"),
        "first_name": "Zoë",
        "last_name": "Núñez-李",
        "role": "scientist",
        "country": "US",
        "institution": "UNC Children's",
        "badge_name": "Zoë Núñez-李",
        "early_career": "y",
        "q_dietary": "other",
        "q_dietary_other": "No shellfish",
        "q_access": ["wheelchair"],
        "q_photo_ok": "no",
        "q_title": "Prof",
        "q_notes": "Line one\nline two",
    }
    assert client.post(f"/registration/{token}", data=edit).status_code == 303
    with app.app_context():
        change = db.session.execute(
            select(AttendeeChange).where(AttendeeChange.action == "answers")
        ).scalar_one()
        assert change.changes == {
            "q_access": [SENSITIVE_CHANGE, SENSITIVE_CHANGE],
            "q_title": ["Dr", "Prof"],
        }


def test_an_unknown_question_or_choice_in_the_list_filter_says_so(admin_client, event):
    response = admin_client.get("/organizer/attendees?q_shoe_size=44")
    assert response.status_code == 400
    assert "No question &#39;shoe_size&#39;" in response.get_data(as_text=True)
    response = admin_client.get("/organizer/attendees?q_title=Dr")
    assert response.status_code == 400
    assert "Only questions with choices" in response.get_data(as_text=True)
    response = admin_client.get("/organizer/export/badges.csv?q_dietary=caviar")
    assert response.status_code == 400
    assert "dietary has no choice 'caviar'" in response.get_data(as_text=True)


def test_the_shipped_event_file_asks_the_nec_symposium_questions(app):
    from pathlib import Path

    from necreg.events import read_event_file

    data = read_event_file(Path(__file__).parent.parent / "events" / "nec-symposium.toml")
    checked = {d["key"]: d for d in definitions(data["questions"])}
    assert {"dietary", "accessibility", "family_support", "heard_about"} <= set(checked)
    assert checked["dietary"]["other"] and checked["dietary"]["type"] == "choice"
    access = checked["accessibility"]
    assert access["type"] == "multi" and access["other"] and access["sensitive"]
    assert {c["value"] for c in access["choices"]} >= {
        "wheelchair", "sign_language", "captioning", "large_print", "quiet_room",
    }  # fmt: skip
    assert {c["value"] for c in checked["family_support"]["choices"]} == {
        "childcare", "lactation_room",
    }  # fmt: skip


def test_the_organizer_sees_the_answers_on_the_attendee_page(app, client, admin_client, event):
    response = client.post("/register", data=answered_form(client))
    token = response.headers["Location"].rsplit("/", 1)[1]
    with app.app_context():
        attendee_id = db.session.execute(
            select(Attendee.id).where(Attendee.token == token)
        ).scalar_one()
    page = unescape(admin_client.get(f"/organizer/attendees/{attendee_id}").get_data(as_text=True))
    assert "<dt>Dietary requirements</dt><dd>Other: No shellfish</dd>" in page
    assert "<dt>Accessibility needs</dt><dd>Wheelchair access; Other: Step-free seat</dd>" in page
    assert "<dt>Photos of me are fine</dt><dd>No</dd>" in page


def test_seed_demo_makes_up_answers_to_the_questions_asked(app, event):
    from necreg.seed import seed_demo

    with app.app_context():
        loaded = db.session.get(Event, event)
        seed_demo(db.session, loaded, 200, code_prefix="NEC", seed=7)
        db.session.commit()
        per_question = dict(
            db.session.execute(
                select(Question.key, func.count(func.distinct(Answer.attendee_id)))
                .join(Answer, Answer.question_id == Question.id)
                .group_by(Question.key)
            ).all()
        )
        assert per_question["dietary"] == 200  # required: everyone answers
        assert 0 < per_question["photo_ok"] < 200  # optional: some leave it
        families = db.session.execute(
            select(func.count()).select_from(Attendee).where(Attendee.role == "family")
        ).scalar_one()
        assert per_question.get("children", 0) == families  # asked of families only


def test_the_cli_export_filters_by_an_answer_and_adds_sensitive_answers_when_asked(
    app, client, runner, event
):
    assert client.post("/register", data=answered_form(client)).status_code == 303
    other = answered_form(client, email="two@example.org", q_dietary="vegan")
    assert client.post("/register", data=other).status_code == 303
    result = runner.invoke(args=["export-badges", "--answer", "dietary=vegan"])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [row["q_dietary"] for row in rows] == ["vegan"]
    assert "q_access" not in rows[0]
    result = runner.invoke(args=["export-badges", "--answer", "dietary=other", "--sensitive"])
    (row,) = csv.DictReader(io.StringIO(result.stdout))
    assert row["q_access"] == "wheelchair; other: Step-free seat"
    result = runner.invoke(args=["export-badges", "--answer", "dietary"])
    assert result.exit_code == 2 and "KEY=CHOICE" in result.output
    result = runner.invoke(args=["export-badges", "--answer", "dietary=caviar"])
    assert result.exit_code == 2 and "no choice 'caviar'" in result.output


def test_changed_answers_change_the_registrations_row(app, client, event):
    """Every instance's watch hears of a change to the attendees table (on PostgreSQL a notice
    from its trigger; answers have none of their own), so a change of answers changes the
    registration's row too: its ``updated_at``."""
    response = client.post("/register", data=answered_form(client))
    token = response.headers["Location"].rsplit("/", 1)[1]
    later = datetime(2030, 1, 1, tzinfo=UTC)
    with app.app_context():
        attendee = db.session.execute(select(Attendee).where(Attendee.token == token)).scalar_one()
        asked = event_questions(db.session, attendee.event_id)
        answers, errors = clean_answers(asked, attendee.role, {"q_dietary": "vegan"})
        assert errors == {}
        assert update_answers(db.session, attendee, asked, answers, now=later)
        db.session.commit()
        assert db.session.get(Attendee, attendee.id).updated_at == later
        # Nothing changed: the row is left alone.
        assert update_answers(db.session, attendee, asked, answers, now=datetime.now(UTC)) == {}
        db.session.commit()
        assert db.session.get(Attendee, attendee.id).updated_at == later


# --- Totals per choice on the dashboard -------------------------------------------------------


def totals(app, event_id):
    from necreg.stats import dashboard_stats

    with app.app_context():
        event = db.session.get(Event, event_id)
        return dashboard_stats(db.session, event, event_questions(db.session, event_id))


def test_the_dashboard_totals_count_the_choices_of_active_attendees(app, client, event):
    from necreg.registration import cancel, find_by_token

    assert client.post("/register", data=answered_form(client)).status_code == 303
    second = answered_form(client, email="b@example.org", q_dietary="vegan", q_access="wheelchair")
    assert client.post("/register", data=second).status_code == 303
    figures = totals(app, event)
    assert figures.answer_totals["dietary"] == {"None": 0, "vegan": 1, "other": 1}
    assert figures.answer_totals["access"] == {"wheelchair": 2, "Captioning": 0, "other": 1}
    assert figures.answer_totals["photo_ok"] == {"yes": 0, "no": 2}
    assert "title" not in figures.answer_totals  # a text has no choices to count
    with app.app_context():
        token = db.session.execute(
            select(Attendee.token).where(Attendee.email == "b@example.org")
        ).scalar_one()
        b = find_by_token(db.session, token)
        # A changed answer moves its figures; a cancelled attendee's answers stop counting.
        questions = event_questions(db.session, event)
        answers, _ = clean_answers(questions, "scientist", MultiDict({"q_dietary": "None"}))
        update_answers(db.session, b, questions, answers)
        db.session.commit()
    figures = totals(app, event)
    assert figures.answer_totals["dietary"] == {"None": 1, "vegan": 0, "other": 1}
    assert figures.answer_totals["access"]["wheelchair"] == 1
    with app.app_context():
        cancel(db.session, find_by_token(db.session, token))
        db.session.commit()
    figures = totals(app, event)
    assert figures.answer_totals["dietary"] == {"None": 0, "vegan": 0, "other": 1}
    # A deleted attendee takes its figures along.
    with app.app_context():
        db.session.execute(delete(Attendee))
        db.session.commit()
    figures = totals(app, event)
    assert figures.answer_totals["dietary"] == {"None": 0, "vegan": 0, "other": 0}
    assert figures.answer_totals["access"] == {"wheelchair": 0, "Captioning": 0, "other": 0}


def test_the_dashboard_page_shows_the_totals_and_how_full_each_cap_is(
    app, client, admin_client, event
):
    with app.app_context():
        row = db.session.get(Event, event)
        row.capacity, row.capacity_by_role = 4, {"scientist": 2}
        db.session.commit()
    assert client.post("/register", data=answered_form(client)).status_code == 303
    page = admin_client.get("/organizer/").get_data(as_text=True)
    assert "<caption>Dietary requirements</caption>" in page
    assert "Accessibility needs (sensitive)" in page
    assert re.search(r'<meter aria-labelledby="cap-1" min="0" max="4"[^>]* value="1"', page)
    assert re.search(r'<meter aria-labelledby="cap-2" min="0" max="2"[^>]* value="1"', page)
    data = admin_client.get("/organizer/stats.json").get_json()
    assert data["caps"] == {
        "event": {"taken": 1, "capacity": 4},
        "role:scientist": {"taken": 1, "capacity": 2},
    }
    assert data["answers"]["dietary"] == {"None": 0, "vegan": 0, "other": 1}
