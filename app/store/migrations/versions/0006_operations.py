"""operations: claims for once-per-period runtime work, run redaction mark, Runs-tab date and history indexes

The revision id is the file's number, as `database.head_revision()` expects.
"""

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(sa.dialects.postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    op.create_table('maintenance_claims',
    sa.Column('task', sa.String(length=32), nullable=False),
    sa.Column('period', sa.String(length=40), nullable=False),
    sa.Column('runtime', sa.String(length=200), nullable=False),
    sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('detail', _JSON, nullable=True),
    sa.PrimaryKeyConstraint('task', 'period', name=op.f('pk_maintenance_claims'))
    )
    # Plain ALTER TABLE ADD COLUMN (no table copy): instant also on a million runs.
    op.add_column('runs', sa.Column('redacted_at', sa.DateTime(timezone=True), nullable=True))
    op.create_index('ix_runs_triggered', 'runs', ['triggered_at', 'id'], unique=False)
    op.create_index('ix_runs_retention', 'runs', ['finished_at'], unique=False,
                    sqlite_where=sa.text('redacted_at IS NULL'), postgresql_where=sa.text('redacted_at IS NULL'))
    op.create_index('ix_history_actor', 'history', ['actor', 'id'], unique=False)
    # PostgreSQL teams (section 15): `upgrade_schema` grants the new table to the roles once
    # the last migration has run (the runtime claims alert and retention periods).


def downgrade() -> None:
    op.drop_index('ix_history_actor', table_name='history')
    op.drop_index('ix_runs_retention', table_name='runs')
    op.drop_index('ix_runs_triggered', table_name='runs')
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_column('redacted_at')
    op.drop_table('maintenance_claims')
