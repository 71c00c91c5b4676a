"""Admins manage the event's questions in /organizer/questions: add, change, reorder, retire
and ask again, under the rules the event file follows."""

# ruff: noqa: F811 - pytest fixtures imported from organizer_fixtures are used as arguments

from __future__ import annotations

import pytest
from organizer_fixtures import admin_client, csrf_for, make_organizer, staff_client  # noqa: F401
from sqlalchemy import func, select
from test_questions import answered_form, event  # noqa: F401

from necreg.extensions import db
from necreg.models import Event, Question
from necreg.question_settings import choices_as_text, choices_from_text
from necreg.questions import event_questions


def asked(app, event_id) -> list[str]:
    with app.app_context():
        return [q.key for q in event_questions(db.session, event_id)]


def question_id(app, key: str) -> int:
    with app.app_context():
        return db.session.execute(select(Question.id).where(Question.key == key)).scalar_one()


def updated_at(app, event_id):
    with app.app_context():
        return db.session.get(Event, event_id).updated_at


def new_question(admin_client, **over) -> dict:
    form = {
        "csrf_token": csrf_for(admin_client, "/organizer/questions"),
        "key": "tshirt",
        "label": "T-shirt size",
        "type": "choice",
        "choices": "S | Small\nM | Medium\nL | Large",
        "required": "y",
        "roles": ["clinician", "scientist"],
    }
    form.update(over)
    return {k: v for k, v in form.items() if v is not None}


def test_choices_read_back_as_they_are_written():
    typed = "Vegetarian\nhalal | Halal\n\n  Kosher  "
    choices = choices_from_text(typed)
    assert choices == ["Vegetarian", {"value": "halal", "label": "Halal"}, "Kosher"]
    stored = [{"value": "Vegetarian", "label": "Vegetarian"}, {"value": "halal", "label": "Halal"}]
    assert choices_from_text(choices_as_text(stored)) == ["Vegetarian", stored[1]]


def test_an_admin_adds_a_question_that_the_form_asks_at_once(app, client, admin_client, event):
    before = updated_at(app, event)
    response = admin_client.post("/organizer/questions", data=new_question(admin_client))
    assert response.status_code == 303
    assert asked(app, event)[-1] == "tshirt"
    assert updated_at(app, event) > before
    with app.app_context():
        q = db.session.execute(select(Question).where(Question.key == "tshirt")).scalar_one()
        assert q.choices[1] == {"value": "M", "label": "Medium"}
        assert (q.required, q.roles, q.sensitive, q.other) == (
            True,
            ["clinician", "scientist"],
            False,
            False,
        )
    page = client.get("/register").get_data(as_text=True)
    assert 'name="q_tshirt"' in page and "Medium" in page


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"key": "T Shirt"}, "key must be 1 to 40 of a-z"),
        ({"key": "dietary"}, "the key is taken"),
        ({"key": "dietary_other"}, "the key is dietary&#39;s Other text"),
        ({"label": ""}, "label is required"),
        ({"choices": ""}, "choices must be a list of at least one choice"),
        ({"choices": "S\nS"}, "offered twice"),
        ({"roles": ["pilot"]}, "roles must be a list"),
        ({"type": "date"}, "Not a valid choice"),
    ],
)
def test_a_wrong_question_is_refused_with_what_is_wrong_and_nothing_stored(
    app, admin_client, event, over, message
):
    before = updated_at(app, event)
    with app.app_context():
        count = db.session.execute(select(func.count(Question.id))).scalar_one()
    response = admin_client.post("/organizer/questions", data=new_question(admin_client, **over))
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.execute(select(func.count(Question.id))).scalar_one() == count
    assert updated_at(app, event) == before


def test_questions_move_up_and_down_the_form(app, client, admin_client, event):
    keys = asked(app, event)
    target = question_id(app, keys[2])
    token = csrf_for(admin_client, "/organizer/questions")
    up = admin_client.post(f"/organizer/questions/{target}/up", data={"csrf_token": token})
    assert up.status_code == 303
    assert asked(app, event) == [keys[0], keys[2], keys[1], *keys[3:]]
    admin_client.post(f"/organizer/questions/{target}/down", data={"csrf_token": token})
    assert asked(app, event) == keys
    first = question_id(app, keys[0])
    admin_client.post(f"/organizer/questions/{first}/up", data={"csrf_token": token})
    assert asked(app, event) == keys  # already first: nothing moves
    page = client.get("/register").get_data(as_text=True)
    positions = [page.index(f'name="q_{key}"') for key in keys]
    assert positions == sorted(positions)


def test_a_retired_question_keeps_its_answers_and_can_be_asked_again(
    app, client, admin_client, event
):
    assert client.post("/register", data=answered_form(client)).status_code == 303
    target = question_id(app, "title")
    token = csrf_for(admin_client, "/organizer/questions")
    admin_client.post(f"/organizer/questions/{target}/retire", data={"csrf_token": token})
    assert "title" not in asked(app, event)
    assert 'name="q_title"' not in client.get("/register").get_data(as_text=True)
    page = admin_client.get("/organizer/questions").get_data(as_text=True)
    assert "Retired" in page and "1 answered" in page
    admin_client.post(f"/organizer/questions/{target}/ask-again", data={"csrf_token": token})
    assert asked(app, event)[-1] == "title"


def test_a_question_with_answers_keeps_its_key_type_and_taken_choices(
    app, client, admin_client, event
):
    second = answered_form(client, q_dietary="vegan", email="v@example.org")
    assert client.post("/register", data=second).status_code == 303
    target = question_id(app, "dietary")
    path = f"/organizer/questions/{target}"
    page = admin_client.get(path).get_data(as_text=True)
    assert "stay as they are: the question has answers" in page
    assert "None\nvegan | Vegan" in page
    form = {
        "csrf_token": csrf_for(admin_client, path),
        "key": "dietary",
        "type": "choice",
        "label": "Dietary needs",
        "help": "For catering.",
        "choices": "None\nvegan | Vegan (plant-based)\nHalal",
        "other": "y",
        "required": "y",
    }
    assert admin_client.post(path, data=form).status_code == 303
    with app.app_context():
        q = db.session.get(Question, target)
        assert (q.label, q.help) == ("Dietary needs", "For catering.")
        assert q.choices[1] == {"value": "vegan", "label": "Vegan (plant-based)"}
    refused = admin_client.post(path, data={**form, "choices": "None\nHalal"})
    assert refused.status_code == 400
    assert "the choice &#39;vegan&#39; has answers and must stay" in refused.get_data(as_text=True)
    retyped = admin_client.post(path, data={**form, "type": "multi"})
    assert retyped.status_code == 400 and "its key and type stay" in retyped.get_data(as_text=True)
    with app.app_context():
        q = db.session.get(Question, target)
        assert q.type == "choice" and len(q.choices) == 3


def test_only_admins_manage_questions(app, staff_client, event):
    assert staff_client.get("/organizer/questions").status_code == 403
    target = question_id(app, "title")
    token = csrf_for(staff_client, "/organizer/check-in")
    response = staff_client.post(
        f"/organizer/questions/{target}/retire", data={"csrf_token": token}
    )
    assert response.status_code == 403
    assert "title" in asked(app, event)


def test_a_question_of_another_event_is_not_found(app, admin_client, event):
    assert admin_client.get("/organizer/questions/99999").status_code == 404
