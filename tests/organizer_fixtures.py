"""Fixtures and helpers shared by the organizer tests: accounts and signed-in clients."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from flask import Flask, has_app_context
from flask.testing import FlaskClient

from conftest import detached
from necreg.auth import create_organizer
from necreg.extensions import db
from necreg.models import Organizer

ADMIN_EMAIL = "admin@example.org"
STAFF_EMAIL = "door@example.org"
PASSWORD = "correct horse battery staple"
CSRF_RE = re.compile(
    r'name="csrf_token" type="hidden" value="([^"]+)"|name="csrf_token" value="([^"]+)"'
)


def page_csrf(client: FlaskClient, path: str) -> str:
    page = client.get(path).get_data(as_text=True)
    match = CSRF_RE.search(page)
    assert match, f"no CSRF token on {path}"
    return match.group(1) or match.group(2)


def sign_in(client: FlaskClient, email: str, password: str = PASSWORD, **extra):
    token = page_csrf(client, "/organizer/login")
    form = {"email": email, "password": password, "csrf_token": token}
    return client.post("/organizer/login", data=form, **extra)


@pytest.fixture
def make_organizer(app: Flask) -> Callable[..., Organizer]:
    def make(email: str = ADMIN_EMAIL, password: str = PASSWORD, role: str = "admin") -> Organizer:
        if has_app_context():
            organizer = create_organizer(db.session, email, password, role=role)
            db.session.commit()
            return organizer
        with app.app_context():
            organizer = create_organizer(db.session, email, password, role=role)
            db.session.commit()
            return detached(organizer)

    return make


@pytest.fixture
def admin_client(app: Flask, make_organizer) -> FlaskClient:
    make_organizer(ADMIN_EMAIL, role="admin")
    client = app.test_client()
    assert sign_in(client, ADMIN_EMAIL).status_code == 303
    return client


@pytest.fixture
def staff_client(app: Flask, make_organizer) -> FlaskClient:
    make_organizer(STAFF_EMAIL, role="staff")
    client = app.test_client()
    assert sign_in(client, STAFF_EMAIL).status_code == 303
    return client


def csrf_for(client: FlaskClient, path: str) -> str:
    return page_csrf(client, path)
