"""A stateful simulator of the social-assistance registry (FORMATS.md §2).

* ``POST /ho-so`` takes a ``HoSoTroCap``: 400 ``<Loi ma="xsd">`` when invalid (or
  ``ma="idempotency"`` without an ``Idempotency-Key``), 409 for a revision it already has,
  422 ``<Loi>`` for a business refusal (age outside the category, a category not yet in force,
  or a seeded fraction ``extra["refuse_rate"]`` of dossiers), else 201 ``<BienNhan>``.
* ``POST /de-nghi-tam-dung`` takes a ``DeNghiTamDung``: 200 ``<TiepNhan>``, 409 on a repeat;
  known beneficiaries on it get a ``tam_dung`` decision.
* After an appraisal delay (``extra["appraisal_delay"]`` seconds, default 2.0, divided by
  ``speed``) it pushes a signed ``QuyetDinh loai="huong"`` per accepted dossier to
  ``{gateway_url}/inbound/{system}``, sometimes several at once as ``DanhSachQuyetDinh``
  (``extra["batch_rate"]``), and now and then a later ``dieu_chinh`` / ``tam_dung`` /
  ``thoi_huong`` / ``tiep_tuc`` for someone already granted (``extra["change_rate"]``).
  Pushes that fail are retried with backoff, in order, and never dropped.
* ``GET /_sim/state`` answers counters as JSON (see :meth:`RegistrySimState.snapshot`).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import json
import random
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import aiohttp
from aiohttp import web
from lxml import etree

from gateway.api import FAULTS_KEY, SimulatorOptions, install_faults, sign
from gateway.model import VN_TZ, now_vn
from gateway.xmlsafe import XmlError, parse_xml, to_bytes

from . import sim_rules
from .sim_rules import Person
from .wire import CONTENT_TYPE, element, loi, q, readable_schema_errors

_XML_CONTENT_TYPES = ("application/xml", "text/xml")
_MAX_BODY = 10_485_760
_MAX_BATCH = 5
_BACKOFF_START = 0.2
_BACKOFF_CAP = 30.0


@dataclass(slots=True)
class RegistrySimState:
    """Everything the simulated registry remembers."""

    options: SimulatorOptions
    rng: random.Random
    people: dict[str, Person] = field(default_factory=dict)  # by maHoSo
    revisions: set[tuple[str, int]] = field(default_factory=set)
    receipts: dict[str, str] = field(default_factory=dict)  # maHoSo -> soBienNhan
    suspension_lists: set[tuple[str, str, tuple[str, ...]]] = field(default_factory=set)
    idempotency_keys: Counter[str] = field(default_factory=Counter)
    counters: Counter[str] = field(default_factory=Counter)
    pending: list[tuple[float, int, dict[str, str]]] = field(default_factory=list)  # a heap
    in_flight: list[dict[str, str]] = field(default_factory=list)
    pushed: list[dict[str, str]] = field(default_factory=list)  # so, loai, maHoSo only
    last_push_error: str = ""
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    sequence: itertools.count[int] = field(default_factory=itertools.count)
    next_number: int = 1

    @property
    def speed(self) -> float:
        return self.options.speed if self.options.speed > 0 else 1.0

    def setting(self, name: str, default: float) -> float:
        return float(self.options.extra.get(name, default))

    def decision_number(self) -> str:
        number = f"{self.next_number}/QĐ-UBND"
        self.next_number += 1
        return number

    def schedule(self, attributes: dict[str, str], delay: float) -> None:
        due = asyncio.get_running_loop().time() + delay / self.speed
        heapq.heappush(self.pending, (due, next(self.sequence), attributes))
        self.wakeup.set()

    def take_due(self, now: float) -> list[dict[str, str]]:
        """The next decision(s) to push: one, or sometimes a batch of those already due."""
        if not self.pending or self.pending[0][0] > now:
            return []
        batch = [heapq.heappop(self.pending)[2]]
        if self.rng.random() < self.setting("batch_rate", 0.3):
            while self.pending and self.pending[0][0] <= now and len(batch) < _MAX_BATCH:
                batch.append(heapq.heappop(self.pending)[2])
        return batch

    def seconds_to_next(self, now: float) -> float:
        if not self.pending:
            return 1.0
        return min(1.0, max(0.0, self.pending[0][0] - now))

    def snapshot(self) -> dict[str, Any]:
        """The counters ``GET /_sim/state`` answers (no personal data)."""
        c = self.counters
        return {
            "requests": c["requests"],
            "dossiers_received": c["accepted"],
            "dossiers": len(self.receipts),
            "duplicates": c["duplicates"],
            "invalid": c["invalid"],
            "refusals": c["refusals"],
            "idempotency_keys": dict(self.idempotency_keys),
            "suspension_requests": c["suspension_requests"],
            "suspension_duplicates": c["suspension_duplicates"],
            "decisions_pushed": c["decisions_pushed"],
            "decisions_pending": len(self.pending) + len(self.in_flight),
            "push_attempts": c["push_attempts"],
            "push_failures": c["push_failures"],
            "push_rejected": c["push_rejected"],
            "batches_pushed": c["batches_pushed"],
            "last_push_error": self.last_push_error,
            "pushed": self.pushed[-50:],
        }


STATE_KEY = web.AppKey("district_registry.state", RegistrySimState)
SESSION_KEY = web.AppKey("district_registry.session", aiohttp.ClientSession)
PUSHER_KEY: web.AppKey[asyncio.Task[None]] = web.AppKey("district_registry.pusher")


def registry_state(app: web.Application) -> RegistrySimState:
    """The simulator's state; a helpful error when the app was not built by the factory."""
    try:
        return app[STATE_KEY]
    except KeyError:
        raise RuntimeError(
            "not a registry simulator app: build it with create_registry_simulator()"
        ) from None


