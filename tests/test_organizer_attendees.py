"""The attendee list (search, filters, sorting, pages, totals) and the attendee page."""

# ruff: noqa: F811 - pytest fixtures imported from organizer_fixtures are used as arguments

from __future__ import annotations

import re
from html import unescape
from urllib.parse import parse_qsl

import pytest
from organizer_fixtures import ADMIN_EMAIL, admin_client, make_organizer, page_csrf  # noqa: F401
from sqlalchemy import select

from conftest import count_queries, fresh
from necreg import attendee_search
from necreg.attendee_search import FilterError, parse_filters
from necreg.extensions import db
from necreg.folding import fold
from necreg.models import AttendeeChange
from necreg.organizer import attendees as organizer_attendees


def codes_on(page: str) -> list[str]:
    return re.findall(r'/organizer/attendees/\d+">(NEC-[A-Z0-9]{6})<', page)


def total_on(page: str) -> int:
    match = re.search(r'<strong id="total">(\d+)</strong>', page)
    assert match, "no total on the page"
    return int(match.group(1))


@pytest.fixture
def people(make_event, make_attendee):
    event = make_event()
    return event, {
        "zoe": make_attendee(event, first_name="Zoë", last_name="Núñez", role="scientist",
                             institution="Hôpital Necker–Enfants malades", country="FR",
                             early_career=True),
        "ana": make_attendee(event, first_name="Ana", last_name="Smith", role="clinician",
                             institution="UNC Children's", country="US", email="ana@unc.example"),
        "bob": make_attendee(event, first_name="Bob", last_name="Adams", role="family",
                             institution="", country="US", status="waitlisted"),
        "cy": make_attendee(event, first_name="Cy", last_name="Young", role="advocate",
                            institution="NEC Society", country="CA", status="cancelled"),
    }  # fmt: skip


def test_list_shows_everyone_with_total(admin_client, people):
    page = admin_client.get("/organizer/attendees").get_data(as_text=True)
    assert total_on(page) == 4
    assert sorted(codes_on(page)) == sorted(a.code for a in people[1].values())


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("unc child", {"ana"}),  # part of the institution
        ("NECKER", {"zoe"}),  # letter case
        ("hopital", {"zoe"}),  # accents in the data, none in the search
        ("nunez zoe", {"zoe"}),  # every word must match somewhere
        ("ANA@UNC", {"ana"}),  # e-mail
        ("nec society", {"cy"}),
        ("Zoë", {"zoe"}),  # accents in the search too
        ("100%", set()),  # LIKE wildcards are taken literally
        ("_", set()),
    ],
)
def test_search(admin_client, people, query, expected):
    page = admin_client.get("/organizer/attendees", query_string={"q": query})
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert set(codes_on(html)) == {people[1][k].code for k in expected}
    assert total_on(html) == len(expected)


def test_search_by_code_lower_case(admin_client, people):
    code = people[1]["bob"].code
    html = admin_client.get("/organizer/attendees", query_string={"q": code.lower()}).text
    assert codes_on(html) == [code]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({"role": "scientist"}, {"zoe"}),
        ({"status": "waitlisted"}, {"bob"}),
        ({"early_career": "yes"}, {"zoe"}),
        ({"early_career": "no", "country": "us"}, {"ana", "bob"}),
        ({"checked_in": "no", "status": "confirmed"}, {"zoe", "ana"}),
        ({"checked_in": "yes"}, set()),
        ({"country": "CA"}, {"cy"}),
    ],
)
def test_filters(admin_client, people, args, expected):
    html = admin_client.get("/organizer/attendees", query_string=args).get_data(as_text=True)
    assert set(codes_on(html)) == {people[1][k].code for k in expected}
    assert total_on(html) == len(expected)


def test_sorting_and_direction(admin_client, people):
    by_name = codes_on(admin_client.get("/organizer/attendees?sort=name").text)
    names = ["bob", "zoe", "ana", "cy"]  # Adams, Núñez, Smith, Young
    assert by_name == [people[1][k].code for k in names]
    reverse = codes_on(admin_client.get("/organizer/attendees?sort=name&order=desc").text)
    assert reverse == list(reversed(by_name))


def test_pagination_keeps_filters(admin_client, make_event, make_attendee):
    event = make_event()
    for n in range(55):
        make_attendee(event, institution="Big Hospital" if n % 2 else "Small Clinic")
    page1 = admin_client.get("/organizer/attendees?q=big&sort=code").text
    assert total_on(page1) == 27
    assert len(codes_on(page1)) == 27
    for n in range(30):
        make_attendee(event, institution="Big Hospital", email=f"more{n}@example.org")
    page1 = admin_client.get("/organizer/attendees?q=big&sort=code").text
    assert total_on(page1) == 57 and len(codes_on(page1)) == 50
    assert "/organizer/attendees?page=2&amp;q=big&amp;sort=code" in page1
    page2 = admin_client.get("/organizer/attendees?page=2&q=big&sort=code").text
    assert len(codes_on(page2)) == 7
    assert not set(codes_on(page1)) & set(codes_on(page2))


