"""API v1 for organizers' tools: tokens (CLI), /api/v1/attendees with the list's filters,
cursor pages and ETags, one attendee by code, the per-token rate limit, and the OpenAPI
description (the requests schemathesis makes up from it: test_api_schema.py)."""

# ruff: noqa: F811 - pytest fixtures imported from organizer_fixtures are used as arguments

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import jsonschema_rs
import pytest
from organizer_fixtures import admin_client, make_organizer  # noqa: F401
from sqlalchemy import func, select

from conftest import EVENT_DEFAULTS, count_queries, saved
from necreg import create_app
from necreg.api.openapi import ATTENDEE_PROPERTIES, ATTENDEE_SCHEMA, CURSOR_PATTERN
from necreg.api.resources import attendee_resources
from necreg.api.tokens import TOKEN_PREFIX, authenticate, create_token, hash_token
from necreg.api.v1 import decode_cursor, encode_cursor
from necreg.extensions import db
from necreg.models import ApiToken, Attendee, Event, Question
from necreg.questions import Answers, event_questions, save_answers


def new_token(app, name: str = "robot") -> str:
    with app.app_context():
        _token, secret = create_token(db.session, name)
        db.session.commit()
    return secret


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def token(app) -> str:
    return new_token(app)


@pytest.fixture
def api(client, token):
    """GET on the API with the token."""

    def get(path: str, **query):
        return client.get(f"/api/v1{path}", query_string=query, headers=bearer(token))

    return get


def codes(response) -> list[str]:
    assert response.status_code == 200, response.get_json()
    return [item["code"] for item in response.get_json()["data"]]


def stored_tokens(app) -> list[ApiToken]:
    with app.app_context():
        tokens = db.session.execute(select(ApiToken).order_by(ApiToken.id)).scalars().all()
        db.session.expunge_all()
        return tokens


# --- tokens -------------------------------------------------------------------------------


def test_create_api_token_prints_it_once_and_stores_only_its_hash(app, runner, client):
    result = runner.invoke(args=["create-api-token", "badge printer"])
    assert result.exit_code == 0, result.output
    printed = re.findall(rf"{TOKEN_PREFIX}[A-Za-z0-9_-]{{43}}", result.output)
    assert len(printed) == 1
    secret = printed[0]
    [stored] = stored_tokens(app)
    assert stored.name == "badge printer"
    assert stored.token_hash == hash_token(secret) != secret
    assert stored.last_used_at is None and stored.revoked_at is None
    # Nowhere else, not even in the list of tokens.
    listing = runner.invoke(args=["list-api-tokens"])
    assert "badge printer" in listing.output and secret not in listing.output
    assert "never" in listing.output and "active" in listing.output
    assert client.get("/api/v1/attendees", headers=bearer(secret)).status_code != 401


def test_a_duplicate_name_is_refused_and_nothing_is_stored(app, runner):
    first = runner.invoke(args=["create-api-token", "robot"])
    assert first.exit_code == 0
    [before] = stored_tokens(app)
    again = runner.invoke(args=["create-api-token", " robot "])
    assert again.exit_code != 0
    assert "already a token named 'robot'" in again.output
    assert TOKEN_PREFIX not in again.output
    [after] = stored_tokens(app)
    assert (after.id, after.token_hash) == (before.id, before.token_hash)


def test_a_revoked_token_opens_nothing(app, runner, client, make_event, token):
    make_event()
    assert client.get("/api/v1/attendees", headers=bearer(token)).status_code == 200
    result = runner.invoke(args=["revoke-api-token", "robot"])
    assert result.exit_code == 0 and "Revoked" in result.output
    response = client.get("/api/v1/attendees", headers=bearer(token))
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.get_json() == {
        "error": "This API token is unknown or has been revoked.",
        "status": 401,
    }
    assert "revoked" in runner.invoke(args=["list-api-tokens"]).output
    # Its name stays taken; revoking again changes nothing.
    assert runner.invoke(args=["create-api-token", "robot"]).exit_code != 0
    assert "revoked already" in runner.invoke(args=["revoke-api-token", "robot"]).output
    assert runner.invoke(args=["revoke-api-token", "nobody"]).exit_code != 0


@pytest.mark.parametrize(
    "header",
    [None, "Bearer", "Bearer necreg_not-a-token", "Basic cm9ib3Q6c2VjcmV0", "necreg_x"],
)
def test_requests_without_a_valid_token_are_refused(client, make_event, make_attendee, header):
    attendee = make_attendee(make_event())
    headers = {"Authorization": header} if header else {}
    for path in ("/api/v1/attendees", f"/api/v1/attendees/{attendee.code}"):
        response = client.get(path, headers=headers)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith('Bearer realm="necreg"')
        assert set(response.get_json()) == {"error", "status"}
        assert attendee.code not in response.text


