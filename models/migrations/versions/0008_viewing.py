"""who else is viewing: the thread an operator's inbox shows

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 15:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('operators', sa.Column('viewing_thread_id', sa.String(length=40), nullable=True))


def downgrade() -> None:
    op.drop_column('operators', 'viewing_thread_id')
