"""The dashboard: server-rendered pages for clerks and administrators (no JS framework)."""

from __future__ import annotations

import asyncio
import time
import unicodedata
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from multidict import MultiDictProxy, MultiMapping

from gateway.log import get_logger
from gateway.store import DeliveryFilter, LogFilter
from gateway.web.admin import actions, params, present, queries
from gateway.web.admin.api import stream_log_csv
from gateway.web.admin.auth import (
    SESSION_COOKIE,
    SESSION_SECONDS,
    SIGNIN_COOKIE,
    Access,
    principal,
    protect,
)
from gateway.web.admin.charts import day_chart
from gateway.web.admin.overview import system_overview
from gateway.web.admin.pages import (
    client_address,
    cookie_secure,
    lang_of,
    render_message,
    render_page,
)
from gateway.web.keys import ADMIN_METRICS, AUTH, CONFIG, STORE, admin_need, need

log = get_logger("gateway.admin.dashboard")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PAGE = 50
LOG_FIELDS = ("system", "outcome", "dossier", "since", "until")
FAILED_SIGNIN_DELAY = 0.5  # slows guessing; tokens are long random strings anyway


def _safe_next(value: str | None) -> str:
    """Only a path on this site: no open redirect.

    Browsers drop tabs and newlines from a URL and read a backslash as a slash, so
    ``/\t/host`` and ``/\\host`` lead to ``//host``; any control character, space, or
    backslash anywhere is refused, and what is left must be a path with neither a scheme nor
    a host (``/``, then not ``/``)."""
    if (
        not value
        or len(value) > 2048
        or not value.startswith("/")
        or value.startswith("//")
        or "\\" in value
        or any(unicodedata.category(c)[0] in "CZ" for c in value)
        or value.startswith("/signin")
    ):
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return "/"
    return value


def _see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


# -- signing in and out ------------------------------------------------------------------------
async def signin_form(request: web.Request, *, error: bool = False) -> web.Response:
    auth = admin_need(request.app, AUTH)
    nxt = _safe_next(request.query.get("next"))
    store = request.app.get(STORE)
    if not error and await auth.read_live(request.cookies.get(SESSION_COOKIE), store) is not None:
        return _see_other(nxt)
    nonce, cookie = auth.signin_nonce()
    response = await render_page(
        request,
        "signin.html",
        {"signin_csrf": nonce, "next": nxt, "error": error},
        status=401 if error else 200,
    )
    response.set_cookie(
        SIGNIN_COOKIE,
        cookie,
        path="/signin",
        max_age=3600,
        httponly=True,
        samesite="Strict",
        secure=cookie_secure(request),
    )
    return response


async def signin_get(request: web.Request) -> web.Response:
    return await signin_form(request)


async def signin_post(request: web.Request) -> web.Response:
    form = await request.post()
    token = form.get("token")
    auth = admin_need(request.app, AUTH)
    address = client_address(request)
    wait = auth.throttle.wait(address)
    if wait:
        admin_need(request.app, ADMIN_METRICS).auth_refusals.labels("throttled").inc()
        page = await render_message(
            request, "throttled_title", "throttled_text", {"seconds": str(wait)}, status=429
        )
        page.headers["Retry-After"] = str(wait)
        return page
    entry = auth.tokens.match(token) if isinstance(token, str) and token else None
    if entry is None:
        auth.throttle.failed(address)
        admin_need(request.app, ADMIN_METRICS).auth_refusals.labels("signin").inc()
        log.warning("signin_refused", remote=address)
        await asyncio.sleep(FAILED_SIGNIN_DELAY)
        return await signin_form(request, error=True)
    nxt = form.get("next")
    response = _see_other(_safe_next(nxt if isinstance(nxt, str) else None))
    response.set_cookie(
        SESSION_COOKIE,
        auth.issue(entry),
        path="/",
        max_age=SESSION_SECONDS,
        httponly=True,
        samesite="Strict",
        secure=cookie_secure(request),
    )
    response.del_cookie(SIGNIN_COOKIE, path="/signin")
    await need(request.app, STORE).audit(f"web:{entry.name}", "signin", "dashboard")
    return response


async def signout(request: web.Request) -> web.Response:
    who = principal(request)
    await admin_need(request.app, AUTH).revoke_everywhere(who, need(request.app, STORE))
    await need(request.app, STORE).audit(who.actor, "signout", "dashboard")
    response = _see_other("/signin")
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


