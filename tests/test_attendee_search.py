"""The attendee list's queries: the indexes they can use, on SQLite and on PostgreSQL, and the
renderings kept while nothing changes."""

# ruff: noqa: F811 - pytest fixtures imported from organizer_fixtures are used as arguments

from __future__ import annotations

import re
import time

import pytest
from organizer_fixtures import admin_client, make_organizer  # noqa: F401
from sqlalchemy import create_engine, func, inspect, select, text
from watching import settle

from conftest import EVENT_DEFAULTS, count_queries
from necreg import create_app, trigrams
from necreg.attendee_search import (
    LIST_COLUMNS,
    FilterError,
    attendee_select,
    bounded_count_select,
    list_page,
    parse_filters,
    word_matches,
)
from necreg.extensions import db
from necreg.models import Attendee, Event


def plan(stmt) -> str:
    """The database's plan for ``stmt`` with its parameters, as one text."""
    compiled = stmt.compile(dialect=db.engine.dialect)
    params = compiled.positiontup and tuple(compiled.params[name] for name in compiled.positiontup)
    connection = db.session.connection()
    if db.engine.dialect.name == "sqlite":
        rows = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", params).all()
        return "\n".join(row[-1] for row in rows)
    rows = connection.exec_driver_sql(f"EXPLAIN {compiled}", compiled.params).all()
    return "\n".join(row[0] for row in rows)


@pytest.fixture
def event(make_event, make_attendee):
    event = make_event()
    for n in range(20):
        make_attendee(event, institution="Hôpital Necker" if n % 2 else "Clinic")
    return event


def page_select(event, **args):
    filters = parse_filters(args)
    return attendee_select(event, filters, *LIST_COLUMNS).limit(51)


def test_sqlite_reads_pages_and_counts_from_the_ordered_search_index(app, event, is_postgres):
    if is_postgres:
        pytest.skip("SQLite's index; PostgreSQL's are tested below")
    with app.app_context():
        page = plan(page_select(event, q="necker"))
        assert "USING INDEX ix_attendees_event_created_text" in page
        assert "TEMP B-TREE" not in page  # rows come in list order: the page stops when full
        newest_first = plan(page_select(event, q="necker", order="desc"))
        assert "TEMP B-TREE" not in newest_first
        count = plan(bounded_count_select(event, parse_filters({"q": "necker"})))
        assert "COVERING INDEX ix_attendees_event_created_text" in count  # no table row read


@pytest.fixture
def postgres_only(is_postgres):
    if not is_postgres:
        pytest.skip("PostgreSQL's indexes")


def without_seq_scans() -> None:
    """The planner told to avoid whole-table scans (until the session's transaction ends): a
    tiny test table would be read whole, so this shows which index a query *can* use, as on a
    large table."""
    db.session.execute(text("SET LOCAL enable_seqscan = off"))


def test_postgresql_reads_pages_in_list_order(app, event, postgres_only):
    with app.app_context():
        without_seq_scans()
        db.session.execute(text("SET LOCAL enable_bitmapscan = off"))
        page = plan(page_select(event, q="necker"))
        assert "Index Scan using ix_attendees_event_created" in page
        assert "Sort" not in page


def test_postgresql_finds_words_with_trigrams(app, event, postgres_only):
    with app.app_context():
        without_seq_scans()
        if trigrams.trigram_schema(db.session.connection()) is None:
            pytest.skip("pg_trgm cannot be installed in this database")
        # Folded, upper case, LIKE wildcards, letters that fold to several, other scripts.
        for word in ("necker", "hôpital", "NECK", "50%_", "STRAẞE", "Nguyễn", "李小龍", "Пётр"):
            found = plan(select(func.count()).select_from(Attendee).where(word_matches(word)))
            assert "Bitmap Index Scan on ix_attendees_search_trgm" in found, found


