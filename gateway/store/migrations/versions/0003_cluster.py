"""Cluster membership and once-per-cluster schedules (DESIGN.md §5).

``nodes``: one row per node id and its generation (the fencing token: a node records
attempts and finishes scheduled runs only while the row still carries the generation it
joined with). ``node_heartbeats``: when each node last beat (a table of its own, so that a
heartbeat never waits for the node's own write cycle, which holds its ``nodes`` row).
``schedules``: one row per scheduled job or poller, naming the node running it now (if
any) and when it is due next.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "nodes",
        sa.Column("node_id", sa.String(128), primary_key=True),
        sa.Column("generation", sa.BigInteger, nullable=False),
        sa.Column("alive", sa.Boolean, nullable=False),
        sa.Column("joined_at", sa.Float, nullable=False),
        sa.Column("fenced_at", sa.Float),
        sa.Column("fenced_by", sa.String(128)),
    )
    op.create_table(
        "node_heartbeats",
        sa.Column("node_id", sa.String(128), primary_key=True),
        sa.Column("at", sa.Float, nullable=False),
    )
    op.create_table(
        "schedules",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("owner", sa.String(128)),
        sa.Column("generation", sa.BigInteger),
        sa.Column("started_at", sa.Float),
        sa.Column("next_run_at", sa.Float, nullable=False),
        sa.Column("last_run_at", sa.Float),
        sa.Column("last_node", sa.String(128)),
        sa.Column("last_error", sa.Text),
        sa.Column("runs", sa.BigInteger, nullable=False, server_default="0"),
    )


def downgrade() -> None:
    op.drop_table("schedules")
    op.drop_table("node_heartbeats")
    op.drop_table("nodes")
