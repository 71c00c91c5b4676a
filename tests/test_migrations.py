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


#: One event, written as the migrated schema takes it (the models' defaults are not there).
INSERT_EVENT = (
    "INSERT INTO events (id, slug, name, tagline, starts_on, ends_on, venue, hosts, is_current,"
    " sessions, faculty, capacity_by_role, description, testimonials, created_at, updated_at)"
    " VALUES (1, 'e', 'E', '', '2025-09-07', '2025-09-10', '', '[]', true, 0, 0, '{}', '', '[]',"
    " '2025-01-01 00:00:00+00', '2025-01-01 00:00:00+00')"
)


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
            conn.execute(text(INSERT_EVENT))
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


def test_rows_folded_by_the_old_rule_are_found_after_0020(app_config):
    """Rows written before 0020 hold their search text folded by the old rule (U+00C0-024F
    only): after the upgrade they are found by what an organizer types; after a downgrade
    they hold the old rule's text again, which the code before 0020 searches with."""
    from necreg.attendee_search import list_page, parse_filters
    from necreg.models import Event

    people = {  # code: first name, last name; then the search text as the old rule wrote it
        "C1": ("Thị", "Nguyễn", "thị | nguyễn | c1@x.org |  | c1 | thị"),
        "C2": ("Jürgen", "Straße", "jurgen | strase | c2@x.org |  | c2 | jurgen"),
        "C3": ("Søren", "Ærø", "soren | aro | c3@x.org |  | c3 | soren"),
        "C4": ("Łukasz", "Wałęsa", "lukasz | walesa | c4@x.org |  | c4 | lukasz"),
        # Decomposed (NFD), as some systems send it: the old rule kept the accents.
        "C5": ("Thi", "Nguye\u0302\u0303n", "thi | nguye\u0302\u0303n | c5@x.org |  | c5 | thi"),
        "C6": ("Ann", "Lee", "ann | lee | c6@x.org |  | c6 | ann"),
    }
    app = _app(app_config)
    with app.app_context():
        upgrade(revision="0019_accounts_and_privacy")
        with db.engine.begin() as conn:
            conn.execute(text(INSERT_EVENT))
            for code, (first, last, old) in people.items():
                conn.execute(
                    text(
                        "INSERT INTO attendees (event_id, code, token, status, role, first_name,"
                        " last_name, email, institution, country, early_career, badge_name,"
                        " consent_at, created_at, updated_at, search_text) VALUES (1, :code,"
                        " :code, 'confirmed', 'clinician', :first, :last, :email, '', 'US', false,"
                        " :first, '2025-01-01 00:00:00+00', '2025-01-01 00:00:00+00',"
                        " '2025-01-01 00:00:00+00', :old)"
                    ),
                    {"code": code, "first": first, "last": last, "old": old}
                    | {"email": f"{code.lower()}@x.org"},
                )

        def found(q: str) -> set[str]:
            event = db.session.get(Event, 1)
            page = list_page(db.session, event, parse_filters({"q": q}), page=1, per_page=50)
            db.session.rollback()
            return {row.code for row in page.items}

        assert found("nguyen") == found("strasse") == found("aero") == set()  # the old text
        upgrade()
        assert found("nguyen") == {"C1", "C5"}
        assert found("Nguye\u0302\u0303n thi") == found("NGUYỄN THỊ") == {"C1", "C5"}
        assert found("strasse") == {"C2"}
        assert found("aero soren") == {"C3"}
        assert found("walesa") == found("łukasz") == {"C4"}
        assert found("lee") == {"C6"}  # rows in ASCII are found as before
        with db.engine.connect() as conn:
            stored = dict(conn.execute(text("SELECT code, search_text FROM attendees")).all())
        assert stored["C1"] == "thi | nguyen | c1@x.org |  | c1 | thi"
        assert stored["C6"] == "ann | lee | c6@x.org |  | c6 | ann"
        downgrade(revision="0019_accounts_and_privacy")
        with db.engine.connect() as conn:
            stored = dict(conn.execute(text("SELECT code, search_text FROM attendees")).all())
        assert stored == {code: old for code, (_first, _last, old) in people.items()}
        db.session.remove()
        db.engine.dispose()
