"""bookings: a lead's visits (when, who, where they stand), and each booking's own timeline

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-05 02:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0017'
down_revision: str | None = '0016'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'bookings',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('org_id', sa.String(length=40), nullable=False),
        sa.Column('lead_id', sa.String(length=40), nullable=False),
        sa.Column('contact_id', sa.String(length=40), nullable=False),
        sa.Column('receipt_id', sa.String(length=40), nullable=False),
        sa.Column('workflow_id', sa.String(length=200), nullable=False),
        sa.Column('provider_id', sa.String(length=40), nullable=True),
        sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('ends_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('service', sa.String(length=200), nullable=True),
        sa.Column('address', sa.String(length=500), nullable=True),
        sa.Column('note', sa.Text(), nullable=True),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('reminders', sa.JSON(), nullable=False),
        sa.Column('confirmed_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('on_my_way_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('arrived_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('no_show_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('cancelled_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('cancel_reason', sa.String(length=500), nullable=True),
        sa.Column('reschedule_requested_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('rating_requested_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('rating', sa.Integer(), nullable=True),
        sa.Column('rated_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('complained', sa.Boolean(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['org_id'], ['orgs.id']),
        sa.ForeignKeyConstraint(['lead_id'], ['leads.id']),
        sa.ForeignKeyConstraint(['contact_id'], ['contacts.id']),
        sa.ForeignKeyConstraint(['provider_id'], ['providers.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('receipt_id'),
    )
    op.create_index('ix_bookings_org_starts', 'bookings', ['org_id', 'starts_at'])
    op.create_index('ix_bookings_provider_starts', 'bookings', ['provider_id', 'starts_at'])
    op.create_index('ix_bookings_contact', 'bookings', ['contact_id', 'starts_at'])
    with op.batch_alter_table('timeline_events') as batch:
        batch.add_column(sa.Column('booking_id', sa.String(length=40), nullable=True))
    op.create_index(
        'ix_timeline_booking_at',
        'timeline_events',
        ['booking_id', 'at'],
        postgresql_where=sa.text('booking_id IS NOT NULL'),
        sqlite_where=sa.text('booking_id IS NOT NULL'),
    )


def downgrade() -> None:
    op.drop_index('ix_timeline_booking_at', table_name='timeline_events')
    with op.batch_alter_table('timeline_events') as batch:
        batch.drop_column('booking_id')
    op.drop_table('bookings')
