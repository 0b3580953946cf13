"""A simulated post office (the payer) that speaks FORMATS.md §3.

``POST /danh-sach-chi-tra`` takes a payment list:

* no ``Idempotency-Key`` header → ``400 <Loi ma="idempotency_key">``;
* content type other than XML → ``415``; unreadable or hostile XML, a root other than
  ``DanhSachChiTra``, or a document the XSD refuses → ``400 <Loi ma="xsd">``;
* totals that do not add up → ``422 <Loi ma="tong">``;
* the same ``(ky, maXa, lanGui)`` again, or a lower ``lanGui`` than the one held →
  ``409 <Loi ma="da_nhan">``;
* otherwise ``200 <TiepNhan ky maXa soDong/>``; a higher ``lanGui`` replaces the list held.

Some time after a list is taken (``extra["payout_delay"]`` seconds, default 3.0, divided by
``options.speed``) the payer pays it and pushes a signed ``KetQuaChiTra`` to
``{gateway_url}/inbound/{system}``. Pushes are retried with capped exponential backoff
(``extra["push_retry_initial"]``, default 0.5 s; ``extra["push_retry_max"]``, default 30 s)
until the gateway answers 2xx: a result is never dropped. A list replaced by a higher
``lanGui`` before its results went out is paid from the new list only (its pending push is
replaced); results already pushed stay pushed, and the new list's results follow.

Results: most lines ``da_chi`` with ``soTien`` = month + arrears + carried amount and a
``ngayChi`` between the 1st and the 15th of the month; a seeded fraction
(``extra["unpaid_rate"]``, default 0.05) ``chua_chi`` with ``soTien="0"`` and a ``lyDo``;
with ``extra["unpaid_every"]`` = N (default 0: off) also every Nth line with money due that
the payer settles, counted over all its lists in the order taken (a demonstration that must
show unpaid lines whatever the seed).
A line with nothing to pay (``tam_dung`` / ``giam`` with all amounts 0) gets **no** result
line: nothing was due, and a ``chua_chi`` would wrongly count toward the three unpaid months
that make a suspension candidate. ``loaiDoiTuong`` is written on a result line when it
answers a ``cs`` line or when the person has several lines in the list.

``GET /_sim/state`` answers JSON: lists held, 409/400/422 counts, idempotency keys seen,
results pushed and pending. Faults: :func:`gateway.api.install_faults`.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import aiohttp
from aiohttp import web
from lxml import etree

from gateway.api import SimulatorOptions, install_faults, sign
from gateway.xmlsafe import XmlError, parse_xml, to_bytes
from plugins.post_office.wire import (
    DANH_SACH_CHI_TRA,
    DONG,
    KET_QUA_CHI_TRA,
    LINE_MONEY,
    NSMAP,
    TIEP_NHAN,
    loi_body,
    xsd_errors,
)

XML = "application/xml"
MAX_BODY = 10_485_760
REASONS_UNPAID = ("vắng nhà", "đi làm ăn xa", "ốm nằm viện", "không liên lạc được")


@dataclass(frozen=True, slots=True)
class PayLine:
    """What the payer keeps of one list line to pay it."""

    so_dinh_danh: str
    loai_doi_tuong: str
    amount: int
    nhan_tien: str


@dataclass(slots=True)
class HeldList:
    ky: str
    ma_xa: str
    lan_gui: int
    lines: list[PayLine]
    tong_so_tien: int
    replaced: list[int] = field(default_factory=list)


@dataclass(slots=True)
class PendingPush:
    ky: str
    ma_xa: str
    lan_gui: int
    body: bytes
    so_dong: int
    due: float
    attempts: int = 0


@dataclass(slots=True)
class PostOfficeState:
    """Everything the simulated payer holds (read by ``GET /_sim/state``)."""

    lists: dict[tuple[str, str], HeldList] = field(default_factory=dict)
    conflicts_409: int = 0
    rejected_400: int = 0
    rejected_422: int = 0
    idempotency_keys: Counter[str] = field(default_factory=Counter)
    pending: dict[tuple[str, str], PendingPush] = field(default_factory=dict)
    pushed: list[dict[str, Any]] = field(default_factory=list)
    push_attempts: int = 0
    push_failures: int = 0
    last_push_error: str | None = None
    lines_settled: int = 0  # lines with money due, over every list taken (unpaid_every)
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass(frozen=True, slots=True)
class PayerSettings:
    payout_delay: float
    unpaid_rate: float
    retry_initial: float
    retry_max: float
    push_url: str | None
    secret: str | None
    seed: int
    unpaid_every: int = 0

    @classmethod
    def from_options(cls, options: SimulatorOptions) -> PayerSettings:
        extra = options.extra
        speed = options.speed if options.speed > 0 else 1.0
        unpaid_rate = _number(extra, "unpaid_rate", 0.05)
        if not 0.0 <= unpaid_rate <= 1.0:
            raise ValueError("post_office simulator: unpaid_rate must be between 0 and 1")
        push_url = None
        if options.gateway_url:
            push_url = (
                f"{options.gateway_url.rstrip('/')}/inbound/{options.system or 'post_office'}"
            )
        return cls(
            payout_delay=_number(extra, "payout_delay", 3.0) / speed,
            unpaid_rate=unpaid_rate,
            retry_initial=max(0.01, _number(extra, "push_retry_initial", 0.5)),
            retry_max=max(0.01, _number(extra, "push_retry_max", 30.0)),
            push_url=push_url,
            secret=options.secret,
            seed=options.seed,
            unpaid_every=max(0, int(_number(extra, "unpaid_every", 0))),
        )


def _number(extra: dict[str, Any], key: str, default: float) -> float:
    value = extra.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"post_office simulator: {key} must be a non-negative number")
    return float(value)


STATE_KEY = web.AppKey("post_office_state", PostOfficeState)
SETTINGS_KEY = web.AppKey("post_office_settings", PayerSettings)
SESSION_KEY = web.AppKey("post_office_session", aiohttp.ClientSession)
PUSHER_KEY = web.AppKey("post_office_pusher", asyncio.Task[None])


def create_post_office_simulator(options: SimulatorOptions) -> web.Application:
    """The simulated payer (see the module docstring)."""
    app = web.Application(client_max_size=MAX_BODY)
    app[STATE_KEY] = PostOfficeState()
    app[SETTINGS_KEY] = PayerSettings.from_options(options)
    install_faults(app, options.fault_profile, seed=options.seed)
    app.router.add_post("/danh-sach-chi-tra", receive_list)
    app.router.add_get("/_sim/state", sim_state)
    app.cleanup_ctx.append(_client_session)
    app.cleanup_ctx.append(_pusher)
    return app


# -- receiving lists ----------------------------------------------------------------------


def _xml_answer(body: bytes, status: int) -> web.Response:
    return web.Response(body=body, status=status, content_type=XML, charset="utf-8")


def _loi(state: PostOfficeState, status: int, code: str, reason: str) -> web.Response:
    if status == 400:
        state.rejected_400 += 1
    elif status == 422:
        state.rejected_422 += 1
    return _xml_answer(loi_body(code, reason), status)


async def receive_list(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    key = request.headers.get("Idempotency-Key", "").strip()
    if not key:
        return _loi(
            state, 400, "idempotency_key", "thiếu Idempotency-Key (missing Idempotency-Key)"
        )
    state.idempotency_keys[key] += 1
    if request.content_type not in (XML, "text/xml"):
        return _loi(state, 415, "content_type", f"cần {XML} (expected {XML})")
    try:
        root = parse_xml(await request.read(), max_bytes=MAX_BODY)
    except XmlError as exc:
        return _loi(state, 400, "xsd", f"không đọc được XML (cannot read the XML): {exc}")
    if root.tag != DANH_SACH_CHI_TRA:
        return _loi(state, 400, "xsd", "cần DanhSachChiTra (expected DanhSachChiTra)")
    errors = xsd_errors(root)
    if errors:
        return _loi(state, 400, "xsd", "; ".join(errors[:5]))
    held = _read_list(root)
    problem = _totals_problem(root, held)
    if problem:
        return _loi(state, 422, "tong", problem)
    return _take(request.app, held)


def _read_list(root: etree._Element) -> HeldList:
    lines = []
    for dong in root.iterchildren(DONG):
        amount = sum(int(dong.get(name, "0")) for name in LINE_MONEY)
        lines.append(
            PayLine(
                dong.get("soDinhDanh", ""),
                dong.get("loaiDoiTuong", ""),
                amount,
                dong.get("nhanTien", ""),
            )
        )
    return HeldList(
        ky=root.get("ky", ""),
        ma_xa=root.get("maXa", ""),
        lan_gui=int(root.get("lanGui", "0")),
        lines=lines,
        tong_so_tien=sum(line.amount for line in lines),
    )


def _totals_problem(root: etree._Element, held: HeldList) -> str | None:
    people, money = int(root.get("tongSoNguoi", "0")), int(root.get("tongSoTien", "0"))
    if people == len(held.lines) and money == held.tong_so_tien:
        return None
    return (
        f"tổng không khớp: tongSoNguoi={people}, số dòng={len(held.lines)}; "
        f"tongSoTien={money}, tổng các dòng={held.tong_so_tien} "
        f"(totals do not add up: tongSoNguoi {people} vs {len(held.lines)} lines; "
        f"tongSoTien {money} vs {held.tong_so_tien} summed)"
    )


def _take(app: web.Application, held: HeldList) -> web.Response:
    state, settings = app[STATE_KEY], app[SETTINGS_KEY]
    slot = (held.ky, held.ma_xa)
    current = state.lists.get(slot)
    if current is not None and held.lan_gui <= current.lan_gui:
        state.conflicts_409 += 1
        return _xml_answer(
            loi_body(
                "da_nhan",
                f"đã nhận lanGui {current.lan_gui} cho kỳ {held.ky}, xã {held.ma_xa} "
                f"(lanGui {current.lan_gui} for {held.ky} / {held.ma_xa} is already held)",
            ),
            409,
        )
    if current is not None:
        held.replaced = [*current.replaced, current.lan_gui]
    state.lists[slot] = held
    if settings.push_url is not None:
        body, so_dong = build_results(held, settings, settled_before=state.lines_settled)
        state.lines_settled += so_dong
        due = time.monotonic() + settings.payout_delay
        state.pending[slot] = PendingPush(held.ky, held.ma_xa, held.lan_gui, body, so_dong, due)
        state.wakeup.set()
    receipt = etree.Element(
        TIEP_NHAN,
        {"ky": held.ky, "maXa": held.ma_xa, "soDong": str(len(held.lines))},
        nsmap=NSMAP,
    )
    return _xml_answer(to_bytes(receipt), 200)


# -- paying and pushing results -------------------------------------------------------------


def build_results(
    held: HeldList, settings: PayerSettings, *, settled_before: int = 0
) -> tuple[bytes, int]:
    """The payer's ``KetQuaChiTra`` for a list, reproducible from the seed; and its line count.
    ``settled_before``: lines with money due in the lists taken before (``unpaid_every``)."""
    rng = random.Random(f"{settings.seed}:{held.ky}:{held.ma_xa}:{held.lan_gui}")
    year, month = (int(part) for part in held.ky.split("-"))
    per_person = Counter(line.so_dinh_danh for line in held.lines)
    root = etree.Element(KET_QUA_CHI_TRA, {"ky": held.ky, "maXa": held.ma_xa}, nsmap=NSMAP)
    count = 0
    for line in held.lines:
        if line.amount == 0:
            continue  # nothing was due (suspended or closed with nothing owed): no result
        attrs = {"soDinhDanh": line.so_dinh_danh}
        every = settings.unpaid_every
        nth = every > 0 and (settled_before + count + 1) % every == 0
        if rng.random() < settings.unpaid_rate or nth:
            attrs |= {"trangThai": "chua_chi", "soTien": "0", "lyDo": rng.choice(REASONS_UNPAID)}
        else:
            paid_on = date(year, month, rng.randint(1, 15)).isoformat()
            attrs |= {"trangThai": "da_chi", "soTien": str(line.amount), "ngayChi": paid_on}
            attrs["nhanTien"] = line.nhan_tien
        if line.loai_doi_tuong == "cs" or per_person[line.so_dinh_danh] > 1:
            attrs["loaiDoiTuong"] = line.loai_doi_tuong
        etree.SubElement(root, DONG, attrs)
        count += 1
    return to_bytes(root), count


async def _push_loop(app: web.Application) -> None:
    state, settings, session = app[STATE_KEY], app[SETTINGS_KEY], app[SESSION_KEY]
    while True:
        state.wakeup.clear()
        now = time.monotonic()
        for slot, push in list(state.pending.items()):
            if push.due <= now:
                await _push_one(state, settings, session, slot, push)
        dues = [push.due for push in state.pending.values()]
        timeout = max(0.0, min(dues) - time.monotonic()) if dues else None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(state.wakeup.wait(), timeout)


async def _push_one(
    state: PostOfficeState,
    settings: PayerSettings,
    session: aiohttp.ClientSession,
    slot: tuple[str, str],
    push: PendingPush,
) -> None:
    if settings.push_url is None:  # pushes are only queued with a URL
        return
    headers = {"Content-Type": XML}
    if settings.secret:
        headers |= sign(settings.secret, push.body)
    push.attempts += 1
    state.push_attempts += 1
    try:
        async with session.post(settings.push_url, data=push.body, headers=headers) as resp:
            await resp.read()
            ok, error = 200 <= resp.status < 300, f"HTTP {resp.status}"
    except Exception as exc:  # any failure is retried: the pusher must never die, nor drop
        ok, error = False, f"{type(exc).__name__}: {exc}"
    if ok:
        if state.pending.get(slot) is push:  # not replaced by a newer list meanwhile
            del state.pending[slot]
        state.pushed.append(
            {
                "ky": push.ky,
                "maXa": push.ma_xa,
                "lanGui": push.lan_gui,
                "soDong": push.so_dong,
                "attempts": push.attempts,
            }
        )
        return
    state.push_failures += 1
    state.last_push_error = error
    backoff = min(settings.retry_max, settings.retry_initial * 2 ** (push.attempts - 1))
    push.due = time.monotonic() + backoff


async def _client_session(app: web.Application) -> AsyncIterator[None]:
    timeout = aiohttp.ClientTimeout(total=30, sock_connect=5)
    async with aiohttp.ClientSession(
        timeout=timeout, connector=aiohttp.TCPConnector(limit=4)
    ) as session:
        app[SESSION_KEY] = session
        yield


async def _pusher(app: web.Application) -> AsyncIterator[None]:
    app[PUSHER_KEY] = asyncio.create_task(_push_loop(app))
    yield
    app[PUSHER_KEY].cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await app[PUSHER_KEY]


# -- inspection ---------------------------------------------------------------------------


async def sim_state(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    lists = [
        {
            "ky": held.ky,
            "maXa": held.ma_xa,
            "lanGui": held.lan_gui,
            "soDong": len(held.lines),
            "tongSoTien": held.tong_so_tien,
            "replaced": held.replaced,
        }
        for held in state.lists.values()
    ]
    return web.json_response(
        {
            "lists": lists,
            "conflicts_409": state.conflicts_409,
            "rejected_400": state.rejected_400,
            "rejected_422": state.rejected_422,
            "idempotency_keys": dict(state.idempotency_keys),
            "results": {
                "push_enabled": request.app[SETTINGS_KEY].push_url is not None,
                "pushed": len(state.pushed),
                "pending": len(state.pending),
                "attempts": state.push_attempts,
                "failed_attempts": state.push_failures,
                "last_error": state.last_push_error,
                "history": state.pushed,
            },
        }
    )
