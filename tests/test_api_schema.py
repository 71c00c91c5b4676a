"""API v1 against its own description: schemathesis generates requests from
/api/v1/openapi.json (valid ones and invalid ones), sends them to a live server and checks
every answer: no server error, and status codes, content types, headers and bodies as the
description says."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from conftest import serving
from necreg.api.tokens import create_token
from necreg.extensions import db
from necreg.models import Attendee, Event, Question, new_code
from necreg.questions import Answers, event_questions, save_answers


@dataclass(frozen=True)
class LiveApi:
    url: str
    headers: dict[str, str]
    event: str
    codes: list[str]


def _fill(app) -> tuple[str, str, list[str]]:
    """A token and a few registrations of every kind, with answers; the token, the event's
    slug and the codes."""
    with app.app_context():
        event = db.session.execute(db.select(Event)).scalar_one()
        event.currency = "USD"
        db.session.add_all(
            [
                Question(event_id=event.id, key="diet", label="Diet", type="choice",
                         choices=[{"value": "none", "label": "None"},
                                  {"value": "vegan", "label": "Vegan"}],
                         other=True),
                Question(event_id=event.id, key="notes", label="Notes", type="text"),
                Question(event_id=event.id, key="health", label="Health", type="text",
                         sensitive=True),
            ]
        )  # fmt: skip
        people = []
        for n, (role, status) in enumerate(
            [("clinician", "confirmed"), ("family", "waitlisted"), ("scientist", "cancelled"),
             ("advocate", "pending_payment"), ("clinician", "confirmed")]
        ):  # fmt: skip
            people.append(
                Attendee(
                    event_id=event.id, code=new_code("NEC"), status=status, role=role,
                    first_name=f"Zoë{n}", last_name="Núñez", email=f"p{n}@example.org",
                    institution="UNC", country="DE" if n % 2 else "US", badge_name="Zoë",
                    early_career=bool(n % 2), amount_due=45000 * (n % 2),
                    credential="MD" if n == 0 else "",
                    checked_in_at=datetime(2025, 9, 7, 9, tzinfo=UTC) if n == 0 else None,
                )
            )  # fmt: skip
        db.session.add_all(people)
        db.session.flush()
        db.session.add(
            Attendee(
                event_id=event.id, code=new_code("NEC"), role="guest", first_name="Kid",
                last_name="Núñez", email="", country="US", badge_name="Kid",
                party_id=people[0].id, age_band="child",
            )
        )  # fmt: skip
        questions = event_questions(db.session, event.id)
        answers = Answers({"diet": "other", "notes": "late", "health": "x"}, {"diet": "halal"})
        save_answers(db.session, people[0].id, questions, answers, replace=False)
        _token, secret = create_token(db.session, "schemathesis")
        slug, codes = event.slug, [p.code for p in people]
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    return secret, slug, codes


@pytest.fixture
def live_api(tmp_path, database_url, monkeypatch) -> Iterator[LiveApi]:
    """necreg under gunicorn on the test's database, with a token whose budget the run does
    not exhaust (the limit itself: tests/test_api_v1.py).

    Invalid requests can be long: gunicorn's own limit on the request line (4094 bytes, which
    it answers with a page of its own before the app sees the request) is lifted, so that
    every answer checked is the API's."""
    monkeypatch.setenv("GUNICORN_CMD_ARGS", "--limit-request-line 0")
    with serving(
        tmp_path, workers=1, DATABASE_URL=database_url, API_RATE_LIMIT="100000 per minute"
    ) as site:
        secret, slug, codes = _fill(site.app)
        yield LiveApi(site.url, {"Authorization": f"Bearer {secret}"}, slug, codes)


#: Requests per kind of data (valid, invalid): enough to reach every parameter and value
#: class, a few seconds for the whole run.
EXAMPLES = 150


def _strategies(live_api: LiveApi, mode: GenerationMode):
    """Requests to every operation, made up wholly, and made up around a known event (its
    slug) and known codes: values drawn from nothing find only 404s."""
    schema = schemathesis.openapi.from_url(f"{live_api.url}/api/v1/openapi.json")
    operations = {op.label: op for op in (result.ok() for result in schema.get_all_operations())}
    # (schemathesis leaves out the operation that serves the description itself)
    assert set(operations) == {"GET /attendees", "GET /attendees/{code}"}
    listing, single = operations["GET /attendees"], operations["GET /attendees/{code}"]
    # The token goes with every request, as given (requests without it: check ignored_auth).
    fixed = {"headers": live_api.headers}
    known_event = {"event": live_api.event}
    return st.one_of(
        listing.as_strategy(mode, **fixed),
        listing.as_strategy(mode, query=known_event, **fixed),
        single.as_strategy(mode, **fixed),
        st.sampled_from(live_api.codes).flatmap(
            lambda code: single.as_strategy(mode, path_parameters={"code": code}, **fixed)
        ),
    )


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_api_conforms_to_its_description(live_api: LiveApi, mode: GenerationMode):
    """Generated requests, valid (mode POSITIVE: each must be accepted) or not (NEGATIVE: each
    must be refused with a 4xx), every answer checked by all of schemathesis's checks: not a
    server error; status code, content type, headers and body as described; valid data
    accepted, invalid data refused; no answer without the token."""

    @given(case=_strategies(live_api, mode))
    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    def check(case):
        case.call_and_validate(headers=live_api.headers, timeout=30)

    check()