# -- reading -------------------------------------------------------------------------------------
async def overview(request: web.Request) -> web.Response:
    now = time.time()
    systems = await system_overview(request.app, now)
    lang = lang_of(request)
    for row in systems:
        row["chart"] = day_chart(row["name"], row["hourly"], lang)
    return await render_page(request, "overview.html", {"systems": systems, "now": now})


def _lenient_log_filter(query: MultiMapping[str]) -> tuple[LogFilter, list[str]]:
    """The page's filter: a bad field is reported and left out (never a 400 page)."""
    problems: list[str] = []
    values: dict[str, Any] = {
        "system": query.get("system") or None,
        "dossier": (query.get("dossier") or "").strip() or None,
    }
    outcome = query.get("outcome") or None
    values["outcome"] = outcome if outcome in params.OUTCOMES else None
    for name in ("since", "until"):
        try:
            values[name] = params.when(query, name)
        except params.BadParam:
            problems.append(query.get(name, ""))
    return LogFilter(**values), problems


def _cursor(query: MultiMapping[str]) -> int | None:
    try:
        return params.before_id(query)
    except params.BadParam:
        return None


async def log_page(request: web.Request) -> web.Response:
    flt, problems = _lenient_log_filter(request.query)
    before = _cursor(request.query)
    rows = await need(request.app, STORE).list_log(flt, limit=PAGE + 1, before_id=before)
    more, rows = len(rows) > PAGE, rows[:PAGE]
    keep = {k: v for k in LOG_FIELDS if (v := request.query.get(k, ""))}
    base = request.rel_url.with_query(keep)
    return await render_page(
        request,
        "log.html",
        {
            "rows": [
                {
                    **r,
                    "error": present.masked(r["error_message"]),
                    "dossier_key": present.masked(r["dossier_key"]),
                }
                for r in rows
            ],
            "systems": list(need(request.app, CONFIG).systems),
            "outcomes": params.OUTCOMES,
            "q": {k: keep.get(k, "") for k in LOG_FIELDS},
            "problems": problems,
            "older_url": str(base.update_query(before_id=rows[-1]["id"]))
            if more and rows
            else None,
            "newest_url": str(base) if before is not None else None,
            "csv_url": str(request.rel_url.with_path("/log.csv").with_query(keep)),
        },
    )


async def log_csv(request: web.Request) -> web.StreamResponse:
    flt, _ = _lenient_log_filter(request.query)
    return await stream_log_csv(request, flt)


async def _not_found(request: web.Request, text_key: str, **fields: str) -> web.Response:
    return await render_message(request, "not_found", text_key, fields, status=404)


async def delivery_page(request: web.Request, *, reveal: bool = False) -> web.Response:
    raw = request.match_info["id"]
    try:
        did = params.whole_number(raw, "id")
    except params.BadParam:
        return await _not_found(request, "no_delivery", id=raw)
    store = need(request.app, STORE)
    row = (
        await actions.reveal(request.app, did, principal(request))
        if reveal
        else await store.get_delivery(did)
    )
    if row is None:
        return await _not_found(request, "no_delivery", id=raw)
    attempts = await store.list_log(LogFilter(delivery_id=did), limit=1000)
    return await render_page(
        request,
        "delivery.html",
        {
            "d": {
                **row,
                "last_error": present.masked(row["last_error"]),
                "ref": present.masked(row["ref"]),
                "dossier_key": present.masked(row["dossier_key"]),
            },
            "payload": (
                present.payload_revealed(row["payload"])
                if reveal
                else present.payload_preview(row["payload"])
            ),
            "revealed": reveal,
            "attempts": [
                {**a, "error": present.masked(a["error_message"])} for a in reversed(attempts)
            ],
        },
    )


async def reveal_page(request: web.Request) -> web.Response:
    """The delivery page with its payload in full: operator or admin, audited (a POST with
    the session's CSRF token, so no link or prefetch reveals anything)."""
    return await delivery_page(request, reveal=True)


async def dossier_page(request: web.Request) -> web.Response:
    key = (request.query.get("key") or "").strip()
    if not key:
        return await render_page(request, "dossier.html", {"key": "", "events": None})
    timeline = await need(request.app, STORE).dossier_timeline(key)
    known = bool(timeline["messages"] or timeline["deliveries"])
    return await render_page(
        request,
        "dossier.html",
        {
            "key": key,
            "events": present.timeline_events(timeline) if known else None,
            "deliveries": timeline["deliveries"],
            "unknown": not known,
        },
        status=200 if known else 404,
    )


