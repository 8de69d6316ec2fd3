"""the pipeline over all time: the org's leads counted by source, first-touch channel, stage
and whether they were touched, with their value (lead_groups), counted here from the leads
already written

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04 23:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0015'
down_revision: str | None = '0014'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'lead_groups',
        sa.Column('org_id', sa.String(length=40), nullable=False),
        sa.Column('source', sa.String(length=100), nullable=False),
        sa.Column('channel', sa.String(length=16), nullable=False),
        sa.Column('stage', sa.String(length=16), nullable=False),
        sa.Column('touched', sa.Boolean(), nullable=False),
        sa.Column('leads', sa.BigInteger(), server_default='0', nullable=False),
        sa.Column('value_sum', sa.Float(), server_default='0', nullable=False),
        sa.Column('valued', sa.BigInteger(), server_default='0', nullable=False),
        sa.ForeignKeyConstraint(['org_id'], ['orgs.id']),
        sa.PrimaryKeyConstraint('org_id', 'source', 'channel', 'stage', 'touched'),
    )
    op.execute(
        'INSERT INTO lead_groups '
        '(org_id, source, channel, stage, touched, leads, value_sum, valued) '
        "SELECT org_id, coalesce(source, ''), coalesce(first_contact_channel, ''), stage, "
        'first_contact_at IS NOT NULL, count(*), coalesce(sum(value), 0), count(value) '
        'FROM leads GROUP BY 1, 2, 3, 4, 5'
    )


def downgrade() -> None:
    op.drop_table('lead_groups')
