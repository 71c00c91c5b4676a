"""Events and attendees: the first schema.

Hand-checked: timestamps are timezone-aware, and the case-insensitive unique e-mail
index (which autogenerate cannot compare on SQLite) is written out below.

Revision ID: 0001
Revises: 
Create Date: 2026-11-24 21:06:38.256778

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('slug', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('tagline', sa.String(length=300), nullable=False),
    sa.Column('starts_on', sa.Date(), nullable=False),
    sa.Column('ends_on', sa.Date(), nullable=False),
    sa.Column('venue', sa.String(length=200), nullable=False),
    sa.Column('hosts', sa.JSON(), nullable=False),
    sa.Column('is_current', sa.Boolean(), nullable=False),
    sa.Column('sessions', sa.Integer(), nullable=False),
    sa.Column('faculty', sa.Integer(), nullable=False),
    sa.Column('capacity', sa.Integer(), nullable=True),
    sa.Column('capacity_by_role', sa.JSON(), nullable=False),
    sa.Column('registration_opens_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('registration_closes_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('testimonials', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('capacity IS NULL OR capacity >= 0', name=op.f('ck_events_capacity_not_negative')),
    sa.CheckConstraint('ends_on >= starts_on', name=op.f('ck_events_dates_in_order')),
    sa.CheckConstraint('length(slug) BETWEEN 1 AND 64', name=op.f('ck_events_slug_length')),
    sa.CheckConstraint('sessions >= 0 AND faculty >= 0', name=op.f('ck_events_counters_not_negative')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_events')),
    sa.UniqueConstraint('slug', name=op.f('uq_events_slug'))
    )
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.create_index('uq_events_one_current', ['is_current'], unique=True, sqlite_where=sa.text('is_current'), postgresql_where=sa.text('is_current'))

    op.create_table('attendees',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('event_id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=20), nullable=False),
    sa.Column('token', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('first_name', sa.String(length=100), nullable=False),
    sa.Column('last_name', sa.String(length=100), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('institution', sa.String(length=200), nullable=False),
    sa.Column('country', sa.String(length=2), nullable=False),
    sa.Column('early_career', sa.Boolean(), nullable=False),
    sa.Column('badge_name', sa.String(length=100), nullable=False),
    sa.Column('consent_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('cancelled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('checked_in_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("role IN ('clinician', 'scientist', 'family', 'advocate')", name=op.f('ck_attendees_role_known')),
    sa.CheckConstraint("status IN ('confirmed', 'waitlisted', 'cancelled')", name=op.f('ck_attendees_status_known')),
    sa.CheckConstraint('length(badge_name) BETWEEN 1 AND 100', name=op.f('ck_attendees_badge_name_length')),
    sa.CheckConstraint('length(country) = 2', name=op.f('ck_attendees_country_length')),
    sa.CheckConstraint('length(email) BETWEEN 3 AND 254', name=op.f('ck_attendees_email_length')),
    sa.CheckConstraint('length(institution) <= 200', name=op.f('ck_attendees_institution_length')),
    sa.CheckConstraint('length(trim(first_name)) BETWEEN 1 AND 100', name=op.f('ck_attendees_first_name_length')),
    sa.CheckConstraint('length(trim(last_name)) BETWEEN 1 AND 100', name=op.f('ck_attendees_last_name_length')),
    sa.ForeignKeyConstraint(['event_id'], ['events.id'], name=op.f('fk_attendees_event_id_events'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_attendees')),
    sa.UniqueConstraint('code', name=op.f('uq_attendees_code')),
    sa.UniqueConstraint('token', name=op.f('uq_attendees_token'))
    )
    with op.batch_alter_table('attendees', schema=None) as batch_op:
        batch_op.create_index('ix_attendees_event_created', ['event_id', 'created_at'], unique=False)
        batch_op.create_index('ix_attendees_event_status_role', ['event_id', 'status', 'role'], unique=False)
    # One registration per e-mail per event, in any letter case, unless it was cancelled.
    op.create_index(
        'uq_attendees_event_email_active',
        'attendees',
        ['event_id', sa.text('lower(email)')],
        unique=True,
        sqlite_where=sa.text("status <> 'cancelled'"),
        postgresql_where=sa.text("status <> 'cancelled'"),
    )



def downgrade():
    op.drop_index('uq_attendees_event_email_active', table_name='attendees')
    with op.batch_alter_table('attendees', schema=None) as batch_op:
        batch_op.drop_index('ix_attendees_event_status_role')
        batch_op.drop_index('ix_attendees_event_created')

    op.drop_table('attendees')
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index('uq_events_one_current', sqlite_where=sa.text('is_current'), postgresql_where=sa.text('is_current'))

    op.drop_table('events')
