"""calls.local_weekday: the recipient's local day of the week when a call was placed, so
retries are placed by weekday and weekend answer rates

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-08 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # No backfill: older calls count in the org's pooled answer rate only.
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("local_weekday", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("local_weekday")
