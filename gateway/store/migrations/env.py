"""Alembic environment: runs on the connection the gateway hands it (see migrate.py)."""

from __future__ import annotations

from alembic import context

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - always called through gateway.store.migrate
    raise RuntimeError("run migrations with `gateway db upgrade`, not the alembic command")

context.configure(connection=connection, target_metadata=None, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
