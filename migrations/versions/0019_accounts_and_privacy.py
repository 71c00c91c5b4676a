"""Accounts and privacy (issue 16): organizers' server-side sessions, TOTP and recovery codes,
failed sign-ins (for growing delays), the audit table, and when an attendee's data was erased.

Revision ID: 0019_accounts_and_privacy
Revises: 0018_editions_messages_api
"""

import sqlalchemy as sa
from alembic import op

revision = "0019_accounts_and_privacy"
down_revision = "0018_editions_messages_api"
branch_labels = None
depends_on = None


def _organizer_reference(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["organizer_id"],
        ["organizers.id"],
        name=op.f(f"fk_{table}_organizer_id_organizers"),
        ondelete="CASCADE",
    )


def upgrade():
    for name in ("password_changed_at", "totp_enabled_at"):
        op.add_column("organizers", sa.Column(name, sa.DateTime(timezone=True), nullable=True))
    op.add_column("organizers", sa.Column("totp_secret", sa.String(length=64), nullable=True))
    op.add_column("organizers", sa.Column("totp_last_step", sa.Integer(), nullable=True))
    op.add_column("attendees", sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "organizer_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organizer_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("user_agent", sa.String(length=300), nullable=False),
        _organizer_reference("organizer_sessions"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organizer_sessions")),
    )
    op.create_index(
        "uq_organizer_sessions_token", "organizer_sessions", ["token_hash"], unique=True
    )
    op.create_index(
        "ix_organizer_sessions_organizer",
        "organizer_sessions",
        ["organizer_id", "revoked_at"],
        unique=False,
    )
    op.create_table(
        "recovery_codes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organizer_id", sa.Integer(), nullable=False),
        sa.Column("code_hash", sa.String(length=255), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        _organizer_reference("recovery_codes"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recovery_codes")),
    )
    op.create_index("ix_recovery_codes_organizer", "recovery_codes", ["organizer_id"], unique=False)
    op.create_table(
        "login_failures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_failures")),
    )
    op.create_index(
        "ix_login_failures_account",
        "login_failures",
        ["email", "address", "failed_at"],
        unique=False,
    )
    op.create_index(
        "ix_login_failures_address", "login_failures", ["address", "failed_at"], unique=False
    )
    op.create_table(
        "audit_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organizer_id", sa.Integer(), nullable=True),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=200), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organizer_id"],
            ["organizers.id"],
            name=op.f("fk_audit_entries_organizer_id_organizers"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_entries")),
    )
    op.create_index("ix_audit_entries_at", "audit_entries", ["created_at"], unique=False)


def downgrade():
    op.drop_table("audit_entries")
    op.drop_table("login_failures")
    op.drop_table("recovery_codes")
    op.drop_table("organizer_sessions")
    op.drop_column("attendees", "erased_at")
    for name in ("totp_last_step", "totp_secret", "totp_enabled_at", "password_changed_at"):
        op.drop_column("organizers", name)
