"""Operator actions shared by the admin API and the dashboard."""

from __future__ import annotations

from collections.abc import Sequence

from aiohttp import web

from gateway.log import get_logger
from gateway.web.admin import queries
from gateway.web.admin.auth import Principal
from gateway.web.keys import ADMIN_METRICS, ENGINE, STORE, admin_need, need

log = get_logger("gateway.admin")


async def retry_dead(
    app: web.Application, ids: Sequence[int], who: Principal
) -> tuple[list[int], list[int]]:
    """Queue dead deliveries again (logged as ``replayed`` with ``who`` and audited by the
    store) and wake their lanes. Returns (retried, left alone: unknown or not dead)."""
    store, engine = need(app, STORE), need(app, ENGINE)
    wanted = sorted(set(ids))
    destinations = await queries.destinations_of(store, wanted)
    retried = await store.retry_dead(wanted, who.actor)
    if retried:
        engine.accepted(len(retried))
        engine.wake({destinations[i] for i in retried if i in destinations})
        metrics = admin_need(app, ADMIN_METRICS)
        for i in retried:
            metrics.replays.labels(destinations.get(i, "?"), who.via).inc()
    log.info("dead_letters_retried", actor=who.actor, retried=retried)
    done = set(retried)
    return retried, [i for i in wanted if i not in done]
