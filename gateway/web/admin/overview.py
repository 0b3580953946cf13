"""The state of every external system, for the overview page and ``GET /api/v1/systems``."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from gateway.log import mask_text
from gateway.web.admin import queries
from gateway.web.keys import CONFIG, ENGINE, STORE, need

HOUR = 3600.0
DAY_HOURS = 24


def hour_start(now: float) -> float:
    return now - now % HOUR


async def system_overview(app: web.Application, now: float | None = None) -> list[dict[str, Any]]:
    """Per configured system: queue, in flight, last-hour counts and p95, breaker, last error
    and 24 hourly (delivered, failed) bars, the last of which is the current hour."""
    now = time.time() if now is None else now
    config, store, engine = need(app, CONFIG), need(app, STORE), need(app, ENGINE)
    hour_ago, day_start = now - HOUR, hour_start(now) - (DAY_HOURS - 1) * HOUR
    counts = await queries.attempt_counts(store, hour_ago)
    backlog = await queries.backlog(store)
    bars = await queries.hourly(store, day_start, DAY_HOURS)
    errors = await queries.last_errors(store, now - DAY_HOURS * HOUR)
    received = await queries.received(store, hour_ago)
    out = []
    for name, system in config.systems.items():
        lane = engine.lanes.get(name)
        c = counts.get(name, {})
        attempts = sum(c.values())
        waiting = backlog.get(name, {})
        logged = errors.get(name)
        last_error = (lane.last_error if lane is not None else None) or (
            logged[1] if logged else None
        )
        out.append(
            {
                "name": name,
                "plugin": system.plugin,
                "queue_depth": waiting.get("pending", 0) + waiting.get("in_flight", 0),
                "in_flight": lane.in_flight if lane is not None else 0,
                "dead": waiting.get("dead", 0),
                "received_1h": received.get(name, 0),
                "delivered_1h": c.get("delivered", 0),
                "failed_1h": sum(c.get(o, 0) for o in queries.FAILED),
                "p95_ms": await queries.p95_ms(store, name, hour_ago, attempts),
                "breaker": lane.breaker.state.value if lane is not None else "closed",
                "last_error": mask_text(last_error) if last_error else None,
                "last_error_at": logged[0] if logged else None,
                "hourly": [
                    {"start": day_start + i * HOUR, "delivered": d, "failed": f}
                    for i, (d, f) in enumerate(bars.get(name, [(0, 0)] * DAY_HOURS))
                ],
            }
        )
    return out
