"""history entries about a second record: a message outcome is about its run and related to its patient

The revision id is the file's number, as `database.head_revision()` expects.
"""

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN (no table rebuild on SQLite: other tables' foreign keys stay valid).
    op.add_column('history', sa.Column('related', sa.String(64), nullable=True))
    op.create_index('ix_history_related', 'history', ['related', 'id'])


def downgrade() -> None:
    op.drop_index('ix_history_related', 'history')
    op.drop_column('history', 'related')
