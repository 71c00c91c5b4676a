"""Folding text for search: lower case, without accents, the same in Python for every database.

Each registration keeps its searchable fields folded in one column (``search_text``), written
whenever the registration is, so a search compares one column with ``LIKE`` on SQLite and on
PostgreSQL alike instead of folding every field of every row at query time.
"""

from __future__ import annotations

import unicodedata


def _accent_table() -> tuple[str, str]:
    """Accented Latin letters (upper and lower case) and the plain letters they fold to."""
    accented, plain = [], []
    for point in range(0xC0, 0x250):
        char = chr(point)
        base = "".join(
            c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c)
        )
        if len(base) == 1 and base.isascii() and base.isalpha() and base != char:
            accented.append(char)
            plain.append(base.lower())
    extra = {"ß": "s", "ø": "o", "Ø": "o", "æ": "a", "Æ": "a", "đ": "d", "Đ": "d", "ł": "l"}
    extra |= {"Ł": "l", "ı": "i"}
    for char, base in extra.items():
        if char not in accented:
            accented.append(char)
            plain.append(base)
    return "".join(accented), "".join(plain)


ACCENTED, PLAIN = _accent_table()
_TRANSLATION = str.maketrans(ACCENTED, PLAIN)


def fold(text: str) -> str:
    """Lower case without accents: what a search compares, on both sides."""
    return text.lower().translate(_TRANSLATION)


#: The fields a search looks in, in the order they are folded together.
SEARCHED_FIELDS = ("first_name", "last_name", "email", "institution", "code", "badge_name")
#: Between fields, so that no search word (words have no spaces) matches across two of them.
SEPARATOR = " | "


def search_text(values: dict[str, object]) -> str:
    """The folded search column of a registration, from its field values."""
    return SEPARATOR.join(fold(str(values.get(name) or "")) for name in SEARCHED_FIELDS)
