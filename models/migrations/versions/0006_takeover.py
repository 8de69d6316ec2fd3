"""takeover: the operator who wrote a human message

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 02:30:00

The takeover lock itself (``threads.held_by``, ``held_since``, ``last_human_at``) came with
0005. Plain ``ADD``/``DROP COLUMN`` (SQLite 3.35+), not a batch: a batch would rebuild
``messages`` on SQLite and lose its partial trigram index.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('messages', sa.Column('operator_id', sa.String(length=40), nullable=True))


def downgrade() -> None:
    op.drop_column('messages', 'operator_id')
