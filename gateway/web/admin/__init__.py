"""The operator surface: admin API (``/api/v1/``), dashboard (``/``), tokens and sessions.

:func:`setup_admin` is called by :func:`gateway.web.app.create_app` after the health routes
and before plugins add theirs, so a plugin's ``gateway_web_routes`` can add a page with
:func:`protect`, :data:`NAV` and :func:`render_page` (see :mod:`gateway.web.admin.nav`).
"""

from __future__ import annotations

from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from gateway.log import get_logger
from gateway.web.admin import api, dashboard
from gateway.web.admin.auth import Auth, Principal, access_middleware, principal, protect
from gateway.web.admin.i18n import LANGS, MESSAGES
from gateway.web.admin.metrics import AdminMetrics, start_refresher, stop_refresher
from gateway.web.admin.nav import NavEntry
from gateway.web.admin.pages import STATIC_PREFIX, render_page
from gateway.web.keys import ADMIN_METRICS, AUTH, CONFIG, JINJA, METRICS, NAV, admin_need, need

__all__ = [
    "NAV",
    "NavEntry",
    "Principal",
    "add_templates",
    "principal",
    "protect",
    "render_page",
    "setup_admin",
]

log = get_logger("gateway.admin")
HERE = Path(__file__).parent
CORE_PUBLIC = ("/healthz", "/readyz", "/metrics", "/inbound/{system}")


def _labels(key: str) -> dict[str, str]:
    return {lang: MESSAGES[lang][key] for lang in LANGS}


def default_nav() -> list[NavEntry]:
    return [
        NavEntry("/", _labels("nav_overview")),
        NavEntry("/log", _labels("nav_log")),
        NavEntry("/dossiers", _labels("nav_dossiers")),
        NavEntry("/dead", _labels("nav_dead")),
        NavEntry("/audit", _labels("nav_audit"), role="admin"),
    ]


def _duration(ms: float | None) -> str:
    if ms is None:
        return "–"
    return f"{ms:.0f} ms" if ms < 1000 else f"{ms / 1000:.1f} s"


def setup_admin(app: web.Application) -> None:
    """Add the admin API, the dashboard and the access policy to an app being built."""
    app[AUTH] = Auth(need(app, CONFIG))
    app[NAV] = default_nav()
    app[ADMIN_METRICS] = AdminMetrics(need(app, METRICS).registry)
    env = aiohttp_jinja2.setup(
        app,
        app_key=JINJA,
        loader=jinja2.ChoiceLoader([jinja2.FileSystemLoader(HERE / "templates")]),
        autoescape=jinja2.select_autoescape(["html"], default=True),
        undefined=jinja2.StrictUndefined,
        default_helpers=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["duration"] = _duration
    app.middlewares.append(access_middleware)
    for path in CORE_PUBLIC:
        protect(app, path, "public")
    app.router.add_static(STATIC_PREFIX, HERE / "static", name="admin_static")
    protect(app, STATIC_PREFIX, "public")
    api.setup_routes(app)
    dashboard.setup_routes(app)
    app.on_startup.append(_startup_checks)
    app.on_startup.append(start_refresher)
    app.on_shutdown.append(stop_refresher)


def add_templates(app: web.Application, loader: jinja2.BaseLoader) -> None:
    """Let a plugin's templates extend ``base.html`` (its loader is searched first)."""
    choice = admin_need(app, JINJA).loader
    if not isinstance(choice, jinja2.ChoiceLoader):
        raise TypeError("the dashboard's template loader is not a ChoiceLoader")
    choice.loaders = [loader, *choice.loaders]


async def _startup_checks(app: web.Application) -> None:
    auth = admin_need(app, AUTH)
    if not auth.tokens.entries:
        log.warning("no_admin_tokens", effect="no [[tokens]]: nobody can use the API or dashboard")
    missing = sorted(
        {r.canonical for r in app.router.resources() if r.canonical not in auth.policy}
    )
    if missing:
        log.warning(
            "routes_without_access_policy", routes=missing, effect="admin only; call protect()"
        )
