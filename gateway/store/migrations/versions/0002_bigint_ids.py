"""64-bit ids on PostgreSQL (a national delivery log outgrows 2^31 rows).

SQLite's INTEGER PRIMARY KEY is already 64-bit: nothing to do there.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

ID_COLUMNS = {
    "messages": ("id", "parent_delivery_id"),
    "deliveries": ("id", "message_id"),
    "delivery_log": ("id", "delivery_id", "seq"),
    "audit_log": ("id",),
}
SEQUENCES = ("messages_id_seq", "deliveries_id_seq", "delivery_log_id_seq", "audit_log_id_seq")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, columns in ID_COLUMNS.items():
        for column in columns:
            op.alter_column(table, column, type_=sa.BigInteger())
    for sequence in SEQUENCES:
        op.execute(f"ALTER SEQUENCE {sequence} AS bigint")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for sequence in SEQUENCES:
        op.execute(f"ALTER SEQUENCE {sequence} AS integer")
    for table, columns in ID_COLUMNS.items():
        for column in columns:
            op.alter_column(table, column, type_=sa.Integer())
