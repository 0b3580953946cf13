"""A one-stop-shop (một cửa điện tử) for demos and tests: the DVCQG adapter and a dossier feed.

Endpoints (FORMATS.md §1):

* ``POST /auth`` — adapter login; credentials from ``options.extra`` (``username`` /
  ``password``, default ``gateway`` / ``secret``). Sessions expire after the fault profile's
  ``session_ttl`` seconds (read at every call, so a test may change it at run time).
* ``POST /integration`` — services ``CapNhatTienDoHoSoMC``, ``DongBoHoSoMC``, ``TraCuuHoSo``.
  A call whose ``Idempotency-Key`` was already applied is answered as the first time and not
  applied again.
* ``GET /ho-so?tu=<cursor>`` — the feed for polling mode (push-shaped page plus ``cursor``).
* ``GET /_sim/state`` — what happened (counters for tests and the demo dashboard);
  ``POST /_sim/dossiers`` loads dossiers into the store; ``POST /_sim/generate`` creates some.

Error codes the simulator answers (its own, documented choice; the protocol publishes none):
``00`` ok, ``401`` session expired or unknown, ``01`` invalid data, ``02`` unknown dossier,
``03`` unknown service.

In the background it creates dossiers (``extra.rate`` per second, default 1, times
``options.speed``; ``rate = 0`` creates none; up to ``extra.count``, default unlimited) and,
when ``options.gateway_url`` is set, pushes them to ``/inbound/{system}`` in batches of 1-5, in
order, signed with ``options.secret`` (unsigned when it is None), retrying with backoff (and
``Retry-After``) while the gateway is unreachable, busy or refuses the signature: a dossier is
never dropped. Only a 400/413/415 answer, which no retry can change, gives a batch up (counted
as ``refused_batches``). Everything random comes from ``options.seed``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections import deque
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aiohttp
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway.api import FAULTS_KEY, SimulatorOptions, install_faults, sign
from gateway.connector import parse_retry_after
from gateway.model import nfc
from plugins.one_stop_shop.generator import DEFAULT_MADONVI, DEFAULT_START, Batch, DossierGenerator
from plugins.one_stop_shop.wire import (
    CODE_OK,
    CODE_SESSION_EXPIRED,
    PROCEDURE_MONTHLY_ALLOWANCE,
    RESULT_STATUSES,
    SERVICE_LOOKUP,
    SERVICE_PROGRESS,
    SERVICE_SYNC,
    STATUS_CODES,
    STATUS_RESULT_RETURNED,
    parse_timestamp,
)

CODE_INVALID = "01"
CODE_UNKNOWN_DOSSIER = "02"
CODE_UNKNOWN_SERVICE = "03"
PROGRESS_FIELDS = (
    "MaHoSo",
    "NguoiXuLy",
    "ChucDanh",
    "ThoiDiemXuLy",
    "PhongBanXuLy",
    "NoiDungXuLy",
    "TrangThai",
    "NgayBatDau",
    "NgayKetThucTheoQuyDinh",
)
RESULT_DOCUMENT_FIELDS = ("TenGiayTo", "MaThanhPhanHoSo", "GiayToId", "DuongDanTepTinKetQua")
PUSH_BACKOFF_START = 0.5
PUSH_BACKOFF_CAP = 30.0


class SimulatorExtra(BaseModel):
    """``options.extra`` of this simulator (unknown keys are refused)."""

    model_config = ConfigDict(extra="forbid")

    username: str = "gateway"
    password: str = "secret"
    madonvi: str = DEFAULT_MADONVI
    rate: float = Field(default=1.0, ge=0, description="dossiers per second; 0 = none")
    count: int | None = Field(default=None, ge=0, description="stop after this many")
    start: datetime = DEFAULT_START
    poll_page: int = Field(default=100, gt=0)


@dataclass(slots=True)
class PushStats:
    batches: int = 0
    items: int = 0
    attempts: int = 0
    failures: int = 0
    refused_batches: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    last_error: str | None = None
    rejections: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=100))


@dataclass(slots=True)
class OneStopShopState:
    """Everything the simulator knows; ``/_sim/state`` is its summary."""

    options: SimulatorOptions
    extra: SimulatorExtra
    generator: DossierGenerator
    token_rng: random.Random
    jitter_rng: random.Random
    dossiers: dict[str, dict[str, Any]] = field(default_factory=dict)
    feed: list[tuple[bool, dict[str, Any]]] = field(default_factory=list)
    outbox: asyncio.Queue[Batch] = field(default_factory=asyncio.Queue)
    waiting_to_push: int = 0
    created: int = 0
    updates: int = 0
    other_procedure: int = 0
    push: PushStats = field(default_factory=PushStats)
    sessions: dict[str, float] = field(default_factory=dict)
    logins_ok: int = 0
    logins_refused: int = 0
    session_expiries: int = 0
    calls_by_service: dict[str, int] = field(default_factory=dict)
    recent_calls: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=200))
    idempotency_keys: dict[str, int] = field(default_factory=dict)
    answers_by_key: dict[str, dict[str, Any]] = field(default_factory=dict)
    progress: dict[str, list[str]] = field(default_factory=dict)
    results: dict[str, list[str]] = field(default_factory=dict)
    results_received: int = 0

    def record_batch(self, batch: Batch) -> None:
        """A batch the one-stop-shop created: into the store, the poll feed and the outbox."""
        for item in batch.items:
            self.dossiers[item["MaHoSo"]] = item
            self.feed.append((batch.updating, self.generator.wire_form(item)))
            if batch.updating:
                self.updates += 1
            else:
                self.created += 1
                if item["MaTTHC"] != PROCEDURE_MONTHLY_ALLOWANCE:
                    self.other_procedure += 1
        if self.options.gateway_url and batch.items:
            self.waiting_to_push += len(batch.items)
            self.outbox.put_nowait(batch)

    def summary(self, faults: Mapping[str, int]) -> dict[str, Any]:
        p = self.push
        return {
            "system": self.options.system or "motcua",
            "dossiers": {
                "created": self.created,
                "updates": self.updates,
                "other_procedure": self.other_procedure,
                "stored": len(self.dossiers),
                "waiting_to_push": self.waiting_to_push,
                "pushed": p.items,
                "push_batches": p.batches,
                "push_attempts": p.attempts,
                "push_failures": p.failures,
                "refused_batches": p.refused_batches,
                "last_push_error": p.last_error,
                "acknowledged": {
                    "accepted": p.accepted,
                    "duplicates": p.duplicates,
                    "rejected": p.rejected,
                },
                "rejections": list(p.rejections),
            },
            "progress": self.progress,
            "results": self.results,
            "results_received": self.results_received,
            "logins": {"ok": self.logins_ok, "refused": self.logins_refused},
            "session_expiries": self.session_expiries,
            "calls": {
                "total": sum(self.calls_by_service.values()),
                "by_service": self.calls_by_service,
                "recent": list(self.recent_calls),
            },
            "idempotency_keys": self.idempotency_keys,
            "faults": dict(faults),
        }


OPTIONS_KEY = web.AppKey("one_stop_shop_options", SimulatorOptions)
STATE_KEY = web.AppKey("one_stop_shop_state", OneStopShopState)
CLIENT_KEY = web.AppKey("one_stop_shop_client", aiohttp.ClientSession)
TASKS_KEY = web.AppKey("one_stop_shop_tasks", list[asyncio.Task[None]])


def sim_state(app: web.Application) -> OneStopShopState:
    """The simulator's state; a helpful error when ``app`` is not this simulator."""
    try:
        return app[STATE_KEY]
    except KeyError:
        raise RuntimeError(
            "not a one-stop-shop simulator app: build it with create_one_stop_shop_simulator()"
        ) from None


