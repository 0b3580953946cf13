"""Metrics the operator surface adds to the app's registry (the engine's own are in
:mod:`gateway.metrics`): backlog read from the store, replays and refused requests.

Store-backed gauges are refreshed by a task started ``on_startup`` and stopped
``on_shutdown``: those run after the core's ``cleanup_ctx`` has opened the store and before
it closes it, which a ``cleanup_ctx`` registered by :func:`setup_admin` (earlier than the
core's) could not guarantee.
"""

from __future__ import annotations

import asyncio
import contextlib

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge

from gateway.log import get_logger, mask_text
from gateway.web.admin import queries
from gateway.web.keys import ADMIN_METRICS, CONFIG, REFRESHER, STORE, admin_need, need

log = get_logger("gateway.admin.metrics")
REFRESH_SECONDS = 15.0


class AdminMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.destination_queue = Gauge(
            "gateway_destination_queue_depth",
            "Deliveries pending or in flight, by destination (store)",
            ["destination"],
            registry=registry,
        )
        self.dead_waiting = Gauge(
            "gateway_dead_letters_waiting",
            "Dead deliveries waiting for an operator, by destination (store)",
            ["destination"],
            registry=registry,
        )
        self.replays = Counter(
            "gateway_replays",
            "Dead deliveries put back in the queue by an operator",
            ["destination", "channel"],
            registry=registry,
        )
        self.auth_refusals = Counter(
            "gateway_admin_refusals",
            "Refused admin API and dashboard requests, by reason",
            ["reason"],
            registry=registry,
        )

    async def refresh(self, app: web.Application) -> None:
        backlog = await queries.backlog(need(app, STORE))
        for name in need(app, CONFIG).systems:
            counts = backlog.get(name, {})
            self.destination_queue.labels(name).set(
                counts.get("pending", 0) + counts.get("in_flight", 0)
            )
            self.dead_waiting.labels(name).set(counts.get("dead", 0))


async def _refresh_forever(app: web.Application) -> None:
    metrics = admin_need(app, ADMIN_METRICS)
    while True:
        try:
            await metrics.refresh(app)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("admin_metrics_refresh_failed", error=mask_text(repr(exc)))
        await asyncio.sleep(REFRESH_SECONDS)


async def start_refresher(app: web.Application) -> None:
    app[REFRESHER] = asyncio.create_task(_refresh_forever(app), name="admin-metrics")


async def stop_refresher(app: web.Application) -> None:
    task = app.get(REFRESHER)
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
