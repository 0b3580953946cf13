"""funeral_support: the claims table.

Revision ID: fs0001
Revises:
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "fs0001"
down_revision = None
branch_labels = ("funeral_support",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fs_claims",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("ma_ho_so", sa.String(64), nullable=False, unique=True),
        sa.Column("so_dinh_danh", sa.String(12), nullable=False),
        sa.Column("amount_vnd", sa.BigInteger, nullable=False),
        sa.Column("payment_uid", sa.String(32), nullable=False),
        sa.Column("received_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("fs_claims")
