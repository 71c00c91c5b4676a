"""Folding text for search: lower case, without accents, the same in Python for every database.

Each registration keeps its searchable fields folded in one column (``search_text``), written
whenever the registration is, so a search compares one column with ``LIKE`` on SQLite and on
PostgreSQL alike instead of folding every field of every row at query time. A search word is
folded the same way, so what matters is that both sides fold alike: a change of the rule below
comes with a migration that refolds the stored rows (as 0020 does), and tests/test_folding.py
fails until it does.

The rule, character by character: its compatibility decomposition (NFKD: "é" is "e" and an
accent, "ﬁ" is "fi", a full-width "Ａ" is "A"); every combining mark dropped; Unicode case
folding ("ß" is "ss", "Σ" and "ς" are "σ"); and a Latin letter that is still not ASCII spelled
as ASCII by anyascii ("ø" "o", "æ" "ae", "đ" "d", "ł" "l", "þ" "th", "ı" "i"), so a name is
found by whoever types it on a plain keyboard. Dashes and quotation marks become their ASCII
forms the same way ("O’Brien" is found by "o'brien").

Other scripts are kept in their own letters, only case-folded and without marks: anyascii
would turn "李" into "li" and "Пётр" into "petr", so that "li" would find every Lee, Li and
Liu written in Chinese, and a name typed in its own script would have to be looked for in a
romanisation the organizer never sees. "Пётр" is found by "петр" and "ПЁТР", "Σωκράτης" by
"σωκρατης", "مُحَمَّد" by "محمد". Two exceptions keep letters that are letters, not accents:
the Japanese voicing marks stay on their kana ("ガ" is not "カ"), and Hangul stays composed
(both are recomposed by NFC at the end, so decomposed input folds the same). Dropping marks
everywhere else finds a little more than asked ("й" as "и", a Devanagari virama ignored),
never less: what is typed with the marks or without them finds the name.

A character that is not a space never folds to one ("¨" alone is a space and an accent): a
search word has no spaces, so it can never match across the SEPARATOR between two fields.
Format characters (soft hyphen, zero-width and direction marks) fold to nothing.

Speed: text in ASCII, most of it, is only lower-cased. Other text is folded character by
character (15-40 µs for a name), then, unless that gave ASCII, put through one NFC. Nothing is
kept between calls: a fold is done once per field written and once per search, never per row
read.
"""

from __future__ import annotations

import unicodedata

from anyascii import anyascii

#: Japanese voicing marks (dakuten, handakuten): they make another letter of a kana, so they
#: are kept, and composed with it, where every other combining mark is dropped.
KANA_MARKS = "\u3099\u309a"
#: Punctuation spelled in ASCII besides Latin letters: dashes and quotation marks (categories),
#: and the letter-like apostrophes of names such as "Kaʻahumanu" and "Ngũgĩ wa Thiongʼo".
ASCII_PUNCTUATION = frozenset({"Pd", "Pi", "Pf"})
APOSTROPHES = frozenset("\u02bc\u02bb\u02bd\u02b9")


def _step(text: str) -> str:
    """One pass of the rule over ``text``: NFKD, marks dropped, case folded, Latin in ASCII."""
    out = []
    for char in unicodedata.normalize("NFKD", text):
        if unicodedata.combining(char) and char not in KANA_MARKS:
            continue
        if unicodedata.category(char) == "Cf":
            continue
        for folded in char.casefold():
            if not folded.isascii() and (
                unicodedata.name(folded, "").startswith("LATIN ")
                or unicodedata.category(folded) in ASCII_PUNCTUATION
                or folded in APOSTROPHES
            ):
                folded = anyascii(folded).lower() or folded
            out.append(folded)
    return "".join(out)


def fold_character(char: str) -> str:
    """The fold of one character: the rule applied until it changes nothing more (a case
    folding can give a letter that decomposes, and so on)."""
    folded = char
    for _ in range(4):
        again = _step(folded)
        if again == folded:
            break
        folded = again
    if not char.isspace():
        folded = "".join(c for c in folded if not c.isspace())
    return folded


def fold(text: str) -> str:
    """Lower case without accents: what a search compares, on both sides."""
    if text.isascii():  # the rule gives an ASCII character its lower case, no more
        return text.lower()
    folded = "".join(fold_character(char) for char in text)
    if folded.isascii():  # Latin text: nothing left to compose
        return folded
    folded = unicodedata.normalize("NFC", folded)
    if KANA_MARKS[0] in folded or KANA_MARKS[1] in folded:
        # A voicing mark that NFC did not put on a kana stands alone: dropped like the rest.
        folded = folded.replace(KANA_MARKS[0], "").replace(KANA_MARKS[1], "")
    return folded


#: The fields a search looks in, in the order they are folded together.
SEARCHED_FIELDS = ("first_name", "last_name", "email", "institution", "code", "badge_name")
#: Between fields, so that no search word (words have no spaces) matches across two of them.
SEPARATOR = " | "


def search_text(values: dict[str, object]) -> str:
    """The folded search column of a registration, from its field values."""
    return SEPARATOR.join(fold(str(values.get(name) or "")) for name in SEARCHED_FIELDS)
