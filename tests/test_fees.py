"""Registration fees: money as Decimal and minor units, prices from the event file, the price
that applies, and codes counted under their own lock (issue 13, first step)."""

# ruff: noqa: F811 - pytest fixtures imported from organizer_fixtures are used as arguments

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from organizer_fixtures import admin_client, csrf_for, make_organizer  # noqa: F401
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from conftest import EDITION_YEAR, csrf_token, registration_form
from necreg.events import EventFileError, load_event
from necreg.extensions import db
from necreg.fees import (
    FeeError,
    create_code,
    discounted,
    event_prices,
    fee_for,
    price_for,
)
from necreg.models import (
    Attendee,
    AuditEntry,
    CodeUse,
    DiscountCode,
    Event,
    OutboxMessage,
    Price,
)
from necreg.money import MoneyError, format_money, from_minor, parse_amount, to_minor
from necreg.registration import Registrant, register

NOW = datetime(2025, 5, 1, tzinfo=UTC)
#: An early-bird tier that ends a month from now (the form shows what is offered today).
EARLY_UNTIL = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
PRICES = [
    {"name": "Patient-families", "amount": "0", "roles": ["family"]},
    {"name": "Trainee", "amount": "150", "early_career": True},
    {"name": "Early bird", "amount": "350", "until": EARLY_UNTIL},
    {"name": "Online", "amount": "100", "attendance": "virtual"},
    {"name": "Standard", "amount": "450.50"},
    {"name": "Child", "amount": "25", "roles": ["guest"]},
]


def event_file(**over) -> dict:
    data = {
        "slug": "nec-2099",
        "name": "NEC Symposium",
        "starts_on": date(EDITION_YEAR, 9, 7),
        "ends_on": date(EDITION_YEAR, 9, 10),
        "current": True,
        "currency": "USD",
        "prices": PRICES,
        "max_guests": 2,
        "virtual": True,
    }
    data.update(over)
    return data


@pytest.fixture
def event(app):
    with app.app_context():
        loaded, _ = load_event(db.session, event_file())
        db.session.commit()
        return loaded.id


def count(app, model) -> int:
    with app.app_context():
        return db.session.execute(select(func.count()).select_from(model)).scalar_one()


# --- money -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "currency", "message"),
    [
        ("abc", "USD", "must be a number"),
        ("-1", "USD", "0 or more"),
        ("1.234", "USD", "at most 2 decimals in USD"),
        ("10.5", "JPY", "at most 0 decimals in JPY"),
        ("NaN", "USD", "0 or more"),
        ("2000000", "USD", "at most 1000000"),
        (1.5, "USD", "written as text"),
    ],
)
def test_a_wrong_amount_says_what_is_wrong(text, currency, message):
    with pytest.raises(MoneyError, match=message):
        parse_amount(text, currency)


def test_amounts_are_exact_in_every_currency():
    assert parse_amount("0.1", "USD") + parse_amount("0.2", "USD") == Decimal("0.3")
    assert to_minor(Decimal("450.50"), "USD") == 45050
    assert to_minor(Decimal("12.345"), "KWD") == 12345
    assert to_minor(Decimal("5000"), "JPY") == 5000
    assert from_minor(45050, "USD") == Decimal("450.50")
    assert format_money(145050, "USD") == "USD 1,450.50"
    assert format_money(0, "USD") == "free"


# --- prices ------------------------------------------------------------------------------------


def test_prices_are_stored_in_minor_units_in_order(app, event):
    with app.app_context():
        prices = event_prices(db.session, event)
    assert [(p.name, p.amount) for p in prices][:5] == [
        ("Patient-families", 0),
        ("Trainee", 15000),
        ("Early bird", 35000),
        ("Online", 10000),
        ("Standard", 45050),
    ]
    assert prices[2].until == EARLY_UNTIL


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"currency": ""}, "prices need the event's currency"),
        ({"currency": "XXQ"}, "currency must be an ISO 4217 code"),
        ({"prices": [{"name": "A", "amount": "1.999"}]}, "at most 2 decimals"),
        ({"prices": [{"name": "A", "amount": "10", "roles": ["pilot"]}]}, "roles must be"),
        ({"prices": [{"name": "", "amount": "10"}]}, "name must be text"),
        ({"prices": [{"name": "A", "amount": "10", "tier": 1}]}, "unknown key"),
        ({"prices": [{"name": "A", "amount": "10", "attendance": "moon"}]}, "attendance must"),
    ],
)
def test_a_wrong_price_is_refused_and_nothing_is_stored(app, over, message):
    with app.app_context(), pytest.raises(EventFileError, match=message):
        load_event(db.session, event_file(**over))
    assert count(app, Price) == 0 and count(app, Event) == 0


