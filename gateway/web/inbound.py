"""``POST /inbound/{system}``: authenticated intake (FORMATS.md §1.1 and §4).

The handler authenticates, reads and answers; the engine does the rest
(:meth:`gateway.engine.worker.DeliveryEngine.submit`: validate, route, commit, count) and
says when it takes nothing (:meth:`~gateway.engine.worker.DeliveryEngine.check_open`,
:meth:`~gateway.engine.worker.DeliveryEngine.check_room`).
"""

from __future__ import annotations

import asyncio
import json

from aiohttp import web

from gateway.engine.worker import IntakeRefused
from gateway.log import get_logger, mask_text
from gateway.model import BadRequest
from gateway.signing import SignatureError, verify
from gateway.store import StoreUnavailable
from gateway.web.errors import ApiError
from gateway.web.keys import CONFIG, CONNECTORS, ENGINE, METRICS, need

log = get_logger("gateway.inbound")


async def inbound(request: web.Request) -> web.Response:
    system = request.match_info["system"]
    metrics = need(request.app, METRICS)
    try:
        response = await _inbound(request, system)
    except ApiError as exc:
        metrics.intake_requests.labels(system, str(exc.status)).inc()
        raise
    metrics.intake_requests.labels(system, str(response.status)).inc()
    return response


async def _inbound(request: web.Request, system: str) -> web.Response:
    app = request.app
    config = need(app, CONFIG)
    engine = need(app, ENGINE)
    system_cfg = config.systems.get(system)
    if system_cfg is None:
        raise ApiError(404, "unknown_system", f"no system named {system!r} is configured")
    if system_cfg.inbound_secret is None:
        raise ApiError(
            404, "no_inbound", f"system {system!r} has no inbound_secret: it cannot push"
        )
    try:
        engine.check_open()
    except IntakeRefused as exc:
        raise _busy(exc) from None
    connector = need(app, CONNECTORS)[system]
    ctype = request.content_type.lower()
    if ctype not in connector.content_types:
        wanted = " or ".join(connector.content_types)
        raise ApiError(
            415,
            "unsupported_media_type",
            f"Content-Type must be {wanted}, not {ctype or 'missing'}",
        )
    try:
        if request.content.is_eof():  # all of it arrived with the headers (small bodies)
            body = await request.read()
        else:
            async with asyncio.timeout(config.limits.body_timeout):
                body = await request.read()
    except TimeoutError:
        raise ApiError(
            408, "body_timeout", f"the body did not arrive within {config.limits.body_timeout:g} s"
        ) from None
    try:
        verify(
            system_cfg.inbound_secret.get_secret_value(),
            body,
            request.headers,
            max_skew=config.limits.max_clock_skew,
        )
    except SignatureError as exc:
        raise ApiError(401, "bad_signature", str(exc)) from None
    try:
        engine.check_room()
    except IntakeRefused as exc:
        raise _busy(exc) from None
    try:
        parsed = await connector.parse(body, ctype)
    except BadRequest as exc:
        raise ApiError(400, "bad_request", mask_text(str(exc))) from None
    except RecursionError:  # any parser: a document nested deeper than Python recurses
        raise ApiError(400, "bad_request", "the body is nested too deeply to read") from None
    except Exception as exc:
        log.error("parse_raised", system=system, error=mask_text(repr(exc)))
        raise ApiError(
            500,
            "plugin_error",
            f"connector {system_cfg.plugin!r} failed to read the body ({type(exc).__name__}); "
            "nothing was stored",
        ) from None
    try:
        answer = await engine.submit(system, parsed)
    except StoreUnavailable as exc:
        log.error("intake_store_unavailable", system=system, error=str(exc))
        raise ApiError(
            503, "store_unavailable", f"cannot store now: {exc}; nothing was stored", retry_after=5
        ) from None
    metrics = need(app, METRICS)
    for result, entries in (
        ("accepted", answer.accepted),
        ("duplicate", answer.duplicates),
        ("rejected", answer.rejected),
    ):
        if entries:
            metrics.intake.labels(system, result).inc(len(entries))
    return web.json_response(answer.as_json(), status=202, dumps=_dumps)


def _busy(exc: IntakeRefused) -> ApiError:
    return ApiError(503, exc.code, exc.reason, retry_after=exc.retry_after)


_dumps = json.JSONEncoder(ensure_ascii=False).encode