# -- answers -------------------------------------------------------------------------------


def _xml(body: bytes, status: int) -> web.Response:
    return web.Response(
        body=body, status=status, headers={"Content-Type": f"{CONTENT_TYPE}; charset=utf-8"}
    )


def _error(status: int, ma: str, text: str) -> web.Response:
    return _xml(loi(ma, text), status)


async def _read_document(
    request: web.Request, expected: str
) -> tuple[etree._Element | None, web.Response | None]:
    """The validated document of a POST, or the 4xx answer to give instead."""
    state = registry_state(request.app)
    state.counters["requests"] += 1
    if request.content_type not in _XML_CONTENT_TYPES:
        state.counters["invalid"] += 1
        return None, _error(
            415, "content_type", f"Content-Type phải là {CONTENT_TYPE} (must be {CONTENT_TYPE})"
        )
    key = request.headers.get("Idempotency-Key", "").strip()
    if not key:
        state.counters["invalid"] += 1
        return None, _error(
            400, "idempotency", "Thiếu tiêu đề Idempotency-Key (Idempotency-Key header missing)"
        )
    state.idempotency_keys[key] += 1
    try:
        root = parse_xml(await request.read(), max_bytes=_MAX_BODY)
    except XmlError as exc:
        state.counters["invalid"] += 1
        return None, _error(400, "xsd", f"XML không đọc được (unreadable XML): {exc}")
    if root.tag != q(expected):
        state.counters["invalid"] += 1
        return None, _error(
            400, "xsd", f"Phần tử gốc phải là {expected} (the root element must be {expected})"
        )
    errors = readable_schema_errors(root)
    if errors:
        state.counters["invalid"] += 1
        return None, _error(400, "xsd", "; ".join(errors))
    return root, None


# -- POST /ho-so ---------------------------------------------------------------------------


def _person(root: etree._Element) -> Person:
    doi_tuong = root.find(q("DoiTuong"))
    de_nghi = root.find(q("DeNghi"))
    dia_chi = doi_tuong.find(q("DiaChi")) if doi_tuong is not None else None
    if doi_tuong is None or de_nghi is None or dia_chi is None:  # the XSD guarantees them
        raise ValueError("HoSoTroCap without DoiTuong/DiaChi/DeNghi")
    return Person(
        ma_ho_so=root.get("maHoSo", ""),
        so_dinh_danh=doi_tuong.get("soDinhDanh", ""),
        ho_ten=doi_tuong.get("hoTen", ""),
        ngay_sinh=date.fromisoformat(doi_tuong.get("ngaySinh", "")),
        gioi_tinh=doi_tuong.get("gioiTinh"),
        ma_xa=dia_chi.get("maXa", ""),
        loai_doi_tuong=de_nghi.get("loaiDoiTuong", ""),
        muc_do_khuyet_tat=de_nghi.get("mucDoKhuyetTat", ""),
        nhan_tien=de_nghi.get("nhanTien"),
    )


def _refusal(state: RegistrySimState, person: Person, received: date) -> tuple[str, str] | None:
    rule = sim_rules.refusal(person, received)
    if rule is not None:
        return rule
    # the same dossier is always judged the same way, whatever order dossiers arrive in
    fate = random.Random(f"{state.options.seed}:{person.ma_ho_so}")
    if fate.random() < state.setting("refuse_rate", 0.05):
        return (
            "ho_so_thieu",
            "Hồ sơ thiếu văn bản xác nhận của UBND xã "
            "(the dossier lacks the commune's confirmation)",
        )
    return None


