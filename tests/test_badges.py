"""Badge CSV: columns, formula neutralisation, filters, Excel BOM, streaming and the CLI."""

# ruff: noqa: F811 - pytest fixtures imported from organizer_fixtures are used as arguments

from __future__ import annotations

import csv
import io

import pytest
from organizer_fixtures import admin_client, make_organizer  # noqa: F401

from conftest import fresh
from necreg.attendee_search import AttendeeFilters
from necreg.badges import COLUMNS, iter_badge_csv, neutralised
from necreg.extensions import db

HEADER = (
    "code,first_name,last_name,badge_name,role,institution,country,early_career,status,"
    "attendance,party,photo_consent"
)


def rows_of(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


@pytest.mark.parametrize(
    ("value", "shown"),
    [("=1+2", "'=1+2"), ("+1", "'+1"), ("-2", "'-2"), ("@SUM(A1)", "'@SUM(A1)"),
     ("\tx", "'\tx"), ("\rx", "'\rx"), ("Zoë", "Zoë"), ("a=b", "a=b"), ("", "")],
)  # fmt: skip
def test_neutralise(value, shown):
    assert neutralised([value, None, 3]) == [shown, None, 3]


def test_export_columns_rows_and_neutralised_cells(app, admin_client, make_event, make_attendee):
    event = make_event()
    evil = make_attendee(
        event,
        first_name='=HYPERLINK("http://x")',
        last_name="-Núñez",
        institution='@Home, "Inc"',
        early_career=True,
        role="family",
    )
    make_attendee(event, status="cancelled")
    response = admin_client.get("/organizer/export/badges.csv")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.is_streamed
    assert response.headers["Content-Disposition"].startswith('attachment; filename="badges-nec')
    text = response.get_data(as_text=True)
    assert text.splitlines()[0] == HEADER
    assert "email" not in text.splitlines()[0]
    rows = rows_of(text)
    assert len(rows) == 2
    row = next(r for r in rows if r["code"] == evil.code)
    assert row["first_name"] == '\'=HYPERLINK("http://x")'
    assert row["last_name"] == "'-Núñez"
    assert row["institution"] == '\'@Home, "Inc"'
    assert (row["role"], row["early_career"], row["status"]) == ("family", "yes", "confirmed")
    assert (row["attendance"], row["party"], row["photo_consent"]) == ("in_person", "", "no")
    evil = fresh(app, evil)
    assert evil.first_name == '=HYPERLINK("http://x")'  # stored data untouched


def test_export_follows_the_list_filters(admin_client, make_event, make_attendee):
    event = make_event()
    wanted = make_attendee(event, institution="UNC Children's", role="scientist")
    make_attendee(event, institution="UNC Children's", role="clinician")
    make_attendee(event, institution="Elsewhere", role="scientist")
    list_page = admin_client.get("/organizer/attendees?q=unc&role=scientist").text
    assert "/organizer/export/badges.csv?q=unc&amp;role=scientist" in list_page
    text = admin_client.get("/organizer/export/badges.csv?q=unc&role=scientist").text
    assert [r["code"] for r in rows_of(text)] == [wanted.code]


def test_export_with_email_and_for_excel(admin_client, make_event, make_attendee):
    event = make_event()
    person = make_attendee(event, email="zoe@example.org")
    body = admin_client.get("/organizer/export/badges.csv?email=yes&excel=yes").data
    assert body.startswith(b"\xef\xbb\xbf")
    text = body.decode("utf-8-sig")
    assert text.splitlines()[0] == HEADER + ",email"
    assert rows_of(text)[0]["email"] == person.email


def test_bad_filter_is_400_and_exports_nothing(admin_client, make_event, make_attendee):
    event = make_event()
    person = make_attendee(event)
    response = admin_client.get("/organizer/export/badges.csv?role=pope")
    assert response.status_code == 400
    assert "Unknown role" in response.text
    assert person.code not in response.text


def test_rows_come_in_batches(app, make_event, make_attendee):
    with app.app_context():
        event = make_event()
        for _ in range(7):
            make_attendee(event)
        chunks = list(iter_badge_csv(db.session, event, AttendeeFilters(), batch_size=3))
    assert len(chunks) == 1 + 3  # header, then 3 + 3 + 1 rows
    assert chunks[0] == ",".join(COLUMNS) + "\r\n"
    assert sum(chunk.count("\r\n") for chunk in chunks[1:]) == 7


def test_cli_export_writes_the_same_file(admin_client, runner, make_event, make_attendee,
                                         tmp_path):  # fmt: skip
    event = make_event()
    make_attendee(event, institution="=cmd|' /C calc'!A0", role="advocate")
    make_attendee(event, role="clinician")
    web = admin_client.get("/organizer/export/badges.csv?role=advocate").data
    out = tmp_path / "badges.csv"
    result = runner.invoke(args=["export-badges", "--out", str(out), "--role", "advocate"])
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == web
    result = runner.invoke(args=["export-badges", "--excel", "--email"])
    assert result.exit_code == 0
    # The CSV is the standard output alone (the audit log line goes to the standard error).
    assert result.stdout.startswith("\ufeff" + HEADER + ",email")
    assert len(rows_of(result.stdout.lstrip("\ufeff"))) == 2


def test_cli_export_rejects_bad_filters_and_unknown_event(app, runner, make_event):
    make_event()
    result = runner.invoke(args=["export-badges", "--status", "gone"])
    assert result.exit_code == 2 and "Unknown status" in result.output
    result = runner.invoke(args=["export-badges", "--event", "nope"])
    assert result.exit_code == 1 and "no event with the slug" in result.output
    result = runner.invoke(args=["export-badges", "--program", "ws-x:maybe"])
    assert result.exit_code == 2 and "program must be" in result.output
    result = runner.invoke(args=["export-badges", "--program", "ws-x"])  # nobody signed up
    assert result.exit_code == 0 and result.stdout.strip() == HEADER
