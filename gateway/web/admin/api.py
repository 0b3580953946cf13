"""The admin API under ``/api/v1/`` (JSON; described by ``gateway/web/openapi.json``).

Lists are newest first and cursor-paginated: ``limit`` (1-500, default 50) and ``before_id``;
the answer's ``next_cursor`` is the ``before_id`` of the next page, or null on the last one.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway.log import masked_json
from gateway.store import LogFilter
from gateway.web.admin import actions, params, present, queries
from gateway.web.admin.auth import Access, principal, protect
from gateway.web.admin.overview import system_overview
from gateway.web.errors import ApiError
from gateway.web.exports import csv_chunk
from gateway.web.keys import PLUGINS, STORE, need

PREFIX = "/api/v1"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_dumps = functools.partial(json.dumps, ensure_ascii=False)


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(
        data, status=status, dumps=_dumps, headers={"Cache-Control": "no-store"}
    )


def _query(request: web.Request, read: Callable[[Any], Any]) -> Any:
    try:
        return read(request.query)
    except params.BadParam as exc:
        raise ApiError(400, "bad_parameter", str(exc)) from None


def _page(
    rows: list[dict[str, Any]], limit: int, item: Callable[[dict[str, Any]], dict[str, Any]]
) -> dict[str, Any]:
    """``rows`` were fetched with ``limit + 1`` to know whether another page exists."""
    more = len(rows) > limit
    rows = rows[:limit]
    return {
        "items": [item(r) for r in rows],
        "next_cursor": rows[-1]["id"] if more and rows else None,
    }


def delivery_id(request: web.Request) -> int:
    """The ``{id}`` of the path; an id no delivery can have is a 404, not a 500."""
    raw = request.match_info["id"]
    try:
        return params.whole_number(raw, "id")
    except params.BadParam:
        raise ApiError(404, "not_found", f"no delivery with id {raw}") from None


async def openapi_document(request: web.Request) -> web.Response:
    text = resources.files("gateway.web").joinpath("openapi.json").read_text(encoding="utf-8")
    return web.Response(text=text, content_type="application/json")


async def systems(request: web.Request) -> web.Response:
    now = time.time()
    rows = await system_overview(request.app, now)
    for row in rows:
        row["last_error_at"] = present.iso(row["last_error_at"])
        for bar in row["hourly"]:
            bar["start"] = present.iso(bar["start"])
    return _json({"generated_at": present.iso(now), "systems": rows})


async def list_deliveries(request: web.Request) -> web.Response:
    flt, limit, before = (
        _query(request, f) for f in (params.delivery_filter, params.limit, params.before_id)
    )
    rows = await need(request.app, STORE).list_deliveries(flt, limit=limit + 1, before_id=before)
    return _json(_page(rows, limit, present.delivery_item))


async def get_delivery(request: web.Request) -> web.Response:
    did = delivery_id(request)
    store = need(request.app, STORE)
    row = await store.get_delivery(did)
    if row is None:
        raise ApiError(404, "not_found", f"no delivery with id {did}")
    attempts = await store.list_log(LogFilter(delivery_id=did), limit=1000)
    item = present.delivery_item(row)
    try:
        item["payload"] = masked_json(row["payload"])
    except ValueError:
        item["payload"] = None
    return _json({"delivery": item, "attempts": [present.log_item(a) for a in reversed(attempts)]})


async def reveal_delivery(request: web.Request) -> web.Response:
    """An operator's or admin's look at one delivery's payload in full (audited)."""
    did = delivery_id(request)
    row = await actions.reveal(request.app, did, principal(request))
    if row is None:
        raise ApiError(404, "not_found", f"no delivery with id {did}")
    try:
        payload = json.loads(row["payload"])
    except (ValueError, RecursionError):  # shown as stored
        payload = row["payload"]
    return _json({"delivery": did, "payload": payload, "revealed_by": principal(request).actor})


async def retry_one(request: web.Request) -> web.Response:
    did = delivery_id(request)
    row = await need(request.app, STORE).get_delivery(did)
    if row is None:
        raise ApiError(404, "not_found", f"no delivery with id {did}")
    retried, _ = await actions.retry_dead(request.app, [did], principal(request))
    if not retried:
        raise ApiError(
            409, "not_dead", f"delivery {did} is {row['status']}; only dead deliveries are retried"
        )
    return _json({"retried": retried})


class RetryRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ids: list[int] = Field(min_length=1, max_length=1000)


async def retry_many(request: web.Request) -> web.Response:
    try:
        body = RetryRequest.model_validate_json(await request.read())
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "body"
        raise ApiError(
            400, "bad_request", f'{where}: {err["msg"]} (send {{"ids": [1, 2]}})'
        ) from None
    if any(not 1 <= i <= present.MAX_ID for i in body.ids):
        raise ApiError(400, "bad_request", f"ids must be from 1 to {present.MAX_ID}")
    retried, skipped = await actions.retry_dead(request.app, body.ids, principal(request))
    return _json({"retried": retried, "not_retried": skipped})


async def delivery_log(request: web.Request) -> web.Response:
    flt, limit, before = (
        _query(request, f) for f in (params.log_filter, params.limit, params.before_id)
    )
    rows = await need(request.app, STORE).list_log(flt, limit=limit + 1, before_id=before)
    return _json(_page(rows, limit, present.log_item))


