"""the settings audit list

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04 20:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('settings_changes',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('org_id', sa.String(length=40), nullable=False),
    sa.Column('operator_id', sa.String(length=40), nullable=True),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('section', sa.String(length=32), nullable=False),
    sa.Column('summary', sa.String(length=500), nullable=False),
    sa.Column('changed_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('settings_changes', schema=None) as batch_op:
        batch_op.create_index('ix_settings_changes_org', ['org_id', 'changed_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('settings_changes', schema=None) as batch_op:
        batch_op.drop_index('ix_settings_changes_org')
    op.drop_table('settings_changes')