def test_last_use_is_recorded_at_most_once_a_minute(app, client, make_event, token):
    make_event()
    assert client.get("/api/v1/attendees", headers=bearer(token)).status_code == 200
    [used] = stored_tokens(app)
    assert used.last_used_at is not None
    assert datetime.now(UTC) - used.last_used_at < timedelta(minutes=1)
    with app.app_context():
        later = used.last_used_at + timedelta(seconds=30)
        assert authenticate(db.session, token, now=later).last_used_at == used.last_used_at
        much_later = used.last_used_at + timedelta(minutes=2)
        assert authenticate(db.session, token, now=much_later).last_used_at == much_later


# --- the list -----------------------------------------------------------------------------


@pytest.fixture
def people(make_event, make_attendee):
    event = make_event()
    other = make_event(slug="nec-2024", is_current=False)
    now = datetime(2025, 9, 7, 9, tzinfo=UTC)
    return {
        "ann": make_attendee(event, role="family", first_name="Ann"),
        "bob": make_attendee(event, role="family", checked_in_at=now),
        "cat": make_attendee(event, role="family", status="waitlisted", country="DE"),
        "dan": make_attendee(event, role="clinician", early_career=True),
        "eve": make_attendee(event, role="advocate", status="cancelled"),
        "old": make_attendee(other, role="family"),
    }


def codes_on(page: str) -> list[str]:
    return re.findall(r'/organizer/attendees/\d+">(NEC-[A-Z0-9]{6})<', page)


@pytest.mark.parametrize(
    "query",
    [
        {"role": "family", "checked_in": "no"},
        {"role": "family"},
        {"status": "waitlisted"},
        {"early_career": "yes"},
        {"country": "DE"},
        {"q": "ann"},
        {"payment": "free"},
        {},
    ],
)
def test_filters_find_what_the_organizer_list_finds(admin_client, api, people, query):
    organizer_list = admin_client.get("/organizer/attendees", query_string=query)
    assert organizer_list.status_code == 200
    expected = codes_on(organizer_list.text)
    assert people["old"].code not in expected
    assert sorted(codes(api("/attendees", **query))) == sorted(expected)


def test_role_family_not_checked_in(api, people):
    found = codes(api("/attendees", role="family", checked_in="no"))
    assert found == [people["ann"].code, people["cat"].code]


@pytest.mark.parametrize(
    "query, message",
    [
        ({"role": "nobody"}, "role must be one of clinician"),
        ({"checked_in": "perhaps"}, "checked_in must be one of yes, no, any"),
        ({"country": "XX"}, "country must be one of"),
        ({"payment": "lots"}, "payment must be one of"),
        ({"q": "x" * 201}, "q must have 0 to 200 characters"),
        ({"q": "a\x00b"}, "NUL"),
        ({"q_diet": "vegan"}, "No question 'diet' to filter by."),
        ({"limit": "0"}, "limit must be from 1 to 200"),
        ({"limit": "201"}, "limit must be from 1 to 200"),
        ({"limit": "ten"}, "limit must be a whole number"),
        ({"cursor": "not a cursor"}, "cursor is not of the expected form"),
        ({"role": ["family", "clinician"]}, "Give role once"),
        ({"event": ""}, "event must have 1 to 64 characters"),
    ],
)
def test_a_wrong_parameter_is_a_400_with_its_message_only(api, people, query, message):
    response = api("/attendees", **query)
    assert response.status_code == 400
    body = response.get_json()
    assert set(body) == {"error", "status"} and body["status"] == 400
    assert message in body["error"]
    assert "data" not in body and people["ann"].code not in response.text


def test_answer_filters_and_answers(app, api, people):
    ann, bob = people["ann"], people["bob"]
    with app.app_context():
        choices = [{"value": "vegan", "label": "Vegan"}, {"value": "none", "label": "None"}]
        for question in (
            Question(event_id=ann.event_id, key="diet", label="Diet", type="choice",
                     choices=choices),
            Question(event_id=ann.event_id, key="hiv", label="HIV", type="yes_no",
                     sensitive=True),
        ):  # fmt: skip
            db.session.add(question)
        db.session.flush()
        questions = event_questions(db.session, ann.event_id)
        save_answers(db.session, ann.id, questions, Answers({"diet": "vegan", "hiv": True}))
        save_answers(db.session, bob.id, questions, Answers({"diet": "none"}))
        db.session.commit()
    response = api("/attendees", q_diet="vegan")
    assert codes(response) == [ann.code]
    # Answers to sensitive questions are not given out.
    assert response.get_json()["data"][0]["answers"] == {"diet": "vegan"}
    assert api(f"/attendees/{bob.code}").get_json()["answers"] == {"diet": "none"}
    assert api("/attendees", q_diet="fish").status_code == 400


