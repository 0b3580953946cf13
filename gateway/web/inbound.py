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
from gateway.model import BadRequest, too_deep
from gateway.signing import SignatureError, check_body, check_headers
from gateway.store import StoreUnavailable
from gateway.web.errors import ApiError
from gateway.web.keys import CONFIG, CONNECTORS, ENGINE, METRICS, need

log = get_logger("gateway.inbound")
#: the metric label of every system name that is not configured (no label per URL)
UNKNOWN_SYSTEM = "_unknown"


class UnsignedBudget:
    """Bytes of inbound bodies read but not yet verified, across all requests and per system:
    an unsigned flood can hold no more than this in memory (FORMATS.md §1.1)."""

    def __init__(self, total: int, per_system: int) -> None:
        self.total, self.per_system = total, per_system
        self.held = 0
        self.by_system: dict[str, int] = {}

    def take(self, system: str, size: int) -> bool:
        mine = self.by_system.get(system, 0)
        if self.held + size > self.total or mine + size > self.per_system:
            return False
        self.held += size
        self.by_system[system] = mine + size
        return True

    def give(self, system: str, size: int) -> None:
        self.held -= size
        self.by_system[system] -= size


BUDGET = web.AppKey("unsigned_budget", UnsignedBudget)


async def inbound(request: web.Request) -> web.Response:
    system = request.match_info["system"]
    metrics = need(request.app, METRICS)
    label = system if system in need(request.app, CONFIG).systems else UNKNOWN_SYSTEM
    try:
        response = await _inbound(request, system)
    except ApiError as exc:
        metrics.intake_requests.labels(label, str(exc.status)).inc()
        raise
    metrics.intake_requests.labels(label, str(response.status)).inc()
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
    limits = config.limits
    # everything that can be checked before the body is read is checked first
    try:
        ts, mac = check_headers(request.headers, max_skew=limits.max_clock_skew)
    except SignatureError as exc:
        raise ApiError(401, "bad_signature", str(exc)) from None
    length = request.content_length
    if length is not None and length > limits.max_body_bytes:
        raise ApiError(
            413, "too_large", f"body larger than the limit of {limits.max_body_bytes} bytes"
        )
    size = limits.max_body_bytes if length is None else length
    budget = need(app, BUDGET)
    if not budget.take(system, size):
        raise ApiError(
            503,
            "busy_reading",
            "too many unverified bodies are being read now; send again later",
            retry_after=2,
        )
    try:
        try:
            if request.content.is_eof():  # all of it arrived with the headers (small bodies)
                body = await request.read()
            else:
                async with asyncio.timeout(limits.body_timeout):
                    body = await request.read()
        except TimeoutError:
            raise ApiError(
                408, "body_timeout", f"the body did not arrive within {limits.body_timeout:g} s"
            ) from None
        try:
            check_body(system_cfg.inbound_secret.get_secret_value(), body, ts, mac)
        except SignatureError as exc:
            raise ApiError(401, "bad_signature", str(exc)) from None
    finally:
        budget.give(system, size)
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
    limit = limits.max_nesting_depth
    if (body.count(b"{") + body.count(b"[") > limit or not ctype.endswith("json")) and too_deep(
        [m.payload for m in parsed.messages], limit
    ):
        raise ApiError(
            400, "bad_request", f"an item is nested deeper than {limit} levels; nothing was stored"
        )
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
