"""the agents and pipeline reports at scale: a customer message's sentiment stored when it is
recorded; the indexes GET /v1/agents reads carry what it reads (PostgreSQL: threads, leads,
calls), AI sends by channel, live and not; the pipeline's leads in group order

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_AI_SENT = "sender = 'ai' AND direction = 'outbound' AND sent_at IS NOT NULL"
_ACTIVITY = sa.text('coalesce(last_message_at, created_at)')
#: AI sends counted live (what costs) and not, each off its own index.
_AI_SENT_INDEXES = (
    ('ix_messages_ai_sent_live', "mode = 'live'"),
    ('ix_messages_ai_sent_other', "(mode IS NULL OR mode <> 'live')"),
)


def upgrade() -> None:
    # Older messages keep an empty score: the agents' satisfaction scores those as it reads.
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sentiment', sa.Float(), nullable=True))

    # Each index again with the columns the agents read (INCLUDE: PostgreSQL only), so the
    # window's threads, leads and calls are read off the index alone; AI sends by channel
    # first, a range per channel, live and not in two indexes (each send in one of them).
    # The thread index is an expression index: outside a batch (see 0005).
    op.drop_index('ix_threads_org_activity', table_name='threads')
    op.create_index(
        'ix_threads_org_activity',
        'threads',
        ['org_id', _ACTIVITY, 'id'],
        unique=False,
        postgresql_include=[
            'contact_id',
            'last_inbound_at',
            'last_human_at',
            'held_since',
            'last_message_at',
            'created_at',
        ],
    )
    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.drop_index('ix_leads_org_created')
        batch_op.create_index(
            'ix_leads_org_created',
            ['org_id', 'created_at'],
            unique=False,
            postgresql_include=['first_contact_at', 'contact_id', 'id'],
        )
        # The pipeline's counts over all time: one pass in group order.
        batch_op.create_index(
            'ix_leads_org_groups',
            ['org_id', 'source', 'first_contact_channel', 'stage'],
            unique=False,
            postgresql_include=['first_contact_at', 'value'],
        )
    op.drop_index('ix_calls_org_created', table_name='calls')
    op.create_index(
        'ix_calls_org_created',
        'calls',
        ['org_id', 'created_at'],
        postgresql_include=['lead_id', 'placed_at', 'outcome', 'cost'],
    )
    op.drop_index('ix_messages_ai_sent', table_name='messages')
    for name, mode in _AI_SENT_INDEXES:
        op.create_index(
            name,
            'messages',
            ['org_id', 'channel', 'created_at'],
            postgresql_where=sa.text(f'{_AI_SENT} AND {mode}'),
            sqlite_where=sa.text(f'{_AI_SENT} AND {mode}'),
        )


def downgrade() -> None:
    for name, _ in _AI_SENT_INDEXES:
        op.drop_index(name, table_name='messages')
    op.create_index(
        'ix_messages_ai_sent',
        'messages',
        ['org_id', 'created_at', 'channel', 'mode'],
        postgresql_where=sa.text(_AI_SENT),
        sqlite_where=sa.text(_AI_SENT),
    )
    op.drop_index('ix_calls_org_created', table_name='calls')
    op.create_index('ix_calls_org_created', 'calls', ['org_id', 'created_at'])
    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.drop_index('ix_leads_org_groups')
        batch_op.drop_index('ix_leads_org_created')
        batch_op.create_index('ix_leads_org_created', ['org_id', 'created_at'], unique=False)
    op.drop_index('ix_threads_org_activity', table_name='threads')
    op.create_index(
        'ix_threads_org_activity', 'threads', ['org_id', _ACTIVITY, 'id'], unique=False
    )
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_column('sentiment')
