from conftest import csrf_token, registration_form


def test_landing_and_register(client, make_event):
    make_event()
    assert client.get("/").status_code == 200
    form = registration_form(csrf_token=csrf_token(client))
    response = client.post("/register", data=form)
    assert response.status_code == 303, response.get_data(as_text=True)
    page = client.get(response.location)
    assert page.status_code == 200
    stats = client.get("/api/stats").get_json()
    assert stats["attendees"] == 1