def test_without_trigrams_tables_are_made_and_search_works(app_config, is_postgres, monkeypatch):
    if not is_postgres:
        pytest.skip("PostgreSQL only")
    # As where pg_trgm is missing and may not be installed.
    monkeypatch.setattr(trigrams, "_FIND", text("SELECT NULL"))
    monkeypatch.setattr(trigrams, "_INSTALL", "CREATE EXTENSION necreg_no_such_thing")
    app = create_app(app_config)
    with app.app_context():
        db.create_all()
        names = {index["name"] for index in inspect(db.engine).get_indexes("attendees")}
        assert "ix_attendees_event_created" in names
        assert "ix_attendees_search_trgm" not in names
        event = Event(**EVENT_DEFAULTS)
        db.session.add(event)
        db.session.add(Attendee(event=event, code="NEC-AAAAAA", role="clinician",
                                first_name="Zoë", last_name="Núñez", email="z@example.org",
                                country="FR", badge_name="Zoë"))  # fmt: skip
        db.session.commit()
        filters = parse_filters({"q": "NUNEZ zoe"})
        page = list_page(db.session, event, filters, page=1, per_page=50)
        assert [row.code for row in page.items] == ["NEC-AAAAAA"]
    with app.app_context():
        db.engine.dispose()


#: code: (first name, last name) of people from everywhere, some typed with decomposed accents.
PEOPLE = {
    "NEC-VNAAAA": ("Thị", "Nguyễn"),
    "NEC-VNBBBB": ("Văn", "Trần"),
    "NEC-VNCCCC": ("Minh", "Đặng"),
    "NEC-VNDDDD": ("Thi", "Nguye\u0302\u0303n"),  # NFD, as some systems send it
    "NEC-DEAAAA": ("Jürgen", "Straße"),
    "NEC-DEBBBB": ("Anna", "Müller"),
    "NEC-PLAAAA": ("Łukasz", "Wałęsa"),
    "NEC-NOAAAA": ("Søren", "Ærø"),
    "NEC-NOBBBB": ("Åse", "Berg"),
    "NEC-TRAAAA": ("Işık", "Yılmaz"),
    "NEC-ZHAAAA": ("小龍", "李"),
    "NEC-ARAAAA": ("مُحَمَّد", "حداد"),
    "NEC-ELAAAA": ("Σωκράτης", "Παπαδόπουλος"),
    "NEC-RUAAAA": ("Пётр", "Чайковский"),
    "NEC-USAAAA": ("Dan", "Gang"),
}


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("nguyen", {"NEC-VNAAAA", "NEC-VNDDDD"}),
        ("NGUYỄN thị", {"NEC-VNAAAA", "NEC-VNDDDD"}),
        ("Nguye\u0302\u0303n", {"NEC-VNAAAA", "NEC-VNDDDD"}),  # searched decomposed
        ("tran", {"NEC-VNBBBB"}),
        ("dang", {"NEC-VNCCCC"}),
        ("strasse", {"NEC-DEAAAA"}),
        ("jurgen", {"NEC-DEAAAA"}),
        ("muller", {"NEC-DEBBBB"}),
        ("lukasz walesa", {"NEC-PLAAAA"}),
        ("soren", {"NEC-NOAAAA"}),
        ("aero", {"NEC-NOAAAA"}),
        ("ase", {"NEC-NOBBBB"}),
        ("isik yilmaz", {"NEC-TRAAAA"}),
        ("李", {"NEC-ZHAAAA"}),
        ("李 小龍", {"NEC-ZHAAAA"}),
        ("محمد", {"NEC-ARAAAA"}),
        ("σωκρατης", {"NEC-ELAAAA"}),
        ("ΠΑΠΑΔΟΠΟΥΛΟΣ", {"NEC-ELAAAA"}),
        ("петр", {"NEC-RUAAAA"}),
        ("Чайковский", {"NEC-RUAAAA"}),
        ("li", set()),  # not a romanisation of 李
        ("petr", set()),  # nor of Пётр
        ("gang", {"NEC-USAAAA"}),
        ("dang gang", set()),  # "dang" is not found across two fields in "dan | gang"
    ],
)
def test_people_are_found_by_what_an_organizer_types(app, make_event, make_attendee, q, expected):
    event = make_event()
    for code, (first, last) in PEOPLE.items():
        make_attendee(event, code=code, first_name=first, last_name=last, badge_name=first)
    with app.app_context():
        page = list_page(db.session, event, parse_filters({"q": q}), page=1, per_page=50)
    assert {row.code for row in page.items} == expected