async def post_ho_so(request: web.Request) -> web.Response:
    state = registry_state(request.app)
    root, problem = await _read_document(request, "HoSoTroCap")
    if root is None:
        return problem or _error(400, "xsd", "invalid")
    ma_ho_so, revision = root.get("maHoSo", ""), int(root.get("lanCapNhat", "1"))
    if (ma_ho_so, revision) in state.revisions:
        state.counters["duplicates"] += 1
        return _error(
            409,
            "da_nhan",
            f"Đã nhận lần cập nhật {revision} (revision {revision} already received)",
        )
    try:
        person = _person(root)
        received = datetime.fromisoformat(root.get("ngayTiepNhan", "")).astimezone(VN_TZ).date()
    except ValueError:  # valid for XSD yet not a real instant, e.g. T24:00:00
        state.counters["invalid"] += 1
        return _error(400, "xsd", "ngayTiepNhan/ngaySinh: thời điểm không hợp lệ (invalid date)")
    refused = _refusal(state, person, received)
    if refused is not None:
        state.counters["refusals"] += 1
        return _error(422, *refused)
    state.revisions.add((ma_ho_so, revision))
    state.counters["accepted"] += 1
    receipt = state.receipts.setdefault(ma_ho_so, f"BN-{len(state.receipts) + 1:06d}")
    due_text = root.get("ngayHenTra")
    _decide(state, person, received, date.fromisoformat(due_text) if due_text else None)
    return _xml(to_bytes(element("BienNhan", {"maHoSo": ma_ho_so, "soBienNhan": receipt})), 201)


def _decide(state: RegistrySimState, person: Person, received: date, due: date | None) -> None:
    """Schedule what the registry will decide about an accepted application."""
    delay = state.setting("appraisal_delay", 2.0)
    today = now_vn().date()
    known = state.people.get(person.ma_ho_so)
    if known is None or known.status == "new":
        person.so_con = state.rng.randint(1, 3) if person.loai_doi_tuong == "5.4" else None
        signed = sim_rules.signing_date(received, due, today)
        person.status, person.last_signed = "granted", signed
        state.people[person.ma_ho_so] = person
        state.schedule(sim_rules.grant_attributes(person, state.decision_number(), signed), delay)
        _maybe_change_someone(state, delay, today)
        return
    if known.status == "granted" and (
        (known.loai_doi_tuong, known.muc_do_khuyet_tat, known.nhan_tien)
        != (person.loai_doi_tuong, person.muc_do_khuyet_tat, person.nhan_tien)
    ):
        # a new revision of a granted dossier changes the benefit: an adjustment
        known.loai_doi_tuong = person.loai_doi_tuong
        known.muc_do_khuyet_tat = person.muc_do_khuyet_tat
        known.nhan_tien = person.nhan_tien
        signed = max(known.last_signed or today, sim_rules.signing_date(received, due, today))
        known.last_signed = signed
        attributes = sim_rules.grant_attributes(known, state.decision_number(), signed)
        attributes["loai"] = "dieu_chinh"
        state.schedule(attributes, delay)


def _maybe_change_someone(state: RegistrySimState, delay: float, today: date) -> None:
    if state.rng.random() >= state.setting("change_rate", 0.1):
        return
    candidates = [p for p in state.people.values() if p.status in ("granted", "suspended")]
    if not candidates:
        return
    person = state.rng.choice(candidates)
    attributes = sim_rules.change_attributes(person, state.decision_number(), state.rng, today)
    state.schedule(attributes, delay * state.rng.uniform(2.0, 4.0))


# -- POST /de-nghi-tam-dung ----------------------------------------------------------------


async def post_de_nghi_tam_dung(request: web.Request) -> web.Response:
    state = registry_state(request.app)
    root, problem = await _read_document(request, "DeNghiTamDung")
    if root is None:
        return problem or _error(400, "xsd", "invalid")
    ky, ma_xa = root.get("ky", ""), root.get("maXa", "")
    people = [node.get("soDinhDanh", "") for node in root.iter(q("DoiTuong"))]
    signature = (ky, ma_xa, tuple(sorted(people)))
    if signature in state.suspension_lists:
        state.counters["suspension_duplicates"] += 1
        return _error(
            409, "da_nhan", f"Đã nhận đề nghị kỳ {ky} (the list for {ky} was already received)"
        )
    state.suspension_lists.add(signature)
    state.counters["suspension_requests"] += 1
    ky_date = date.fromisoformat(f"{ky}-01")
    today = now_vn().date()
    wanted = set(people)
    for person in state.people.values():
        if person.so_dinh_danh in wanted and person.status == "granted":
            attributes = sim_rules.suspension_attributes(
                person, state.decision_number(), ky_date, today
            )
            state.schedule(attributes, state.setting("appraisal_delay", 2.0))
    answer = element("TiepNhan", {"ky": ky, "maXa": ma_xa, "soDong": str(len(people))})
    return _xml(to_bytes(answer), 200)


