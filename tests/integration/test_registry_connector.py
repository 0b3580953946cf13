"""The registry connector against the registry simulator, over real loopback servers."""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pluggy
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

import plugins.district_registry as district_registry
from gateway import PROJECT_NAME, hookspecs
from gateway.config import SystemConfig
from gateway.model import Message, OutboundRequest, PermanentError, Receipt, RetryableError
from gateway.signing import SignatureError, verify
from gateway.simulation import SimulatorOptions
from plugins.district_registry import RegistryConnector, create_registry_simulator
from plugins.district_registry.simulator import registry_state
from plugins.vn_common.cccd import make_cccd

SECRET = "registry-test-secret-7c2e9a41b8d3f6051e4d"
ServerFactory = Callable[..., Awaitable[TestServer]]

DOSSIER: dict[str, Any] = {
    "MaHoSo": "000.00.12.H06-200803-0001",
    "MaTTHC": "1.001776",
    "TenTTHC": "Thực hiện, điều chỉnh, thôi hưởng trợ cấp xã hội hàng tháng",
    "SoBienNhan": "0001/BN",
    "ChuHoSo": "Hoàng Thị Lan",
    "LoaiDoiTuong": "1",
    "MaDoiTuong": "006135001234",
    "SoDienThoai": "",
    "Email": "",
    "TrichYeuHoSo": "Đề nghị trợ cấp xã hội hàng tháng",
    "NgayTiepNhan": "20200803081500",
    "NgayHenTra": "20200824170000",
    "TrangThaiHoSo": "2",
    "HinhThuc": "0",
    "DonViXuLy": "UBND xã Ngọc Phái",
    "ThongTinNguoiNop": {
        "SoDinhDanh": "006135001234",
        "TenNguoiNop": "Hoàng Thị Lan",
        "NgaySinh": "19350412",
        "GioiTinh": "2",
        "MaTinh": "06",
        "MaHuyen": "064",
        "MaXa": "02053",
        "DiaChiChiTiet": "Thôn Bản Cuôn",
    },
    "DeNghiTroCap": {"LoaiDoiTuong": "5.5a", "MucDoKhuyetTat": "", "DiaChiNhanTien": "tai_nha"},
    "TaiLieuNop": [
        {
            "TepDinhKemId": "f1",
            "TenTepDinhKem": "Mẫu 1a.pdf",
            "IsDeleted": "False",
            "MaThanhPhanHoSo": "TP1",
            "DuongDanTaiTepTin": "https://…/f1",
        }
    ],
}


def dossier(serial: int = 1, *, born: int = 1935, category: str = "5.5a") -> dict[str, Any]:
    """The §1.1 dossier, or another applicant's (a distinct MaHoSo and matching CCCD)."""
    data = copy.deepcopy(DOSSIER)
    if serial != 1 or born != 1935:
        data["MaHoSo"] = f"000.00.12.H06-200803-{serial:04d}"
        person = data["ThongTinNguoiNop"]
        person["SoDinhDanh"] = make_cccd("006", born, True, serial)
        person["NgaySinh"] = f"{born}0412"
    data["DeNghiTroCap"]["LoaiDoiTuong"] = category
    return data


def dossier_message(data: dict[str, Any], revision: int = 1) -> Message:
    return Message(
        event="dossier.received",
        external_id=data["MaHoSo"],
        payload={"isUpdating": revision > 1, "dossier": data},
        revision=revision,
    )


def options(**kwargs: Any) -> SimulatorOptions:
    extra = {"refuse_rate": 0.0, "appraisal_delay": 0.05, **kwargs.pop("extra", {})}
    return SimulatorOptions(seed=7, extra=extra, **kwargs)


async def start_registry(aiohttp_server: ServerFactory, opts: SimulatorOptions) -> TestServer:
    return await aiohttp_server(create_registry_simulator(opts))


def make_connector(server: TestServer) -> RegistryConnector:
    return RegistryConnector(
        SystemConfig(
            name="registry",
            plugin="district_registry",
            base_url=str(server.make_url("")),
            timeout={"connect": 1, "read": 2},
        )
    )


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


async def deliver(
    connector: RegistryConnector,
    session: aiohttp.ClientSession,
    message: Message,
    key: str | None = None,
) -> Receipt:
    """What the core's worker does: render, add the Idempotency-Key, send."""
    request = await connector.render(message)
    request.headers["Idempotency-Key"] = key or f"{message.external_id}:{message.revision}"
    return await connector.send(session, request)


