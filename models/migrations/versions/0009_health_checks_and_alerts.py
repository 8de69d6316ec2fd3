"""health checks and alerts: samples, alerts, their notices, silences; the sweeper's index

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 16:47:21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        'ix_webhook_receipts_unrouted',
        'webhook_receipts',
        ['received_at'],
        postgresql_where=sa.text('routed_at IS NULL'),
        sqlite_where=sa.text('routed_at IS NULL'),
    )
    op.create_table('health_samples',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('org_id', sa.String(length=40), nullable=False),
    sa.Column('check', sa.String(length=32), nullable=False),
    sa.Column('subject', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('summary', sa.String(length=300), nullable=False),
    sa.Column('detail', sa.String(length=1000), nullable=False),
    sa.Column('value', sa.Float(), nullable=True),
    sa.Column('checked_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('health_samples', schema=None) as batch_op:
        batch_op.create_index('ix_health_samples_checked_at', ['checked_at'], unique=False)
        batch_op.create_index('ix_health_samples_latest', ['org_id', 'check', 'subject', 'checked_at'], unique=False)

    op.create_table('alerts',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('org_id', sa.String(length=40), nullable=False),
    sa.Column('workflow_id', sa.String(length=200), nullable=False),
    sa.Column('rule', sa.String(length=32), nullable=False),
    sa.Column('subject', sa.String(length=64), nullable=False),
    sa.Column('severity', sa.String(length=16), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('summary', sa.String(length=300), nullable=False),
    sa.Column('detail', sa.String(length=1000), nullable=False),
    sa.Column('code', sa.String(length=8), nullable=False),
    sa.Column('opened_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('fired_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('acknowledged_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('acknowledged_by', sa.String(length=120), nullable=True),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.create_index('ix_alerts_org_state', ['org_id', 'state', 'opened_at'], unique=False)
        batch_op.create_index('ix_alerts_workflow', ['workflow_id', 'opened_at'], unique=False)

    op.create_table('silences',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('org_id', sa.String(length=40), nullable=False),
    sa.Column('rule', sa.String(length=32), nullable=True),
    sa.Column('subject', sa.String(length=64), nullable=True),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('until', sa.DateTime(timezone=True), nullable=False),
    sa.Column('reason', sa.String(length=300), nullable=True),
    sa.Column('created_by', sa.String(length=120), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('silences', schema=None) as batch_op:
        batch_op.create_index('ix_silences_org_until', ['org_id', 'until'], unique=False)

    op.create_table('alert_notices',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('org_id', sa.String(length=40), nullable=False),
    sa.Column('alert_id', sa.String(length=40), nullable=False),
    sa.Column('step', sa.String(length=60), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('to_address', sa.String(length=320), nullable=True),
    sa.Column('message_id', sa.String(length=40), nullable=True),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['alert_id'], ['alerts.id'], ),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('alert_id', 'step', name='uq_alert_notice_step')
    )
    with op.batch_alter_table('alert_notices', schema=None) as batch_op:
        batch_op.create_index('ix_alert_notices_org_channel', ['org_id', 'channel', 'created_at'], unique=False)



def downgrade() -> None:
    op.drop_index('ix_webhook_receipts_unrouted', table_name='webhook_receipts')
    with op.batch_alter_table('alert_notices', schema=None) as batch_op:
        batch_op.drop_index('ix_alert_notices_org_channel')

    op.drop_table('alert_notices')
    with op.batch_alter_table('silences', schema=None) as batch_op:
        batch_op.drop_index('ix_silences_org_until')

    op.drop_table('silences')
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_index('ix_alerts_workflow')
        batch_op.drop_index('ix_alerts_org_state')

    op.drop_table('alerts')
    with op.batch_alter_table('health_samples', schema=None) as batch_op:
        batch_op.drop_index('ix_health_samples_latest')
        batch_op.drop_index('ix_health_samples_checked_at')

    op.drop_table('health_samples')
