"""the inbox: thread status, ownership and activity; operators; escalation acknowledgement

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 10:00:00

Search (name, email, phone, message text) gets trigram indexes on PostgreSQL (the
``pg_trgm`` extension, trusted since PostgreSQL 13, so the database owner may create it).
On SQLite the same indexes exist but are empty (``WHERE 0``): one schema for both.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Trigram indexes: (table, index name, column).
TRIGRAM = (
    ('messages', 'ix_messages_body_trgm', 'body'),
    ('contacts', 'ix_contacts_name_trgm', 'name'),
    ('identities', 'ix_identities_value_trgm', 'value'),
)


def upgrade() -> None:
    op.create_table('operators',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('org_id', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('phone', sa.String(length=32), nullable=True),
    sa.Column('email', sa.String(length=320), nullable=True),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('operators', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_operators_org_id'), ['org_id'], unique=False)

    with op.batch_alter_table('threads', schema=None) as batch_op:
        batch_op.add_column(sa.Column('status', sa.String(length=16), server_default='unread', nullable=False))
        batch_op.add_column(sa.Column('handled_by', sa.String(length=16), server_default='ai', nullable=False))
        batch_op.add_column(sa.Column('priority', sa.String(length=16), server_default='low', nullable=False))
        batch_op.add_column(sa.Column('assigned_to', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('last_message_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('last_inbound_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('held_by', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('held_since', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('last_human_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index('ix_threads_org_status', ['org_id', 'status'], unique=False)
    # An expression index: outside the batch, which can't see one on SQLite (SQLAlchemy does
    # not reflect them there, so a later batch that rebuilds ``threads`` on SQLite must
    # create it again).
    op.create_index(
        'ix_threads_org_activity',
        'threads',
        ['org_id', sa.text('coalesce(last_message_at, created_at)'), 'id'],
        unique=False,
    )

    with op.batch_alter_table('escalations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('acknowledged_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('acknowledged_by', sa.String(length=64), nullable=True))

    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.create_index('ix_messages_thread_created', ['thread_id', 'created_at', 'id'], unique=False)
        batch_op.create_index('ix_messages_thread_channel', ['thread_id', 'channel'], unique=False)

    if op.get_bind().dialect.name == 'postgresql':
        op.execute('CREATE EXTENSION IF NOT EXISTS pg_trgm')
    for table, name, column in TRIGRAM:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_index(
                name,
                [column],
                unique=False,
                postgresql_using='gin',
                postgresql_ops={column: 'gin_trgm_ops'},
                sqlite_where=sa.false(),
            )

    # Threads that already have messages: their activity, from those messages.
    for column, condition in (
        ('last_message_at', ''),
        ('last_inbound_at', " AND messages.direction = 'inbound'"),
        ('last_human_at', " AND messages.sender = 'human'"),
    ):
        op.execute(
            f'UPDATE threads SET {column} = (SELECT max(messages.created_at) FROM messages '
            f'WHERE messages.thread_id = threads.id{condition})'
        )


def downgrade() -> None:
    for table, name, _ in reversed(TRIGRAM):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(name)
    # pg_trgm stays: something else in the database may use it.

    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index('ix_messages_thread_channel')
        batch_op.drop_index('ix_messages_thread_created')

    with op.batch_alter_table('escalations', schema=None) as batch_op:
        batch_op.drop_column('acknowledged_by')
        batch_op.drop_column('acknowledged_at')

    op.drop_index('ix_threads_org_activity', table_name='threads')
    with op.batch_alter_table('threads', schema=None) as batch_op:
        batch_op.drop_index('ix_threads_org_status')
        batch_op.drop_column('last_human_at')
        batch_op.drop_column('held_since')
        batch_op.drop_column('held_by')
        batch_op.drop_column('last_inbound_at')
        batch_op.drop_column('last_message_at')
        batch_op.drop_column('assigned_to')
        batch_op.drop_column('priority')
        batch_op.drop_column('handled_by')
        batch_op.drop_column('status')

    with op.batch_alter_table('operators', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_operators_org_id'))

    op.drop_table('operators')
