"""The program (issue 14): its items (plenaries, sessions, workshops with places and credits),
people's sign-ups for the items with places, and their check-ins at the items' doors; the
event's CME statement and from when certificates are given.

- ``support_requests`` (travel grants and fee waivers asked for, and decided) and
  ``events.support_budget``.
- ``attendees.credential`` (its wording of a CME certificate), ``certificates`` (given, with
  their verification codes), ``events.certificates_notified_at``.
- ``check_in_scans``: ``item_id`` (the door it was scanned at) and the outcome
  ``not_signed_up``; ``tallies``: the kind ``attended`` (people in per item). SQLite's
  constraints change in the table's stored definition, as 0012 explains.

Revision ID: 0017_program
Revises: 0016_card_payments
"""

import importlib.util
from pathlib import Path

import sqlalchemy as sa
from alembic import op

revision = "0017_program"
down_revision = "0016_card_payments"
branch_labels = None
depends_on = None


OLD_OUTCOMES = (
    "CHECK (outcome IN ('checked_in', 'already', 'unknown', 'cancelled', 'waitlisted',"
    " 'invalid'))"
)
NEW_OUTCOMES = (
    "CHECK (outcome IN ('checked_in', 'already', 'unknown', 'cancelled', 'waitlisted',"
    " 'invalid', 'not_signed_up'))"
)
OLD_KINDS = (
    "CHECK (kind IN ('status', 'day', 'role', 'country', 'institution', 'early_career',"
    " 'checked_in', 'virtual', 'answer', 'hold', 'version'))"
)
NEW_KINDS = (
    "CHECK (kind IN ('status', 'day', 'role', 'country', 'institution', 'early_career',"
    " 'checked_in', 'virtual', 'answer', 'hold', 'attended', 'version'))"
)
#: Checks this revision changes: (table, name, before, after).
CHANGED_CHECKS = [
    ("check_in_scans", "ck_check_in_scans_outcome_known", OLD_OUTCOMES, NEW_OUTCOMES),
    ("tallies", "ck_tallies_kind_known", OLD_KINDS, NEW_KINDS),
]
CREDENTIAL_CHECK = "ck_attendees_credential_known"
CREDENTIAL_KNOWN = (
    "credential = '' OR credential IN ('MD', 'DO', 'RN', 'NP', 'PA', 'PhD', 'other')"
)
SCAN_ITEM_FK = "fk_check_in_scans_item_id_program_items"
#: Where the scan's foreign key to its item goes in SQLite's definition, and the key.
SCANS_KEY = "CONSTRAINT pk_check_in_scans PRIMARY KEY (id), "
SCAN_ITEM_REFERENCES = (
    f"CONSTRAINT {SCAN_ITEM_FK} FOREIGN KEY(item_id) REFERENCES program_items (id)"
    " ON DELETE SET NULL, "
)


