"""/api/stats and /api/registrations/<token> as CONTRACT.md defines them."""

from conftest import csrf_token, registration_form


def test_stats_shape(client, make_event, make_attendee):
    event = make_event()
    make_attendee(event, role="clinician", institution="A")
    make_attendee(event, role="clinician", institution="B")
    make_attendee(event, role="family", institution="a")
    make_attendee(event, role="scientist", status="waitlisted")
    make_attendee(event, role="advocate", status="cancelled")
    response = client.get("/api/stats")
    assert response.status_code == 200
    data = response.get_json()
    assert list(data) == [
        "event", "attendees", "by_role", "by_attendance", "sessions", "faculty", "institutions",
        "updated_at",
    ]  # fmt: skip
    assert data["by_attendance"] == {"in_person": 3, "virtual": 0}
    assert data["event"] == "nec-2099"
    assert data["attendees"] == 3
    assert data["by_role"] == {"clinician": 2, "scientist": 0, "family": 1, "advocate": 0}
    assert (data["sessions"], data["faculty"], data["institutions"]) == (40, 100, 2)
    assert data["updated_at"].endswith("Z") and "T" in data["updated_at"]


def test_stats_etag_answers_304_until_a_registration_arrives(client, make_event):
    make_event()
    first = client.get("/api/stats")
    etag = first.headers["ETag"]
    assert "no-cache" in first.headers["Cache-Control"]
    again = client.get("/api/stats", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.get_data() == b""

    form = registration_form(csrf_token=csrf_token(client))
    assert client.post("/register", data=form).status_code == 303
    changed = client.get("/api/stats", headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.get_json()["attendees"] == 1
    assert changed.headers["ETag"] != etag


def test_registration_json(client, make_event, make_attendee):
    event = make_event(capacity=1)
    confirmed = make_attendee(event, first_name="Zoë", last_name="Núñez-李", role="family")
    waiting = make_attendee(event, status="waitlisted")
    data = client.get(f"/api/registrations/{confirmed.token}").get_json()
    assert data == {
        "code": confirmed.code,
        "status": "confirmed",
        "role": "family",
        "first_name": "Zoë",
        "last_name": "Núñez-李",
        "waitlist_position": None,
        "answers": {},
        "attendance": "in_person",
        "join_url": None,
        "consents": {"photo": False, "list": False},
        "party": [],
        "party_of": None,
        "amount_due": "0",
        "amount_paid": "0",
        "currency": None,
        "payment_due_at": None,
        "program": [],
    }
    assert client.get(f"/api/registrations/{waiting.token}").get_json()["waitlist_position"] == 1


def test_unknown_registration_token_is_a_json_404(client, make_event):
    make_event()
    response = client.get("/api/registrations/not-a-token")
    assert response.status_code == 404
    assert response.get_json()["status"] == 404