def _error(code: str, message: str) -> web.Response:
    return web.json_response({"error_code": code, "message": message})


# -- adapter -----------------------------------------------------------------------------


async def handle_auth(request: web.Request) -> web.Response:
    state = sim_state(request.app)
    try:
        body = await request.json()
    except ValueError:
        return web.json_response(
            {"error_code": 2, "message": "Yêu cầu không phải JSON (the body is not JSON)"},
            status=400,
        )
    ok = isinstance(body, dict) and (body.get("username"), body.get("password")) == (
        state.extra.username,
        state.extra.password,
    )
    if not ok:
        state.logins_refused += 1
        return web.json_response({"error_code": 1, "message": "Sai tên đăng nhập hoặc mật khẩu"})
    token = f"{state.token_rng.getrandbits(128):032x}"
    state.sessions[token] = time.monotonic()
    state.logins_ok += 1
    return web.json_response({"session": token, "error_code": 0})


def _session_valid(request: web.Request, token: Any) -> bool:
    state = sim_state(request.app)
    if not isinstance(token, str) or token not in state.sessions:
        return False
    ttl = request.app[FAULTS_KEY].profile.session_ttl
    if ttl > 0 and time.monotonic() - state.sessions[token] >= ttl:
        del state.sessions[token]
        state.session_expiries += 1
        return False
    return True