def _count(query: MultiMapping[str], name: str) -> int | None:
    try:
        value = query.get(name)
        return None if value is None else params.whole_number(value, name, 0, 10_000)
    except params.BadParam:
        return None


async def dead_page(request: web.Request) -> web.Response:
    store = need(request.app, STORE)
    destination = request.query.get("destination") or None
    before = _cursor(request.query)
    rows = await store.list_deliveries(
        DeliveryFilter(status="dead", destination=destination), limit=PAGE + 1, before_id=before
    )
    more, rows = len(rows) > PAGE, rows[:PAGE]
    bodies = await queries.payloads(store, [r["id"] for r in rows])
    base = request.rel_url.with_query({"destination": destination} if destination else {})
    return await render_page(
        request,
        "dead.html",
        {
            "rows": [
                {
                    **r,
                    "reason": present.masked(r["last_error"]),
                    "dossier_key": present.masked(r["dossier_key"]),
                    "preview": present.payload_preview(bodies.get(r["id"])),
                }
                for r in rows
            ],
            "can_retry": principal(request).can("operator"),
            "destination": destination,
            "systems": list(need(request.app, CONFIG).systems),
            "retried": _count(request.query, "retried"),
            "skipped": _count(request.query, "skipped"),
            "nothing": "none" in request.query,
            "older_url": str(base.update_query(before_id=rows[-1]["id"]))
            if more and rows
            else None,
            "newest_url": str(base) if before is not None else None,
        },
    )


def _form_ids(form: MultiDictProxy[Any]) -> list[int]:
    """The deliveries a form names: one row's button (``one``), else the ticked ``ids``."""
    one = form.get("one")
    raw = [one] if isinstance(one, str) and one else form.getall("ids", [])
    ids: list[int] = []
    for value in raw[:1000]:
        try:
            ids.append(params.whole_number(str(value), "id"))
        except params.BadParam:
            continue
    return sorted(set(ids))


async def retry_confirm_page(request: web.Request) -> web.Response:
    ids = _form_ids(await request.post())
    if not ids:
        return _see_other("/dead?none=1")
    store = need(request.app, STORE)
    rows = [
        r
        for r in [await store.get_delivery(i) for i in ids]
        if r is not None and r["status"] == "dead"
    ]
    if not rows:
        return _see_other("/dead?retried=0&skipped=" + str(len(ids)))
    return await render_page(
        request,
        "confirm.html",
        {"rows": [{**r, "reason": present.masked(r["last_error"])} for r in rows]},
    )


async def retry_execute(request: web.Request) -> web.Response:
    ids = _form_ids(await request.post())
    if not ids:
        return _see_other("/dead?none=1")
    retried, skipped = await actions.retry_dead(request.app, ids, principal(request))
    return _see_other(f"/dead?retried={len(retried)}&skipped={len(skipped)}")


async def audit_page(request: web.Request) -> web.Response:
    before = _cursor(request.query)
    rows = await queries.audit_entries(need(request.app, STORE), limit=PAGE + 1, before_id=before)
    more, rows = len(rows) > PAGE, rows[:PAGE]
    return await render_page(
        request,
        "audit.html",
        {
            "rows": [{**r, "detail": present.masked(r["detail"])} for r in rows],
            "older_url": f"/audit?before_id={rows[-1]['id']}" if more and rows else None,
            "newest_url": "/audit" if before is not None else None,
        },
    )


ROUTES: list[tuple[str, str, Handler, Access]] = [
    ("GET", "/", overview, "viewer"),
    ("GET", "/signin", signin_get, "public"),
    ("POST", "/signin", signin_post, "public"),
    ("POST", "/signout", signout, "viewer"),
    ("GET", "/log", log_page, "viewer"),
    ("GET", "/log.csv", log_csv, "viewer"),
    ("GET", "/deliveries/{id}", delivery_page, "viewer"),
    ("POST", "/deliveries/{id}/reveal", reveal_page, "operator"),
    ("GET", "/dossiers", dossier_page, "viewer"),
    ("GET", "/dead", dead_page, "viewer"),
    ("POST", "/dead/retry", retry_confirm_page, "operator"),
    ("POST", "/dead/retry/confirm", retry_execute, "operator"),
    ("GET", "/audit", audit_page, "admin"),
]


def setup_routes(app: web.Application) -> None:
    for method, path, handler, access in ROUTES:
        if method == "GET":
            app.router.add_get(path, handler)
        else:
            app.router.add_post(path, handler)
        protect(app, path, access, method)
