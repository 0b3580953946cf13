"""Pollers: the systems that are asked for news (``poll_interval``) rather than pushing it.

One poll asks the system's connector for what is new since the stored cursor, takes it in
through the engine's one intake (:meth:`DeliveryEngine.submit`, as a push) and moves the
cursor. The scheduler (:mod:`gateway.engine.scheduler`) runs each
system's poll once per cluster, every ``poll_interval`` seconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import aiohttp

from gateway.connector import Connector
from gateway.engine.worker import DeliveryEngine
from gateway.log import get_logger
from gateway.model import without_too_deep
from gateway.store import Store, StoreUnavailable

log = get_logger("gateway.polling")


def poller(
    system: str,
    *,
    store: Store,
    engine: DeliveryEngine,
    connector: Callable[[], Connector],
    session: aiohttp.ClientSession,
) -> Callable[[], Awaitable[None]]:
    """One poll of ``system`` (``connector()`` gives its current connector: reloads swap it)."""

    async def poll_once() -> None:
        cursor = await store.get_cursor(system)
        parsed, new_cursor = await connector().poll(session, cursor)
        parsed = without_too_deep(parsed, engine.config.limits.max_nesting_depth)
        try:
            answer = await engine.submit(system, parsed)  # the one intake
        except StoreUnavailable as exc:
            log.warning("poll_store_unavailable", system=system, error=str(exc))
            return
        for r in answer.rejected:
            log.warning("poll_item_rejected", system=system, ref=r["ref"], errors=r["errors"])
        if new_cursor != cursor:  # shielded: never abandon a write transaction half-way
            await asyncio.shield(store.set_cursor(system, new_cursor))

    return poll_once
