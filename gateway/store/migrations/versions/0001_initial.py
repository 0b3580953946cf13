"""Initial schema: messages, deliveries, delivery log, breakers, audit log, poll cursors.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = ("gateway",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "messages",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("uid", sa.String(32), nullable=False, unique=True),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("event", sa.String(128), nullable=False),
        sa.Column("external_id", sa.String(256), nullable=False),
        sa.Column("ref", sa.String(256), nullable=False),
        sa.Column("dossier_key", sa.String(256), nullable=False),
        sa.Column("procedure", sa.String(64)),
        sa.Column("revision", sa.Integer, nullable=False, server_default="1"),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("received_at", sa.Float, nullable=False),
        sa.Column("parent_delivery_id", sa.Integer),
        sa.UniqueConstraint("source", "external_id", "content_hash", name="uq_messages_dedupe"),
    )
    op.create_index("ix_messages_dossier", "messages", ["dossier_key"])
    op.create_index("ix_messages_source_external", "messages", ["source", "external_id"])

    op.create_table(
        "deliveries",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("message_id", sa.Integer, sa.ForeignKey("messages.id"), nullable=False),
        sa.Column("destination", sa.String(64), nullable=False),
        sa.Column("route", sa.String(256), nullable=False),
        sa.Column("dossier_key", sa.String(256), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.Float, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("deadline_at", sa.Float, nullable=False),
        sa.Column("delivered_at", sa.Float),
        sa.Column("lease_owner", sa.String(128)),
        sa.Column("lease_expires_at", sa.Float),
        sa.Column("idempotency_key", sa.String(80), nullable=False, unique=True),
        sa.Column("last_status", sa.Integer),
        sa.Column("last_error", sa.Text),
    )
    op.create_index("ix_deliveries_claim", "deliveries", ["destination", "status", "id"])
    op.create_index("ix_deliveries_order", "deliveries", ["dossier_key", "destination", "id"])
    op.create_index("ix_deliveries_message", "deliveries", ["message_id"])
    op.create_index("ix_deliveries_status_updated", "deliveries", ["status", "updated_at"])

    op.create_table(
        "delivery_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("chain", sa.String(128), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("delivery_id", sa.Integer, nullable=False),
        sa.Column("dossier_key", sa.String(256), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("destination", sa.String(64), nullable=False),
        sa.Column("route", sa.String(256), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("http_status", sa.Integer),
        sa.Column("duration_ms", sa.Float, nullable=False),
        sa.Column("bytes_sent", sa.Integer, nullable=False),
        sa.Column("bytes_received", sa.Integer, nullable=False),
        sa.Column("error_class", sa.String(128)),
        sa.Column("error_message", sa.Text),
        sa.Column("next_attempt_at", sa.Float),
        sa.Column("node", sa.String(128), nullable=False),
        sa.Column("actor", sa.String(128)),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.UniqueConstraint("chain", "seq", name="uq_delivery_log_chain_seq"),
    )
    op.create_index("ix_delivery_log_delivery", "delivery_log", ["delivery_id"])
    op.create_index("ix_delivery_log_dossier", "delivery_log", ["dossier_key"])
    op.create_index("ix_delivery_log_dest_at", "delivery_log", ["destination", "at"])
    op.create_index("ix_delivery_log_at", "delivery_log", ["at"])

    op.create_table(
        "breakers",
        sa.Column("destination", sa.String(64), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("opened_at", sa.Float),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.String(256), nullable=False),
        sa.Column("detail", sa.Text, nullable=False, server_default=""),
    )
    op.create_table(
        "poll_cursors",
        sa.Column("system", sa.String(64), primary_key=True),
        sa.Column("cursor", sa.Text),
        sa.Column("updated_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "poll_cursors",
        "audit_log",
        "breakers",
        "delivery_log",
        "deliveries",
        "messages",
    ):
        op.drop_table(table)
