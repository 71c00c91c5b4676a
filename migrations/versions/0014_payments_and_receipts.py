"""Payments received and their receipts, numbered without gaps per event (issue 13).

Revision ID: 0014_payments_and_receipts
Revises: 0013_prices_and_codes
"""

import sqlalchemy as sa
from alembic import op

revision = "0014_payments_and_receipts"
down_revision = "0013_prices_and_codes"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "payments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("attendee_id", sa.Integer(), nullable=False),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("reference", sa.String(length=200), nullable=False),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("receipt_number", sa.Integer(), nullable=False),
        sa.Column("organizer_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("refunded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("refund_reference", sa.String(length=200), nullable=False),
        sa.CheckConstraint("amount > 0", name=op.f("ck_payments_amount_positive")),
        sa.CheckConstraint("method IN ('offline', 'card')", name=op.f("ck_payments_method_known")),
        sa.ForeignKeyConstraint(
            ["attendee_id"],
            ["attendees.id"],
            name=op.f("fk_payments_attendee_id_attendees"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.id"], name=op.f("fk_payments_event_id_events"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["organizer_id"],
            ["organizers.id"],
            name=op.f("fk_payments_organizer_id_organizers"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payments")),
    )
    op.create_index("ix_payments_attendee", "payments", ["attendee_id", "paid_at"], unique=False)
    op.create_index(
        "uq_payments_event_receipt", "payments", ["event_id", "receipt_number"], unique=True
    )
    op.create_table(
        "receipt_counters",
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("last_number", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["events.id"],
            name=op.f("fk_receipt_counters_event_id_events"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_receipt_counters")),
    )


def downgrade():
    op.drop_table("receipt_counters")
    op.drop_index("uq_payments_event_receipt", table_name="payments")
    op.drop_index("ix_payments_attendee", table_name="payments")
    op.drop_table("payments")
