"""a partial index of the texts shared with a coach

"Mina uppgifter" and the coach's list of people count a person's shared texts, and the coach
reads them newest first; with the index both come from it alone, without visiting the texts.

Revision ID: 0008_shared_texts_index
Revises: 0007_query_indexes
Create Date: 2026-11-26 02:45:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0008_shared_texts_index'
down_revision = '0007_query_indexes'
branch_labels = None
depends_on = None


def upgrade() -> None:
    shared = sa.text('shared_with_coach')
    with op.batch_alter_table('texts', schema=None) as batch_op:
        batch_op.create_index('ix_texts_user_shared', ['user_id', 'updated_at'], unique=False,
                              sqlite_where=shared, postgresql_where=shared)


def downgrade() -> None:
    with op.batch_alter_table('texts', schema=None) as batch_op:
        batch_op.drop_index('ix_texts_user_shared')
