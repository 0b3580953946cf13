"""social_assistance: open alerts for lists not built or sent, the sends of each month, and
the months of early-start holds.

Revision ID: sa0002
Revises: sa0001
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "sa0002"
down_revision = "sa0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sa_alerts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("ky", sa.String(7), nullable=False),
        sa.Column("ma_xa", sa.String(8), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("people", sa.Integer, nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("hint", sa.Text, nullable=False),
        sa.Column("opened_at", sa.Float, nullable=False),
        sa.Column("last_attempt_at", sa.Float, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("resolved_at", sa.Float),
        sa.Column("resolved_by", sa.String(128)),
    )
    op.create_index("ix_sa_alerts_ky", "sa_alerts", ["ky", "ma_xa"])
    op.create_table(
        "sa_send_runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("ky", sa.String(7), nullable=False),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("whole_scope", sa.Integer, nullable=False),
        sa.Column("unpaid", sa.Integer, nullable=False),
    )
    op.create_index("ix_sa_send_runs_ky", "sa_send_runs", ["ky"])
    with op.batch_alter_table("sa_decisions") as batch:
        batch.add_column(sa.Column("registry_month", sa.String(7)))
        batch.add_column(sa.Column("rules_month", sa.String(7)))


def downgrade() -> None:
    with op.batch_alter_table("sa_decisions") as batch:
        batch.drop_column("rules_month")
        batch.drop_column("registry_month")
    op.drop_index("ix_sa_send_runs_ky", "sa_send_runs")
    op.drop_table("sa_send_runs")
    op.drop_index("ix_sa_alerts_ky", "sa_alerts")
    op.drop_table("sa_alerts")
