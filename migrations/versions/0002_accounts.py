"""Team accounts, and the account that sent each message.

Revision ID: 0002_accounts
Revises: 0001_messages
Create Date: 2026-12-04 20:50:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0002_accounts'
down_revision = '0001_messages'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('user_account',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_user_account')),
    sa.UniqueConstraint('email', name=op.f('uq_user_account_email'))
    )
    with op.batch_alter_table('sms', schema=None) as batch_op:
        batch_op.add_column(sa.Column('user_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_sms_user_id'), ['user_id'], unique=False)
        batch_op.create_foreign_key(
            batch_op.f('fk_sms_user_id_user_account'), 'user_account', ['user_id'], ['id']
        )


def downgrade():
    with op.batch_alter_table('sms', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_sms_user_id_user_account'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_sms_user_id'))
        batch_op.drop_column('user_id')

    op.drop_table('user_account')
