"""The search fold (necreg/folding.py): names as people type them, in every script, the same
for composed and decomposed input, and the same rule in the migration that refolds stored rows.

How folded names are found in the database is tested in test_attendee_search.py."""

from __future__ import annotations

import importlib.util
import unicodedata
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from necreg import folding
from necreg.folding import SEPARATOR, fold, search_text

ROOT = Path(__file__).resolve().parent.parent
#: Any character but lone surrogates (no form nor database can carry them).
characters = st.characters(blacklist_categories=("Cs",))
#: Text rich in what folding is about: accents (composed and not), letters that decompose to
#: several or none, other scripts, kana with voicing marks, Hangul, spaces of every kind.
NAMEY = (
    "aAeEiIsSzZ éÉüÜßẞæÆøØđĐłŁœþıİŋ\u0301\u0302\u0303\u0308\u0323ἀΣςПёйمُ李ガカ\u3099김ᄀ ¨\u00a0’–"
)
text = st.one_of(st.text(characters, max_size=30), st.text(st.sampled_from(NAMEY), max_size=30))
PROPERTIES = settings(max_examples=400, deadline=None, derandomize=True)


def load_migration(name: str):
    path = ROOT / "migrations" / "versions" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"migration_{name}", path)
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    return migration


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        # Vietnamese: stacked accents, and đ which no decomposition removes.
        ("nguyen", "Nguyễn"),
        ("tran", "Trần"),
        ("dang", "Đặng"),
        ("NGUYEN THI", "Nguyễn Thị"),
        # German: ß is two letters.
        ("strasse", "Straße"),
        ("STRASSE", "STRAẞE"),
        ("muller", "Müller"),
        # Polish: ł has no decomposition, ę has one.
        ("lukasz", "Łukasz"),
        ("walesa", "Wałęsa"),
        ("lodz", "Łódź"),
        # Nordic: ø and æ have none, å has one.
        ("soren", "Søren"),
        ("aero", "Ærø"),
        ("ase", "Åse"),
        ("gudrun", "Guðrún"),
        # Turkish: dotless ı and dotted İ both to the i of a plain keyboard.
        ("isik", "Işık"),
        ("istanbul", "İstanbul"),
        # French, Spanish, Czech, Icelandic, Dutch.
        ("oeuvre", "Œuvre"),
        ("nunez", "Núñez"),
        ("dvorak", "Dvořák"),
        ("thorsson", "Þórsson"),
        ("ijssel", "Ĳssel"),
        # Apostrophes and dashes typed as ASCII.
        ("o'brien", "O’Brien"),
        ("necker-enfants", "Necker–Enfants"),
        # Full-width Latin (as typed with a CJK input method) and ligatures.
        ("nec", "ＮＥＣ"),
        ("office", "oﬃce"),
    ],
)
def test_a_name_is_folded_as_a_plain_keyboard_types_it(typed, stored):
    assert fold(typed) == fold(stored)


def test_decomposed_accents_fold_as_composed_ones():
    decomposed = "Nguye\u0302\u0303n"  # as macOS or a copied PDF may give it
    assert decomposed != "Nguyễn" and unicodedata.normalize("NFC", decomposed) == "Nguyễn"
    assert fold(decomposed) == fold("Nguyễn") == "nguyen"
    assert fold("Mu\u0308ller") == "muller"
    assert fold("D\u0323a\u0306\u0309ng") == fold("Đặng".replace("Đ", "D")) == "dang"


@pytest.mark.parametrize(
    ("typed", "stored", "folded"),
    [
        # Chinese and Japanese kanji: kept, not romanised ("li" must not find every 李).
        ("李小龍", "李小龍", "李小龍"),
        ("小龍", "李小龍", "李小龍"),
        # Japanese kana: half-width as full-width; the voicing mark stays a different letter.
        ("ガ", "ｶﾞ", "ガ"),
        ("ガ", "カ\u3099", "ガ"),
        # Korean: Hangul stays composed, whether typed composed or as jamo.
        ("김민준", "\u1100\u1175\u11b7민준", "김민준"),
        # Arabic: vowel marks and presentation forms folded away, letters kept.
        ("محمد", "مُحَمَّد", "محمد"),
        ("محمد", "ﻣﺤﻤﺪ", "محمد"),
        # Greek: tonos dropped, final sigma as sigma, upper case as lower.
        ("σωκρατης", "Σωκράτης", "σωκρατησ"),
        ("ΣΩΚΡΑΤΗΣ", "Σωκράτης", "σωκρατησ"),
        # Cyrillic: ё as е, upper case as lower; not romanised.
        ("петр", "Пётр", "петр"),
        ("ЧАЙКОВСКИЙ", "Чайковский", "чаиковскии"),
        # Hebrew: points dropped.
        ("שלום", "שָׁלוֹם", "שלום"),
    ],
)
def test_other_scripts_keep_their_letters(typed, stored, folded):
    assert fold(stored) == folded
    assert fold(typed) in fold(stored)
    assert fold(stored).isascii() is False  # not a romanisation