async def handle_integration(request: web.Request) -> web.Response:
    state = sim_state(request.app)
    try:
        call = await request.json()
    except ValueError:
        call = None
    if not isinstance(call, dict):
        return web.json_response(
            {"error_code": CODE_INVALID, "message": "Yêu cầu phải là đối tượng JSON"}, status=400
        )
    service = str(call.get("service", ""))
    key = request.headers.get("Idempotency-Key")
    state.calls_by_service[service] = state.calls_by_service.get(service, 0) + 1
    state.recent_calls.append(
        {"service": service, "idempotency_key": key, "mahoso": _dossier_refs(call)}
    )
    if not _session_valid(request, call.get("session")):
        return _error(CODE_SESSION_EXPIRED, "Phiên làm việc đã hết hạn hoặc không hợp lệ")
    if not isinstance(call.get("madonvi"), str) or not call["madonvi"]:
        return _error(CODE_INVALID, "Thiếu mã đơn vị (madonvi)")
    if key:
        state.idempotency_keys[key] = state.idempotency_keys.get(key, 0) + 1
        if key in state.answers_by_key:
            return web.json_response(state.answers_by_key[key])
    handler = SERVICES.get(service)
    if handler is None:
        return _error(CODE_UNKNOWN_SERVICE, f"Dịch vụ không tồn tại: {service}")
    answer = handler(state, call)
    if key and answer.get("error_code") == CODE_OK and service != SERVICE_LOOKUP:
        state.answers_by_key[key] = answer
    return web.json_response(answer)


def _dossier_refs(call: Mapping[str, Any]) -> list[str]:
    if isinstance(call.get("mahoso"), str):
        return [call["mahoso"]]
    data = call.get("data")
    if not isinstance(data, list):
        return []
    return [str(d.get("MaHoSo")) for d in data if isinstance(d, Mapping)]


def _timestamp_ok(value: Any) -> bool:
    try:
        parse_timestamp(value)
    except (TypeError, ValueError):
        return False
    return True


