"""The migrations build the schema the models describe, and every downgrade works."""

import warnings

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from necreg import create_app
from necreg.database import include_object_for
from necreg.extensions import db

TABLES = {
    "events",
    "attendees",
    "organizers",
    "attendee_changes",
    "outbox_messages",
    "check_in_scans",
    "questions",
    "answers",
    "prices",
    "discount_codes",
    "code_uses",
    "payments",
    "receipt_counters",
}


def _app(app_config):
    return create_app(app_config)


def test_upgrade_downgrade_upgrade(app_config):
    app = _app(app_config)
    with app.app_context():
        upgrade()
        assert set(inspect(db.engine).get_table_names()) >= TABLES
        downgrade(revision="base")
        assert not TABLES & set(inspect(db.engine).get_table_names())
        upgrade()
        assert set(inspect(db.engine).get_table_names()) >= TABLES
        db.engine.dispose()


def test_migrations_match_the_models(app_config):
    app = _app(app_config)
    with app.app_context():
        upgrade()
        with db.engine.connect() as conn, warnings.catch_warnings():
            # Expression indexes (lower(email)) cannot be reflected on SQLite; they are
            # checked by behaviour in test_models instead.
            warnings.filterwarnings("ignore", "autogenerate skipping", UserWarning)
            warnings.filterwarnings("ignore", "Skipped unsupported reflection", Warning)
            opts = {"compare_type": True, "include_object": include_object_for(conn.dialect.name)}
            context = MigrationContext.configure(conn, opts=opts)
            diff = compare_metadata(context, db.metadata)
        db.engine.dispose()
    assert diff == []


def test_migrated_schema_refuses_a_second_registration_in_other_letter_case(app_config):
    app = _app(app_config)
    with app.app_context():
        upgrade()
        with db.engine.connect() as conn:
            conn.execute(
                text(
                    "INSERT INTO events (id, slug, name, tagline, starts_on, ends_on, venue,"
                    " hosts, is_current, sessions, faculty, capacity_by_role, description,"
                    " testimonials, created_at, updated_at) VALUES (1, 'e', 'E', '',"
                    " '2025-09-07', '2025-09-10', '', '[]', true, 0, 0, '{}', '', '[]',"
                    " '2025-01-01 00:00:00+00', '2025-01-01 00:00:00+00')"
                )
            )
            row = (
                "INSERT INTO attendees (event_id, code, token, status, role, first_name,"
                " last_name, email, institution, country, early_career, badge_name,"
                " consent_at, created_at, updated_at) VALUES (1, :code, :code, :status,"
                " 'clinician', 'A', 'B', :email, '', 'US', false, 'A B',"
                " '2025-01-01 00:00:00+00', '2025-01-01 00:00:00+00',"
                " '2025-01-01 00:00:00+00')"
            )
            conn.execute(text(row), {"code": "C1", "status": "cancelled", "email": "A@x.org"})
            conn.execute(text(row), {"code": "C2", "status": "confirmed", "email": "a@x.org"})
            with pytest.raises(IntegrityError):
                conn.execute(text(row), {"code": "C3", "status": "waitlisted", "email": "A@X.ORG"})
            conn.rollback()
        db.engine.dispose()
