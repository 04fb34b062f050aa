"""mail attachments (a pointer to an encrypted blob)

Revision ID: 0006_mail_attachments
Revises: 0005_requests
Create Date: 2026-11-25 22:23:28.612280
"""
from alembic import op
import sqlalchemy as sa
from portal.db import UTCDateTime  # noqa: F401


revision = '0006_mail_attachments'
down_revision = '0005_requests'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('mail_messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('attachment_blob_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('attachment_name', sa.String(length=100), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_mail_messages_attachment_blob_id_stored_blobs'), 'stored_blobs', ['attachment_blob_id'], ['id'], ondelete='SET NULL')



def downgrade() -> None:
    with op.batch_alter_table('mail_messages', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_mail_messages_attachment_blob_id_stored_blobs'), type_='foreignkey')
        batch_op.drop_column('attachment_name')
        batch_op.drop_column('attachment_blob_id')

