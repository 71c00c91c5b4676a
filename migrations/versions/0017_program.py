"""The program (issue 14): its items (plenaries, sessions, workshops with places and credits)
and people's sign-ups for the items with places; the event's CME statement and from when
certificates are given.

Revision ID: 0017_program
Revises: 0016_card_payments
"""

import sqlalchemy as sa
from alembic import op

revision = "0017_program"
down_revision = "0016_card_payments"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column(
        "events", sa.Column("cme_statement", sa.Text(), nullable=False, server_default="")
    )
    op.add_column("events", sa.Column("certificates_from", sa.DateTime(timezone=True)))
    op.create_table(
        "program_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=40), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("room", sa.String(length=100), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=True),
        sa.Column("credits", sa.Integer(), nullable=False),
        sa.Column("speakers", sa.JSON(), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "kind IN ('plenary', 'session', 'workshop')", name=op.f("ck_program_items_kind_known")
        ),
        sa.CheckConstraint("ends_at > starts_at", name=op.f("ck_program_items_ends_after_start")),
        sa.CheckConstraint(
            "capacity IS NULL OR capacity >= 1", name=op.f("ck_program_items_capacity_positive")
        ),
        sa.CheckConstraint("credits >= 0", name=op.f("ck_program_items_credits_not_negative")),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["events.id"],
            name=op.f("fk_program_items_event_id_events"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_program_items")),
    )
    op.create_index(
        "uq_program_items_event_key", "program_items", ["event_id", "key"], unique=True
    )
    op.create_index(
        "ix_program_items_event_start", "program_items", ["event_id", "starts_at"], unique=False
    )
    op.create_table(
        "program_signups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("attendee_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('confirmed', 'waitlisted', 'cancelled')",
            name=op.f("ck_program_signups_status_known"),
        ),
        sa.ForeignKeyConstraint(
            ["attendee_id"],
            ["attendees.id"],
            name=op.f("fk_program_signups_attendee_id_attendees"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["program_items.id"],
            name=op.f("fk_program_signups_item_id_program_items"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_program_signups")),
    )
    op.create_index(
        "uq_program_signups_item_attendee",
        "program_signups",
        ["item_id", "attendee_id"],
        unique=True,
    )
    op.create_index(
        "ix_program_signups_item_status",
        "program_signups",
        ["item_id", "status", "created_at"],
        unique=False,
    )
    op.create_index(
        "ix_program_signups_attendee", "program_signups", ["attendee_id"], unique=False
    )


def downgrade():
    op.drop_index("ix_program_signups_attendee", table_name="program_signups")
    op.drop_index("ix_program_signups_item_status", table_name="program_signups")
    op.drop_index("uq_program_signups_item_attendee", table_name="program_signups")
    op.drop_table("program_signups")
    op.drop_index("ix_program_items_event_start", table_name="program_items")
    op.drop_index("uq_program_items_event_key", table_name="program_items")
    op.drop_table("program_items")
    op.drop_column("events", "certificates_from")
    op.drop_column("events", "cme_statement")