# -- GET /_sim/state -----------------------------------------------------------------------


async def get_state(request: web.Request) -> web.Response:
    snapshot = registry_state(request.app).snapshot()
    faults = request.app.get(FAULTS_KEY)
    snapshot["faults_injected"] = dict(faults.injected) if faults is not None else {}
    return web.json_response(snapshot)


# -- pushing decisions ---------------------------------------------------------------------


def render_decisions(batch: list[dict[str, str]]) -> bytes:
    """One ``QuyetDinh``, or a ``DanhSachQuyetDinh`` holding several."""
    if len(batch) == 1:
        return to_bytes(element("QuyetDinh", batch[0]))
    root = element("DanhSachQuyetDinh", {})
    for attributes in batch:
        element("QuyetDinh", attributes, parent=root)
    return to_bytes(root)


async def _push_once(
    state: RegistrySimState, session: aiohttp.ClientSession, url: str, body: bytes
) -> bool:
    headers = {"Content-Type": CONTENT_TYPE}
    if state.options.secret:
        headers.update(sign(state.options.secret, body))
    state.counters["push_attempts"] += 1
    try:
        async with session.post(url, data=body, headers=headers) as response:
            answer = await response.read()
            if 200 <= response.status < 300:
                _count_rejected(state, answer)
                return True
            state.last_push_error = f"HTTP {response.status}"
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        state.last_push_error = f"{type(exc).__name__}: {exc}"
    state.counters["push_failures"] += 1
    return False


def _count_rejected(state: RegistrySimState, answer: bytes) -> None:
    with contextlib.suppress(ValueError, TypeError, AttributeError):
        state.counters["push_rejected"] += len(json.loads(answer).get("rejected", []))


async def _push_loop(app: web.Application) -> None:
    state = registry_state(app)
    session = app[SESSION_KEY]
    base = (state.options.gateway_url or "").rstrip("/")
    url = f"{base}/inbound/{state.options.system or 'registry'}"
    loop = asyncio.get_running_loop()
    failures = 0
    while True:
        if not state.in_flight:
            state.in_flight = state.take_due(loop.time())
        if not state.in_flight:
            state.wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(state.wakeup.wait(), state.seconds_to_next(loop.time()))
            continue
        if await _push_once(state, session, url, render_decisions(state.in_flight)):
            state.counters["decisions_pushed"] += len(state.in_flight)
            state.counters["batches_pushed"] += 1
            state.pushed.extend(
                {k: d[k] for k in ("so", "loai", "maHoSo")} for d in state.in_flight
            )
            del state.pushed[:-200]
            state.in_flight = []
            failures = 0
        else:  # the gateway may be down: keep the decision(s) at the head and try again
            failures += 1
            backoff = min(_BACKOFF_CAP, _BACKOFF_START * 2 ** min(failures, 10))
            await asyncio.sleep(backoff / state.speed)


async def _client_session(app: web.Application) -> AsyncIterator[None]:
    session = aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=15, sock_connect=5),
        connector=aiohttp.TCPConnector(limit=4),
    )
    app[SESSION_KEY] = session
    try:
        yield
    finally:
        await session.close()


async def _pusher(app: web.Application) -> AsyncIterator[None]:
    if not registry_state(app).options.gateway_url:
        yield  # nowhere to push: decisions stay pending (visible in /_sim/state)
        return
    task = asyncio.create_task(_push_loop(app), name="registry-simulator-push")
    app[PUSHER_KEY] = task
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def create_registry_simulator(options: SimulatorOptions) -> web.Application:
    """Build the simulator app (the factory registered for ``district_registry``)."""
    app = web.Application(client_max_size=_MAX_BODY)
    app[STATE_KEY] = RegistrySimState(options=options, rng=random.Random(options.seed))
    app.router.add_post("/ho-so", post_ho_so)
    app.router.add_post("/de-nghi-tam-dung", post_de_nghi_tam_dung)
    app.router.add_get("/_sim/state", get_state)
    app.cleanup_ctx.append(_client_session)
    app.cleanup_ctx.append(_pusher)
    install_faults(app, options.fault_profile, seed=options.seed)
    return app
