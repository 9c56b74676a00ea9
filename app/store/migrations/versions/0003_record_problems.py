"""record problems: flag stored values that fail the record checks, without changing them"""

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('record_problems',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('record_type', sa.String(length=16), nullable=False),
    sa.Column('record_id', sa.Integer(), nullable=False),
    sa.Column('field', sa.String(length=64), nullable=False),
    sa.Column('value', sa.Text(), nullable=True),
    sa.Column('problem', sa.Text(), nullable=False),
    sa.Column('found_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_record_problems'))
    )
    with op.batch_alter_table('record_problems', schema=None) as batch_op:
        batch_op.create_index('ix_record_problems_record', ['record_type', 'record_id'], unique=False)
    # The values themselves stay as they are: a person decides how to correct them.
    from app.store.problems import flag_stored_problems

    flag_stored_problems(op.get_bind())


def downgrade() -> None:
    with op.batch_alter_table('record_problems', schema=None) as batch_op:
        batch_op.drop_index('ix_record_problems_record')
    op.drop_table('record_problems')
