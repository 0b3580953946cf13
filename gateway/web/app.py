"""``create_app(config)``: the gateway as an aiohttp application.

Everything with a lifetime (store, HTTP client session, connectors, the delivery engine and
its cluster membership, the scheduler of pollers and plugin jobs) is started and stopped in
``cleanup_ctx``, in that order, so a test, ``gateway run`` and ``gateway demo`` all run the
same code.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from gateway import pseudonym
from gateway.config import Config
from gateway.connector import Connector
from gateway.engine.intake import Intake
from gateway.engine.polling import poller
from gateway.engine.scheduler import Scheduler
from gateway.engine.worker import DeliveryEngine
from gateway.hookspecs import JobContext
from gateway.log import get_logger, mask_text
from gateway.metrics import Metrics
from gateway.model import PermanentError
from gateway.plugins import PluginError, Plugins, plugins_for
from gateway.routing import RouteTable, unemitted
from gateway.store import Store
from gateway.web import health, inbound
from gateway.web.admin import setup_admin
from gateway.web.errors import error_middleware
from gateway.web.keys import (
    CONFIG,
    CONNECTORS,
    ENGINE,
    METRICS,
    PLUGINS,
    SCHEDULER,
    SESSION,
    STORE,
    need,
)

log = get_logger("gateway.app")


def build_connectors(config: Config, plugins: Plugins) -> dict[str, Connector]:
    """One connector per configured system; a missing plugin stops start-up with its reason."""
    connectors: dict[str, Connector] = {}
    for name, system in config.systems.items():
        try:
            connectors[name] = plugins.build_connector(system)
        except PluginError as exc:
            where = "" if str(exc).startswith(f"systems.{name}.") else f"systems.{name}.plugin: "
            raise PluginError(f"{config.path}: {where}{exc}") from None
    return connectors


def make_runner(app: web.Application, **kwargs: Any) -> web.AppRunner:
    """The runner every server of the gateway uses: idle and slow clients are cut off after
    ``limits.client_idle_timeout`` (aiohttp's keep-alive timer also runs before the first
    request, so a connection that never completes its headers is closed too)."""
    limits = need(app, CONFIG).limits
    return web.AppRunner(
        app, access_log=None, keepalive_timeout=limits.client_idle_timeout, **kwargs
    )


def create_app(config: Config, *, plugins: Plugins | None = None) -> web.Application:
    """Build the gateway application (nothing starts until the app runs)."""
    plugins = plugins or plugins_for(config)
    app = web.Application(
        client_max_size=config.limits.max_body_bytes,
        middlewares=[error_middleware],
    )
    app[CONFIG] = config
    app[PLUGINS] = plugins
    app[METRICS] = Metrics()
    app[CONNECTORS] = build_connectors(config, plugins)
    app[inbound.BUDGET] = inbound.UnsignedBudget(
        config.limits.unsigned_total, config.limits.unsigned_per_system
    )
    app.router.add_post("/inbound/{system}", inbound.inbound)
    app.router.add_get("/healthz", health.healthz)
    app.router.add_get("/readyz", health.readyz)
    app.router.add_get("/metrics", health.metrics)
    setup_admin(app)
    plugins.add_web_routes(app)
    connectors = app[CONNECTORS]
    for route, emits in unemitted(RouteTable(config.routes).routes, connectors):
        log.warning(
            "route_event_never_emitted",
            route=route.name,
            route_event=route.event,
            system=route.source,
            emits=emits,
            hint=f"no plugin emits {route.event!r} from {route.source}: this route never "
            "matches (a misspelt event?)",
        )
    app.cleanup_ctx.extend([_store_ctx, _session_ctx, _engine_ctx, _scheduler_ctx])
    app.on_shutdown.append(_drain)
    return app


async def _store_ctx(app: web.Application) -> AsyncIterator[None]:
    config = need(app, CONFIG)
    store = Store(
        config.gateway.database, node_id=config.gateway.node_id, base_dir=Path(config.base_dir)
    )
    await store.open()
    try:
        await store.upgrade(need(app, PLUGINS).migration_dirs())
        pseudonym.install_key(await store.ensure_key(pseudonym.KEY_NAME))
        app[STORE] = store
        yield
    finally:
        await store.close()


async def _session_ctx(app: web.Application) -> AsyncIterator[None]:
    config = need(app, CONFIG)
    limit = sum(s.concurrency for s in config.systems.values()) + 10
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=limit, limit_per_host=0),
        trace_configs=[_no_redirects()],
        # one session serves every system: never carry one system's cookies to another
        cookie_jar=aiohttp.DummyCookieJar(),
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=60),
    )
    app[SESSION] = session
    try:
        yield
    finally:
        await session.close()


class RedirectRefused(PermanentError):
    """A request through the app's session was about to follow a redirect."""


def _no_redirects() -> aiohttp.TraceConfig:
    """The app's session never follows a redirect, even for a plugin that forgot
    ``allow_redirects=False``: the request fails with a permanent error instead of re-sending
    a document (personal data, a password) to the address a 3xx names."""

    async def refuse(
        _session: aiohttp.ClientSession, _ctx: Any, params: aiohttp.TraceRequestRedirectParams
    ) -> None:
        location = mask_text(params.response.headers.get("Location", "")[:200])
        raise RedirectRefused(
            f"HTTP {params.response.status} redirect to {location or '(no Location)'} not "
            "followed: the gateway never sends a document on to another address",
            status=params.response.status,
        )

    trace = aiohttp.TraceConfig()
    trace.on_request_redirect.append(refuse)
    return trace


async def _engine_ctx(app: web.Application) -> AsyncIterator[None]:
    config, store, plugins = need(app, CONFIG), need(app, STORE), need(app, PLUGINS)
    intake = Intake(config, plugins)
    engine = DeliveryEngine(
        config,
        store,
        plugins,
        need(app, CONNECTORS),
        intake,
        need(app, METRICS),
        need(app, SESSION),
    )
    intake.connect(engine.submit_intake)
    app[ENGINE] = engine
    app[SCHEDULER] = Scheduler(
        store, engine.membership, check_every=config.gateway.heartbeat_interval
    )
    await engine.start()
    await plugins.startup(app)
    log.info("gateway_started", node=config.gateway.node_id, systems=sorted(config.systems))
    try:
        yield
    finally:
        await engine.stop()
        log.info("gateway_stopped", node=config.gateway.node_id)


async def _drain(app: web.Application) -> None:
    """SIGTERM: intake answers 503 at once; in-flight attempts finish in cleanup."""
    engine = app.get(ENGINE)
    if engine is not None:
        engine.draining = True


async def _scheduler_ctx(app: web.Application) -> AsyncIterator[None]:
    """Pollers and plugin jobs, each run once per cluster (:mod:`gateway.engine.scheduler`)."""
    config, plugins, scheduler = need(app, CONFIG), need(app, PLUGINS), need(app, SCHEDULER)
    for name, system in config.systems.items():
        if system.poll_interval:
            run = poller(
                name,
                store=need(app, STORE),
                engine=need(app, ENGINE),
                connector=functools.partial(_connector, app, name),
                session=need(app, SESSION),
            )
            scheduler.schedule(f"poll:{name}", system.poll_interval, run)
    for name, (interval, job) in plugins.jobs(config).items():
        scheduler.schedule(name, interval, functools.partial(job, JobContext(name, app)))
    scheduler.start()
    try:
        yield
    finally:
        await scheduler.stop()


def _connector(app: web.Application, system: str) -> Connector:
    return need(app, CONNECTORS)[system]