def test_the_organizer_list_finds_a_name_without_its_accents(
    admin_client, make_event, make_attendee
):
    event = make_event()
    make_attendee(event, code="NEC-VNAAAA", first_name="Thị", last_name="Nguyễn")
    make_attendee(event, code="NEC-DEAAAA", first_name="Jürgen", last_name="Straße")
    assert codes(admin_client, "/organizer/attendees?q=nguyen") == ["NEC-VNAAAA"]
    assert codes(admin_client, "/organizer/attendees?q=STRASSE") == ["NEC-DEAAAA"]


def test_list_page_counts_once_and_only_when_needed(app, event, monkeypatch):
    filters = parse_filters({"q": "hopital"})
    with app.app_context():
        page = list_page(db.session, event, filters, page=1, per_page=50)
        assert (page.total, page.total_exact, page.has_next, page.pages) == (10, True, False, 1)
        page = list_page(db.session, event, filters, page=2, per_page=4)
        assert (page.total, page.total_exact, page.has_next, page.pages) == (10, True, True, 3)
        monkeypatch.setattr("necreg.attendee_search.COUNT_LIMIT", 6)
        page = list_page(db.session, event, filters, page=1, per_page=4)
        assert (page.total, page.total_exact, page.has_next, page.pages) == (6, False, True, None)
        page = list_page(db.session, event, filters, page=1, per_page=4, exact_total=True)
        assert (page.total, page.total_exact) == (10, True)
        beyond = list_page(db.session, event, filters, page=9, per_page=4)
        assert (beyond.items, beyond.total, beyond.total_exact) == ([], 6, False)


# --- the list kept while nothing changes ---------------------------------------------------


def codes(client, url: str) -> list[str]:
    page = client.get(url)
    assert page.status_code == 200
    return re.findall(r'/organizer/attendees/\d+">(NEC-[A-Z0-9]{6})<', page.text)


def test_a_list_seen_again_costs_no_query_until_an_attendee_changes(
    app, admin_client, database_url, event
):
    url = "/organizer/attendees?q=necker"
    settle(app)  # the setup's own changes heard of, however busy the machine
    first = codes(admin_client, url)
    assert len(first) == 10
    with count_queries(app) as statements:
        assert codes(admin_client, url) == first
    assert not [s for s in statements if "FROM attendees" in s]
    # Changed by another connection (another worker, the CLI, plain SQL): no longer a match.
    engine = create_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text("UPDATE attendees SET search_text = 'changed' WHERE code = :c"),
                {"c": first[0]},
            )
    finally:
        engine.dispose()
    # SQLite: at once. PostgreSQL: when the notice of the commit has arrived.
    deadline = time.monotonic() + 2
    while codes(admin_client, url) == first and time.monotonic() < deadline:
        time.sleep(0.001)
    assert codes(admin_client, url) == first[1:]


def test_the_list_shows_the_event_as_it_is_now(app, admin_client, make_event):
    event = make_event(name="NEC Symposium")
    assert (
        "<title>Attendees — NEC Symposium</title>" in admin_client.get("/organizer/attendees").text
    )
    with app.app_context():
        # An organizer's change: updated_at changes with it.
        db.session.get(Event, event.id).name = "NEC Symposium 2026"
        db.session.commit()
    page = admin_client.get("/organizer/attendees").text
    assert "<title>Attendees — NEC Symposium 2026</title>" in page
    with app.app_context():
        db.session.get(Event, event.id).is_current = False
        db.session.commit()
    assert admin_client.get("/organizer/attendees").status_code == 404


def test_control_characters_in_the_search_are_refused_not_sent_to_the_database(
    admin_client, make_event
):
    make_event()
    answer = admin_client.get("/organizer/attendees?q=a%00b")  # PostgreSQL refuses a NUL
    assert answer.status_code == 400 and "control characters" in answer.get_data(as_text=True)
    with pytest.raises(FilterError, match="control characters"):
        parse_filters({"q": "x\x07"})
