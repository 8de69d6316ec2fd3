"""leads: an index for each documented sort of the lead list (recent and oldest, score,
value) and for its stage and source filters, so a page reads 51 rows in order instead of
sorting the org's leads

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-05 07:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0021'
down_revision: str | None = '0020'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: The value sort's key: a lead without a value sorts last (``tables.VALUE_SORT_KEY``).
VALUE_KEY = sa.text('coalesce(value, -1.0)')


def upgrade() -> None:
    op.create_index('ix_leads_org_recent', 'leads', ['org_id', 'created_at', 'id'])
    op.create_index('ix_leads_org_score', 'leads', ['org_id', 'score', 'created_at', 'id'])
    op.create_index(
        'ix_leads_org_value', 'leads', ['org_id', VALUE_KEY, 'created_at', 'id']
    )
    op.create_index(
        'ix_leads_org_stage_recent', 'leads', ['org_id', 'stage', 'created_at', 'id']
    )
    op.create_index(
        'ix_leads_org_source_recent', 'leads', ['org_id', 'source', 'created_at', 'id']
    )
    op.drop_index('ix_leads_org_stage', table_name='leads')
    # ``q`` finds a lead's message by ILIKE: a trigram index on PostgreSQL (an empty one on
    # SQLite, as the other trigram indexes, so both keep one schema).
    op.create_index(
        'ix_leads_message_trgm',
        'leads',
        ['message'],
        postgresql_using='gin',
        postgresql_ops={'message': 'gin_trgm_ops'},
        sqlite_where=sa.false(),
    )


def downgrade() -> None:
    op.drop_index('ix_leads_message_trgm', table_name='leads')
    op.create_index('ix_leads_org_stage', 'leads', ['org_id', 'stage'])
    op.drop_index('ix_leads_org_source_recent', table_name='leads')
    op.drop_index('ix_leads_org_stage_recent', table_name='leads')
    op.drop_index('ix_leads_org_value', table_name='leads')
    op.drop_index('ix_leads_org_score', table_name='leads')
    op.drop_index('ix_leads_org_recent', table_name='leads')
