"""Reloading drop-in plugins in a running gateway (``SIGHUP``, ``gateway plugins reload``).

The plugin manager is rebuilt (entry points as before, drop-in files re-read; an unchanged
file is not executed again). A system whose connector factory changed gets a new connector:
new inbound requests, polls and delivery attempts use it at once, while attempts already in
flight finish with the old one, which is closed afterwards. Nothing is dropped:

* a drop-in that now fails to load keeps its previous version running (the failure is
  logged and shown by ``gateway plugins list``);
* a system whose plugin vanished, or whose new connector does not build, keeps its old one;
* the configuration is not re-read (a new system needs a restart).
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from dataclasses import dataclass, field

from aiohttp import web

from gateway.connector import Connector
from gateway.log import get_logger, mask_text
from gateway.plugins import LoadError, PluginError, plugins_for
from gateway.web.keys import CONFIG, CONNECTORS, ENGINE, PLUGINS, need

log = get_logger("gateway.reload")

_RETIRING: set[asyncio.Task[None]] = set()  # strong references until each is done
_LOCKS: weakref.WeakKeyDictionary[web.Application, asyncio.Lock] = weakref.WeakKeyDictionary()


@dataclass(slots=True)
class ReloadReport:
    """What a reload did.

    :param swapped: systems that now use a new connector.
    :param kept: systems that keep their old connector, with the reason.
    :param load_errors: plugins that failed to load in the new build.
    :param error: why the reload was abandoned as a whole (nothing changed), or None.
    :param retiring: one task per replaced connector; it closes the connector once the
        attempts that were using it are done (await them to know the old ones are gone).
    """

    swapped: list[str] = field(default_factory=list)
    kept: dict[str, str] = field(default_factory=dict)
    load_errors: list[LoadError] = field(default_factory=list)
    error: str | None = None
    retiring: list[asyncio.Task[None]] = field(default_factory=list)


async def reload_plugins(app: web.Application) -> ReloadReport:
    """Rebuild the plugins of a running app and swap the connectors that changed."""
    lock = _LOCKS.setdefault(app, asyncio.Lock())
    async with lock:
        report = await _reload(app)
    log.info(
        "plugins_reloaded",
        swapped=report.swapped,
        kept=report.kept,
        load_errors=[f"{e.name}: {e.reason}" for e in report.load_errors],
        error=report.error,
    )
    return report


async def _reload(app: web.Application) -> ReloadReport:
    config, plugins = need(app, CONFIG), need(app, PLUGINS)
    connectors, engine = need(app, CONNECTORS), need(app, ENGINE)
    report = ReloadReport()
    try:
        before = plugins.connectors()
        fresh = plugins_for(config, previous=plugins)
        after = fresh.connectors()
    except PluginError as exc:
        report.error = mask_text(str(exc))
        return report
    report.load_errors = list(fresh.load_errors)
    retired: list[tuple[Connector, set[asyncio.Task[None]]]] = []
    for name, system in config.systems.items():
        new, old = after.get(system.plugin), before.get(system.plugin)
        if new is None:
            report.kept[name] = f"connector {system.plugin!r} is no longer registered"
            continue
        if old is not None and new.factory is old.factory:
            continue
        try:
            connector = fresh.build_connector(system)
        except PluginError as exc:
            report.kept[name] = mask_text(str(exc))
            continue
        lane = engine.lanes.get(name)
        previous = connectors[name]
        connectors[name] = connector
        in_flight: set[asyncio.Task[None]] = set()
        if lane is not None:
            lane.connector = connector
            in_flight = set(lane.tasks)
        retired.append((previous, in_flight))
        report.swapped.append(name)
    plugins.adopt(fresh)
    for connector, tasks in retired:
        task = asyncio.create_task(_retire(connector, tasks), name="retire-connector")
        _RETIRING.add(task)
        task.add_done_callback(_RETIRING.discard)
        report.retiring.append(task)
    return report


async def _retire(connector: Connector, in_flight: set[asyncio.Task[None]]) -> None:
    """Close a replaced connector once the attempts that were using it are done."""
    if in_flight:
        await asyncio.wait(in_flight)
    with contextlib.suppress(Exception):
        await connector.close()
