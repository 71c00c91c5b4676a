"""Error pages are plain pages in the site's style, never a traceback."""

import pytest
from werkzeug.exceptions import BadRequest, Forbidden


@pytest.fixture
def broken_app(app):
    """The app with routes that fail, added before its first request."""

    def crash():
        raise RuntimeError("database exploded: secret detail")

    def refuse():
        raise Forbidden()

    def garbled():
        raise BadRequest()

    app.add_url_rule("/test-crash", view_func=crash)
    app.add_url_rule("/api/test-crash", endpoint="api_crash", view_func=crash)
    app.add_url_rule("/test-forbidden", view_func=refuse)
    app.add_url_rule("/test-bad", view_func=garbled)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    return app


@pytest.mark.parametrize(
    ("method", "path", "status", "text"),
    [
        ("GET", "/no-such-page", 404, "There is no page at this address."),
        ("GET", "/registration/unknown-token", 404, "There is no page at this address."),
        ("DELETE", "/register", 405, "This page cannot be used that way."),
        ("GET", "/test-forbidden", 403, "You are not allowed to do that."),
        ("GET", "/test-bad", 400, "could not be understood"),
        ("GET", "/test-crash", 500, "Something went wrong on our side."),
    ],
)
def test_error_pages(broken_app, make_event, method, path, status, text, caplog):
    make_event()
    response = broken_app.test_client().open(path, method=method)
    html = response.get_data(as_text=True)
    assert response.status_code == status
    assert response.mimetype == "text/html"
    assert text in html
    assert "Traceback" not in html and "secret detail" not in html
    assert 'href="/static/css/site.css"' in html  # the site's own style


def test_a_crash_is_logged_with_its_context(broken_app, caplog):
    broken_app.test_client().get("/test-crash")
    assert any(
        "/test-crash" in record.getMessage() and record.exc_info for record in caplog.records
    )


def test_api_errors_are_json(broken_app):
    response = broken_app.test_client().get("/api/test-crash")
    assert response.status_code == 500
    assert response.get_json() == {
        "error": "Something went wrong on our side. It has been logged; please try again later.",
        "status": 500,
    }


@pytest.mark.parametrize("path", ["/no-such-page", "/api/no-such-thing", "/static/css/site.css"])
def test_every_response_carries_the_security_headers(client, path):
    response = client.get(path)
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert len(response.headers.getlist("Content-Security-Policy")) == 1
    response.close()  # a static file is sent from an open file
