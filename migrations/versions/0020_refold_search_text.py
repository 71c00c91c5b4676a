"""Refold the search text: every combining mark dropped, Unicode case folding, Latin in ASCII.

The search column (``attendees.search_text``, the only folded column stored) was folded by the
rule of 0004, which knew only the accented letters of U+00C0-024F: "nguyen" did not find
"Nguyễn", nor "strasse" "Straße", nor anything typed with decomposed accents. Search words are
now folded by necreg/folding.py's new rule, so every stored row is folded again by that rule,
frozen below as it was written (migrations must not change with the code; a later change of the
rule comes with a migration of its own, as this one).

Rows are read in batches of BATCH by id (memory stays the same for any number of attendees)
and only those whose text changes are written: rows in plain ASCII, most of them, are left as
they are. Only ``search_text`` is updated, which fires no counting trigger. The upgrade stays
one transaction, so an interrupted upgrade leaves the old text and the old revision, never a
half-refolded table. Downgrade refolds with 0004's rule, which the code before this revision
searches with.

Revision ID: 0020_refold_search_text
Revises: 0019_accounts_and_privacy
"""

import unicodedata
from collections.abc import Callable

import sqlalchemy as sa
from alembic import op
from anyascii import anyascii

revision = "0020_refold_search_text"
down_revision = "0019_accounts_and_privacy"
branch_labels = None
depends_on = None

FIELDS = ("first_name", "last_name", "email", "institution", "code", "badge_name")
SEPARATOR = " | "
BATCH = 2000

# --- the rule of this revision (necreg/folding.py as written with it) ---------------------------

KANA_MARKS = "\u3099\u309a"
ASCII_PUNCTUATION = frozenset({"Pd", "Pi", "Pf"})
APOSTROPHES = frozenset("\u02bc\u02bb\u02bd\u02b9")


def _step(text: str) -> str:
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


def _fold_character(char: str) -> str:
    folded = char
    for _ in range(4):
        again = _step(folded)
        if again == folded:
            break
        folded = again
    if not char.isspace():
        folded = "".join(c for c in folded if not c.isspace())
    return folded


class _Table(dict):
    def __missing__(self, point: int) -> str:
        self[point] = folded = _fold_character(chr(point))
        return folded


def _fold_0020() -> Callable[[str], str]:
    table = _Table()

    def fold(text: str) -> str:
        if text.isascii():
            return text.lower()
        folded = text.translate(table)
        if folded.isascii():
            return folded
        folded = unicodedata.normalize("NFC", folded)
        return folded.replace(KANA_MARKS[0], "").replace(KANA_MARKS[1], "")

    return fold


# --- the rule of 0004, for the downgrade --------------------------------------------------------


def _fold_0004() -> Callable[[str], str]:
    table = {}
    for point in range(0xC0, 0x250):
        char = chr(point)
        base = "".join(
            c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c)
        )
        if len(base) == 1 and base.isascii() and base.isalpha() and base != char:
            table[point] = base.lower()
    extra = {"ß": "s", "ø": "o", "Ø": "o", "æ": "a", "Æ": "a", "đ": "d", "Đ": "d", "ł": "l"}
    for char, base in (extra | {"Ł": "l", "ı": "i"}).items():
        table.setdefault(ord(char), base)
    return lambda text: text.lower().translate(table)


def refold(conn: sa.Connection, fold: Callable[[str], str]) -> int:
    """Write ``search_text`` of every attendee folded by ``fold`` where it differs; the number
    of rows written."""
    attendees = sa.table(
        "attendees", sa.column("id"), sa.column("search_text"), *map(sa.column, FIELDS)
    )
    update = (
        attendees.update()
        .where(attendees.c.id == sa.bindparam("row_id"))
        .values(search_text=sa.bindparam("text"))
    )
    last_id, written = 0, 0
    while True:
        rows = conn.execute(
            sa.select(attendees.c.id, attendees.c.search_text, *(attendees.c[f] for f in FIELDS))
            .where(attendees.c.id > last_id)
            .order_by(attendees.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            return written
        changed = []
        for row_id, stored, *values in rows:
            text = SEPARATOR.join(fold(value or "") for value in values)
            if text != stored:
                changed.append({"row_id": row_id, "text": text})
        if changed:
            conn.execute(update, changed)
            written += len(changed)
        last_id = rows[-1][0]


def upgrade():
    refold(op.get_bind(), _fold_0020())


def downgrade():
    refold(op.get_bind(), _fold_0004())
