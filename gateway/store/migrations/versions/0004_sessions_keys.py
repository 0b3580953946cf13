"""Signed-out dashboard sessions and the store's own keys, shared by every node.

* ``revoked_sessions``: a session id signed out (or revoked) stays refused after a restart
  and on every other node, until the cookie would have expired anyway.
* ``gateway_keys``: named random keys made once per database, for example the key of the
  keyed hash that stands for a CCCD in keys and references (``cccd-pseudonym``).

Revision ID: 0004_sessions_keys
Revises: 0003
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_sessions_keys"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "revoked_sessions",
        sa.Column("sid", sa.String(64), primary_key=True),
        sa.Column("expires_at", sa.Float, nullable=False),
        sa.Column("revoked_at", sa.Float, nullable=False),
        sa.Column("actor", sa.String(128), nullable=False, server_default=""),
    )
    op.create_index("ix_revoked_sessions_expires", "revoked_sessions", ["expires_at"])
    op.create_table(
        "gateway_keys",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.String(128), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("gateway_keys")
    op.drop_index("ix_revoked_sessions_expires", "revoked_sessions")
    op.drop_table("revoked_sessions")
