"""Values read and written in one place (necreg/formats.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from necreg.formats import (
    InvalidEmail,
    email_key,
    is_yes,
    json_timestamp,
    normalise_email,
    parse_yes_no,
)


@pytest.mark.parametrize("raw", ["yes", "Y", " true ", "1", "ON"])
def test_yes(raw):
    assert parse_yes_no(raw) is True
    assert is_yes(raw)


@pytest.mark.parametrize("raw", ["no", "N", "false", "0", "off"])
def test_no(raw):
    assert parse_yes_no(raw) is False
    assert not is_yes(raw)


def test_empty_is_the_default_and_anything_else_is_refused():
    assert parse_yes_no("") is None
    assert parse_yes_no(None, default=False) is False
    with pytest.raises(ValueError, match="neither yes nor no"):
        parse_yes_no("maybe")
    assert not is_yes("maybe")


def test_addresses_are_normalised_and_compared_without_case():
    assert normalise_email("  Zoe@EXAMPLE.org ") == "Zoe@example.org"
    assert email_key(" Zoe@Example.ORG") == email_key("zoe@example.org") == "zoe@example.org"
    with pytest.raises(InvalidEmail, match="does not look right") as refused:
        normalise_email("zoe@")
    assert refused.value.reason and "does not look right" not in refused.value.reason


def test_json_timestamps_are_utc_to_the_second():
    chicago = timezone(timedelta(hours=-5))
    moment = datetime(2025, 9, 7, 9, 12, 30, 999, tzinfo=chicago)
    assert json_timestamp(moment) == "2025-09-07T14:12:30Z"
    assert json_timestamp(moment.astimezone(UTC)) == "2025-09-07T14:12:30Z"