def _households():
    path = Path(__file__).with_name("0012_households_attendance.py")
    spec = importlib.util.spec_from_file_location("migration_0012", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _change_checks(upgrade: bool) -> None:
    """The changed checks (and, on SQLite, the scan's foreign key to its item)."""
    households = _households()
    postgres = op.get_bind().dialect.name == "postgresql"
    for table, name, before, after in CHANGED_CHECKS:
        old, new = (before, after) if upgrade else (after, before)
        if postgres:
            op.drop_constraint(op.f(name), table, type_="check")
            op.create_check_constraint(op.f(name), table, new.removeprefix("CHECK (")[:-1])
            continue
        replacements = [(households._check_sql(name, old), households._check_sql(name, new))]
        if table == "check_in_scans":
            key = (SCANS_KEY, SCANS_KEY + SCAN_ITEM_REFERENCES)
            replacements.append(key if upgrade else key[::-1])
        households._rewrite_sqlite_table(table, replacements)


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
    op.create_table(
        "program_attendance",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("attendee_id", sa.Integer(), nullable=False),
        sa.Column("checked_in_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("organizer_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["attendee_id"],
            ["attendees.id"],
            name=op.f("fk_program_attendance_attendee_id_attendees"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["program_items.id"],
            name=op.f("fk_program_attendance_item_id_program_items"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organizer_id"],
            ["organizers.id"],
            name=op.f("fk_program_attendance_organizer_id_organizers"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_program_attendance")),
    )
    op.create_index(
        "uq_program_attendance_item_attendee",
        "program_attendance",
        ["item_id", "attendee_id"],
        unique=True,
    )
    op.create_index(
        "ix_program_attendance_attendee", "program_attendance", ["attendee_id"], unique=False
    )
    op.add_column("check_in_scans", sa.Column("item_id", sa.Integer(), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        op.create_foreign_key(
            op.f(SCAN_ITEM_FK),
            "check_in_scans",
            "program_items",
            ["item_id"],
            ["id"],
            ondelete="SET NULL",
        )
    _change_checks(upgrade=True)
    op.add_column(
        "events", sa.Column("certificates_notified_at", sa.DateTime(timezone=True))
    )
    op.add_column(
        "attendees",
        sa.Column("credential", sa.String(length=16), nullable=False, server_default=""),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.create_check_constraint(op.f(CREDENTIAL_CHECK), "attendees", CREDENTIAL_KNOWN)
    else:
        households = _households()
        anchor = "CONSTRAINT pk_attendees PRIMARY KEY (id), "
        check = households._check_sql(CREDENTIAL_CHECK, f"CHECK ({CREDENTIAL_KNOWN})") + ", "
        households._rewrite_sqlite_table("attendees", [(anchor, anchor + check)])
    op.create_table(
        "certificates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("attendee_id", sa.Integer(), nullable=False),
        sa.Column("verification_code", sa.String(length=20), nullable=False),
        sa.Column("credits", sa.Integer(), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["attendee_id"],
            ["attendees.id"],
            name=op.f("fk_certificates_attendee_id_attendees"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_certificates")),
    )
    op.create_index("uq_certificates_attendee", "certificates", ["attendee_id"], unique=True)
    op.create_index("uq_certificates_code", "certificates", ["verification_code"], unique=True)
    op.add_column("events", sa.Column("support_budget", sa.Integer(), nullable=True))
    op.create_table(
        "support_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("attendee_id", sa.Integer(), nullable=False),
        sa.Column("statement", sa.Text(), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("score", sa.Integer(), nullable=True),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("award", sa.Integer(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("organizer_id", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "decision = '' OR decision IN ('award', 'waiver', 'decline')",
            name=op.f("ck_support_requests_decision_known"),
        ),
        sa.CheckConstraint("award >= 0", name=op.f("ck_support_requests_award_not_negative")),
        sa.ForeignKeyConstraint(
            ["attendee_id"],
            ["attendees.id"],
            name=op.f("fk_support_requests_attendee_id_attendees"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organizer_id"],
            ["organizers.id"],
            name=op.f("fk_support_requests_organizer_id_organizers"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_support_requests")),
    )
    op.create_index(
        "uq_support_requests_attendee", "support_requests", ["attendee_id"], unique=True
    )


def downgrade():
    op.drop_index("uq_support_requests_attendee", table_name="support_requests")
    op.drop_table("support_requests")
    op.drop_column("events", "support_budget")
    op.drop_index("uq_certificates_code", table_name="certificates")
    op.drop_index("uq_certificates_attendee", table_name="certificates")
    op.drop_table("certificates")
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint(op.f(CREDENTIAL_CHECK), "attendees", type_="check")
    else:
        households = _households()
        anchor = "CONSTRAINT pk_attendees PRIMARY KEY (id), "
        check = households._check_sql(CREDENTIAL_CHECK, f"CHECK ({CREDENTIAL_KNOWN})") + ", "
        households._rewrite_sqlite_table("attendees", [(anchor + check, anchor)])
    op.drop_column("attendees", "credential")
    op.drop_column("events", "certificates_notified_at")
    op.execute("DELETE FROM check_in_scans WHERE outcome = 'not_signed_up'")
    op.execute("DELETE FROM tallies WHERE kind = 'attended'")
    _change_checks(upgrade=False)
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint(op.f(SCAN_ITEM_FK), "check_in_scans", type_="foreignkey")
    op.drop_column("check_in_scans", "item_id")
    op.drop_index("ix_program_attendance_attendee", table_name="program_attendance")
    op.drop_index("uq_program_attendance_item_attendee", table_name="program_attendance")
    op.drop_table("program_attendance")
    op.drop_index("ix_program_signups_attendee", table_name="program_signups")
    op.drop_index("ix_program_signups_item_status", table_name="program_signups")
    op.drop_index("uq_program_signups_item_attendee", table_name="program_signups")
    op.drop_table("program_signups")
    op.drop_index("ix_program_items_event_start", table_name="program_items")
    op.drop_index("uq_program_items_event_key", table_name="program_items")
    op.drop_table("program_items")
    op.drop_column("events", "certificates_from")
    op.drop_column("events", "cme_statement")