def test_the_first_matching_price_applies_and_early_bird_ends(app, event):
    with app.app_context():
        prices = event_prices(db.session, event)
    later = EARLY_UNTIL + timedelta(seconds=1)
    assert price_for(prices, "family", False, "in_person", NOW).name == "Patient-families"
    assert price_for(prices, "clinician", True, "in_person", NOW).name == "Trainee"
    assert price_for(prices, "clinician", False, "in_person", NOW).name == "Early bird"
    assert price_for(prices, "clinician", False, "virtual", later).name == "Online"
    assert price_for(prices, "clinician", False, "in_person", later).name == "Standard"
    assert price_for((), "clinician", False, "in_person", NOW) is None


def test_the_form_shows_the_prices_and_the_registration_owes_its_fee(app, client, event):
    page = client.get("/register").get_data(as_text=True)
    assert "Early bird" in page and "USD 450.50" in page and 'id="fee-output"' in page
    assert "Registration fees" in client.get("/").get_data(as_text=True)
    form = registration_form(
        csrf_token=csrf_token(client),
        role="clinician",
        early_career=None,
        **{"guests-0-first_name": "Ava", "guests-0-last_name": "Z", "guests-0-age_band": "child"},
    )
    response = client.post("/register", data=form)
    assert response.status_code == 303
    with app.app_context():
        people = db.session.execute(select(Attendee).order_by(Attendee.id)).scalars().all()
        lead, kid = people
        assert (lead.price_name, lead.amount_due) == ("Early bird", 35000)
        assert (kid.price_name, kid.amount_due) == ("Child", 2500)
        mail = db.session.execute(
            select(OutboxMessage.text_body).where(OutboxMessage.attendee_id == lead.id)
        ).scalar_one()
        token = lead.token
        owed = lead.amount_due
    assert f"Your fee: {format_money(owed, 'USD')}" in mail
    page = client.get(f"/registration/{token}").get_data(as_text=True)
    assert format_money(owed, "USD") in page
    data = client.get(f"/api/registrations/{token}").get_json()
    assert (data["amount_due"], data["currency"], data["amount_paid"]) == (
        str(from_minor(owed, "USD")),
        "USD",
        "0.00",
    )


# --- codes -------------------------------------------------------------------------------------


def test_codes_take_a_percentage_or_an_amount_off(app, event):
    with app.app_context():
        e = db.session.get(Event, event)
        half = create_code(db.session, e, "half", percent=50)
        hundred = create_code(db.session, e, "FREE-FAC", amount="100.00")
        assert (half.code, hundred.amount) == ("HALF", 10000)
        assert discounted(45050, half) == 22525
        assert discounted(35001, half) == 17501  # half a cent rounds up
        assert discounted(5000, hundred) == 0  # never below 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"code": "x", "percent": 10}, "3 to 40 letters"),
        ({"code": "GOOD1"}, "either a percentage or an amount"),
        ({"code": "GOOD1", "percent": 10, "amount": "5"}, "either a percentage or an amount"),
        ({"code": "GOOD1", "percent": 101}, "from 1 to 100"),
        ({"code": "GOOD1", "amount": "5.555"}, "at most 2 decimals"),
        ({"code": "GOOD1", "percent": 10, "max_uses": 0}, "from 1 to 1,000,000"),
        ({"code": "GOOD1", "percent": 10, "max_uses": 10**20}, "from 1 to 1,000,000"),
        ({"code": "GOOD1", "percent": 10, "roles": ["pilot"]}, "roles must be among"),
        ({"code": "TAKEN", "percent": 10}, "exists already"),
    ],
)
def test_a_wrong_code_is_refused_and_nothing_is_stored(app, event, args, message):
    with app.app_context():
        e = db.session.get(Event, event)
        create_code(db.session, e, "TAKEN", percent=5)
        db.session.commit()
        args = dict(args)  # one dict for both databases' runs: not to be changed
        code = args.pop("code")
        with pytest.raises(FeeError, match=message):
            create_code(db.session, e, code, **args)
        db.session.rollback()
    assert count(app, DiscountCode) == 1