@pytest.mark.parametrize(("people", "queries"), [(30, 1), (60, 2)])
def test_one_query_for_the_page_and_a_count_only_when_the_page_is_full(
    app, admin_client, make_event, make_attendee, people, queries
):
    event = make_event()
    for _ in range(people):
        make_attendee(event)
    admin_client.get("/organizer/attendees")  # warm up: session and user loading
    with count_queries(app) as statements:
        html = admin_client.get("/organizer/attendees?q=first&role=clinician").text
    on_attendees = [s for s in statements if "FROM attendees" in s]
    assert len(on_attendees) == queries, on_attendees
    assert total_on(html) == people


@pytest.fixture
def small_pages(monkeypatch):
    """Pages of 3 and counts up to 5, so a few attendees show what thousands would."""
    monkeypatch.setattr(organizer_attendees, "PER_PAGE", 3)
    monkeypatch.setattr(attendee_search, "COUNT_LIMIT", 5)


def link_args(page: str, marker: str) -> dict[str, str]:
    """The query arguments of the list link marked by ``marker`` (e.g. rel="next")."""
    match = re.search(r'href="/organizer/attendees\?([^"]+)" ' + re.escape(marker), page)
    assert match, f"no link {marker}"
    return dict(parse_qsl(unescape(match.group(1))))


def total_text(page: str) -> str:
    match = re.search(r'<strong id="total">([^<]+)</strong>', page)
    assert match, "no total on the page"
    return match.group(1)


@pytest.mark.parametrize(
    ("matches", "shown"), [(2, "2"), (4, "4"), (5, "5"), (6, "More than 5"), (9, "More than 5")]
)
def test_total_is_exact_up_to_the_limit_and_more_than_it_above(
    admin_client, make_event, make_attendee, small_pages, matches, shown
):
    event = make_event()
    for _ in range(matches):
        make_attendee(event, institution="Big Hospital")
    make_attendee(event, institution="Small Clinic")
    html = admin_client.get("/organizer/attendees?q=hospital").text
    assert total_text(html) == shown
    assert ("count them all" in html) == shown.startswith("More")
    assert len(codes_on(html)) == min(matches, 3)


def test_more_than_the_limit_pages_on_and_counts_all_on_request(
    admin_client, make_event, make_attendee, small_pages
):
    event = make_event()
    codes = [make_attendee(event, institution="Big Hospital").code for _ in range(8)]
    page1 = admin_client.get("/organizer/attendees?q=hospital").text
    assert total_text(page1) == "More than 5"
    assert "<span>Page 1</span>" in page1  # the number of pages is not known
    assert link_args(page1, 'rel="next"') == {"page": "2", "q": "hospital"}
    assert link_args(page1, 'id="count-all"') == {"count": "all", "q": "hospital"}
    exact = admin_client.get("/organizer/attendees?count=all&q=hospital").text
    assert total_on(exact) == 8
    assert "<span>Page 1 of 3</span>" in exact
    assert link_args(exact, 'rel="next"') == {"page": "2", "q": "hospital", "count": "all"}
    page2 = admin_client.get("/organizer/attendees?page=2&q=hospital").text
    assert total_text(page2) == "More than 5"
    assert 'rel="prev"' in page2 and 'rel="next"' in page2
    # The last page knows the total from the rows before it and its own.
    page3 = admin_client.get("/organizer/attendees?page=3&q=hospital").text
    assert total_on(page3) == 8
    assert "<span>Page 3 of 3</span>" in page3 and 'rel="next"' not in page3
    seen = [codes_on(page) for page in (page1, page2, page3)]
    assert sorted(sum(seen, [])) == sorted(codes)


def test_country_menu_keeps_the_chosen_country(admin_client, people):
    html = admin_client.get("/organizer/attendees?country=fr").text
    assert '<option value="FR" selected>France</option>' in html
    assert '<option value="DE">Germany</option>' in html
    menu = re.search(r'<select id="country".*?</select>', html, re.DOTALL).group(0)
    assert menu.count(" selected") == 1


