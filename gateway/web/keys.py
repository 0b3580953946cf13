"""Every application and request key of the web app, core and operator surface, declared in
one place. Read one with :func:`need`: it raises a helpful error when the part that sets it
was not set up (never ``assert``).

The core's keys (store, engine, session, connectors) are set when the app starts; the
operator surface's (:data:`NAV`, :data:`AUTH`, :data:`JINJA`, :data:`ADMIN_METRICS`) when
:func:`gateway.web.admin.setup_admin` builds it, so plugins' ``gateway_web_routes`` can use
them.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, TypeVar

import aiohttp
import jinja2
from aiohttp import web

from gateway.config import Config
from gateway.connector import Connector
from gateway.engine.scheduler import Scheduler
from gateway.engine.worker import DeliveryEngine
from gateway.metrics import Metrics
from gateway.plugins import Plugins
from gateway.store import Store

if TYPE_CHECKING:
    from gateway.web.admin.auth import Auth, Principal
    from gateway.web.admin.metrics import AdminMetrics
    from gateway.web.admin.nav import NavEntry

# -- the core (set when the app starts, except CONFIG, PLUGINS, METRICS and CONNECTORS) --------
CONFIG = web.AppKey("config", Config)
PLUGINS = web.AppKey("plugins", Plugins)
METRICS = web.AppKey("metrics", Metrics)
STORE = web.AppKey("store", Store)
SESSION = web.AppKey("client_session", aiohttp.ClientSession)
CONNECTORS = web.AppKey("connectors", dict[str, Connector])
ENGINE = web.AppKey("engine", DeliveryEngine)
SCHEDULER = web.AppKey("scheduler", Scheduler)

# -- the operator surface (set by setup_admin when the app is built) ---------------------------
#: The dashboard's navigation; a plugin appends a :class:`NavEntry` in ``gateway_web_routes``.
NAV: web.AppKey[list[NavEntry]] = web.AppKey("admin_nav", list)
#: Tokens, sessions and the access policy of every route.
AUTH: web.AppKey[Auth] = web.AppKey("admin_auth")
#: The dashboard's template environment (aiohttp-jinja2 under this key, not its default).
JINJA = web.AppKey("admin_jinja2", jinja2.Environment)
#: Gauges and counters the operator surface adds to the app's registry.
ADMIN_METRICS: web.AppKey[AdminMetrics] = web.AppKey("admin_metrics")
#: The task that refreshes store-backed gauges while the app runs.
REFRESHER: web.AppKey[asyncio.Task[None]] = web.AppKey("admin_metrics_refresher")

#: Who is making this request (set by the auth middleware on protected routes).
PRINCIPAL: web.RequestKey[Principal] = web.RequestKey("admin_principal")
#: The interface language chosen for this request (``vi`` or ``en``).
LANG = web.RequestKey("admin_lang", str)

_ADMIN_KEYS: tuple[object, ...] = (NAV, AUTH, JINJA, ADMIN_METRICS, REFRESHER)

T = TypeVar("T")


class SetupError(RuntimeError):
    pass


#: The operator surface's name for the same error (kept for callers that catch it).
AdminSetupError = SetupError


def need(app: web.Application, key: web.AppKey[T]) -> T:
    """``app[key]``, or a readable error naming the setup step that was skipped."""
    try:
        return app[key]
    except KeyError:
        if any(key is admin for admin in _ADMIN_KEYS):
            hint = "call gateway.web.admin.setup_admin(app) in create_app()"
        else:
            hint = (
                "build the app with gateway.web.app.create_app() "
                "and start it (the key is set when the app starts)"
            )
        raise SetupError(f"{key!r} is not set: {hint}") from None


#: Kept for the operator surface's modules: the same as :func:`need`.
admin_need = need