def registering_with(client, code: str, email: str, **over):
    form = registration_form(
        csrf_token=csrf_token(client), role="clinician", early_career=None, email=email, code=code
    )
    form.update(over)
    return client.post("/register", data=form)


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ({"code": "NOPE"}, "This code is not valid for this event."),
        ({"expires_at": datetime(2020, 1, 1, tzinfo=UTC)}, "This code has expired."),
        ({"roles": ["family"]}, "not valid for the role you chose"),
    ],
)
def test_a_code_that_may_not_be_used_is_refused_at_its_field(app, client, event, setup, message):
    with app.app_context():
        e = db.session.get(Event, event)
        create_code(
            db.session, e, "FACULTY", percent=100, **{k: v for k, v in setup.items() if k != "code"}
        )
        db.session.commit()
    response = registering_with(client, setup.get("code", "faculty"), "a@example.org")
    assert response.status_code == 400
    assert message in response.get_data(as_text=True).replace("&#39;", "'")
    assert count(app, Attendee) == 0 and count(app, CodeUse) == 0
    with app.app_context():
        assert db.session.execute(select(DiscountCode.uses)).scalar_one() == 0


def test_a_code_is_used_no_more_times_than_it_may_be(app, client, event):
    with app.app_context():
        create_code(db.session, db.session.get(Event, event), "FACULTY", percent=100, max_uses=1)
        db.session.commit()
    assert registering_with(client, " faculty ", "a@example.org").status_code == 303
    refused = registering_with(client, "FACULTY", "b@example.org")
    assert refused.status_code == 400
    assert "used as many times as it may be" in refused.get_data(as_text=True)
    with app.app_context():
        owed = db.session.execute(select(Attendee.amount_due)).scalars().all()
        assert owed == [0]
        assert db.session.execute(select(DiscountCode.uses)).scalar_one() == 1
    assert count(app, CodeUse) == 1


def test_the_cli_and_the_organizer_page_create_codes(app, runner, admin_client, event):
    result = runner.invoke(
        args=["create-code", "SPEAKER", "--percent", "100", "--max-uses", "10",
              "--roles", "clinician,scientist", "--expires", "2030-01-01"]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Created code SPEAKER" in result.output and "0 of 10 uses" in result.output
    bad = runner.invoke(args=["create-code", "SPEAKER", "--percent", "5"])
    assert bad.exit_code == 1 and "exists already" in bad.output
    form = {
        "csrf_token": csrf_for(admin_client, "/organizer/codes"),
        "code": "family-fund",
        "amount": "200.00",
        "roles": ["family"],
    }
    assert admin_client.post("/organizer/codes", data=form).status_code == 303
    page = admin_client.get("/organizer/codes").get_data(as_text=True)
    assert "FAMILY-FUND" in page and "USD 200.00 off" in page and "SPEAKER" in page
    refused = admin_client.post("/organizer/codes", data={**form, "code": "X"})
    assert refused.status_code == 400 and "3 to 40 letters" in refused.get_data(as_text=True)
    assert count(app, DiscountCode) == 2
    faculty = {**form, "code": "FACULTY", "roles": [], "bypass_caps": "y"}
    faculty["csrf_token"] = csrf_for(admin_client, "/organizer/codes")
    assert admin_client.post("/organizer/codes", data=faculty).status_code == 303
    with app.app_context():
        codes = dict(db.session.execute(select(DiscountCode.code, DiscountCode.bypass_caps)).all())
    assert codes == {"SPEAKER": False, "FAMILY-FUND": False, "FACULTY": True}


def test_a_code_with_one_use_left_is_used_once_by_simultaneous_registrations(
    app, database_url, is_postgres, event
):
    if not is_postgres:
        pytest.skip("needs PostgreSQL: set NECREG_TEST_DATABASE_URL")
    with app.app_context():
        create_code(db.session, db.session.get(Event, event), "LAST", percent=100, max_uses=1)
        db.session.commit()
    engine = create_engine(database_url, pool_size=12, max_overflow=0)
    barrier = threading.Barrier(10)
    outcomes: list[str] = []

    def attempt(n: int) -> None:
        with app.app_context(), Session(engine) as session:
            session.connection()
            barrier.wait(timeout=30)
            e = session.get(Event, event)
            person = Registrant(f"P{n}", "X", f"p{n}@example.org", "clinician", "US")
            try:
                fee = fee_for(
                    session, e, event_prices(session, event), role="clinician",
                    early_career=False, attendance="in_person", code="LAST",
                )  # fmt: skip
                register(session, e, person, code_prefix="NEC", fee=fee)
                session.commit()
                outcomes.append("used")
            except FeeError:
                session.rollback()
                outcomes.append("refused")

    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    engine.dispose()
    assert sorted(outcomes) == ["refused"] * 9 + ["used"]
    assert count(app, CodeUse) == 1 and count(app, Attendee) == 1


def fees_form(admin_client, **over) -> dict:
    form = {
        "csrf_token": csrf_for(admin_client, "/organizer/settings"),
        "currency": "eur",
        "prices-0-name": "Families",
        "prices-0-amount": "0",
        "prices-0-roles": ["family"],
        "prices-1-name": "Early bird",
        "prices-1-amount": "300.00",
        "prices-1-until": "2099-06-01T12:00",
        "prices-2-name": "Online",
        "prices-2-amount": "80",
        "prices-2-attendance": "virtual",
        "prices-2-early_career": "no",
        "prices-3-name": "",
        "prices-3-amount": "",
    }
    form.update(over)
    return form


def test_admins_set_the_currency_and_prices_on_the_settings_page(app, client, admin_client, event):
    page = admin_client.get("/organizer/settings").get_data(as_text=True)
    assert 'name="prices-4-name" value="Standard"' in page  # the file's prices, then blanks
    assert 'name="prices-7-name" value=""' in page
    response = admin_client.post("/organizer/settings/fees", data=fees_form(admin_client))
    assert response.status_code == 303
    with app.app_context():
        (entry,) = db.session.execute(select(AuditEntry)).scalars()  # audited, with the prices
        assert (entry.action, entry.details["currency"]) == ("settings.fees", "EUR")
        assert [p["name"] for p in entry.details["prices"]][:3] == [
            "Families",
            "Early bird",
            "Online",
        ]
        saved = db.session.get(Event, event)
        prices = event_prices(db.session, event)
        assert saved.currency == "EUR"
    assert [(p.name, p.amount, p.roles, p.attendance, p.early_career) for p in prices] == [
        ("Families", 0, ("family",), None, None),
        ("Early bird", 30000, (), None, None),
        ("Online", 8000, (), "virtual", False),
    ]
    assert prices[1].until == datetime(2099, 6, 1, 12, tzinfo=UTC)
    assert "EUR 300.00" in client.get("/register").get_data(as_text=True)


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"currency": "EURO"}, "ISO 4217"),
        ({"prices-1-amount": "3.005"}, "at most 2 decimals"),
        ({"prices-1-until": "soon"}, "until must be a date and time"),
        ({"prices-0-name": ""}, "name must be text"),
    ],
)
def test_wrong_fees_are_refused_and_nothing_changes(app, admin_client, event, over, message):
    response = admin_client.post("/organizer/settings/fees", data=fees_form(admin_client, **over))
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Event, event).currency == "USD"
        assert [p.name for p in event_prices(db.session, event)][0] == "Patient-families"