def test_no_search_word_can_reach_across_fields():
    # A character that is not a space never folds to one ("¨" alone is a space and an accent),
    # so a word (which has no spaces) never matches the separator between two fields.
    for char in "¨´¸˘˛\u1fbf\ufdfa":
        assert not any(c.isspace() for c in fold(f"a{char}b")), char
    assert fold("a\u00a0b") == "a b"  # a space stays a space (and splits the search words)
    row = {"first_name": "Anna", "last_name": "Müller", "email": "a@x.org", "code": "NEC-1"}
    assert search_text(row) == SEPARATOR.join(["anna", "muller", "a@x.org", "", "nec-1", ""])


def test_format_characters_fold_to_nothing():
    assert fold("Mül\u00adler") == fold("Mu\u200bller") == fold("\u200fMüller") == "muller"


def test_text_in_ascii_is_only_lower_cased():
    assert fold("NEC-AB12 O'Brien x@Example.ORG 50%_") == "nec-ab12 o'brien x@example.org 50%_"


def test_the_ascii_shortcut_is_the_rule_itself():
    """fold() only lower-cases ASCII text: that is what the rule gives each ASCII character."""
    for point in range(128):
        assert folding.fold_character(chr(point)) == chr(point).lower(), point


def test_every_character_of_the_basic_plane_folds_to_a_fixed_point_without_marks():
    for point in range(0x10000):
        char = chr(point)
        if unicodedata.category(char) == "Cs":
            continue
        folded = fold(char)
        assert fold(folded) == folded, hex(point)
        assert not any(unicodedata.combining(c) for c in folded), hex(point)


@PROPERTIES
@given(text)
def test_fold_is_idempotent(value):
    assert fold(fold(value)) == fold(value)


@PROPERTIES
@given(text)
def test_composed_and_decomposed_input_fold_alike(value):
    nfc, nfd = (unicodedata.normalize(form, value) for form in ("NFC", "NFD"))
    assert fold(nfc) == fold(nfd) == fold(value)


@PROPERTIES
@given(text)
def test_folded_text_has_no_combining_marks(value):
    assert not any(unicodedata.combining(c) for c in fold(value))


@PROPERTIES
@given(text)
def test_a_part_of_a_name_is_found_in_the_name(value):
    # What a search relies on: a word of a stored field, folded alone, is found in the fold
    # of the whole field (nothing folds differently for what stands beside it).
    words = value.split()
    if words:
        assert fold(words[0]) in fold(value)


def test_migration_0020_refolds_with_todays_rule():
    """The stored rows are refolded by the rule frozen in migration 0020. When this fails the
    rule has changed: add a migration that refolds the rows with the new one (as 0020 does)
    and point this test at it."""
    migration = load_migration("0020_refold_search_text")
    frozen = migration._fold_0020()
    samples = [chr(p) for p in range(0x3000) if unicodedata.category(chr(p)) != "Cs"]
    samples += ["Nguye\u0302\u0303n Straße", "カ\u3099", "\u1100\u1175\u11b7", "a¨b", "ｶﾞ李"]
    assert [frozen(s) for s in samples] == [fold(s) for s in samples]


def test_migration_0020_downgrades_to_the_rule_of_0004():
    migration = load_migration("0020_refold_search_text")
    old = migration._fold_0004()
    # What the code before it searched with: only U+00C0-024F and a few letters.
    assert old("Nguyễn Søren Ærø") == "nguyễn soren aro"
    assert old("Straße") == "strase"