def _data_items(call: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    data = call.get("data")
    if not isinstance(data, list) or not data or not all(isinstance(d, dict) for d in data):
        return None
    return [nfc(d) for d in data]


def service_progress(state: OneStopShopState, call: Mapping[str, Any]) -> dict[str, Any]:
    """CapNhatTienDoHoSoMC: processing steps; the dossier takes the step's TrangThai."""
    items = _data_items(call)
    if items is None:
        return {"error_code": CODE_INVALID, "message": "Thiếu danh sách data"}
    for item in items:
        missing = [k for k in PROGRESS_FIELDS if not isinstance(item.get(k), str)]
        if missing:
            return {"error_code": CODE_INVALID, "message": f"Thiếu trường {', '.join(missing)}"}
        stamps = ("ThoiDiemXuLy", "NgayBatDau", "NgayKetThucTheoQuyDinh")
        if item["TrangThai"] not in STATUS_CODES or not all(_timestamp_ok(item[k]) for k in stamps):
            return {"error_code": CODE_INVALID, "message": "Sai định dạng TrangThai hoặc thời gian"}
        if item["MaHoSo"] not in state.dossiers:
            return {"error_code": CODE_UNKNOWN_DOSSIER, "message": "Không tìm thấy hồ sơ"}
    for item in items:
        state.dossiers[item["MaHoSo"]]["TrangThaiHoSo"] = item["TrangThai"]
        state.progress.setdefault(item["MaHoSo"], []).append(item["TrangThai"])
    return {"error_code": CODE_OK, "message": "Cập nhật tiến độ thành công"}


def _result_problem(item: Mapping[str, Any]) -> str | None:
    docs = item.get("DanhSachGiayToKetQua")
    if not isinstance(docs, list) or not docs:
        return "Thiếu DanhSachGiayToKetQua"
    for doc in docs:
        if not isinstance(doc, dict) or any(
            not isinstance(doc.get(k), str) for k in RESULT_DOCUMENT_FIELDS
        ):
            return "Thiếu trường của giấy tờ kết quả"
    if not _timestamp_ok(item.get("NgayKetThucXuLy")):
        return "Sai định dạng NgayKetThucXuLy"
    if item.get("TrangThaiHoSo") == STATUS_RESULT_RETURNED and not _timestamp_ok(
        item.get("NgayTra")
    ):
        return "Sai định dạng NgayTra"
    return None


def service_sync(state: OneStopShopState, call: Mapping[str, Any]) -> dict[str, Any]:
    """DongBoHoSoMC from the gateway: replaces the dossier; a result is recorded."""
    items = _data_items(call)
    if items is None:
        return {"error_code": CODE_INVALID, "message": "Thiếu danh sách data"}
    updating = str(call.get("isUpdating", "False")).lower() == "true"
    for item in items:
        ma = item.get("MaHoSo")
        if not isinstance(ma, str) or not ma:
            return {"error_code": CODE_INVALID, "message": "Thiếu MaHoSo"}
        if updating and ma not in state.dossiers:
            return {"error_code": CODE_UNKNOWN_DOSSIER, "message": "Không tìm thấy hồ sơ"}
        if str(item.get("TrangThaiHoSo")) in RESULT_STATUSES:
            problem = _result_problem(item)
            if problem:
                return {"error_code": CODE_INVALID, "message": problem}
    for item in items:
        ma = item["MaHoSo"]
        state.dossiers[ma] = item
        if str(item.get("TrangThaiHoSo")) in RESULT_STATUSES:
            seen = state.results.setdefault(ma, [])
            new = [d["GiayToId"] for d in item["DanhSachGiayToKetQua"] if d["GiayToId"] not in seen]
            seen.extend(new)
            state.results_received += 1
    return {"error_code": CODE_OK, "message": "Đồng bộ hồ sơ thành công"}


def service_lookup(state: OneStopShopState, call: Mapping[str, Any]) -> dict[str, Any]:
    """TraCuuHoSo: the dossier in the DongBoHoSoMC shape, or an empty list."""
    ma = call.get("mahoso")
    found = state.dossiers.get(ma) if isinstance(ma, str) else None
    return {"error_code": CODE_OK, "result": [found] if found is not None else []}


SERVICES = {
    SERVICE_PROGRESS: service_progress,
    SERVICE_SYNC: service_sync,
    SERVICE_LOOKUP: service_lookup,
}


# -- feed, state and test hooks --------------------------------------------------------


async def handle_feed(request: web.Request) -> web.Response:
    """``GET /ho-so?tu=N``: entries after cursor N, all with the same isUpdating."""
    state = sim_state(request.app)
    try:
        after = int(request.query.get("tu") or 0)
        limit = int(request.query.get("limit") or state.extra.poll_page)
    except ValueError:
        return web.json_response(
            {
                "error": "bad_request",
                "message": "tu và limit phải là số (tu and limit are numbers)",
            },
            status=400,
        )
    page: list[dict[str, Any]] = []
    updating = False
    for updating_now, item in state.feed[max(after, 0) :]:
        if page and (updating_now != updating or len(page) >= limit):
            break
        updating = updating_now
        page.append(item)
    return web.json_response(
        {
            "isUpdating": "True" if updating else "False",
            "data": page,
            "cursor": str(max(after, 0) + len(page)),
        }
    )


async def handle_state(request: web.Request) -> web.Response:
    state = sim_state(request.app)
    return web.json_response(state.summary(request.app[FAULTS_KEY].injected))


async def handle_load(request: web.Request) -> web.Response:
    """``POST /_sim/dossiers`` ``{"data": [...]}``: put dossiers in the store (tests, demos)."""
    state = sim_state(request.app)
    try:
        body = await request.json()
    except ValueError:
        body = None
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list) or not all(
        isinstance(d, dict) and isinstance(d.get("MaHoSo"), str) for d in data
    ):
        return web.json_response(
            {"error": "bad_request", "message": 'expected {"data": [dossiers with MaHoSo]}'},
            status=400,
        )
    for item in data:
        state.dossiers[item["MaHoSo"]] = nfc(item)
    return web.json_response({"loaded": len(data)})


async def handle_generate(request: web.Request) -> web.Response:
    """``POST /_sim/generate?count=N``: create N new dossiers now (fed, stored, pushed)."""
    state = sim_state(request.app)
    try:
        count = int(request.query.get("count", "1"))
    except ValueError:
        count = -1
    if count < 0:
        return web.json_response(
            {"error": "bad_request", "message": "count must be a whole number"}, status=400
        )
    batch = Batch(False, [state.generator.new_dossier() for _ in range(count)])
    state.record_batch(batch)
    return web.json_response({"created": [item["MaHoSo"] for item in batch.items]})


# -- background: create and push -----------------------------------------------------------


async def create_dossiers(app: web.Application) -> None:
    """Create batches at ``extra.rate`` dossiers per second until ``extra.count``."""
    state = sim_state(app)
    extra = state.extra
    if extra.rate <= 0:
        return
    while extra.count is None or state.created < extra.count:
        left = None if extra.count is None else extra.count - state.created
        batch = state.generator.next_batch(left)
        state.record_batch(batch)
        await asyncio.sleep(len(batch.items) / extra.rate / state.options.speed)