def test_filters_alone_are_counted_the_same_way(
    admin_client, make_event, make_attendee, small_pages
):
    event = make_event()
    for _ in range(7):
        make_attendee(event, country="DE")
    make_attendee(event, country="FR")
    assert total_text(admin_client.get("/organizer/attendees?country=DE").text) == "More than 5"
    assert total_on(admin_client.get("/organizer/attendees?country=DE&count=all").text) == 7
    assert total_on(admin_client.get("/organizer/attendees?country=FR").text) == 1


@pytest.mark.parametrize(
    "args",
    [{"role": "king"}, {"status": "gone"}, {"country": "XX"}, {"sort": "email; drop"},
     {"early_career": "maybe"}, {"page": "0"}, {"page": "two"}, {"q": "x" * 201},
     {"count": "some"}],
)  # fmt: skip
def test_bad_filters_answer_400_with_a_message(admin_client, people, args):
    response = admin_client.get("/organizer/attendees", query_string=args)
    assert response.status_code == 400
    assert "These filters cannot be used" in response.text


def test_parse_filters_and_fold():
    assert fold("ZOË Núñez-Łódź") == "zoe nunez-lodz"
    filters = parse_filters({"q": "  a   b ", "country": "de", "early_career": "no"})
    assert (filters.q, filters.country, filters.early_career) == ("a b", "DE", False)
    with pytest.raises(FilterError, match="Unknown role"):
        parse_filters({"role": "x"})


# --- the attendee page ------------------------------------------------------------------------


def _edit_form(client, attendee, **over):
    form = {
        "csrf_token": page_csrf(client, f"/organizer/attendees/{attendee.id}"),
        "first_name": attendee.first_name,
        "last_name": attendee.last_name,
        "email": attendee.email,
        "role": attendee.role,
        "institution": attendee.institution,
        "country": attendee.country,
        "badge_name": attendee.badge_name,
    }
    if attendee.early_career:
        form["early_career"] = "y"
    form.update(over)
    return form


def test_correct_a_name_is_recorded_and_shown(app, admin_client, people):
    ana = people[1]["ana"]
    url = f"/organizer/attendees/{ana.id}"
    response = admin_client.post(url, data=_edit_form(admin_client, ana, first_name="Anna"))
    assert response.status_code == 303
    ana = fresh(app, ana)
    assert ana.first_name == "Anna"
    with app.app_context():
        change = db.session.execute(select(AttendeeChange)).scalar_one()
        assert change.action == "update"
        assert change.changes == {"first_name": ["Ana", "Anna"]}
        assert change.organizer.email == ADMIN_EMAIL
    page = admin_client.get(url).text
    assert "Saved: first_name changed." in page
    assert "first name: “Ana” → “Anna”" in page
    assert f"by {ADMIN_EMAIL}" in page


def test_invalid_correction_is_refused_and_changes_nothing(app, admin_client, people):
    ana = people[1]["ana"]
    url = f"/organizer/attendees/{ana.id}"
    form = _edit_form(admin_client, ana, first_name="", email="not an address",
                      institution="Line\nbreak", role="king", country="XX")  # fmt: skip
    response = admin_client.post(url, data=form)
    assert response.status_code == 400
    assert "Please enter a first name." in response.text
    assert "does not look right" in response.text
    assert "control characters" in response.text
    assert "Not a valid choice" in response.text
    assert "Please choose a country from the list." in response.text
    ana = fresh(app, ana)
    assert ana.first_name == "Ana"
    with app.app_context():
        assert db.session.execute(select(AttendeeChange)).first() is None


def test_email_taken_by_another_registration_is_a_clear_409(app, admin_client, people):
    ana, zoe = people[1]["ana"], people[1]["zoe"]
    form = _edit_form(admin_client, ana, email=zoe.email)
    response = admin_client.post(f"/organizer/attendees/{ana.id}", data=form)
    assert response.status_code == 409
    assert "already registered" in response.text
    ana = fresh(app, ana)
    assert ana.email == "ana@unc.example"


def test_cancel_and_restore_are_recorded(app, admin_client, people):
    ana = people[1]["ana"]
    url = f"/organizer/attendees/{ana.id}"
    token = page_csrf(admin_client, url)
    assert admin_client.post(url + "/cancel", data={"csrf_token": token}).status_code == 303
    ana = fresh(app, ana)
    assert ana.status == "cancelled"
    assert admin_client.post(url + "/cancel", data={"csrf_token": token}).status_code == 303
    assert "already cancelled" in admin_client.get(url).text
    assert admin_client.post(url + "/restore", data={"csrf_token": token}).status_code == 303
    ana = fresh(app, ana)
    assert ana.status == "confirmed"
    with app.app_context():
        actions = db.session.execute(
            select(AttendeeChange.action, AttendeeChange.organizer_id)
            .where(AttendeeChange.attendee_id == ana.id)
            .order_by(AttendeeChange.id)
        ).all()
    assert [a for a, _ in actions] == ["cancel", "restore"]
    assert all(organizer_id is not None for _, organizer_id in actions)


