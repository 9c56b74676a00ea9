"""waits that follow every record their `until` expression reads, not only the run's own record

The revision id is the file's number, as `database.head_revision()` expects.
"""

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

WAKE_TABLES = (('patients', 'patient'), ('appointments', 'appointment'), ('tasks', 'task'), ('recalls', 'recall'))
# The same trigger as migration 0005 (the change and the wake share one transaction; the
# function runs as its owner, since staff may update records but not runs), now over the
# records each wait recorded it reads.
WAKE_FUNCTION = """
CREATE OR REPLACE FUNCTION clinicflow_wake_followers() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
    UPDATE runs SET due_at = now(), updated_at = now()
     WHERE id IN (SELECT run_id FROM wait_follows WHERE record_type = TG_ARGV[0] AND record_id = NEW.id)
       AND wait_follows_record AND status = 'waiting';
    RETURN NULL;
END
$$
"""
OLD_WAKE_FUNCTION = """
CREATE OR REPLACE FUNCTION clinicflow_wake_followers() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
    UPDATE runs SET due_at = now(), updated_at = now()
     WHERE record_type = TG_ARGV[0] AND record_id = NEW.id AND wait_follows_record AND status = 'waiting';
    RETURN NULL;
END
$$
"""


def upgrade() -> None:
    op.create_table('wait_follows',
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('record_type', sa.String(length=16), nullable=False),
    sa.Column('record_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], name=op.f('fk_wait_follows_run_id_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('run_id', 'record_type', 'record_id', name=op.f('pk_wait_follows'))
    )
    op.create_index('ix_wait_follows_record', 'wait_follows', ['record_type', 'record_id'], unique=False)
    # Waits already waiting followed their run's own record: they go on doing so.
    op.execute("INSERT INTO wait_follows (run_id, record_type, record_id) SELECT id, record_type, record_id "
               "FROM runs WHERE wait_follows_record AND status = 'waiting' AND record_type IS NOT NULL "
               "AND record_id IS NOT NULL")
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(WAKE_FUNCTION)


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(OLD_WAKE_FUNCTION)
    op.drop_index('ix_wait_follows_record', table_name='wait_follows')
    op.drop_table('wait_follows')
