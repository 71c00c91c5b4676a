"""Several gunicorn instances on one database behave as one site."""

import json
import time

from conftest import TEST_ABUSE_SETTINGS, registration_form
from servers import Browserless, GunicornServer


def test_two_instances_share_registrations_counters_and_sessions(app, database_url, make_event):
    make_event()
    settings = {
        "DATABASE_URL": database_url,
        "SECRET_KEY": "shared-secret-of-the-deployment",
        **TEST_ABUSE_SETTINGS,  # a form sent back at once, by a script
    }
    with GunicornServer(settings) as one, GunicornServer(settings) as two:
        person = Browserless()
        for server in (one, two):  # both have computed the counters before the registration
            assert json.loads(person.open(f"{server.url}/api/stats")[1])["attendees"] == 0
        # The form comes from one instance and is sent to the other: same secret, same site.
        token = person.csrf(f"{two.url}/register")
        status, _body, headers = person.open(
            f"{one.url}/register", registration_form(csrf_token=token)
        )
        assert status == 303, _body
        for server in (one, two):
            # The other instance hears of the change when PostgreSQL's notification arrives,
            # within a millisecond of the commit (SQLite: at once); it never needs to poll long.
            deadline = time.monotonic() + 2
            while json.loads(person.open(f"{server.url}/api/stats")[1])["attendees"] != 1:
                assert time.monotonic() < deadline, f"{server.url} still shows the old count"
                time.sleep(0.001)
        status, body, _ = person.open(two.url + headers["Location"].removeprefix(one.url))
        assert status == 200
        assert "You are registered" in body
        # A second registration of the same e-mail through the other instance is refused.
        status, _body, _ = person.open(
            f"{two.url}/register", registration_form(csrf_token=token, email="ZOE@example.org")
        )
        assert status == 409
