"""The durable store: SQLAlchemy Core tables, queries and Alembic migrations.

SQLite (WAL, ``synchronous=FULL``) is the embedded default; PostgreSQL serves many nodes.
"""

from gateway.store.store import Store, StoreUnavailable

__all__ = ["Store", "StoreUnavailable"]
