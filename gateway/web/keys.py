"""Every application key, declared in one place. Use :func:`need` to read one: it raises a
helpful error when the part that sets it was not set up (never ``assert``)."""

from __future__ import annotations

from typing import TypeVar

import aiohttp
from aiohttp import web

from gateway.config import Config
from gateway.connector import Connector
from gateway.engine.intake import Intake
from gateway.engine.scheduler import Scheduler
from gateway.engine.worker import DeliveryEngine
from gateway.metrics import Metrics
from gateway.plugins import Plugins
from gateway.store import Store

CONFIG = web.AppKey("config", Config)
PLUGINS = web.AppKey("plugins", Plugins)
METRICS = web.AppKey("metrics", Metrics)
STORE = web.AppKey("store", Store)
SESSION = web.AppKey("client_session", aiohttp.ClientSession)
CONNECTORS = web.AppKey("connectors", dict[str, Connector])
INTAKE = web.AppKey("intake", Intake)
ENGINE = web.AppKey("engine", DeliveryEngine)
SCHEDULER = web.AppKey("scheduler", Scheduler)

T = TypeVar("T")


class SetupError(RuntimeError):
    pass


def need(app: web.Application, key: web.AppKey[T]) -> T:
    try:
        return app[key]
    except KeyError:
        raise SetupError(
            f"{key!r} is not set: build the app with gateway.web.app.create_app() "
            "and start it (the key is set when the app starts)"
        ) from None