def test_cursor_pages_give_every_attendee_once_while_people_register(
    api, make_event, make_attendee
):
    event = make_event()
    other = make_event(slug="nec-2024", is_current=False)
    expected = [make_attendee(event).code for _ in range(7)]
    seen: list[str] = []
    cursor = ""
    for _page in range(10):
        body = api("/attendees", limit=3, cursor=cursor).get_json()
        assert len(body["data"]) <= 3
        seen += [item["code"] for item in body["data"]]
        # Registrations arrive between pages, in this event and in another one.
        expected.append(make_attendee(event).code)
        make_attendee(other)
        cursor = body["next_cursor"]
        if cursor is None:
            break
        assert re.fullmatch(CURSOR_PATTERN, cursor)
    assert sorted(seen) == sorted(set(seen))  # nobody twice
    # Everyone who registered before the last page was read; the last one came after it.
    assert seen == expected[:-1]


def test_a_cursor_is_an_id_and_every_cursor_is_one():
    for last_id in (0, 1, 255, 2**31 - 1, 2**40 + 3):
        assert decode_cursor(encode_cursor(last_id)) == last_id
        assert re.fullmatch(CURSOR_PATTERN, encode_cursor(last_id))
    assert decode_cursor("") == 0
    assert decode_cursor("__________8") == 2**63 - 1  # past SQLite's integers: the end


def test_a_page_costs_the_same_queries_whatever_its_size(app, api, people):
    event_id = people["ann"].event_id
    with app.app_context():
        db.session.add(Question(event_id=event_id, key="notes", label="Notes", type="text"))
        db.session.flush()
        notes = event_questions(db.session, event_id)
        for attendee in db.session.execute(select(Attendee)).scalars():
            save_answers(db.session, attendee.id, notes, Answers({"notes": "hi"}))
        kid = Attendee(
            event_id=event_id, code="NEC-KID222", role="guest", first_name="Kid", last_name="A",
            email="", country="US", badge_name="Kid", party_id=people["ann"].id,
            age_band="child",
        )  # fmt: skip
        db.session.add(kid)
        db.session.commit()
        kid_id = kid.id
    assert codes(api("/attendees")) != []  # the token's last use noted, the event's questions read
    with count_queries(app) as one:
        assert codes(api("/attendees", limit=1, cursor=encode_cursor(kid_id - 1))) == ["NEC-KID222"]
    with count_queries(app) as many:
        assert len(codes(api("/attendees", limit=200))) == 6
    assert len(many) == len(one)


# --- ETags and one attendee ---------------------------------------------------------------