def test_check_in_and_undo_from_attendee_page(app, admin_client, people):
    ana = people[1]["ana"]
    url = f"/organizer/attendees/{ana.id}"
    token = page_csrf(admin_client, url)
    assert admin_client.post(url + "/check-in", data={"csrf_token": token}).status_code == 303
    ana = fresh(app, ana)
    assert ana.checked_in_at is not None
    assert admin_client.post(url + "/undo-check-in", data={"csrf_token": token}).status_code == 303
    ana = fresh(app, ana)
    assert ana.checked_in_at is None
    page = admin_client.get(url).text
    assert "check in" in page and "undo check in" in page


def test_action_without_csrf_changes_nothing(app, admin_client, people):
    ana = people[1]["ana"]
    assert admin_client.post(f"/organizer/attendees/{ana.id}/cancel").status_code == 400
    ana = fresh(app, ana)
    assert ana.status == "confirmed"


def test_unknown_attendee_is_404(admin_client, people):
    assert admin_client.get("/organizer/attendees/999999").status_code == 404


def test_cancelling_asks_first_and_the_question_changes_nothing(app, admin_client, people):
    ana = people[1]["ana"]
    url = f"/organizer/attendees/{ana.id}"
    page = admin_client.get(url).text
    assert f'href="{url}/cancel"' in page  # a link to the question, not a one-click form
    question = admin_client.get(url + "/cancel")
    assert question.status_code == 200
    assert "Cancel the registration of" in question.text
    assert "They get an e-mail saying so." in question.text
    ana = fresh(app, ana)
    assert ana.status == "confirmed"
    token = page_csrf(admin_client, url + "/cancel")
    assert admin_client.post(url + "/cancel", data={"csrf_token": token}).status_code == 303
    ana = fresh(app, ana)
    assert ana.status == "cancelled"
    assert "already cancelled" in admin_client.get(url + "/cancel").text


def test_companions_are_listed_with_their_role(app, admin_client, make_event, make_attendee):
    event = make_event()
    lead = make_attendee(event, role="family", last_name="Lead")
    make_attendee(event, role="guest", party_id=lead.id, email="", last_name="Kid")
    page = admin_client.get("/organizer/attendees").get_data(as_text=True)
    assert "Kid," in page and "<td>Companion</td>" in page


def test_without_the_watch_the_list_is_read_afresh_in_a_layout_kept_per_organizer(
    app_config, app, make_organizer, make_event, make_attendee
):
    """Right after a change (here: no change watch at all) the list's rows are read and
    rendered afresh, but not the layout around them: that is kept per organizer, each
    request with its own sign-out token."""
    from flask import template_rendered
    from organizer_fixtures import STAFF_EMAIL, sign_in

    from necreg import create_app

    event = make_event()
    make_attendee(event, last_name="Before")
    make_organizer(ADMIN_EMAIL, role="admin")
    make_organizer(STAFF_EMAIL, role="admin")
    unwatched = create_app({**app_config, "CHANGE_WATCH": False})
    try:
        clients = {email: unwatched.test_client() for email in (ADMIN_EMAIL, STAFF_EMAIL)}
        for email, client in clients.items():
            assert sign_in(client, email).status_code == 303
            client.get("/organizer/attendees")  # the layout is made
        make_attendee(event, last_name="After")
        rendered: list[str] = []

        def record(_app, template, **_extra) -> None:
            rendered.append(template.name)

        template_rendered.connect(record, unwatched)
        try:
            pages = {
                email: c.get("/organizer/attendees").get_data(as_text=True)
                for email, c in clients.items()
            }
        finally:
            template_rendered.disconnect(record, unwatched)
        assert "organizer/attendees.html" not in rendered
        assert rendered.count("organizer/_attendees_content.html") == 2  # the rows, each time
        for email, page in pages.items():
            assert "Before" in page and "After" in page
            assert page.count(email) == 1  # its own organizer in the layout
            assert "attendee-list-content-of-this-request" not in page
        token = re.search(r'name="csrf_token" value="([^"]+)"', pages[ADMIN_EMAIL]).group(1)
        assert clients[ADMIN_EMAIL].post(
            "/organizer/logout", data={"csrf_token": token}
        ).status_code in (302, 303)
        assert clients[ADMIN_EMAIL].get("/organizer/attendees").status_code in (302, 303)
        assert clients[STAFF_EMAIL].get("/organizer/attendees").status_code == 200
    finally:
        with unwatched.app_context():
            db.engine.dispose()  # its connections, closed now
