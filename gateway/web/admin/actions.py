"""Operator actions shared by the admin API and the dashboard."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

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


#: what an audit entry calls an operator's look at one record's personal data in full
REVEAL_ACTION = "reveal"


async def reveal(app: web.Application, delivery_id: int, who: Principal) -> dict[str, Any] | None:
    """One delivery's stored row with its payload in full, for an operator or admin; the
    look is audited first (who, which delivery, when), so nothing is shown unrecorded.
    None when there is no such delivery. Everywhere else every role sees masked data."""
    store = need(app, STORE)
    row = await store.get_delivery(delivery_id)
    if row is None:
        return None
    await store.audit(who.actor, REVEAL_ACTION, f"delivery {delivery_id}", "payload in full")
    log.info("personal_data_revealed", actor=who.actor, delivery=delivery_id)
    return row