async def stream_log_csv(request: web.Request, flt: LogFilter) -> web.StreamResponse:
    """The filtered delivery log as CSV (the columns of ``gateway deliveries export``), in id
    order, streamed in batches; with a BOM so that spreadsheet programs read it as UTF-8."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    resp = web.StreamResponse(
        headers={
            "Content-Disposition": f'attachment; filename="delivery-log-{stamp}.csv"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        }
    )
    resp.content_type = "text/csv"
    resp.charset = "utf-8"
    await resp.prepare(request)
    if request.method == "HEAD":  # headers only: a streamed body would corrupt the connection
        await resp.write_eof()
        return resp
    await resp.write(("\ufeff" + csv_chunk([], header=True)).encode())
    async for batch in need(request.app, STORE).iter_log(flt):
        await resp.write(csv_chunk(batch).encode())
    await resp.write_eof()
    return resp


async def delivery_log_csv(request: web.Request) -> web.StreamResponse:
    return await stream_log_csv(request, _query(request, params.log_filter))


async def dossier(request: web.Request) -> web.Response:
    key = request.match_info["key"]
    timeline = await need(request.app, STORE).dossier_timeline(key)
    if not timeline["messages"] and not timeline["deliveries"]:
        raise ApiError(404, "not_found", f"no dossier {key!r} is known to the gateway")
    return _json(
        {
            "dossier_key": key,
            "messages": [present.message_item(m) for m in timeline["messages"]],
            "deliveries": [present.delivery_item(d) for d in timeline["deliveries"]],
            "attempts": [present.log_item(a) for a in timeline["attempts"]],
        }
    )


async def plugins(request: web.Request) -> web.Response:
    loaded = need(request.app, PLUGINS)
    errors = [{"name": e.name, "origin": e.origin, "reason": e.reason} for e in loaded.load_errors]
    return _json({"plugins": loaded.describe(), "load_errors": errors})


async def audit(request: web.Request) -> web.Response:
    limit, before = _query(request, params.limit), _query(request, params.before_id)
    rows = await queries.audit_entries(need(request.app, STORE), limit=limit + 1, before_id=before)
    return _json(_page(rows, limit, present.audit_item))


ROUTES: list[tuple[str, str, Handler, Access]] = [
    ("GET", "/openapi.json", openapi_document, "public"),
    ("GET", "/systems", systems, "viewer"),
    ("GET", "/deliveries", list_deliveries, "viewer"),
    ("GET", "/deliveries/{id}", get_delivery, "viewer"),
    ("POST", "/deliveries/{id}/retry", retry_one, "operator"),
    ("POST", "/deliveries/{id}/reveal", reveal_delivery, "operator"),
    ("POST", "/deliveries/retry", retry_many, "operator"),
    ("GET", "/log", delivery_log, "viewer"),
    ("GET", "/log.csv", delivery_log_csv, "viewer"),
    ("GET", "/dossiers/{key}", dossier, "viewer"),
    ("GET", "/plugins", plugins, "viewer"),
    ("GET", "/audit", audit, "admin"),
]


QueryNames = dict[tuple[str, str], frozenset[str]]
_QUERY_NAMES = web.AppKey("api_query_names", dict)


def documented_query_names(document: dict[str, Any]) -> QueryNames:
    """``(METHOD, path) -> the query parameters the OpenAPI document lists for it``."""
    shared = document.get("components", {}).get("parameters", {})
    names: QueryNames = {}
    for path, item in document["paths"].items():
        for method, op in item.items():
            listed = (
                shared[p["$ref"].rsplit("/", 1)[-1]] if "$ref" in p else p
                for p in op.get("parameters", [])
            )
            names[(method.upper(), path)] = frozenset(
                p["name"] for p in listed if p["in"] == "query"
            )
    return names


def _check_query(query: Any, allowed: frozenset[str], where: str) -> None:
    unknown = sorted(set(query) - allowed)
    if unknown:
        shown = ", ".join(repr(n[:40]) for n in unknown[:5])
        takes = ", ".join(sorted(allowed)) or "none"
        raise ApiError(
            400, "unknown_parameter", f"unknown query parameter {shown}; {where} takes: {takes}"
        )
    for name in query:
        values = query.getall(name)
        if len(values) > 1:
            raise ApiError(
                400, "bad_parameter", f"{name} is given {len(values)} times; give it once"
            )
        if values[0] == "":
            raise ApiError(400, "bad_parameter", f"{name} is empty; give a value or leave it out")


@web.middleware
async def query_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A documented API operation takes exactly the query parameters its OpenAPI document
    lists, each at most once and not empty: a misspelt ``?statsu=dead`` would otherwise
    silently list everything. Undocumented routes (a plugin's without
    ``gateway_openapi_paths``) are not checked; the dashboard's forms are not affected."""
    resource = request.match_info.route.resource
    if request.query and resource is not None and request.path.startswith(PREFIX + "/"):
        cache: dict[str, QueryNames] = request.app[_QUERY_NAMES]
        if "names" not in cache:
            from gateway.web.admin.openapi import build_document  # only when first needed

            cache["names"] = documented_query_names(build_document(need(request.app, PLUGINS)))
        method = "GET" if request.method == "HEAD" else request.method
        allowed = cache["names"].get((method, resource.canonical))
        if allowed is not None:
            _check_query(request.query, allowed, f"{method} {resource.canonical}")
    return await handler(request)


def setup_routes(app: web.Application) -> None:
    app[_QUERY_NAMES] = {}
    app.middlewares.append(query_middleware)
    for method, path, handler, access in ROUTES:
        # an {id} is digits: /deliveries/retry is not a /deliveries/{id} (nor in its 405's Allow)
        pattern = PREFIX + path.replace("{id}", "{id:\\d+}")
        if method == "GET":
            app.router.add_get(pattern, handler)
        else:
            app.router.add_route(method, pattern, handler)
        protect(app, PREFIX + path, access, method)
