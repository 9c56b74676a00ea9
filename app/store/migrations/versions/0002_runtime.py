"""runtime: message outbox columns on steps, who cancelled a run, runs by workflow newest first"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    with op.batch_alter_table('steps', schema=None) as batch_op:
        batch_op.add_column(sa.Column('delivery_key', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('delivery_state', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('tries', _JSON, nullable=True))
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('cancelled_by', sa.String(length=200), nullable=True))
        batch_op.create_index('ix_runs_workflow_id', ['workflow_id', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_index('ix_runs_workflow_id')
        batch_op.drop_column('cancelled_by')
    with op.batch_alter_table('steps', schema=None) as batch_op:
        batch_op.drop_column('tries')
        batch_op.drop_column('delivery_state')
        batch_op.drop_column('delivery_key')
