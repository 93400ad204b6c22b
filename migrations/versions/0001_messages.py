"""Messages, their parts and delivery receipts.

Revision ID: 0001_messages
Revises:
Create Date: 2026-12-04 20:46:38.875804

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0001_messages'
down_revision = None
branch_labels = None
depends_on = None

STATUSES = (
    "pending", "submitted", "outcome-unknown", "accepted", "buffered", "unknown",
    "delivered", "expired", "rejected", "failed", "send-failed",
)


def status_type():
    return sa.Enum(*STATUSES, name="status", native_enum=False, create_constraint=True, length=20)


def encoding_type():
    return sa.Enum(
        "text", "unicode", name="encoding", native_enum=False, create_constraint=True, length=10
    )


def upgrade():
    op.create_table('sms',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('recipient', sa.String(length=15), nullable=False),
    sa.Column('sender', sa.String(length=15), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('encoding', encoding_type(), nullable=False),
    sa.Column('segments', sa.Integer(), nullable=False),
    sa.Column('client_ref', sa.String(length=100), nullable=False),
    sa.Column('idempotency_key', sa.String(length=64), nullable=True),
    sa.Column('send_outcome', status_type(), nullable=False),
    sa.Column('status', status_type(), nullable=False),
    sa.Column('error_code', sa.String(length=20), nullable=True),
    sa.Column('error_text', sa.String(length=500), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('submitted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sms')),
    sa.UniqueConstraint('client_ref', name=op.f('uq_sms_client_ref')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_sms_idempotency_key'))
    )
    with op.batch_alter_table('sms', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sms_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_sms_status'), ['status'], unique=False)

    op.create_table('sms_part',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('sms_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('message_id', sa.String(length=40), nullable=True),
    sa.Column('send_status', status_type(), nullable=False),
    sa.Column('status', status_type(), nullable=False),
    sa.Column('status_time', sa.DateTime(timezone=True), nullable=True),
    sa.Column('error_code', sa.String(length=20), nullable=True),
    sa.Column('error_text', sa.String(length=500), nullable=True),
    sa.Column('err_code', sa.String(length=20), nullable=True),
    sa.Column('quoted_price', sa.Numeric(precision=14, scale=8), nullable=True),
    sa.Column('price', sa.Numeric(precision=14, scale=8), nullable=True),
    sa.Column('network', sa.String(length=10), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['sms_id'], ['sms.id'], name=op.f('fk_sms_part_sms_id_sms')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sms_part')),
    sa.UniqueConstraint('message_id', name=op.f('uq_sms_part_message_id'))
    )
    with op.batch_alter_table('sms_part', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sms_part_sms_id'), ['sms_id'], unique=False)

    op.create_table('receipt',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('identity', sa.String(length=64), nullable=False),
    sa.Column('message_id', sa.String(length=40), nullable=False),
    sa.Column('part_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=40), nullable=False),
    sa.Column('err_code', sa.String(length=20), nullable=True),
    sa.Column('message_time', sa.DateTime(timezone=True), nullable=True),
    sa.Column('carrier_time', sa.DateTime(timezone=True), nullable=True),
    sa.Column('price', sa.Numeric(precision=14, scale=8), nullable=True),
    sa.Column('client_ref', sa.String(length=100), nullable=True),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['part_id'], ['sms_part.id'], name=op.f('fk_receipt_part_id_sms_part')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_receipt')),
    sa.UniqueConstraint('identity', name=op.f('uq_receipt_identity'))
    )
    with op.batch_alter_table('receipt', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_receipt_client_ref'), ['client_ref'], unique=False)
        batch_op.create_index(batch_op.f('ix_receipt_message_id'), ['message_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_receipt_part_id'), ['part_id'], unique=False)
        batch_op.create_index('ix_receipt_unattached', ['message_id', 'part_id'], unique=False)



def downgrade():
    with op.batch_alter_table('receipt', schema=None) as batch_op:
        batch_op.drop_index('ix_receipt_unattached')
        batch_op.drop_index(batch_op.f('ix_receipt_part_id'))
        batch_op.drop_index(batch_op.f('ix_receipt_message_id'))
        batch_op.drop_index(batch_op.f('ix_receipt_client_ref'))

    op.drop_table('receipt')
    with op.batch_alter_table('sms_part', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sms_part_sms_id'))

    op.drop_table('sms_part')
    with op.batch_alter_table('sms', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sms_status'))
        batch_op.drop_index(batch_op.f('ix_sms_created_at'))

    op.drop_table('sms')
