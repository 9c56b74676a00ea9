"""messaging rules: patient consent fields, chains, waiting reasons, re-enrolment keys, daily message counts"""

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

WAKE_TABLES = (('patients', 'patient'), ('appointments', 'appointment'), ('tasks', 'task'), ('recalls', 'recall'))
WAKE_FUNCTION = """
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
    # Plain ADD COLUMN, also on SQLite: a batch would copy and drop `patients`, which the
    # foreign keys of existing appointments, tasks and recalls refuse.
    for name in ('email_opt_out', 'sms_opt_out', 'marketing_consent'):
        op.add_column('patients', sa.Column(name, sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column('record_events', sa.Column('caused_by_run', sa.Integer(), nullable=True))
    op.add_column('runs', sa.Column('chain_depth', sa.Integer(), nullable=False, server_default='0'))
    op.add_column('runs', sa.Column('waiting_reason', sa.String(length=32), nullable=True))
    op.add_column('runs', sa.Column('wait_follows_record', sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_index('ix_runs_follows', 'runs', ['record_type', 'record_id', 'wait_follows_record'], unique=False)
    op.create_table('enrolments',
    sa.Column('workflow_id', sa.Integer(), nullable=False),
    sa.Column('record_type', sa.String(length=16), nullable=False),
    sa.Column('record_id', sa.Integer(), nullable=False),
    sa.Column('period', sa.String(length=32), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['workflow_id'], ['workflows.id'], name=op.f('fk_enrolments_workflow_id_workflows')),
    sa.PrimaryKeyConstraint('workflow_id', 'record_type', 'record_id', 'period', name=op.f('pk_enrolments'))
    )
    op.create_table('message_counts',
    sa.Column('workflow_id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('sent', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['workflow_id'], ['workflows.id'], name=op.f('fk_message_counts_workflow_id_workflows')),
    sa.PrimaryKeyConstraint('workflow_id', 'day', name=op.f('pk_message_counts'))
    )
    if op.get_bind().dialect.name == 'postgresql':
        # The new tables' privileges for the roles of DESIGN section 15 are granted by
        # `upgrade_schema` once the last migration has run.
        # Waits that follow their record (DESIGN section 3): a change to a record makes the
        # waiting runs that follow it due now, in the same transaction, whoever changes it
        # (staff may update records but not runs: the function runs as its owner).
        op.execute(WAKE_FUNCTION)
        for table, record_type in WAKE_TABLES:
            op.execute(f"CREATE TRIGGER clinicflow_wake_followers AFTER UPDATE ON {table} FOR EACH ROW "
                       f"EXECUTE FUNCTION clinicflow_wake_followers('{record_type}')")


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        for table, _record_type in WAKE_TABLES:
            op.execute(f"DROP TRIGGER IF EXISTS clinicflow_wake_followers ON {table}")
        op.execute("DROP FUNCTION IF EXISTS clinicflow_wake_followers()")
    op.drop_table('message_counts')
    op.drop_table('enrolments')
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_index('ix_runs_follows')
        batch_op.drop_column('wait_follows_record')
        batch_op.drop_column('waiting_reason')
        batch_op.drop_column('chain_depth')
    with op.batch_alter_table('record_events', schema=None) as batch_op:
        batch_op.drop_column('caused_by_run')
    with op.batch_alter_table('patients', schema=None) as batch_op:
        for name in ('marketing_consent', 'sms_opt_out', 'email_opt_out'):
            batch_op.drop_column(name)