def test_a_changed_role_early_career_or_attendance_changes_the_fee(app, client, event):
    form = registration_form(csrf_token=csrf_token(client), role="family", early_career=None)
    assert client.post("/register", data=form).status_code == 303
    with app.app_context():
        person = db.session.execute(select(Attendee)).scalar_one()
        assert (person.price_name, person.amount_due) == ("Patient-families", 0)
        path = f"/registration/{person.token}"
    details = {
        "first_name": "Zoë", "last_name": "Núñez-李", "role": "clinician", "institution": "",
        "country": "US", "badge_name": "", "attendance": "in_person",
    }  # fmt: skip
    assert (
        client.post(path, data={"csrf_token": csrf_token(client, path), **details}).status_code
        == 303
    )
    with app.app_context():
        person = db.session.execute(select(Attendee)).scalar_one()
        # The prices offered when the person registered: the early bird.
        assert (person.price_name, person.amount_due) == ("Early bird", 35000)
        from necreg.models import AttendeeChange

        change = db.session.execute(
            select(AttendeeChange.changes).where(AttendeeChange.action == "update")
        ).scalar_one()
        assert change["amount_due"] == [0, 35000]
    online = {**details, "attendance": "virtual", "early_career": "y"}
    assert (
        client.post(path, data={"csrf_token": csrf_token(client, path), **online}).status_code
        == 303
    )
    with app.app_context():
        person = db.session.execute(select(Attendee)).scalar_one()
        assert (person.price_name, person.amount_due) == ("Trainee", 15000)


def test_a_price_until_with_an_offset_is_kept_as_that_moment():
    from necreg.organizer.fees import as_items

    rows = [{"name": "A", "amount": "1", "roles": [], "early_career": "", "attendance": "",
             "until": "2099-06-01T12:00-05:00"}]  # fmt: skip
    assert as_items(rows)[0]["until"] == datetime(2099, 6, 1, 17, tzinfo=UTC)


def test_a_code_with_an_enormous_use_limit_is_refused_at_the_field(app, admin_client, event):
    form = {
        "csrf_token": csrf_for(admin_client, "/organizer/codes"),
        "code": "BIG",
        "percent": "10",
        "max_uses": "99999999999999999999",
    }
    response = admin_client.post("/organizer/codes", data=form)
    assert response.status_code == 400 and "From 1 to 1,000,000." in response.get_data(as_text=True)
    assert count(app, DiscountCode) == 0
