"""messages: a sequence step's touch names its sequence, step, variant and the experiment's
version (experiments)

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-05 06:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0020'
down_revision: str | None = '0019'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('messages') as batch:
        batch.add_column(sa.Column('sequence', sa.String(length=60), nullable=True))
        batch.add_column(sa.Column('step', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('variant', sa.String(length=20), nullable=True))
        batch.add_column(sa.Column('experiment', sa.String(length=16), nullable=True))
    op.create_index(
        'ix_messages_sequence_step',
        'messages',
        ['org_id', 'sequence', 'step', 'sent_at'],
        unique=False,
        postgresql_where=sa.text('sequence IS NOT NULL'),
        sqlite_where=sa.text('sequence IS NOT NULL'),
    )


def downgrade() -> None:
    op.drop_index('ix_messages_sequence_step', table_name='messages')
    with op.batch_alter_table('messages') as batch:
        batch.drop_column('experiment')
        batch.drop_column('variant')
        batch.drop_column('step')
        batch.drop_column('sequence')
