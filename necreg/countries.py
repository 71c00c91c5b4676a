"""Countries as ISO 3166-1 alpha-2 codes with readable names, from pycountry."""

from __future__ import annotations

import unicodedata
from functools import cache

import pycountry
from markupsafe import Markup


def _sort_key(name: str) -> str:
    decomposed = unicodedata.normalize("NFKD", name)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


@cache
def countries() -> tuple[tuple[str, str], ...]:
    """(code, name) pairs sorted by name as a reader expects (Åland next to Albania)."""
    pairs = [(c.alpha_2, getattr(c, "common_name", None) or c.name) for c in pycountry.countries]
    return tuple(sorted(pairs, key=lambda pair: _sort_key(pair[1])))


@cache
def country_names() -> dict[str, str]:
    return dict(countries())


def country_name(code: str) -> str:
    return country_names().get(code, code)


def country_options(selected: str) -> Markup:
    """The ``<option>`` elements of a country menu with ``selected`` chosen (forms.country_menu
    keeps them per code)."""
    return Markup("").join(
        Markup('<option value="{}"{}>{}</option>').format(
            code, Markup(" selected") if code == selected else "", name
        )
        for code, name in countries()
    )