async def push_dossiers(app: web.Application) -> None:
    """Push every created batch, in order, until the gateway acknowledges it."""
    state = sim_state(app)
    while True:
        batch = await state.outbox.get()
        await push_batch(app, batch)
        state.waiting_to_push -= len(batch.items)
        state.outbox.task_done()


async def push_batch(app: web.Application, batch: Batch) -> None:
    state = sim_state(app)
    options = state.options
    url = f"{(options.gateway_url or '').rstrip('/')}/inbound/{options.system or 'motcua'}"
    document = {
        "isUpdating": "True" if batch.updating else "False",
        "data": [state.generator.wire_form(item) for item in batch.items],
    }
    body = json.dumps(document, ensure_ascii=False).encode()
    delay = PUSH_BACKOFF_START
    while True:
        state.push.attempts += 1
        headers = {"Content-Type": "application/json"}
        if options.secret:
            headers.update(sign(options.secret, body))  # signed afresh: the timestamp counts
        retry_after: float | None = None
        try:
            async with app[CLIENT_KEY].post(url, data=body, headers=headers) as resp:
                raw = await resp.read()
                if resp.status == 202:
                    _acknowledged(state, batch, raw)
                    return
                if resp.status in (400, 413, 415):
                    # the gateway can never take this body; retrying would block the rest
                    state.push.refused_batches += 1
                    state.push.last_error = (
                        f"HTTP {resp.status}: {raw[:200].decode(errors='replace')}"
                    )
                    return
                retry_after = parse_retry_after(resp.headers.get("Retry-After"))
                state.push.last_error = f"HTTP {resp.status}"
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            state.push.last_error = f"{type(exc).__name__}: {exc}"
        state.push.failures += 1
        wait = retry_after if retry_after is not None else delay
        wait += state.jitter_rng.uniform(0, wait / 4)
        await asyncio.sleep(wait / options.speed)
        delay = min(delay * 2, PUSH_BACKOFF_CAP)


def _acknowledged(state: OneStopShopState, batch: Batch, raw: bytes) -> None:
    push = state.push
    push.batches += 1
    push.items += len(batch.items)
    push.last_error = None
    try:
        answer = json.loads(raw)
    except ValueError:
        return
    if not isinstance(answer, dict):
        return
    push.accepted += len(answer.get("accepted") or [])
    push.duplicates += len(answer.get("duplicates") or [])
    rejected = answer.get("rejected") or []
    push.rejected += len(rejected)
    push.rejections.extend(r for r in rejected if isinstance(r, dict))


# -- app -----------------------------------------------------------------------------------


async def _client_ctx(app: web.Application) -> AsyncIterator[None]:
    timeout = aiohttp.ClientTimeout(total=30, sock_connect=5)
    async with aiohttp.ClientSession(
        timeout=timeout, connector=aiohttp.TCPConnector(limit=4)
    ) as client:
        app[CLIENT_KEY] = client
        yield


async def _tasks_ctx(app: web.Application) -> AsyncIterator[None]:
    tasks = [asyncio.create_task(create_dossiers(app), name="one_stop_shop.create")]
    if sim_state(app).options.gateway_url:
        tasks.append(asyncio.create_task(push_dossiers(app), name="one_stop_shop.push"))
    app[TASKS_KEY] = tasks
    yield
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task


def create_one_stop_shop_simulator(options: SimulatorOptions) -> web.Application:
    """The one-stop-shop simulator app (see the module docstring)."""
    try:
        extra = SimulatorExtra.model_validate(options.extra)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"])
        msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        raise ValueError(f"one_stop_shop simulator: extra.{key}: {msg}") from None
    if options.speed <= 0:
        raise ValueError("one_stop_shop simulator: speed must be positive")
    state = OneStopShopState(
        options=options,
        extra=extra,
        generator=DossierGenerator(seed=options.seed, start=extra.start, madonvi=extra.madonvi),
        token_rng=random.Random(f"{options.seed}:tokens"),
        jitter_rng=random.Random(f"{options.seed}:jitter"),
    )
    app = web.Application()
    app[OPTIONS_KEY] = options
    app[STATE_KEY] = state
    install_faults(app, options.fault_profile, seed=options.seed)
    app.router.add_post("/auth", handle_auth)
    app.router.add_post("/integration", handle_integration)
    app.router.add_get("/ho-so", handle_feed)
    app.router.add_get("/_sim/state", handle_state)
    app.router.add_post("/_sim/dossiers", handle_load)
    app.router.add_post("/_sim/generate", handle_generate)
    app.cleanup_ctx.append(_client_ctx)
    app.cleanup_ctx.append(_tasks_ctx)
    return app
