"""indexes for the DPO queue, the sweeps, the invoice bases and the foreign-key actions

The DPO queue reads open requests in due order from a partial index (no sort, no scan of
decided requests); the coach-invitation expiry job and a month's invoice totals get an index
each; and every foreign key that a deletion (erasure, export expiry) sets to NULL or cascades
to gets one, so PostgreSQL's foreign-key actions look rows up instead of scanning the table
once per deleted row; a person's latest audit events and messages, and the DPO's erasure
list, are read from an index in order. Proven by tests/test_explain.py.

Revision ID: 0007_query_indexes
Revises: 0006_mail_attachments
Create Date: 2026-11-25 23:30:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0007_query_indexes'
down_revision = '0006_mail_attachments'
branch_labels = None
depends_on = None

OPEN = "status IN ('received', 'needs_completion')"


def _not_null(column: str) -> dict:
    where = sa.text(f'{column} IS NOT NULL')
    return {'sqlite_where': where, 'postgresql_where': where}


def upgrade() -> None:
    with op.batch_alter_table('coach_links', schema=None) as batch_op:
        batch_op.create_index('ix_coach_links_status_expires', ['status', 'invite_expires_at'], unique=False)

    with op.batch_alter_table('coach_reads', schema=None) as batch_op:
        batch_op.create_index('ix_coach_reads_link_id', ['link_id'], unique=False)
        batch_op.create_index('ix_coach_reads_text_id', ['text_id'], unique=False)

    with op.batch_alter_table('exports', schema=None) as batch_op:
        batch_op.create_index('ix_exports_blob_id', ['blob_id'], unique=False, **_not_null('blob_id'))

    with op.batch_alter_table('mail_messages', schema=None) as batch_op:
        batch_op.create_index('ix_mail_messages_attachment_blob_id', ['attachment_blob_id'], unique=False, **_not_null('attachment_blob_id'))

    with op.batch_alter_table('request_uploads', schema=None) as batch_op:
        batch_op.create_index('ix_request_uploads_blob_id', ['blob_id'], unique=False, **_not_null('blob_id'))
        batch_op.create_index('ix_request_uploads_user_id', ['user_id'], unique=False)

    with op.batch_alter_table('rights_requests', schema=None) as batch_op:
        batch_op.create_index('ix_rights_requests_open_due', ['due_on', 'id'], unique=False, sqlite_where=sa.text(OPEN), postgresql_where=sa.text(OPEN))
        batch_op.create_index('ix_rights_requests_receipt_blob_id', ['receipt_blob_id'], unique=False, **_not_null('receipt_blob_id'))

    with op.batch_alter_table('usage_events', schema=None) as batch_op:
        batch_op.create_index('ix_usage_events_at', ['at'], unique=False)

    # "A person's latest N by id" reads these indexes; with only (subject_id) or (user_id)
    # PostgreSQL may walk the primary key backwards through every row for an old account.
    for table, column in (('audit_events', 'subject_id'), ('mail_messages', 'user_id')):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(f'ix_{table}_{column}')
            batch_op.create_index(f'ix_{table}_{column}', [column, 'id'], unique=False)

    with op.batch_alter_table('erasure_cases', schema=None) as batch_op:
        batch_op.create_index('ix_erasure_cases_approved', ['approved_at', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('erasure_cases', schema=None) as batch_op:
        batch_op.drop_index('ix_erasure_cases_approved')

    for table, column in (('audit_events', 'subject_id'), ('mail_messages', 'user_id')):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(f'ix_{table}_{column}')
            batch_op.create_index(f'ix_{table}_{column}', [column], unique=False)

    with op.batch_alter_table('usage_events', schema=None) as batch_op:
        batch_op.drop_index('ix_usage_events_at')

    with op.batch_alter_table('rights_requests', schema=None) as batch_op:
        batch_op.drop_index('ix_rights_requests_receipt_blob_id', **_not_null('receipt_blob_id'))
        batch_op.drop_index('ix_rights_requests_open_due', sqlite_where=sa.text(OPEN), postgresql_where=sa.text(OPEN))

    with op.batch_alter_table('request_uploads', schema=None) as batch_op:
        batch_op.drop_index('ix_request_uploads_user_id')
        batch_op.drop_index('ix_request_uploads_blob_id', **_not_null('blob_id'))

    with op.batch_alter_table('mail_messages', schema=None) as batch_op:
        batch_op.drop_index('ix_mail_messages_attachment_blob_id', **_not_null('attachment_blob_id'))

    with op.batch_alter_table('exports', schema=None) as batch_op:
        batch_op.drop_index('ix_exports_blob_id', **_not_null('blob_id'))

    with op.batch_alter_table('coach_reads', schema=None) as batch_op:
        batch_op.drop_index('ix_coach_reads_text_id')
        batch_op.drop_index('ix_coach_reads_link_id')

    with op.batch_alter_table('coach_links', schema=None) as batch_op:
        batch_op.drop_index('ix_coach_links_status_expires')
