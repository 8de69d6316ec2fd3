"""operators sign in: passwords, invites, sessions; the live pages' ui_events outbox

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 14:00:00

Plain ``ADD COLUMN`` on ``operators`` (SQLite 3.35+), not a batch.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('operators', sa.Column('password_hash', sa.String(length=200), nullable=True))
    op.add_column(
        'operators',
        sa.Column('failed_sign_ins', sa.Integer(), server_default='0', nullable=False),
    )
    op.add_column(
        'operators', sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column('operators', sa.Column('removed_at', sa.DateTime(timezone=True), nullable=True))
    op.create_index('ix_operators_email', 'operators', ['email'])
    op.create_table('operator_invites',
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('org_id', sa.String(length=40), nullable=False),
    sa.Column('operator_id', sa.String(length=40), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['operator_id'], ['operators.id'], ),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], ),
    sa.PrimaryKeyConstraint('token_hash')
    )
    op.create_index(
        'ix_operator_invites_operator_id', 'operator_invites', ['operator_id']
    )
    op.create_table('operator_sessions',
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('org_id', sa.String(length=40), nullable=False),
    sa.Column('operator_id', sa.String(length=40), nullable=False),
    sa.Column('csrf_token', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('user_agent', sa.String(length=300), nullable=True),
    sa.ForeignKeyConstraint(['operator_id'], ['operators.id'], ),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], ),
    sa.PrimaryKeyConstraint('token_hash')
    )
    op.create_index(
        'ix_operator_sessions_operator_id', 'operator_sessions', ['operator_id']
    )
    op.create_table('ui_events',
    sa.Column(
        'id',
        sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
        autoincrement=True,
        nullable=False,
    ),
    sa.Column('org_id', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('subject_id', sa.String(length=40), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sqlite_autoincrement=True,
    )
    op.create_index('ix_ui_events_org_id', 'ui_events', ['org_id', 'id'])
    op.create_index('ix_ui_events_created_at', 'ui_events', ['created_at'])


def downgrade() -> None:
    op.drop_index('ix_ui_events_created_at', table_name='ui_events')
    op.drop_index('ix_ui_events_org_id', table_name='ui_events')
    op.drop_table('ui_events')
    op.drop_index('ix_operator_sessions_operator_id', table_name='operator_sessions')
    op.drop_table('operator_sessions')
    op.drop_index('ix_operator_invites_operator_id', table_name='operator_invites')
    op.drop_table('operator_invites')
    op.drop_index('ix_operators_email', table_name='operators')
    op.drop_column('operators', 'removed_at')
    op.drop_column('operators', 'locked_until')
    op.drop_column('operators', 'failed_sign_ins')
    op.drop_column('operators', 'password_hash')
