"""The companions a registrant brings (a household), as the forms send them:
``guests-<i>-first_name``, ``guests-<i>-last_name`` and ``guests-<i>-age_band``, i from 0.

A row left wholly empty is no companion; a row with something in it needs all three. The
inputs are read and checked here, beside the WTForms fields of the same page, because their
number comes from the event (``max_guests``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ..formats import has_control_characters
from ..models import AGE_BANDS, MAX_LENGTHS
from ..registration import Companion

#: The inputs of one companion, with their labels.
PARTS = {"first_name": "First name", "last_name": "Last name", "age_band": "Age"}


def input_name(index: int, part: str) -> str:
    return f"guests-{index}-{part}"


@dataclass
class CompanionRow:
    """One companion's inputs as sent, and what is wrong with each."""

    index: int
    values: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not any(self.values.values())

    def name(self, part: str) -> str:
        return input_name(self.index, part)

    @property
    def heading(self) -> str:
        return f"Companion {self.index + 1}"


@dataclass
class CompanionRows:
    """Every companion row of a form: ``count`` rows, as sent."""

    rows: list[CompanionRow]

    @property
    def companions(self) -> list[Companion]:
        return [
            Companion(r.values["first_name"], r.values["last_name"], r.values["age_band"])
            for r in self.rows
            if not r.empty
        ]

    @property
    def errors(self) -> list[tuple[str, str, str]]:
        """(input id, label, message) of each error, for the page's error summary."""
        return [
            (row.name(part), f"{row.heading}, {PARTS[part].lower()}", message)
            for row in self.rows
            for part, message in row.errors.items()
        ]


def blank_rows(count: int) -> CompanionRows:
    return CompanionRows([CompanionRow(i, dict.fromkeys(PARTS, "")) for i in range(count)])


def _check(row: CompanionRow) -> None:
    for part in ("first_name", "last_name"):
        value = row.values[part]
        label = PARTS[part].lower()
        if not value:
            row.errors[part] = f"Please enter your companion's {label}."
        elif len(value) > MAX_LENGTHS[part]:
            row.errors[part] = f"Please use at most {MAX_LENGTHS[part]} characters."
        elif has_control_characters(value):
            row.errors[part] = "Please remove line breaks, tabs and other control characters."
    if row.values["age_band"] not in AGE_BANDS:
        row.errors["age_band"] = "Please choose adult, child or infant."


def read_rows(form: Mapping[str, str], count: int) -> CompanionRows:
    """The first ``count`` companion rows of ``form``, checked (inputs past ``count`` are
    ignored: the event allows no more)."""
    rows = []
    for index in range(count):
        values = {part: (form.get(input_name(index, part)) or "").strip() for part in PARTS}
        row = CompanionRow(index, values)
        if not row.empty:
            _check(row)
        rows.append(row)
    return CompanionRows(rows)