def test_etag_answers_304_until_something_changes(app, api, client, token, people):
    first = api("/attendees")
    etag = first.headers["ETag"]
    assert etag.startswith('"') and "private" in first.headers["Cache-Control"]
    again = client.get("/api/v1/attendees", headers={**bearer(token), "If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""
    assert again.headers["ETag"] == etag
    # Another page or filter has another ETag.
    assert api("/attendees", role="family").headers["ETag"] != etag

    with app.app_context():
        ann = db.session.get(Attendee, people["ann"].id)
        ann.institution = "Elsewhere"
        db.session.commit()
    changed = client.get("/api/v1/attendees", headers={**bearer(token), "If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag

    single = api(f"/attendees/{people['bob'].code}")
    headers = {**bearer(token), "If-None-Match": single.headers["ETag"]}
    response = client.get(f"/api/v1/attendees/{people['bob'].code}", headers=headers)
    assert response.status_code == 304


def test_one_attendee_by_code(api, people):
    ann = people["ann"]
    response = api(f"/attendees/{ann.code}")
    assert response.status_code == 200
    assert response.get_json() == next(
        item for item in api("/attendees").get_json()["data"] if item["code"] == ann.code
    )
    missing = api("/attendees/NEC-NOSUCH")
    assert missing.status_code == 404
    slug = EVENT_DEFAULTS["slug"]
    assert missing.get_json()["error"] == f"No registration with the code 'NEC-NOSUCH' in {slug}."
    # Someone of another event is not found in the current one, but in theirs.
    old = people["old"]
    assert api(f"/attendees/{old.code}").status_code == 404
    assert api(f"/attendees/{old.code}", event="nec-2024").get_json()["code"] == old.code
    assert api("/attendees", event="nec-2024").get_json()["data"][0]["code"] == old.code
    assert api("/attendees", event="nec-1999").status_code == 404


def test_no_current_event_is_a_404(api, make_event):
    make_event(is_current=False)
    response = api("/attendees")
    assert response.status_code == 404
    assert response.get_json()["error"].startswith("There is no current event")


# --- the rate limit -----------------------------------------------------------------------


def test_each_token_has_its_own_budget(app, app_config, make_event, make_attendee):
    code = make_attendee(make_event()).code
    limited = create_app({**app_config, "API_RATE_LIMIT": "3 per minute"})
    first, second = new_token(limited, "first"), new_token(limited, "second")
    client = limited.test_client()
    # The list and one attendee draw on the same budget.
    for path in ("/api/v1/attendees", f"/api/v1/attendees/{code}", "/api/v1/attendees"):
        assert client.get(path, headers=bearer(first)).status_code == 200
    refused = client.get("/api/v1/attendees", headers=bearer(first))
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.get_json()["status"] == 429
    assert "Too many requests with this token" in refused.get_json()["error"]
    assert client.get(f"/api/v1/attendees/{code}", headers=bearer(first)).status_code == 429
    # Another token is served all the same.
    assert client.get("/api/v1/attendees", headers=bearer(second)).status_code == 200
    with limited.app_context():
        db.engine.dispose()


# --- the description ----------------------------------------------------------------------


def test_openapi_describes_the_api(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    doc = response.get_json()
    assert doc["openapi"] == "3.1.0"
    assert doc["servers"] == [{"url": "/api/v1"}]
    assert set(doc["paths"]) == {"/attendees", "/attendees/{code}", "/openapi.json"}
    assert doc["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "A token from `necreg create-api-token NAME`.",
    }
    assert doc["security"] == [{"bearerAuth": []}]
    assert doc["paths"]["/openapi.json"]["get"]["security"] == []
    listing = doc["paths"]["/attendees"]["get"]
    names = {p["name"] for p in listing["parameters"]}
    assert {"q", "role", "status", "early_career", "checked_in", "country", "payment"} <= names
    assert {"cursor", "limit", "event", "If-None-Match"} <= names
    for operation in (listing, doc["paths"]["/attendees/{code}"]["get"]):
        assert set(operation["responses"]) == {"200", "304", "400", "401", "404", "429"}
    # Every reference points at something.
    text = response.text
    for ref in set(re.findall(r'"\$ref":\s*"#/([^"]+)"', text)):
        node = doc
        for part in ref.split("/"):
            node = node[part]


def test_openapi_is_served_under_the_apps_mount_point(client):
    doc = client.get("/api/v1/openapi.json", base_url="http://localhost/reg/").get_json()
    assert doc["servers"] == [{"url": "/reg/api/v1"}]


def test_the_attendee_schema_and_the_resource_have_the_same_keys(app, make_event, make_attendee):
    event = make_event(currency="USD")
    lead = make_attendee(event, credential="MD", amount_due=45000)
    kid = make_attendee(event, role="guest", email="", party_id=lead.id, age_band="child")
    saved(app, Question(event_id=event.id, key="notes", label="Notes", type="text"))
    with app.app_context():
        save_answers(
            db.session, lead.id, event_questions(db.session, event.id), Answers({"notes": "x"})
        )
        db.session.commit()
        attendees = db.session.execute(select(Attendee).order_by(Attendee.id)).scalars().all()
        resources = attendee_resources(db.session, db.session.get(Event, event.id), attendees)
        assert db.session.execute(select(func.count(Attendee.id))).scalar_one() == 2
    assert [r["code"] for r in resources] == [lead.code, kid.code]
    assert resources[1]["party_of"] == lead.code and resources[0]["answers"] == {"notes": "x"}
    validator = jsonschema_rs.Draft202012Validator(ATTENDEE_SCHEMA)
    for resource in resources:
        assert list(resource) == list(ATTENDEE_PROPERTIES)
        validator.validate(resource)
    assert set(ATTENDEE_SCHEMA["required"]) == set(ATTENDEE_PROPERTIES)
    assert ATTENDEE_SCHEMA["additionalProperties"] is False
