"""Between editions (issue 15): the event's time zone and highlights video; the interest list
(double opt-in, one notice per edition); organizers' messages to attendees (the log, each
e-mail's link to it, header fields such as List-Unsubscribe, and the addresses that opted
out); webhook deliveries; API tokens.

Revision ID: 0018_editions_messages_api
Revises: 0017_program
"""

import importlib.util
from pathlib import Path

import sqlalchemy as sa
from alembic import op

revision = "0018_editions_messages_api"
down_revision = "0017_program"
branch_labels = None
depends_on = None

OUTBOX_MESSAGE_FK = "fk_outbox_messages_message_id_organizer_messages"
#: Where the reference goes in SQLite's stored definition of the outbox, and the reference.
OUTBOX_KEY = "CONSTRAINT pk_outbox_messages PRIMARY KEY (id), "
OUTBOX_REFERENCE = (
    f"CONSTRAINT {OUTBOX_MESSAGE_FK} FOREIGN KEY(message_id) REFERENCES organizer_messages (id)"
    " ON DELETE SET NULL, "
)


def _message_reference(add: bool) -> None:
    """The outbox's reference to the organizers' message: PostgreSQL alters the table,
    SQLite's stored definition changes (as 0012 explains; the rows stay as they are)."""
    if op.get_bind().dialect.name == "postgresql":
        if add:
            op.create_foreign_key(
                OUTBOX_MESSAGE_FK,
                "outbox_messages",
                "organizer_messages",
                ["message_id"],
                ["id"],
                ondelete="SET NULL",
            )
        else:
            op.drop_constraint(OUTBOX_MESSAGE_FK, "outbox_messages", type_="foreignkey")
        return
    path = Path(__file__).with_name("0012_households_attendance.py")
    spec = importlib.util.spec_from_file_location("migration_0012", path)
    households = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(households)
    change = (OUTBOX_KEY, OUTBOX_KEY + OUTBOX_REFERENCE)
    households._rewrite_sqlite_table("outbox_messages", [change if add else change[::-1]])


def upgrade():
    op.add_column(
        "events", sa.Column("timezone", sa.String(length=64), nullable=False, server_default="UTC")
    )
    op.add_column(
        "events",
        sa.Column("highlights_url", sa.String(length=500), nullable=False, server_default=""),
    )
    op.create_table(
        "organizer_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("recipients_filter", sa.JSON(), nullable=False),
        sa.Column("recipients", sa.Integer(), nullable=False),
        sa.Column("unsubscribed", sa.Integer(), nullable=False),
        sa.Column("organizer_id", sa.Integer(), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["events.id"],
            name=op.f("fk_organizer_messages_event_id_events"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organizer_id"],
            ["organizers.id"],
            name=op.f("fk_organizer_messages_organizer_id_organizers"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organizer_messages")),
    )
    op.create_index(
        op.f("ix_organizer_messages_event_id"), "organizer_messages", ["event_id"], unique=False
    )
    op.add_column("outbox_messages", sa.Column("message_id", sa.Integer(), nullable=True))
    _message_reference(add=True)
    op.add_column(
        "outbox_messages",
        sa.Column("headers", sa.JSON(), nullable=False, server_default=sa.text("'{}'")),
    )
    op.create_index(
        op.f("ix_outbox_messages_message_id"), "outbox_messages", ["message_id"], unique=False
    )
    op.create_table(
        "mail_opt_outs",
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("email", name=op.f("pk_mail_opt_outs")),
    )
    op.create_table(
        "interest_signups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("consent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("consent_version", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("unsubscribed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "length(email) BETWEEN 3 AND 254", name=op.f("ck_interest_signups_email_length")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_interest_signups")),
    )
    op.create_index(
        "uq_interest_signups_email",
        "interest_signups",
        [sa.text("lower(email)")],
        unique=True,
    )
    op.create_index("uq_interest_signups_token", "interest_signups", ["token"], unique=True)
    op.create_table(
        "interest_notices",
        sa.Column("signup_id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["events.id"],
            name=op.f("fk_interest_notices_event_id_events"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["signup_id"],
            ["interest_signups.id"],
            name=op.f("fk_interest_notices_signup_id_interest_signups"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("signup_id", "event_id", name=op.f("pk_interest_notices")),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(length=500), nullable=False),
        sa.Column("event_type", sa.String(length=64), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.CheckConstraint(
            "status IN ('pending', 'sent', 'failed')",
            name=op.f("ck_webhook_deliveries_status_known"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
    )
    op.create_index(
        "ix_webhook_deliveries_due",
        "webhook_deliveries",
        ["status", "next_attempt_at"],
        unique=False,
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "length(name) BETWEEN 1 AND 100", name=op.f("ck_api_tokens_name_length")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
    )
    op.create_index("uq_api_tokens_hash", "api_tokens", ["token_hash"], unique=True)
    op.create_index("uq_api_tokens_name", "api_tokens", ["name"], unique=True)


def downgrade():
    op.drop_table("api_tokens")
    op.drop_table("webhook_deliveries")
    op.drop_table("interest_notices")
    op.drop_table("interest_signups")
    op.drop_table("mail_opt_outs")
    op.drop_index(op.f("ix_outbox_messages_message_id"), table_name="outbox_messages")
    _message_reference(add=False)
    op.drop_column("outbox_messages", "headers")
    op.drop_column("outbox_messages", "message_id")
    op.drop_table("organizer_messages")
    op.drop_column("events", "highlights_url")
    op.drop_column("events", "timezone")
