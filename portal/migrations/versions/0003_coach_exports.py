"""coach links and reads, exports, encrypted blob storage

Revision ID: 0003_coach_exports
Revises: 0002_mina_uppgifter
Create Date: 2026-11-25 20:51:29.268831
"""
from alembic import op
import sqlalchemy as sa
from portal.db import UTCDateTime


revision = '0003_coach_exports'
down_revision = '0002_mina_uppgifter'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('coach_links',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('coach_id', sa.Integer(), nullable=True),
    sa.Column('organisation_id', sa.Integer(), nullable=True),
    sa.Column('coach_email', sa.String(length=254), nullable=False),
    sa.Column('coach_name', sa.String(length=200), nullable=False),
    sa.Column('status', sa.Enum('invited', 'active', 'revoked', 'expired', 'cancelled', name='coach_link_status', native_enum=False, length=16), nullable=False),
    sa.Column('invite_token_hash', sa.String(length=64), nullable=True),
    sa.Column('invited_at', UTCDateTime(), nullable=False),
    sa.Column('invite_expires_at', UTCDateTime(), nullable=False),
    sa.Column('accepted_at', UTCDateTime(), nullable=True),
    sa.Column('ended_at', UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['coach_id'], ['users.id'], name=op.f('fk_coach_links_coach_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisations.id'], name=op.f('fk_coach_links_organisation_id_organisations'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_coach_links_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_coach_links')),
    sa.UniqueConstraint('invite_token_hash', name=op.f('uq_coach_links_invite_token_hash'))
    )
    with op.batch_alter_table('coach_links', schema=None) as batch_op:
        batch_op.create_index('ix_coach_links_coach_status', ['coach_id', 'status'], unique=False)
        batch_op.create_index('ix_coach_links_user_status', ['user_id', 'status'], unique=False)

    op.create_table('stored_blobs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ref', sa.String(length=36), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_stored_blobs_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_stored_blobs')),
    sa.UniqueConstraint('ref', name=op.f('uq_stored_blobs_ref'))
    )
    with op.batch_alter_table('stored_blobs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_stored_blobs_user_id'), ['user_id'], unique=False)

    op.create_table('coach_reads',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('link_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('text_id', sa.Integer(), nullable=True),
    sa.Column('text_title', sa.String(length=200), nullable=False),
    sa.Column('at', UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['link_id'], ['coach_links.id'], name=op.f('fk_coach_reads_link_id_coach_links'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['text_id'], ['texts.id'], name=op.f('fk_coach_reads_text_id_texts'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_coach_reads_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_coach_reads'))
    )
    with op.batch_alter_table('coach_reads', schema=None) as batch_op:
        batch_op.create_index('ix_coach_reads_user_at', ['user_id', 'at'], unique=False)

    op.create_table('exports',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.Enum('queued', 'running', 'ready', 'failed', 'expired', 'voided', name='export_status', native_enum=False, length=16), nullable=False),
    sa.Column('progress', sa.Integer(), nullable=False),
    sa.Column('step', sa.String(length=64), nullable=False),
    sa.Column('error', sa.String(length=100), nullable=True),
    sa.Column('requested_at', UTCDateTime(), nullable=False),
    sa.Column('started_at', UTCDateTime(), nullable=True),
    sa.Column('finished_at', UTCDateTime(), nullable=True),
    sa.Column('expires_at', UTCDateTime(), nullable=True),
    sa.Column('blob_id', sa.Integer(), nullable=True),
    sa.Column('size', sa.Integer(), nullable=True),
    sa.Column('sha256', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['blob_id'], ['stored_blobs.id'], name=op.f('fk_exports_blob_id_stored_blobs'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_exports_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_exports'))
    )
    with op.batch_alter_table('exports', schema=None) as batch_op:
        batch_op.create_index('ix_exports_status_expires', ['status', 'expires_at'], unique=False)
        batch_op.create_index('ix_exports_user_requested', ['user_id', 'requested_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('exports', schema=None) as batch_op:
        batch_op.drop_index('ix_exports_user_requested')
        batch_op.drop_index('ix_exports_status_expires')

    op.drop_table('exports')
    with op.batch_alter_table('coach_reads', schema=None) as batch_op:
        batch_op.drop_index('ix_coach_reads_user_at')

    op.drop_table('coach_reads')
    with op.batch_alter_table('stored_blobs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_stored_blobs_user_id'))

    op.drop_table('stored_blobs')
    with op.batch_alter_table('coach_links', schema=None) as batch_op:
        batch_op.drop_index('ix_coach_links_user_status')
        batch_op.drop_index('ix_coach_links_coach_status')

    op.drop_table('coach_links')
