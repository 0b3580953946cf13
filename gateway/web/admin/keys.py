"""Application and request keys of the operator surface (admin API + dashboard).

The core's keys live in :mod:`gateway.web.keys`; these belong to :func:`setup_admin` and are
set when the app is built (not when it starts), so plugins' ``gateway_web_routes`` can use
them. Read them with :func:`admin_need`.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, TypeVar

import jinja2
from aiohttp import web

if TYPE_CHECKING:
    from gateway.web.admin.auth import Auth, Principal
    from gateway.web.admin.metrics import AdminMetrics
    from gateway.web.admin.nav import NavEntry

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

T = TypeVar("T")


class AdminSetupError(RuntimeError):
    pass


def admin_need(app: web.Application, key: web.AppKey[T]) -> T:
    """``app[key]``, or a readable error when :func:`setup_admin` was not called."""
    try:
        return app[key]
    except KeyError:
        raise AdminSetupError(
            f"{key!r} is not set: call gateway.web.admin.setup_admin(app) in create_app()"
        ) from None
