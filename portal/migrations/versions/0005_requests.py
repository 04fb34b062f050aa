"""rights requests, uploads and events; DPO TOTP

Revision ID: 0005_requests
Revises: 0004_erasure
Create Date: 2026-11-25 21:48:36.520043
"""
from alembic import op
import sqlalchemy as sa
from portal.db import UTCDateTime


revision = '0005_requests'
down_revision = '0004_erasure'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('rights_requests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('reference', sa.String(length=20), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.Enum('erasure', 'restriction', 'rectification', 'objection', name='request_kind', native_enum=False, length=16), nullable=False),
    sa.Column('status', sa.Enum('received', 'needs_completion', 'approved', 'rejected', 'withdrawn', name='request_status', native_enum=False, length=20), nullable=False),
    sa.Column('details', sa.Text(), nullable=False),
    sa.Column('signature_name', sa.String(length=200), nullable=False),
    sa.Column('declaration_at', UTCDateTime(), nullable=True),
    sa.Column('received_at', UTCDateTime(), nullable=False),
    sa.Column('due_on', sa.Date(), nullable=False),
    sa.Column('extension_months', sa.Integer(), nullable=False),
    sa.Column('extension_reason', sa.Text(), nullable=True),
    sa.Column('decided_at', UTCDateTime(), nullable=True),
    sa.Column('decided_by', sa.Integer(), nullable=True),
    sa.Column('decision_reason', sa.Text(), nullable=True),
    sa.Column('receipt_payload', sa.JSON(), nullable=True),
    sa.Column('receipt_signature', sa.String(length=200), nullable=True),
    sa.Column('receipt_blob_id', sa.Integer(), nullable=True),
    sa.Column('id_verified_by', sa.Integer(), nullable=True),
    sa.Column('id_verified_at', UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['receipt_blob_id'], ['stored_blobs.id'], name=op.f('fk_rights_requests_receipt_blob_id_stored_blobs'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_rights_requests_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rights_requests')),
    sa.UniqueConstraint('reference', name=op.f('uq_rights_requests_reference'))
    )
    with op.batch_alter_table('rights_requests', schema=None) as batch_op:
        batch_op.create_index('ix_rights_requests_status_due', ['status', 'due_on'], unique=False)
        batch_op.create_index('ix_rights_requests_user_received', ['user_id', 'received_at'], unique=False)

    op.create_table('request_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=False),
    sa.Column('at', UTCDateTime(), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('action', sa.String(length=40), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['request_id'], ['rights_requests.id'], name=op.f('fk_request_events_request_id_rights_requests'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_request_events'))
    )
    with op.batch_alter_table('request_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_request_events_request_id'), ['request_id'], unique=False)

    op.create_table('request_uploads',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('purpose', sa.String(length=16), nullable=False),
    sa.Column('received_kind', sa.String(length=8), nullable=False),
    sa.Column('received_size', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('pages', sa.Integer(), nullable=False),
    sa.Column('blob_id', sa.Integer(), nullable=True),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('destroyed_at', UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['blob_id'], ['stored_blobs.id'], name=op.f('fk_request_uploads_blob_id_stored_blobs'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['request_id'], ['rights_requests.id'], name=op.f('fk_request_uploads_request_id_rights_requests'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_request_uploads_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_request_uploads'))
    )
    with op.batch_alter_table('request_uploads', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_request_uploads_request_id'), ['request_id'], unique=False)

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('totp_secret', sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column('totp_enrolled_at', UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('totp_last_step', sa.BigInteger(), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('totp_last_step')
        batch_op.drop_column('totp_enrolled_at')
        batch_op.drop_column('totp_secret')

    with op.batch_alter_table('request_uploads', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_request_uploads_request_id'))

    op.drop_table('request_uploads')
    with op.batch_alter_table('request_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_request_events_request_id'))

    op.drop_table('request_events')
    with op.batch_alter_table('rights_requests', schema=None) as batch_op:
        batch_op.drop_index('ix_rights_requests_user_received')
        batch_op.drop_index('ix_rights_requests_status_due')

    op.drop_table('rights_requests')
