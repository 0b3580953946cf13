"""The durable store: SQLAlchemy Core tables, queries and Alembic migrations.

SQLite (WAL, ``synchronous=FULL``) is the embedded default; PostgreSQL serves many nodes.
"""

from gateway.store.records import (
    AttemptRecord,
    ClaimedDelivery,
    DeliveryFilter,
    IngestResult,
    IntakeItem,
    LogFilter,
    StoreUnavailable,
)
from gateway.store.store import NoDatabase, Store

__all__ = [
    "AttemptRecord",
    "ClaimedDelivery",
    "DeliveryFilter",
    "IngestResult",
    "IntakeItem",
    "LogFilter",
    "NoDatabase",
    "Store",
    "StoreUnavailable",
]
