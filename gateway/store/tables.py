"""Table definitions (SQLAlchemy Core). Times are UTC epoch seconds (floats); the web and
CLI layers present them as aware datetimes in Asia/Ho_Chi_Minh."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

#: 64-bit ids on PostgreSQL (migration 0002); SQLite's INTEGER PRIMARY KEY is its 64-bit rowid
Id = BigInteger().with_variant(Integer(), "sqlite")

messages = Table(
    "messages",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("uid", String(32), nullable=False, unique=True),
    Column("source", String(64), nullable=False),
    Column("event", String(128), nullable=False),
    Column("external_id", String(256), nullable=False),
    Column("ref", String(256), nullable=False),
    Column("dossier_key", String(256), nullable=False),
    Column("procedure", String(64)),
    Column("revision", Integer, nullable=False, server_default="1"),
    Column("content_hash", String(64), nullable=False),
    Column("payload", Text, nullable=False),
    Column("received_at", Float, nullable=False),
    Column("parent_delivery_id", Id),
    UniqueConstraint("source", "external_id", "content_hash", name="uq_messages_dedupe"),
)
Index("ix_messages_dossier", messages.c.dossier_key)
Index("ix_messages_source_external", messages.c.source, messages.c.external_id)

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("message_id", Id, ForeignKey("messages.id"), nullable=False),
    Column("destination", String(64), nullable=False),
    Column("route", String(256), nullable=False),
    Column("dossier_key", String(256), nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", Float, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("deadline_at", Float, nullable=False),
    Column("delivered_at", Float),
    Column("lease_owner", String(128)),
    Column("lease_expires_at", Float),
    Column("idempotency_key", String(80), nullable=False, unique=True),
    Column("last_status", Integer),
    Column("last_error", Text),
)
Index("ix_deliveries_claim", deliveries.c.destination, deliveries.c.status, deliveries.c.id)
Index(
    "ix_deliveries_order",
    deliveries.c.dossier_key,
    deliveries.c.destination,
    deliveries.c.id,
)
Index("ix_deliveries_message", deliveries.c.message_id)
Index("ix_deliveries_status_updated", deliveries.c.status, deliveries.c.updated_at)

delivery_log = Table(
    "delivery_log",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("chain", String(128), nullable=False),
    Column("seq", Id, nullable=False),
    Column("at", Float, nullable=False),
    Column("delivery_id", Id, nullable=False),
    Column("dossier_key", String(256), nullable=False),
    Column("source", String(64), nullable=False),
    Column("destination", String(64), nullable=False),
    Column("route", String(256), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("outcome", String(32), nullable=False),
    Column("http_status", Integer),
    Column("duration_ms", Float, nullable=False),
    Column("bytes_sent", Integer, nullable=False),
    Column("bytes_received", Integer, nullable=False),
    Column("error_class", String(128)),
    Column("error_message", Text),
    Column("next_attempt_at", Float),
    Column("node", String(128), nullable=False),
    Column("actor", String(128)),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    UniqueConstraint("chain", "seq", name="uq_delivery_log_chain_seq"),
)
Index("ix_delivery_log_delivery", delivery_log.c.delivery_id)
Index("ix_delivery_log_dossier", delivery_log.c.dossier_key)
Index("ix_delivery_log_dest_at", delivery_log.c.destination, delivery_log.c.at)
Index("ix_delivery_log_at", delivery_log.c.at)

breakers = Table(
    "breakers",
    metadata,
    Column("destination", String(64), primary_key=True),
    Column("state", String(16), nullable=False),
    Column("failures", Integer, nullable=False),
    Column("opened_at", Float),
    Column("updated_at", Float, nullable=False),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("at", Float, nullable=False),
    Column("actor", String(128), nullable=False),
    Column("action", String(64), nullable=False),
    Column("target", String(256), nullable=False),
    Column("detail", Text, nullable=False, server_default=""),
)

poll_cursors = Table(
    "poll_cursors",
    metadata,
    Column("system", String(64), primary_key=True),
    Column("cursor", Text),
    Column("updated_at", Float, nullable=False),
)

#: cluster membership (migration 0003): the fencing generation of each node
nodes = Table(
    "nodes",
    metadata,
    Column("node_id", String(128), primary_key=True),
    Column("generation", BigInteger, nullable=False),
    Column("alive", Boolean, nullable=False),
    Column("joined_at", Float, nullable=False),
    Column("fenced_at", Float),
    Column("fenced_by", String(128)),
)

#: when each node last beat (apart from ``nodes``: a beat never waits for the node's cycle)
node_heartbeats = Table(
    "node_heartbeats",
    metadata,
    Column("node_id", String(128), primary_key=True),
    Column("at", Float, nullable=False),
)

#: once-per-cluster schedules (migration 0003): who runs a job now and when it is due next
schedules = Table(
    "schedules",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("owner", String(128)),
    Column("generation", BigInteger),
    Column("started_at", Float),
    Column("next_run_at", Float, nullable=False),
    Column("last_run_at", Float),
    Column("last_node", String(128)),
    Column("last_error", Text),
    Column("runs", BigInteger, nullable=False, server_default="0"),
)

#: signed-out dashboard sessions (migration 0004), refused by every node until they expire
revoked_sessions = Table(
    "revoked_sessions",
    metadata,
    Column("sid", String(64), primary_key=True),
    Column("expires_at", Float, nullable=False),
    Column("revoked_at", Float, nullable=False),
    Column("actor", String(128), nullable=False, server_default=""),
)
Index("ix_revoked_sessions_expires", revoked_sessions.c.expires_at)

#: random keys made once per database (migration 0004), e.g. the CCCD pseudonym key
gateway_keys = Table(
    "gateway_keys",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", String(128), nullable=False),
    Column("created_at", Float, nullable=False),
)
