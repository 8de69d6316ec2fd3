"""sender_paces and paced_sends: each sender's next free slot, and the sends waiting for
it (per-sender pacing, hottest lead first)

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-05 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0022'
down_revision: str | None = '0021'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'sender_paces',
        sa.Column('sender', sa.String(length=340), nullable=False),
        sa.Column('next_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('gap_s', sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint('sender'),
    )
    op.create_table(
        'paced_sends',
        sa.Column('key', sa.String(length=300), nullable=False),
        sa.Column('sender', sa.String(length=340), nullable=False),
        sa.Column('org_id', sa.String(length=40), nullable=False),
        sa.Column('priority', sa.Integer(), nullable=False),
        sa.Column('since', sa.DateTime(timezone=True), nullable=False),
        sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['org_id'], ['orgs.id']),
        sa.PrimaryKeyConstraint('key'),
    )
    op.create_index('ix_paced_sends_queue', 'paced_sends', ['sender', 'priority', 'since'])


def downgrade() -> None:
    op.drop_index('ix_paced_sends_queue', table_name='paced_sends')
    op.drop_table('paced_sends')
    op.drop_table('sender_paces')
