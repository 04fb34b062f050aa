"""erasure cases, inactivity warnings, usage kept after deletion

Revision ID: 0004_erasure
Revises: 0003_coach_exports
Create Date: 2026-11-25 20:53:11.171527
"""
from alembic import op
import sqlalchemy as sa
from portal.db import UTCDateTime


revision = '0004_erasure'
down_revision = '0003_coach_exports'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('erasure_cases',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('pseudonym', sa.String(length=40), nullable=False),
    sa.Column('reason', sa.Enum('request', 'inactivity', 'admin', name='erasure_reason', native_enum=False, length=16), nullable=False),
    sa.Column('step', sa.Enum('approved', 'pseudonymised', 'invoicing_closed', 'deleted', name='erasure_step', native_enum=False, length=20), nullable=False),
    sa.Column('due_at', UTCDateTime(), nullable=False),
    sa.Column('approved_at', UTCDateTime(), nullable=False),
    sa.Column('approved_by', sa.Integer(), nullable=True),
    sa.Column('pseudonymised_at', UTCDateTime(), nullable=True),
    sa.Column('invoicing_closed_at', UTCDateTime(), nullable=True),
    sa.Column('deleted_at', UTCDateTime(), nullable=True),
    sa.Column('confirmation_mail_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_erasure_cases_user_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_erasure_cases')),
    sa.UniqueConstraint('user_id', name=op.f('uq_erasure_cases_user_id'))
    )
    with op.batch_alter_table('erasure_cases', schema=None) as batch_op:
        batch_op.create_index('ix_erasure_cases_step_due', ['step', 'due_at'], unique=False)

    with op.batch_alter_table('usage_events', schema=None) as batch_op:
        batch_op.alter_column('user_id',
               existing_type=sa.INTEGER(),
               nullable=True)
        batch_op.drop_constraint(batch_op.f('fk_usage_events_user_id_users'), type_='foreignkey')
        batch_op.create_foreign_key(batch_op.f('fk_usage_events_user_id_users'), 'users', ['user_id'], ['id'], ondelete='SET NULL')

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('inactivity_warned_at', UTCDateTime(), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('inactivity_warned_at')

    with op.batch_alter_table('usage_events', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_usage_events_user_id_users'), type_='foreignkey')
        batch_op.create_foreign_key(batch_op.f('fk_usage_events_user_id_users'), 'users', ['user_id'], ['id'], ondelete='CASCADE')
        batch_op.alter_column('user_id',
               existing_type=sa.INTEGER(),
               nullable=False)

    with op.batch_alter_table('erasure_cases', schema=None) as batch_op:
        batch_op.drop_index('ix_erasure_cases_step_due')

    op.drop_table('erasure_cases')
