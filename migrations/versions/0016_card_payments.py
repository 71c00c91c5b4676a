"""Card payments through Stripe (issue 13): the webhook events processed, and one payment
per PaymentIntent; codes that give a place even when full (``bypass_caps``).

Revision ID: 0016_card_payments
Revises: 0015_payment_holds
"""

import sqlalchemy as sa
from alembic import op

revision = "0016_card_payments"
down_revision = "0015_payment_holds"
branch_labels = None
depends_on = None

CARD = "method = 'card'"


def upgrade():
    op.add_column(
        "discount_codes",
        sa.Column("bypass_caps", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.create_table(
        "stripe_events",
        sa.Column("id", sa.String(length=255), nullable=False),
        sa.Column("type", sa.String(length=100), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stripe_events")),
    )
    op.create_index(
        "uq_payments_card_reference",
        "payments",
        ["reference"],
        unique=True,
        sqlite_where=sa.text(CARD),
        postgresql_where=sa.text(CARD),
    )


def downgrade():
    op.drop_column("discount_codes", "bypass_caps")
    op.drop_index("uq_payments_card_reference", table_name="payments")
    op.drop_table("stripe_events")
