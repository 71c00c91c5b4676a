"""Search text: a registration's searchable fields folded (lower case, no accents) in one column.

Searching compared every field of every row through a folding function (SQLite) or an
accent-aware regular expression (PostgreSQL); one folded column compared with LIKE is the
same on both databases and much cheaper. Existing rows are filled in here, in batches, with the
folding of this revision (frozen below, as migrations must not change with the code).

Revision ID: 0004_search_text
Revises: 0003_counters
"""

import unicodedata

import sqlalchemy as sa
from alembic import op

revision = "0004_search_text"
down_revision = "0003_counters"
branch_labels = None
depends_on = None

FIELDS = ("first_name", "last_name", "email", "institution", "code", "badge_name")
EXTRA = {"ß": "s", "ø": "o", "Ø": "o", "æ": "a", "Æ": "a", "đ": "d", "Đ": "d", "ł": "l"}
EXTRA |= {"Ł": "l", "ı": "i"}


def _translation() -> dict[int, str]:
    table = {}
    for point in range(0xC0, 0x250):
        char = chr(point)
        base = "".join(
            c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c)
        )
        if len(base) == 1 and base.isascii() and base.isalpha() and base != char:
            table[point] = base.lower()
    for char, base in EXTRA.items():
        table.setdefault(ord(char), base)
    return table


def upgrade():
    # Plain ALTER TABLE (SQLite >= 3.35 has ADD and DROP COLUMN): batch mode would rebuild the
    # table and lose its triggers and expression index.
    op.add_column("attendees", sa.Column("search_text", sa.Text(), nullable=False, server_default=""))
    attendees = sa.table("attendees", sa.column("id"), sa.column("search_text"), *map(sa.column, FIELDS))
    conn = op.get_bind()
    translation = _translation()
    last_id = 0
    while True:
        rows = conn.execute(
            sa.select(attendees.c.id, *(attendees.c[f] for f in FIELDS))
            .where(attendees.c.id > last_id)
            .order_by(attendees.c.id)
            .limit(2000)
        ).all()
        if not rows:
            break
        conn.execute(
            attendees.update()
            .where(attendees.c.id == sa.bindparam("row_id"))
            .values(search_text=sa.bindparam("text")),
            [
                {
                    "row_id": row[0],
                    "text": " | ".join((v or "").lower().translate(translation) for v in row[1:]),
                }
                for row in rows
            ],
        )
        last_id = rows[-1][0]


def downgrade():
    op.drop_column("attendees", "search_text")