async def state_of(session: aiohttp.ClientSession, server: TestServer) -> dict[str, Any]:
    async with session.get(server.make_url("/_sim/state")) as response:
        assert response.status == 200
        result: dict[str, Any] = await response.json()
        return result


async def settled_state(
    session: aiohttp.ClientSession, server: TestServer, key: str, value: int
) -> dict[str, Any]:
    """The simulator's state once ``state[key] == value`` (the receiver sees a push before
    the simulator has read the answer to it)."""
    async with asyncio.timeout(5.0):
        while True:
            state = await state_of(session, server)
            if state[key] == value:
                return state
            await asyncio.sleep(0.02)


# -- plugin registration -------------------------------------------------------------------


def test_gateway_register_connectors_and_gateway_register_simulators() -> None:
    pm = pluggy.PluginManager(PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    pm.register(district_registry, name="district_registry")
    try:
        connectors: dict[str, Any] = {}
        simulators: dict[str, Any] = {}
        pm.hook.gateway_register_connectors(register=connectors.__setitem__)
        pm.hook.gateway_register_simulators(register=simulators.__setitem__)
        assert connectors == {"district_registry": RegistryConnector}
        assert simulators == {"district_registry": create_registry_simulator}
    finally:
        pm.unregister(name="district_registry")


# -- applications --------------------------------------------------------------------------


async def test_send_accept_then_resend_is_a_delivered_409(
    aiohttp_server: ServerFactory, session: aiohttp.ClientSession
) -> None:
    server = await start_registry(aiohttp_server, options())
    connector = make_connector(server)
    message = dossier_message(dossier())

    first = await deliver(connector, session, message)
    assert first.status == 201
    assert first.detail == "biên nhận số BN-000001 / receipt BN-000001"
    [accepted] = first.follow_ups
    assert accepted.event == "dossier.accepted"
    assert accepted.external_id == accepted.dossier_key == "000.00.12.H06-200803-0001"
    assert accepted.payload == {"MaHoSo": "000.00.12.H06-200803-0001", "lanCapNhat": 1}

    again = await deliver(connector, session, message)
    assert again.status == 409
    assert again.follow_ups[0].content_hash == accepted.content_hash

    state = await state_of(session, server)
    assert state["dossiers_received"] == 1
    assert state["duplicates"] == 1
    assert state["idempotency_keys"] == {"000.00.12.H06-200803-0001:1": 2}


async def test_a_new_revision_is_accepted(
    aiohttp_server: ServerFactory, session: aiohttp.ClientSession
) -> None:
    server = await start_registry(aiohttp_server, options())
    connector = make_connector(server)
    assert (await deliver(connector, session, dossier_message(dossier()))).status == 201
    receipt = await deliver(connector, session, dossier_message(dossier(), revision=2))
    assert receipt.status == 201
    assert (
        receipt.detail == "biên nhận số BN-000001 / receipt BN-000001"
    )  # the same dossier keeps its receipt number
    assert receipt.follow_ups[0].payload["lanCapNhat"] == 2
    state = await state_of(session, server)
    assert (state["dossiers_received"], state["dossiers"], state["duplicates"]) == (2, 1, 0)


async def test_business_refusal_is_answered_with_a_refused_follow_up(
    aiohttp_server: ServerFactory, session: aiohttp.ClientSession
) -> None:
    server = await start_registry(aiohttp_server, options())
    connector = make_connector(server)
    young = dossier(2, born=1990)  # 30 years old: not an elderly person (5.5a)
    receipt = await deliver(connector, session, dossier_message(young))
    assert receipt.status == 422  # delivered and refused on its merits: not a dead letter
    assert receipt.detail.startswith(
        "bị phần mềm quản lý từ chối (mã tuoi) / refused by the registry (code tuoi): "
    )
    [refused] = receipt.follow_ups
    assert refused.event == "dossier.refused"
    assert refused.payload["MaHoSo"] == young["MaHoSo"]
    assert refused.payload["lanCapNhat"] == 1
    assert refused.payload["ma"] == "tuoi"
    assert "60" in refused.payload["lyDo"]
    assert (await state_of(session, server))["refusals"] == 1


async def test_seeded_refusal_rate(
    aiohttp_server: ServerFactory, session: aiohttp.ClientSession
) -> None:
    server = await start_registry(aiohttp_server, options(extra={"refuse_rate": 1.0}))
    receipt = await deliver(make_connector(server), session, dossier_message(dossier()))
    assert receipt.status == 422
    assert receipt.follow_ups[0].payload["ma"] == "ho_so_thieu"


async def test_corrupted_body_is_a_400_gateway_bug(
    aiohttp_server: ServerFactory, session: aiohttp.ClientSession
) -> None:
    server = await start_registry(aiohttp_server, options())
    connector = make_connector(server)
    request = await connector.render(dossier_message(dossier()))
    request.body = request.body.replace(b'lanCapNhat="1"', b'lanCapNhat="one"')
    request.headers["Idempotency-Key"] = "k1"
    with pytest.raises(PermanentError) as info:
        await connector.send(session, request)
    assert info.value.status == 400
    assert info.value.reason.startswith(
        "phần mềm quản lý từ chối tài liệu vì không hợp lệ (lỗi của gateway) / "
        "registry refused the document as invalid (gateway bug): lanCapNhat:"
    )
    assert info.value.follow_ups == []
    assert (await state_of(session, server))["invalid"] == 1


async def test_xsd_valid_but_impossible_instant_is_a_400(
    aiohttp_server: ServerFactory, session: aiohttp.ClientSession
) -> None:
    server = await start_registry(aiohttp_server, options())
    connector = make_connector(server)
    request = await connector.render(dossier_message(dossier()))
    request.body = request.body.replace(b"T08:15:00+07:00", b"T24:00:00+07:00")
    request.headers["Idempotency-Key"] = "k2"
    with pytest.raises(PermanentError) as info:
        await connector.send(session, request)
    assert info.value.status == 400


async def test_missing_idempotency_key_is_refused(
    aiohttp_server: ServerFactory, session: aiohttp.ClientSession
) -> None:
    server = await start_registry(aiohttp_server, options())
    connector = make_connector(server)
    request = await connector.render(dossier_message(dossier()))
    with pytest.raises(PermanentError, match="Idempotency-Key") as info:
        await connector.send(session, request)
    assert info.value.status == 400


async def test_flaky_registry_gives_retryable_errors(
    aiohttp_server: ServerFactory, session: aiohttp.ClientSession
) -> None:
    server = await start_registry(aiohttp_server, options(fault_profile="flaky"))
    connector = make_connector(server)
    outcomes: list[str] = []
    for revision in range(1, 31):
        try:
            receipt = await deliver(connector, session, dossier_message(dossier(), revision))
            outcomes.append(str(receipt.status))
        except RetryableError as exc:
            outcomes.append(f"retry:{exc.status}")
    assert any(o.startswith("retry") for o in outcomes)
    assert "201" in outcomes


async def test_unreachable_registry_is_retryable(session: aiohttp.ClientSession) -> None:
    connector = RegistryConnector(
        SystemConfig(name="registry", plugin="district_registry", base_url="http://127.0.0.1:9")
    )
    with pytest.raises(RetryableError):
        await deliver(connector, session, dossier_message(dossier()))


# -- suspension candidates -----------------------------------------------------------------


async def test_suspension_candidates_are_received_once(
    aiohttp_server: ServerFactory, session: aiohttp.ClientSession
) -> None:
    server = await start_registry(aiohttp_server, options())
    connector = make_connector(server)
    message = Message(
        event="payment.suspension_candidates",
        external_id="2020-11/02053",
        payload={
            "ky": "2020-11",
            "maXa": "02053",
            "doiTuong": [
                {
                    "soDinhDanh": "006080004321",
                    "hoTen": "Lò Văn Pha",
                    "cacThangChuaNhan": ["2020-09", "2020-10", "2020-11"],
                }
            ],
        },
    )
    first = await deliver(connector, session, message)
    assert (first.status, first.detail) == (
        200,
        "đã tiếp nhận đề nghị kỳ 2020-11 xã 02053: 1 dòng / "
        "request for 2020-11, commune 02053 received: 1 lines",
    )
    again = await deliver(connector, session, message)
    assert again.status == 409
    state = await state_of(session, server)
    assert (state["suspension_requests"], state["suspension_duplicates"]) == (1, 1)


# -- decisions pushed to the gateway -------------------------------------------------------


class Receiver:
    """A tiny stand-in for the gateway's ``POST /inbound/registry``: verifies, parses."""

    def __init__(self, fail_first: int = 0) -> None:
        self.fail_first = fail_first
        self.calls = 0
        self.bodies: list[bytes] = []
        self.messages: list[Message] = []
        self.bad_signatures = 0
        self.connector = RegistryConnector(
            SystemConfig(name="registry", plugin="district_registry")
        )
        self.arrived = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        self.calls += 1
        body = await request.read()
        if self.calls <= self.fail_first:
            return web.json_response({"error": "unavailable", "message": "down"}, status=503)
        try:
            verify(SECRET, body, request.headers)
        except SignatureError as exc:
            self.bad_signatures += 1
            return web.json_response({"error": "signature", "message": str(exc)}, status=401)
        assert request.content_type == "application/xml"
        result = await self.connector.parse(body, request.content_type)
        self.bodies.append(body)
        self.messages.extend(result.messages)
        self.arrived.set()
        return web.json_response(
            {
                "accepted": [{"ref": m.ref, "id": str(i)} for i, m in enumerate(result.messages)],
                "duplicates": [],
                "rejected": [{"ref": r.ref, "errors": list(r.errors)} for r in result.rejected],
            },
            status=202,
        )

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/inbound/registry", self.handle)
        return app

    async def wait_for(self, count: int, seconds: float = 5.0) -> None:
        async with asyncio.timeout(seconds):
            while len(self.messages) < count:
                self.arrived.clear()
                await self.arrived.wait()


async def test_simulator_pushes_a_signed_grant_decision(
    aiohttp_server: ServerFactory, session: aiohttp.ClientSession
) -> None:
    receiver = Receiver()
    gateway = await aiohttp_server(receiver.app())
    opts = options(
        gateway_url=str(gateway.make_url("")).rstrip("/"), secret=SECRET, system="registry"
    )
    server = await start_registry(aiohttp_server, opts)
    await deliver(make_connector(server), session, dossier_message(dossier()))
    await receiver.wait_for(1)

    [decision] = receiver.messages
    assert receiver.bad_signatures == 0
    assert decision.event == "decision.issued"
    assert decision.dossier_key == "000.00.12.H06-200803-0001"
    # the registry's own computation reproduces the FORMATS.md §2.2 example
    expected = {
        "ngayKy": "2020-08-20",
        "loai": "huong",
        "maHoSo": "000.00.12.H06-200803-0001",
        "soDinhDanh": "006135001234",
        "hoTen": "Hoàng Thị Lan",
        "ngaySinh": "1935-04-12",
        "maXa": "02053",
        "loaiDoiTuong": "5.5a",
        "heSo": "2.0",
        "mucChuan": "270000",
        "soTienThang": "540000",
        "tuThang": "2020-08",
        "nhanTien": "tai_nha",
        "gioiTinh": "nu",
    }
    assert {k: decision.payload[k] for k in expected} == expected
    assert decision.payload["so"].endswith("/QĐ-UBND")

    state = await settled_state(session, server, "decisions_pushed", 1)
    assert state["decisions_pending"] == 0
    assert state["pushed"] == [
        {"so": decision.payload["so"], "loai": "huong", "maHoSo": decision.dossier_key}
    ]


async def test_pushes_are_retried_until_the_gateway_answers(
    aiohttp_server: ServerFactory, session: aiohttp.ClientSession
) -> None:
    receiver = Receiver(fail_first=2)
    gateway = await aiohttp_server(receiver.app())
    opts = options(gateway_url=str(gateway.make_url("")), secret=SECRET, speed=10.0)
    server = await start_registry(aiohttp_server, opts)
    await deliver(make_connector(server), session, dossier_message(dossier()))
    await receiver.wait_for(1)
    state = await settled_state(session, server, "decisions_pushed", 1)
    assert state["push_failures"] == 2
    assert state["push_attempts"] == 3
    assert len(receiver.messages) == 1


async def test_decisions_wait_while_the_gateway_is_down(
    aiohttp_server: ServerFactory, session: aiohttp.ClientSession
) -> None:
    opts = options(gateway_url="http://127.0.0.1:9", secret=SECRET, speed=20.0)
    server = await start_registry(aiohttp_server, opts)
    await deliver(make_connector(server), session, dossier_message(dossier()))
    for _ in range(100):
        state = await state_of(session, server)
        if state["push_failures"] >= 2:
            break
        await asyncio.sleep(0.05)
    assert state["push_failures"] >= 2
    assert state["decisions_pending"] == 1  # kept, never dropped
    assert state["decisions_pushed"] == 0


async def test_no_gateway_url_means_decisions_stay_pending(
    aiohttp_server: ServerFactory, session: aiohttp.ClientSession
) -> None:
    server = await start_registry(aiohttp_server, options())
    await deliver(make_connector(server), session, dossier_message(dossier()))
    await asyncio.sleep(0.1)
    state = await state_of(session, server)
    assert (state["decisions_pending"], state["push_attempts"]) == (1, 0)


async def test_batches_and_later_decisions(
    aiohttp_server: ServerFactory, session: aiohttp.ClientSession
) -> None:
    receiver = Receiver()
    gateway = await aiohttp_server(receiver.app())
    opts = options(
        gateway_url=str(gateway.make_url("")),
        secret=SECRET,
        extra={"appraisal_delay": 0.6, "batch_rate": 1.0, "change_rate": 1.0},
    )
    server = await start_registry(aiohttp_server, opts)
    connector = make_connector(server)
    # all six accepted well inside the appraisal delay, so their grants fall due together
    receipts = await asyncio.gather(
        *(
            deliver(connector, session, dossier_message(dossier(serial, born=1940)))
            for serial in range(1, 7)
        )
    )
    assert [r.status for r in receipts] == [201] * 6
    # six grants, and (change_rate 1.0) a later decision for someone granted after each
    await receiver.wait_for(12, seconds=15.0)
    kinds = [m.payload["loai"] for m in receiver.messages]
    assert kinds.count("huong") == 6
    assert set(kinds) - {"huong"} <= {"dieu_chinh", "tam_dung", "thoi_huong", "tiep_tuc"}
    assert any(b"<DanhSachQuyetDinh" in body for body in receiver.bodies)
    numbers = [m.payload["so"] for m in receiver.messages]
    assert len(set(numbers)) == len(numbers)
    await settled_state(session, server, "decisions_pushed", 12)
    state = registry_state(server.app)
    assert state.counters["push_rejected"] == 0  # every pushed decision passes the connector


async def test_suspension_request_leads_to_a_tam_dung_decision(
    aiohttp_server: ServerFactory, session: aiohttp.ClientSession
) -> None:
    receiver = Receiver()
    gateway = await aiohttp_server(receiver.app())
    opts = options(gateway_url=str(gateway.make_url("")), secret=SECRET)
    server = await start_registry(aiohttp_server, opts)
    connector = make_connector(server)
    await deliver(connector, session, dossier_message(dossier()))
    await receiver.wait_for(1)
    candidates = Message(
        event="payment.suspension_candidates",
        external_id="2020-11/02053",
        payload={
            "ky": "2020-11",
            "maXa": "02053",
            "doiTuong": [
                {
                    "soDinhDanh": "006135001234",
                    "hoTen": "Hoàng Thị Lan",
                    "cacThangChuaNhan": "2020-09 2020-10 2020-11",
                }
            ],
        },
    )
    assert (await deliver(connector, session, candidates)).status == 200
    await receiver.wait_for(2)
    suspension = receiver.messages[1].payload
    assert (suspension["loai"], suspension["tuThang"]) == ("tam_dung", "2020-12")
    assert suspension["maHoSo"] == "000.00.12.H06-200803-0001"


async def test_state_is_json_without_personal_data(
    aiohttp_server: ServerFactory, session: aiohttp.ClientSession
) -> None:
    server = await start_registry(aiohttp_server, options())
    await deliver(make_connector(server), session, dossier_message(dossier()))
    async with session.get(server.make_url("/_sim/state")) as response:
        text = await response.text()
    assert "006135001234" not in text
    assert "Hoàng" not in text
    assert json.loads(text)["faults_injected"] == {}


async def test_wrong_content_type_is_415(
    aiohttp_server: ServerFactory, session: aiohttp.ClientSession
) -> None:
    server = await start_registry(aiohttp_server, options())
    request = OutboundRequest(
        method="POST",
        url=str(server.make_url("/ho-so")),
        body=b"{}",
        headers={"Content-Type": "application/json", "Idempotency-Key": "k"},
        context={"kind": "ho-so", "maHoSo": "x", "lanCapNhat": 1},
    )
    with pytest.raises(PermanentError) as info:
        await make_connector(server).send(session, request)
    assert info.value.status == 415
