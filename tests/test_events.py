"""`necreg load-event`: the event file format, create-or-update, and the repo's NEC file."""

from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy import func, select

from conftest import detached, fresh
from necreg.extensions import db
from necreg.models import Attendee, Event
from necreg.resources import resource_dir

NEC_FILE = resource_dir("events") / "nec-symposium.toml"

MINIMAL = """
slug = "{slug}"
name = "{name}"
starts_on = 2027-09-05
ends_on = 2027-09-08
current = {current}
sessions = 12
"""


def write(tmp_path: Path, text: str, name: str = "event.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def events(app) -> list[Event]:
    """Every event as the database holds it now, loaded and detached."""
    with app.app_context():
        return [detached(e) for e in db.session.execute(select(Event).order_by(Event.id)).scalars()]


def test_the_nec_symposium_file_carries_the_seed_content(app, runner):
    result = runner.invoke(args=["load-event", str(NEC_FILE)])
    assert result.exit_code == 0, result.output
    assert "Created event nec-2025" in result.output
    (event,) = events(app)
    assert event.name == "NEC Symposium"
    assert event.tagline == "Building a World Without NEC"
    assert event.venue == "Chicago"
    assert (event.starts_on, event.ends_on) == (date(2025, 9, 7), date(2025, 9, 10))
    assert event.hosts == ["NEC Society", "Cincinnati Children's", "UNC Children's"]
    assert event.is_current
    assert "biennially since 2017" in event.description
    assert "250+" in event.description
    assert [t["name"] for t in event.testimonials] == [
        "Mark Del Monte, J.D.",
        "Jennifer Canvasser",
        "Jae Kim, MD, PhD",
        "Misty Good, MD, MS",
    ]
    assert event.testimonials[0]["title"] == "CEO of the American Academy of Pediatrics (AAP)"
    assert "Mother to Micah" in event.testimonials[1]["title"]
    assert "transformational" in event.testimonials[1]["quote"]


def test_loading_again_updates_by_slug_and_keeps_registrations(
    app, runner, tmp_path, make_attendee
):
    path = write(tmp_path, MINIMAL.format(slug="nec-2027", name="NEC 2027", current="true"))
    assert runner.invoke(args=["load-event", str(path)]).exit_code == 0
    (event,) = events(app)
    make_attendee(event)
    path.write_text(path.read_text().replace("sessions = 12", "sessions = 44"))
    result = runner.invoke(args=["load-event", str(path)])
    assert result.exit_code == 0, result.output
    assert "Updated event nec-2027" in result.output
    (event,) = events(app)
    assert event.sessions == 44
    with app.app_context():
        assert db.session.execute(select(func.count()).select_from(Attendee)).scalar_one() == 1


def test_the_last_current_event_loaded_wins(app, runner, tmp_path):
    first = write(tmp_path, MINIMAL.format(slug="a", name="A", current="true"), "a.toml")
    second = write(tmp_path, MINIMAL.format(slug="b", name="B", current="true"), "b.toml")
    assert runner.invoke(args=["load-event", str(first)]).exit_code == 0
    assert runner.invoke(args=["load-event", str(second)]).exit_code == 0
    assert [(e.slug, e.is_current) for e in events(app)] == [("a", False), ("b", True)]


def test_if_empty_loads_only_into_an_empty_database(app, runner, tmp_path):
    first = write(tmp_path, MINIMAL.format(slug="a", name="A", current="true"), "a.toml")
    second = write(tmp_path, MINIMAL.format(slug="b", name="B", current="true"), "b.toml")
    assert runner.invoke(args=["load-event", "--if-empty", str(first)]).exit_code == 0
    result = runner.invoke(args=["load-event", "--if-empty", str(second)])
    assert result.exit_code == 0
    assert "nothing loaded" in result.output
    assert [e.slug for e in events(app)] == ["a"]


def test_window_and_caps_are_read(app, runner, tmp_path):
    text = MINIMAL.format(slug="a", name="A", current="true") + (
        "capacity = 300\n"
        "registration_opens_at = 2027-03-01T00:00:00Z\n"
        "registration_closes_at = 2027-09-01T12:00:00-05:00\n"
        "[capacity_by_role]\nfamily = 60\n"
    )
    assert runner.invoke(args=["load-event", str(write(tmp_path, text))]).exit_code == 0
    (event,) = events(app)
    assert event.capacity == 300
    assert event.capacity_by_role == {"family": 60}
    assert event.registration_opens_at == datetime(2027, 3, 1, tzinfo=UTC)
    assert event.registration_closes_at == datetime(2027, 9, 1, 17, 0, tzinfo=UTC)


def test_raising_a_cap_on_reload_promotes_the_waiting_list(app, runner, tmp_path, make_attendee):
    base = MINIMAL.format(slug="a", name="A", current="true")
    path = write(tmp_path, base + "capacity = 1\n")
    assert runner.invoke(args=["load-event", str(path)]).exit_code == 0
    (event,) = events(app)
    make_attendee(event, status="confirmed")
    waiting = make_attendee(event, status="waitlisted")
    path.write_text(base + "capacity = 2\n")
    assert runner.invoke(args=["load-event", str(path)]).exit_code == 0
    assert fresh(app, waiting).status == "confirmed"


BAD_FILES = {
    "not toml": ("slug = ", "not valid TOML"),
    "bad slug": (MINIMAL.format(slug="Not A Slug", name="A", current="true"), "slug"),
    "no name": (MINIMAL.format(slug="a", name="", current="true"), "name is required"),
    "dates reversed": (
        MINIMAL.format(slug="a", name="A", current="true").replace("2027-09-08", "2027-09-01"),
        "ends_on is before starts_on",
    ),
    "negative sessions": (
        MINIMAL.format(slug="a", name="A", current="true").replace("= 12", "= -1"),
        "sessions must be a whole number",
    ),
    "unknown role cap": (
        MINIMAL.format(slug="a", name="A", current="true") + "[capacity_by_role]\nsurgeon = 3\n",
        "unknown role 'surgeon'",
    ),
    "unknown key": (MINIMAL.format(slug="a", name="A", current="true") + "colour = 1\n", "colour"),
    "testimonial without quote": (
        MINIMAL.format(slug="a", name="A", current="true") + '[[testimonials]]\nname = "X"\n',
        "testimonial 1 needs a quote",
    ),
}


def test_bad_event_files_are_refused_with_a_clear_message_and_store_nothing(app, runner, tmp_path):
    for label, (text, message) in BAD_FILES.items():
        result = runner.invoke(args=["load-event", str(write(tmp_path, text))])
        assert result.exit_code != 0, label
        assert message in result.output, (label, result.output)
    assert events(app) == []


def test_a_missing_file_is_reported(runner, tmp_path):
    result = runner.invoke(args=["load-event", str(tmp_path / "nope.toml")])
    assert result.exit_code != 0
    assert "no such file" in result.output


def test_an_event_without_a_timezone_takes_display_timezone(app_config, tmp_path):
    from necreg import create_app

    app = create_app({**app_config, "DISPLAY_TIMEZONE": "America/Chicago"})
    with app.app_context():
        db.create_all()
    runner = app.test_cli_runner()
    path = write(tmp_path, MINIMAL.format(slug="nec-2027", name="NEC 2027", current="true"))
    assert runner.invoke(args=["load-event", str(path)]).exit_code == 0
    named = write(
        tmp_path,
        MINIMAL.format(slug="nec-2029", name="NEC 2029", current="false")
        + 'timezone = "Asia/Tokyo"\n',
        name="named.toml",
    )
    assert runner.invoke(args=["load-event", str(named)]).exit_code == 0
    zones = {event.slug: event.timezone for event in events(app)}
    assert zones == {"nec-2027": "America/Chicago", "nec-2029": "Asia/Tokyo"}
    with app.app_context():
        db.engine.dispose()
