"""call-retry loop: call outcomes, gate times and local hours; invalid phone numbers

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 23:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('calls', schema=None) as batch_op:
        batch_op.add_column(sa.Column('outcome', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('local_hour', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('touched_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index('ix_calls_org_outcome', ['org_id', 'outcome'], unique=False)
    with op.batch_alter_table('identities', schema=None) as batch_op:
        batch_op.add_column(sa.Column('invalid_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('invalid_reason', sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('identities', schema=None) as batch_op:
        batch_op.drop_column('invalid_reason')
        batch_op.drop_column('invalid_at')
    with op.batch_alter_table('calls', schema=None) as batch_op:
        batch_op.drop_index('ix_calls_org_outcome')
        batch_op.drop_column('touched_at')
        batch_op.drop_column('local_hour')
        batch_op.drop_column('outcome')
