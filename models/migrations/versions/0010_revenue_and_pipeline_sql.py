"""revenue and the pipeline in SQL: payments' time, refunds and links; subscriptions; the
indexes the reports read

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_WAIT_INDEXES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ('ix_leads_wait', ()),
    ('ix_leads_wait_source', ('source',)),
    ('ix_leads_wait_channel', ('first_contact_channel',)),
)


def upgrade() -> None:
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('contact_id', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('source', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('amount_refunded', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('payment_intent', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('subscription', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('invoice', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=True))
    # Rows from before: the time they reached keepwarm is the best there is.
    op.execute('UPDATE payments SET occurred_at = created_at')
    op.execute(
        'UPDATE payments SET contact_id = '
        '(SELECT leads.contact_id FROM leads WHERE leads.id = payments.lead_id)'
    )
    op.execute(
        'UPDATE payments SET source = (SELECT f.source FROM leads f '
        'WHERE f.contact_id = payments.contact_id ORDER BY f.created_at, f.id '
        'LIMIT 1)'
    )
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.alter_column(
            'occurred_at', existing_type=sa.DateTime(timezone=True), nullable=False
        )
        batch_op.create_index('ix_payments_org_occurred', ['org_id', 'occurred_at'], unique=False)
        batch_op.create_index('ix_payments_org_intent', ['org_id', 'payment_intent'], unique=False)

    op.create_table('subscriptions',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('org_id', sa.String(length=40), nullable=False),
    sa.Column('lead_id', sa.String(length=40), nullable=True),
    sa.Column('stripe_subscription_id', sa.String(length=100), nullable=False),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('currency', sa.String(length=8), nullable=True),
    sa.Column('amount', sa.Integer(), nullable=True),
    sa.Column('interval', sa.String(length=8), nullable=True),
    sa.Column('interval_count', sa.Integer(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('event_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['lead_id'], ['leads.id'], ),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('org_id', 'stripe_subscription_id', name='uq_subscription_org_stripe')
    )
    with op.batch_alter_table('subscriptions', schema=None) as batch_op:
        batch_op.create_index('ix_subscriptions_org_started', ['org_id', 'started_at'], unique=False)

    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('first_contact_channel', sa.String(length=16), nullable=True)
        )
    # The first touch's channel, from the message whose send stamped first_contact_at.
    op.execute(
        "UPDATE leads SET first_contact_channel = ("
        "SELECT m.channel FROM messages m WHERE m.lead_id = leads.id AND m.sender = 'ai' "
        "AND m.sent_at = leads.first_contact_at ORDER BY m.id LIMIT 1"
        ") WHERE first_contact_at IS NOT NULL"
    )
    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.create_index(
            'ix_leads_org_report',
            [
                'org_id',
                'created_at',
                'source',
                'stage',
                'value',
                'first_contact_at',
                'first_contact_channel',
            ],
            unique=False,
        )
        batch_op.create_index(
            'ix_leads_contact_first', ['contact_id', 'created_at', 'id', 'source'], unique=False
        )
    # Speed to lead on PostgreSQL reads the k-th wait off these; SQLite keeps them empty.
    for name, columns in _WAIT_INDEXES:
        op.create_index(
            name,
            'leads',
            ['org_id', *columns, sa.text('(first_contact_at - created_at)')],
            unique=False,
            postgresql_include=['created_at', 'first_contact_at'],
            postgresql_where=sa.text('first_contact_at IS NOT NULL'),
            sqlite_where=sa.false(),
        )


    # The agents' windows (GET /v1/agents) and call statistics.
    op.create_index('ix_calls_org_created', 'calls', ['org_id', 'created_at'])
    op.create_index(
        'ix_messages_ai_sent',
        'messages',
        ['org_id', 'created_at', 'channel', 'mode'],
        postgresql_where=sa.text(
            "sender = 'ai' AND direction = 'outbound' AND sent_at IS NOT NULL"
        ),
        sqlite_where=sa.text("sender = 'ai' AND direction = 'outbound' AND sent_at IS NOT NULL"),
    )
    op.create_index(
        'ix_messages_failed',
        'messages',
        ['org_id', 'created_at'],
        postgresql_where=sa.text("status = 'failed'"),
        sqlite_where=sa.text("status = 'failed'"),
    )


def downgrade() -> None:
    op.drop_index('ix_messages_failed', table_name='messages')
    op.drop_index('ix_messages_ai_sent', table_name='messages')
    op.drop_index('ix_calls_org_created', table_name='calls')
    for name, _ in _WAIT_INDEXES:
        op.drop_index(name, table_name='leads')
    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.drop_index('ix_leads_contact_first')
        batch_op.drop_index('ix_leads_org_report')
        batch_op.drop_column('first_contact_channel')

    with op.batch_alter_table('subscriptions', schema=None) as batch_op:
        batch_op.drop_index('ix_subscriptions_org_started')

    op.drop_table('subscriptions')
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.drop_index('ix_payments_org_intent')
        batch_op.drop_index('ix_payments_org_occurred')
        batch_op.drop_column('occurred_at')
        batch_op.drop_column('invoice')
        batch_op.drop_column('subscription')
        batch_op.drop_column('payment_intent')
        batch_op.drop_column('amount_refunded')
        batch_op.drop_column('source')
        batch_op.drop_column('contact_id')
