"""the agents' figures at scale: each lead's first call, reply and takeover stamped on it, and
running totals per org and UTC day (agent_days), derived here from the rows already written

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04 23:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0014'
down_revision: str | None = '0013'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ON_THREAD = (
    'SELECT min(m.created_at) FROM messages m JOIN threads t ON t.id = m.thread_id '
    'WHERE t.contact_id = leads.contact_id AND {}'
)
#: (metric, condition) of the leads' totals, counted on the day each lead came in.
_LEAD_TOTALS = (
    ('leads:touched', 'first_contact_at IS NOT NULL'),
    ('leads:touched:replied', 'first_contact_at IS NOT NULL AND replied_at IS NOT NULL'),
    ('leads:touched:taken_over', 'first_contact_at IS NOT NULL AND taken_over_at IS NOT NULL'),
    ('leads:called', 'first_call_at IS NOT NULL'),
    ('leads:called:taken_over', 'first_call_at IS NOT NULL AND taken_over_at IS NOT NULL'),
)


def upgrade() -> None:
    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.add_column(sa.Column('first_call_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('replied_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('taken_over_at', sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        'agent_days',
        sa.Column('org_id', sa.String(length=40), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('metric', sa.String(length=40), nullable=False),
        sa.Column('count', sa.BigInteger(), server_default='0', nullable=False),
        sa.Column('amount', sa.Float(), server_default='0', nullable=False),
        sa.ForeignKeyConstraint(['org_id'], ['orgs.id']),
        sa.PrimaryKeyConstraint('org_id', 'day', 'metric'),
    )

    # The facts of the leads written so far, from their calls and their contact's thread.
    op.execute(
        'UPDATE leads SET '
        'first_call_at = (SELECT min(c.placed_at) FROM calls c '
        'WHERE c.lead_id = leads.id AND c.placed_at IS NOT NULL), '
        'replied_at = ('
        + _ON_THREAD.format("m.direction = 'inbound' AND m.created_at > leads.first_contact_at")
        + '), taken_over_at = ('
        + _ON_THREAD.format("m.sender = 'human' AND m.created_at >= leads.created_at")
        + ')'
    )
    op.execute(
        'UPDATE leads SET taken_over_at = '
        '(SELECT t.held_since FROM threads t WHERE t.contact_id = leads.contact_id) '
        'WHERE EXISTS (SELECT 1 FROM threads t WHERE t.contact_id = leads.contact_id '
        'AND t.held_since >= leads.created_at '
        'AND (leads.taken_over_at IS NULL OR t.held_since < leads.taken_over_at))'
    )

    postgres = op.get_bind().dialect.name == 'postgresql'

    def day(column: str) -> str:
        return f"CAST(({column} AT TIME ZONE 'UTC') AS date)" if postgres else f'substr({column}, 1, 10)'

    insert = 'INSERT INTO agent_days (org_id, day, metric, count, amount) '
    op.execute(
        insert
        + f"SELECT org_id, {day('created_at')}, 'sent:' || channel || ':' || "
        "CASE WHEN mode = 'live' THEN 'live' ELSE 'other' END, count(*), 0 FROM messages "
        "WHERE sender = 'ai' AND direction = 'outbound' AND sent_at IS NOT NULL "
        'GROUP BY 1, 2, 3'
    )
    for metric, value, condition in (
        ('calls:ended', 'count(*)', 'outcome IS NOT NULL'),
        ('calls:answered', 'count(*)', "outcome = 'answered'"),
        ('calls:costed', 'count(*)', 'cost IS NOT NULL'),
        ('calls:cost', 'sum(cost)', 'cost IS NOT NULL'),
    ):
        counted = ('0', value) if metric == 'calls:cost' else (value, '0')
        op.execute(
            insert
            + f"SELECT org_id, {day('created_at')}, '{metric}', {counted[0]}, {counted[1]} "
            f'FROM calls WHERE {condition} GROUP BY 1, 2'
        )
    for metric, condition in _LEAD_TOTALS:
        op.execute(
            insert
            + f"SELECT org_id, {day('created_at')}, '{metric}', count(*), 0 "
            f'FROM leads WHERE {condition} GROUP BY 1, 2'
        )

    # A window's leads with the facts the agents count; the waits to the first call in order.
    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.drop_index('ix_leads_org_created')
        batch_op.create_index(
            'ix_leads_org_created',
            ['org_id', 'created_at'],
            unique=False,
            postgresql_include=['first_contact_at', 'first_call_at', 'replied_at', 'taken_over_at'],
        )
    op.create_index(
        'ix_leads_call_wait',
        'leads',
        ['org_id', sa.text('(first_call_at - created_at)')],
        unique=False,
        postgresql_include=['created_at', 'first_call_at'],
        postgresql_where=sa.text('first_call_at IS NOT NULL'),
        sqlite_where=sa.false(),
    )


def downgrade() -> None:
    op.drop_index('ix_leads_call_wait', table_name='leads')
    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.drop_index('ix_leads_org_created')
        batch_op.create_index(
            'ix_leads_org_created',
            ['org_id', 'created_at'],
            unique=False,
            postgresql_include=['first_contact_at', 'contact_id', 'id'],
        )
    op.drop_table('agent_days')
    # Not in a batch: on SQLite that copies the table and loses its expression indexes.
    for column in ('taken_over_at', 'replied_at', 'first_call_at'):
        op.execute(f'ALTER TABLE leads DROP COLUMN {column}')
