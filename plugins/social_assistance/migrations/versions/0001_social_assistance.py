"""social_assistance: decisions, payment lists and payment results (sa_ tables).

Revision ID: sa0001
Revises:
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "sa0001"
down_revision = None
branch_labels = ("social_assistance",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sa_decisions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("so", sa.String(128), nullable=False),
        sa.Column("ma_ho_so", sa.String(256), nullable=False),
        sa.Column("so_dinh_danh", sa.String(32), nullable=False),
        sa.Column("ngay_ky", sa.String(10), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("registry_amount", sa.BigInteger),
        sa.Column("rules_amount", sa.BigInteger),
        sa.Column("accepted_figure", sa.String(16)),
        sa.Column("accepted_by", sa.String(128)),
        sa.Column("accepted_at", sa.Float),
        sa.Column("received_at", sa.Float, nullable=False),
        sa.UniqueConstraint("ma_ho_so", "so", "ngay_ky", "content_hash", name="uq_sa_decisions"),
    )
    op.create_index("ix_sa_decisions_state", "sa_decisions", ["state"])
    op.create_table(
        "sa_lists",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("ky", sa.String(7), nullable=False),
        sa.Column("ma_xa", sa.String(8), nullable=False),
        sa.Column("lan_gui", sa.Integer, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("lines", sa.Text, nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("total_people", sa.Integer, nullable=False),
        sa.Column("total_amount", sa.BigInteger, nullable=False),
        sa.Column("built_at", sa.Float, nullable=False),
        sa.Column("message_uid", sa.String(32), nullable=False),
        sa.UniqueConstraint("ky", "ma_xa", "lan_gui", name="uq_sa_lists"),
    )
    op.create_table(
        "sa_results",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("ky", sa.String(7), nullable=False),
        sa.Column("ma_xa", sa.String(8), nullable=False),
        sa.Column("so_dinh_danh", sa.String(32), nullable=False),
        sa.Column("loai_doi_tuong", sa.String(16), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("received_at", sa.Float, nullable=False),
        sa.UniqueConstraint("ky", "ma_xa", "so_dinh_danh", "loai_doi_tuong", name="uq_sa_results"),
    )


def downgrade() -> None:
    op.drop_table("sa_results")
    op.drop_table("sa_lists")
    op.drop_table("sa_decisions")
