"""the record trigger finds a record's followers by their key, whatever the planner expects

The revision id is the file's number, as `database.head_revision()` expects.
"""

from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

# The trigger of migration 0007, with each follower found by its primary key. Written as one
# `UPDATE ... WHERE id IN (SELECT ...)`, the planner could join the other way round: with stale
# statistics (just after 2,000 waits began it expects 2 waiting runs) it scanned every waiting run
# for each changed record, so moving 2,000 records cost 2,000 x 2,000 probes (5.5 s instead of
# 0.25 s, measured; notes/pgwaits.md). A record nobody follows costs one index probe.
WAKE_FUNCTION = """
CREATE OR REPLACE FUNCTION clinicflow_wake_followers() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    follower integer;
BEGIN
    FOR follower IN SELECT run_id FROM wait_follows WHERE record_type = TG_ARGV[0] AND record_id = NEW.id LOOP
        UPDATE runs SET due_at = now(), updated_at = now()
         WHERE id = follower AND wait_follows_record AND status = 'waiting';
    END LOOP;
    RETURN NULL;
END
$$
"""
OLD_WAKE_FUNCTION = """
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


def upgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(WAKE_FUNCTION)


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(OLD_WAKE_FUNCTION)
