"""Registration fees (issue 13, first step): the event's currency and prices, codes and
their uses, and the fee each registration owes.

New tables need no batch mode; the new columns have defaults every existing row takes
(registrations so far were free).

Revision ID: 0013_prices_and_codes
Revises: 0012_households_attendance
"""

import sqlalchemy as sa
from alembic import op

revision = "0013_prices_and_codes"
down_revision = "0012_households_attendance"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column(
        "events", sa.Column("currency", sa.String(length=3), nullable=False, server_default="")
    )
    op.add_column("events", sa.Column("refund_until", sa.DateTime(timezone=True), nullable=True))
    op.add_column(
        "attendees", sa.Column("amount_due", sa.Integer(), nullable=False, server_default="0")
    )
    op.add_column(
        "attendees",
        sa.Column("price_name", sa.String(length=100), nullable=False, server_default=""),
    )
    op.create_index(
        "ix_attendees_owing",
        "attendees",
        ["event_id"],
        unique=False,
        sqlite_where=sa.text("amount_due > 0"),
        postgresql_where=sa.text("amount_due > 0"),
    )
    op.create_table(
        "prices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("roles", sa.JSON(), nullable=False),
        sa.Column("early_career", sa.Boolean(), nullable=True),
        sa.Column("attendance", sa.String(length=16), nullable=True),
        sa.Column("until", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("amount >= 0", name=op.f("ck_prices_amount_not_negative")),
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.id"], name=op.f("fk_prices_event_id_events"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prices")),
    )
    op.create_table(
        "discount_codes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("percent", sa.Integer(), nullable=True),
        sa.Column("amount", sa.Integer(), nullable=True),
        sa.Column("max_uses", sa.Integer(), nullable=True),
        sa.Column("uses", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("roles", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "(percent IS NULL) <> (amount IS NULL)", name=op.f("ck_discount_codes_one_kind")
        ),
        sa.CheckConstraint(
            "percent IS NULL OR percent BETWEEN 1 AND 100",
            name=op.f("ck_discount_codes_percent_range"),
        ),
        sa.CheckConstraint(
            "amount IS NULL OR amount >= 0", name=op.f("ck_discount_codes_amount_not_negative")
        ),
        sa.CheckConstraint(
            "uses >= 0 AND (max_uses IS NULL OR uses <= max_uses)",
            name=op.f("ck_discount_codes_uses"),
        ),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["events.id"],
            name=op.f("fk_discount_codes_event_id_events"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_discount_codes")),
    )
    op.create_index(
        "uq_discount_codes_event_code", "discount_codes", ["event_id", "code"], unique=True
    )
    op.create_table(
        "code_uses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code_id", sa.Integer(), nullable=False),
        sa.Column("attendee_id", sa.Integer(), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["attendee_id"],
            ["attendees.id"],
            name=op.f("fk_code_uses_attendee_id_attendees"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["code_id"],
            ["discount_codes.id"],
            name=op.f("fk_code_uses_code_id_discount_codes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_code_uses")),
        sa.UniqueConstraint("attendee_id", name=op.f("uq_code_uses_attendee_id")),
    )
    op.create_index("ix_code_uses_code", "code_uses", ["code_id"], unique=False)


def downgrade():
    op.drop_index("ix_code_uses_code", table_name="code_uses")
    op.drop_table("code_uses")
    op.drop_index("uq_discount_codes_event_code", table_name="discount_codes")
    op.drop_table("discount_codes")
    op.drop_table("prices")
    op.drop_index("ix_attendees_owing", table_name="attendees")
    op.drop_column("attendees", "price_name")
    op.drop_column("attendees", "amount_due")
    op.drop_column("events", "refund_until")
    op.drop_column("events", "currency")
