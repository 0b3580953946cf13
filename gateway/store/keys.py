"""Rows every node shares that are not traffic: signed-out sessions and the store's keys.

Write functions take the write transaction's connection (run them with ``Store.write``);
reads take an async connection of the store's reader.
"""

from __future__ import annotations

import secrets

from sqlalchemy import delete, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.store.tables import gateway_keys, revoked_sessions


def _insert_ignore(conn: Connection, table: object, row: dict[str, object]) -> None:
    dialect = conn.dialect.name
    if dialect == "postgresql":
        conn.execute(postgresql.insert(table).values(**row).on_conflict_do_nothing())  # type: ignore[arg-type]
    elif dialect == "sqlite":
        conn.execute(sqlite.insert(table).values(**row).on_conflict_do_nothing())  # type: ignore[arg-type]
    else:  # pragma: no cover - the gateway runs on SQLite or PostgreSQL
        conn.execute(insert(table).values(**row))  # type: ignore[arg-type]


def revoke_session(conn: Connection, sid: str, expires_at: float, actor: str, now: float) -> None:
    """Refuse session ``sid`` from now until ``expires_at``; forget the expired ones."""
    conn.execute(delete(revoked_sessions).where(revoked_sessions.c.expires_at < now))
    _insert_ignore(
        conn,
        revoked_sessions,
        {"sid": sid, "expires_at": expires_at, "revoked_at": now, "actor": actor[:128]},
    )


async def session_revoked(reader: AsyncEngine, sid: str) -> bool:
    async with reader.connect() as conn:
        row = await conn.execute(
            select(revoked_sessions.c.sid).where(revoked_sessions.c.sid == sid)
        )
        return row.first() is not None


def ensure_key(conn: Connection, name: str, now: float) -> str:
    """The random key called ``name`` (64 hex digits), made the first time it is asked for;
    every node of one database gets the same."""
    found = conn.execute(select(gateway_keys.c.value).where(gateway_keys.c.name == name)).first()
    if found is not None:
        return str(found[0])
    _insert_ignore(
        conn, gateway_keys, {"name": name, "value": secrets.token_hex(32), "created_at": now}
    )
    row = conn.execute(select(gateway_keys.c.value).where(gateway_keys.c.name == name)).one()
    return str(row[0])


async def read_key(reader: AsyncEngine, name: str) -> str | None:
    """The key ``name`` if it was made (read-only: never makes one)."""
    async with reader.connect() as conn:
        row = await conn.execute(select(gateway_keys.c.value).where(gateway_keys.c.name == name))
        found = row.first()
        return None if found is None else str(found[0])
