"""Organizers, the audit trail of attendee changes, and the mail outbox.

Hand-checked: timezone-aware timestamps; the case-insensitive unique index on organizer
e-mails is written out (autogenerate cannot compare expression indexes on SQLite).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 21:08:59.754756

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('organizers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('last_login_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("role IN ('admin', 'staff')", name=op.f('ck_organizers_role_known')),
    sa.CheckConstraint('length(email) BETWEEN 3 AND 254', name=op.f('ck_organizers_email_length')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_organizers'))
    )
    op.create_index('uq_organizers_email', 'organizers', [sa.text('lower(email)')], unique=True)
    op.create_table('attendee_changes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('attendee_id', sa.Integer(), nullable=False),
    sa.Column('organizer_id', sa.Integer(), nullable=True),
    sa.Column('changed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('changes', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['attendee_id'], ['attendees.id'], name=op.f('fk_attendee_changes_attendee_id_attendees'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['organizer_id'], ['organizers.id'], name=op.f('fk_attendee_changes_organizer_id_organizers'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_attendee_changes'))
    )
    with op.batch_alter_table('attendee_changes', schema=None) as batch_op:
        batch_op.create_index('ix_attendee_changes_attendee', ['attendee_id', 'changed_at'], unique=False)

    op.create_table('outbox_messages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('attendee_id', sa.Integer(), nullable=True),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('to_address', sa.String(length=254), nullable=False),
    sa.Column('subject', sa.String(length=300), nullable=False),
    sa.Column('text_body', sa.Text(), nullable=False),
    sa.Column('html_body', sa.Text(), nullable=False),
    sa.Column('attachments', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('claimed_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=False),
    sa.CheckConstraint("status IN ('pending', 'sent', 'failed')", name=op.f('ck_outbox_messages_status_known')),
    sa.ForeignKeyConstraint(['attendee_id'], ['attendees.id'], name=op.f('fk_outbox_messages_attendee_id_attendees'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox_messages'))
    )
    with op.batch_alter_table('outbox_messages', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_messages_due', ['status', 'next_attempt_at'], unique=False)



def downgrade():
    with op.batch_alter_table('outbox_messages', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_messages_due')

    op.drop_table('outbox_messages')
    with op.batch_alter_table('attendee_changes', schema=None) as batch_op:
        batch_op.drop_index('ix_attendee_changes_attendee')

    op.drop_table('attendee_changes')
    op.drop_index('uq_organizers_email', table_name='organizers')
    op.drop_table('organizers')
