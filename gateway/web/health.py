"""``/healthz`` (process up), ``/readyz`` (store reachable, migrations applied), ``/metrics``."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from gateway.web.keys import ENGINE, METRICS, PLUGINS, STORE, need


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    store = need(request.app, STORE)
    try:
        await store.ping()
        missing = await store.pending_migrations(need(request.app, PLUGINS).migration_dirs())
    except Exception as exc:
        return web.json_response({"status": "unavailable", "store": str(exc)[:200]}, status=503)
    if missing:
        return web.json_response(
            {"status": "unavailable", "migrations": f"not applied: {', '.join(sorted(missing))}"},
            status=503,
        )
    if need(request.app, ENGINE).draining:
        return web.json_response({"status": "draining"}, status=503)
    return web.json_response({"status": "ready"})


async def metrics(request: web.Request) -> web.Response:
    body = need(request.app, METRICS).render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
