"""roles: secrets in their own table, webhook tokens as SHA-256 hashes, and on PostgreSQL the
team roles, their GRANTs and the actor the database writes (DESIGN section 15)"""

import logging

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('secrets',
    sa.Column('key', sa.String(length=100), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_secrets'))
    )
    conn = op.get_bind()
    from app.store.roles import setup_roles
    from app.store.secrets import move_secrets_out_of_settings
    from app.store.workflows import hash_stored_webhook_tokens

    move_secrets_out_of_settings(conn)
    hash_stored_webhook_tokens(conn)
    for notice in setup_roles(conn, grant=False):  # PostgreSQL only; `clinicflow init` prints these too
        logging.getLogger(__name__).warning("%s", notice)


def downgrade() -> None:
    op.drop_table('secrets')
