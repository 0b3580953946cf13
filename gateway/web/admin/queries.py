"""Read-only queries of the operator surface that :class:`~gateway.store.Store` does not have.

They read through the store's reader engine and its tables (SQLAlchemy Core, portable to
SQLite and PostgreSQL) and never write: every change goes through the store's own methods.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from sqlalchemy import case, func, or_, select

from gateway.model import DeliveryStatus, Outcome
from gateway.store import Store
from gateway.store.tables import audit_log, deliveries, delivery_log, messages
from gateway.web.admin.labels import REFUSED_FROM

#: Log outcomes that are attempts (``replayed`` rows are operator actions, not attempts).
ATTEMPTS = (Outcome.DELIVERED.value, Outcome.RETRY.value, Outcome.DEAD.value)
FAILED = (Outcome.RETRY.value, Outcome.DEAD.value)
WAITING = (DeliveryStatus.PENDING.value, DeliveryStatus.IN_FLIGHT.value, DeliveryStatus.DEAD.value)
dl = delivery_log.c


async def attempt_counts(store: Store, since: float) -> dict[str, dict[str, int]]:
    """Attempts since ``since`` by destination and outcome."""
    query = (
        select(dl.destination, dl.outcome, func.count())
        .where(dl.at >= since, dl.outcome.in_(ATTEMPTS))
        .group_by(dl.destination, dl.outcome)
    )
    out: dict[str, dict[str, int]] = {}
    async with store.reader.connect() as conn:
        for dest, outcome, count in await conn.execute(query):
            out.setdefault(dest, {})[outcome] = int(count)
    return out


async def p95_ms(store: Store, destination: str, since: float, count: int) -> float | None:
    """The 95th percentile (nearest rank) of attempt durations since ``since``."""
    if count <= 0:
        return None
    rank = math.ceil(0.95 * count)
    query = (
        select(dl.duration_ms)
        .where(dl.destination == destination, dl.at >= since, dl.outcome.in_(ATTEMPTS))
        .order_by(dl.duration_ms)
        .limit(1)
        .offset(rank - 1)
    )
    async with store.reader.connect() as conn:
        value = (await conn.execute(query)).scalar()
    return None if value is None else float(value)


async def hourly(store: Store, start: float, hours: int = 24) -> dict[str, list[tuple[int, int]]]:
    """(delivered, failed) attempts per hour from ``start``, by destination."""
    bucket = case(*[(dl.at < start + (i + 1) * 3600, i) for i in range(hours - 1)], else_=hours - 1)
    rows = (
        select(dl.destination, dl.outcome, bucket.label("hour"))
        .where(dl.at >= start, dl.at < start + hours * 3600, dl.outcome.in_(ATTEMPTS))
        .subquery()
    )
    query = select(rows.c.destination, rows.c.outcome, rows.c.hour, func.count()).group_by(
        rows.c.destination, rows.c.outcome, rows.c.hour
    )
    out: dict[str, list[list[int]]] = {}
    async with store.reader.connect() as conn:
        for dest, outcome, hour, count in await conn.execute(query):
            bars = out.setdefault(dest, [[0, 0] for _ in range(hours)])
            bars[int(hour)][0 if outcome == Outcome.DELIVERED.value else 1] += int(count)
    return {dest: [(d, f) for d, f in bars] for dest, bars in out.items()}


async def last_errors(store: Store, since: float) -> dict[str, tuple[float, str]]:
    """The latest error message logged for each destination since ``since`` (a failure or a
    refusal: a delivered attempt's receipt is an answer, not an error)."""
    latest = (
        select(dl.destination, func.max(dl.id).label("id"))
        .where(
            dl.at >= since,
            dl.error_message.is_not(None),
            or_(dl.outcome != "delivered", dl.http_status >= REFUSED_FROM),
        )
        .group_by(dl.destination)
        .subquery()
    )
    query = select(dl.destination, dl.at, dl.error_message).join(latest, dl.id == latest.c.id)
    async with store.reader.connect() as conn:
        return {dest: (float(at), str(msg)) for dest, at, msg in await conn.execute(query)}


async def received(store: Store, since: float) -> dict[str, int]:
    """Messages taken in since ``since``, by source system."""
    m = messages.c
    query = select(m.source, func.count()).where(m.received_at >= since).group_by(m.source)
    async with store.reader.connect() as conn:
        return {src: int(count) for src, count in await conn.execute(query)}


async def backlog(store: Store) -> dict[str, dict[str, int]]:
    """Deliveries pending, in flight and dead, by destination (delivered ones are not read)."""
    d = deliveries.c
    query = (
        select(d.destination, d.status, func.count())
        .where(d.status.in_(WAITING))
        .group_by(d.destination, d.status)
    )
    out: dict[str, dict[str, int]] = {}
    async with store.reader.connect() as conn:
        for dest, status, count in await conn.execute(query):
            out.setdefault(dest, {})[status] = int(count)
    return out


async def payloads(store: Store, delivery_ids: Sequence[int]) -> dict[int, str]:
    """The stored message body (JSON text) of each delivery."""
    if not delivery_ids:
        return {}
    query = (
        select(deliveries.c.id, messages.c.payload)
        .join(messages, messages.c.id == deliveries.c.message_id)
        .where(deliveries.c.id.in_(list(delivery_ids)))
    )
    async with store.reader.connect() as conn:
        return {int(i): str(p) for i, p in await conn.execute(query)}


async def destinations_of(store: Store, delivery_ids: Sequence[int]) -> dict[int, str]:
    if not delivery_ids:
        return {}
    query = select(deliveries.c.id, deliveries.c.destination).where(
        deliveries.c.id.in_(list(delivery_ids))
    )
    async with store.reader.connect() as conn:
        return {int(i): str(dest) for i, dest in await conn.execute(query)}


async def audit_entries(
    store: Store, *, limit: int, before_id: int | None = None
) -> list[dict[str, Any]]:
    """The audit log, newest first (cursor: ``before_id``)."""
    query = select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
    if before_id is not None:
        query = query.where(audit_log.c.id < before_id)
    async with store.reader.connect() as conn:
        return [dict(r._mapping) for r in await conn.execute(query)]
