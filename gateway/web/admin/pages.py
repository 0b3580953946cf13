"""Rendering dashboard pages: the shared layout context, language cookie and security headers.

Plugins that add a page render it with :func:`render_page` so it gets the same layout,
navigation, language and CSRF token (``{{ csrf }}`` in their forms).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from gateway.web.admin.i18n import (
    LANG_COOKIE,
    choose_lang,
    format_date,
    format_duration,
    format_money,
    format_month,
    format_number,
    format_time,
    translate,
)
from gateway.web.admin.labels import event_label, shown_outcome, status_label, system_label
from gateway.web.keys import CONFIG, JINJA, LANG, NAV, PRINCIPAL, admin_need, need

STATIC_PREFIX = "/static/admin"
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def lang_of(request: web.Request) -> str:
    """The interface language of this request (``vi`` or ``en``)."""
    if LANG not in request:
        request[LANG] = choose_lang(request)[0]
    return request[LANG]


def layout_context(request: web.Request) -> dict[str, Any]:
    """What every page's layout needs: strings, user, navigation, CSRF token, language switch."""
    lang = lang_of(request)
    other = "en" if lang == "vi" else "vi"
    who = request.get(PRINCIPAL)

    def t(name: str, /, **fields: Any) -> str:
        return translate(lang, name, **fields)

    nav = []
    if who is not None:
        nav = [
            {"path": e.path, "label": e.label(lang), "active": e.active(request.path)}
            for e in admin_need(request.app, NAV)
            if e.visible_to(who.role)
        ]
    plugins = {name: s.plugin for name, s in need(request.app, CONFIG).systems.items()}
    return {
        "t": t,
        "lang": lang,
        "sys": lambda name: system_label(name, plugins, lang),
        "sysc": lambda name: system_label(name, plugins, lang, with_code=True),
        "ev": lambda event: event_label(event, lang),
        "st": lambda status: status_label(status, lang),
        "shown_outcome": shown_outcome,
        "num": lambda value: format_number(value, lang),
        "dur": lambda ms: format_duration(ms, lang),
        "money": lambda value: format_money(value, lang),
        "day": lambda value: format_date(value, lang),
        "month_label": lambda value: format_month(value, lang),
        "switch_url": str(request.rel_url.update_query(lang=other)),
        "fmt_time": lambda epoch: format_time(epoch, lang),
        "user": who,
        "csrf": who.csrf if who is not None else "",
        "nav": nav,
        "node": need(request.app, CONFIG).gateway.node_id,
        "static": STATIC_PREFIX,
        "path": request.path,
    }


def secure(response: web.StreamResponse) -> web.StreamResponse:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def _trusted(settings: Any, address: str) -> bool:
    try:
        peer = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(peer in ipaddress.ip_network(n, strict=False) for n in settings.trusted_proxies)


def client_address(request: web.Request) -> str:
    """The client's address: the peer, or for a request a trusted proxy forwarded, the last
    address in ``X-Forwarded-For`` that is not a trusted proxy (what the throttle counts)."""
    settings = need(request.app, CONFIG).gateway
    peer = request.remote or ""
    if not settings.trusted_proxies or not _trusted(settings, peer):
        return peer
    hops = [h.strip() for h in ",".join(request.headers.getall("X-Forwarded-For", [])).split(",")]
    for hop in reversed(hops):
        if hop and not _trusted(settings, hop):
            return hop[:64]
    return peer


def cookie_secure(request: web.Request) -> bool:
    """Whether the dashboard's cookies get ``Secure``: always with ``gateway.secure_cookies``,
    on a TLS connection, and for a request a trusted proxy forwarded from HTTPS
    (``gateway.trusted_proxies`` and ``X-Forwarded-Proto``)."""
    settings = need(request.app, CONFIG).gateway
    if settings.secure_cookies or request.secure:
        return True
    if not settings.trusted_proxies or not _trusted(settings, request.remote or ""):
        return False
    proto = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
    return proto == "https"


def remember_lang(request: web.Request, response: web.StreamResponse) -> None:
    lang, changed = choose_lang(request)
    if changed:
        response.set_cookie(
            LANG_COOKIE,
            lang,
            max_age=365 * 86400,
            path="/",
            httponly=True,
            samesite="Strict",
            secure=cookie_secure(request),
        )


async def render_page(
    request: web.Request, template: str, context: Mapping[str, Any], *, status: int = 200
) -> web.Response:
    """A page in the dashboard's layout (``templates/base.html``)."""
    response = aiohttp_jinja2.render_template(
        template, request, {**layout_context(request), **context}, app_key=JINJA, status=status
    )
    remember_lang(request, response)
    secure(response)
    return response


async def render_message(
    request: web.Request, title_key: str, text_key: str, fields: Mapping[str, str], *, status: int
) -> web.Response:
    """A short page with a title and one sentence (refusals, not found)."""
    lang = lang_of(request)
    return await render_page(
        request,
        "message.html",
        {"title": translate(lang, title_key), "text": translate(lang, text_key, **fields)},
        status=status,
    )
