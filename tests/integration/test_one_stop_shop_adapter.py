"""The one-stop-shop connector against its simulator, on loopback (FORMATS.md §1.2)."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.config import SystemConfig
from gateway.model import Message, OutboundRequest, PermanentError, Receipt, RetryableError
from gateway.simulation import SimulatorOptions
from gateway.testing.faults import FAULTS_KEY, FaultProfile, get_profile
from plugins.one_stop_shop import OneStopShopConnector, create_one_stop_shop_simulator

ServerFactory = Callable[[web.Application], Awaitable[TestServer]]

MA = "000.00.12.H06-200803-0001"
CCCD = "006135001234"
DOSSIER: dict[str, Any] = {
    "MaHoSo": MA,
    "MaTTHC": "1.001776",
    "TenTTHC": "Thực hiện, điều chỉnh, thôi hưởng trợ cấp xã hội hàng tháng, "
    "hỗ trợ kinh phí chăm sóc, nuôi dưỡng hàng tháng",
    "SoBienNhan": "0001/BN",
    "ChuHoSo": "Hoàng Thị Lan",
    "LoaiDoiTuong": "1",
    "MaDoiTuong": CCCD,
    "NgayTiepNhan": "20200803081500",
    "NgayHenTra": "20200824170000",
    "TrangThaiHoSo": "2",
    "DonViXuLy": "UBND xã Ngọc Phái",
    "ThongTinNguoiNop": {
        "SoDinhDanh": CCCD,
        "TenNguoiNop": "Hoàng Thị Lan",
        "NgaySinh": "19350412",
        "GioiTinh": "2",
        "MaTinh": "06",
        "MaHuyen": "064",
        "MaXa": "02053",
        "DiaChiChiTiet": "Thôn Bản Cuôn",
    },
    "DeNghiTroCap": {"LoaiDoiTuong": "5.5a", "MucDoKhuyetTat": "", "DiaChiNhanTien": "tai_nha"},
}
DECISION = {
    "so": "215/QĐ-UBND",
    "ngayKy": "2020-08-20",
    "loai": "huong",
    "maHoSo": MA,
    "soDinhDanh": CCCD,
    "hoTen": "Hoàng Thị Lan",
    "ngaySinh": "1935-04-12",
    "maXa": "02053",
    "loaiDoiTuong": "5.5a",
    "heSo": "2.0",
    "mucChuan": "270000",
    "soTienThang": "540000",
    "tuThang": "2020-08",
    "nhanTien": "tai_nha",
}


class Motcua:
    """The simulator on loopback, with helpers to drive it and read its state."""

    def __init__(self, server: TestServer, client: aiohttp.ClientSession) -> None:
        self.server = server
        self.client = client

    @property
    def app(self) -> web.Application:
        return self.server.app

    def url(self, path: str = "") -> str:
        return str(self.server.make_url(path))

    def connector(self, **options: Any) -> OneStopShopConnector:
        settings = {"username": "gateway", "password": "secret", "madonvi": "000.00.12.H06"}
        settings.update(options)
        system = SystemConfig(
            name="motcua",
            plugin="one_stop_shop",
            base_url=self.url(""),
            timeout={"connect": 2, "read": 5},
            **settings,
        )
        return OneStopShopConnector(system)

    def set_profile(self, profile: FaultProfile) -> None:
        self.app[FAULTS_KEY].profile = profile

    async def load(self, *dossiers: dict[str, Any]) -> None:
        async with self.client.post(self.url("/_sim/dossiers"), json={"data": list(dossiers)}) as r:
            assert r.status == 200

    async def state(self) -> dict[str, Any]:
        async with self.client.get(self.url("/_sim/state")) as resp:
            assert resp.status == 200
            state: dict[str, Any] = await resp.json()
            return state

    async def lookup(self, connector: OneStopShopConnector, ma: str) -> list[dict[str, Any]]:
        call = {"madonvi": "000.00.12.H06", "service": "TraCuuHoSo", "mahoso": ma}
        answer, _ = await connector._call(self.client, call, {})
        found: list[dict[str, Any]] = answer["result"]
        return found


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def motcua(aiohttp_server: ServerFactory, client: aiohttp.ClientSession) -> Motcua:
    app = create_one_stop_shop_simulator(SimulatorOptions(seed=7, extra={"rate": 0}))
    sim = Motcua(await aiohttp_server(app), client)
    await sim.load(DOSSIER)
    return sim


async def deliver(
    connector: OneStopShopConnector,
    client: aiohttp.ClientSession,
    event: str,
    payload: dict[str, Any],
    key: str | None = None,
) -> Receipt:
    request = await connector.render(Message(event, MA, payload))
    if key:
        request.headers["Idempotency-Key"] = key
    return await connector.send(client, request)


async def test_accepted_dossier_becomes_processing(motcua: Motcua) -> None:
    connector = motcua.connector()

    receipt = await deliver(connector, motcua.client, "dossier.accepted", {"MaHoSo": MA})

    assert receipt.status == 200
    assert "TrangThai 4" in receipt.detail
    state = await motcua.state()
    assert state["progress"] == {MA: ["4"]}
    assert state["logins"] == {"ok": 1, "refused": 0}
    [dossier] = await motcua.lookup(connector, MA)
    assert dossier["TrangThaiHoSo"] == "4"


async def test_refusal_asks_for_a_supplement(motcua: Motcua) -> None:
    connector = motcua.connector()
    payload = {"MaHoSo": MA, "lanCapNhat": 1, "ma": "tuoi", "lyDo": "Chưa đủ 60 tuổi"}

    await deliver(connector, motcua.client, "dossier.accepted", {"MaHoSo": MA})
    await deliver(connector, motcua.client, "dossier.refused", payload)

    state = await motcua.state()
    assert state["progress"] == {MA: ["4", "5"]}
    assert state["logins"]["ok"] == 1  # one session serves both calls


async def test_result_is_looked_up_then_synced_and_a_resend_is_detected(motcua: Motcua) -> None:
    connector = motcua.connector()
    await deliver(connector, motcua.client, "dossier.accepted", {"MaHoSo": MA})

    request = await connector.render(Message("decision.issued", "215/QĐ-UBND", DECISION))
    request.headers["Idempotency-Key"] = "motcua:decision:215"
    first = await connector.send(motcua.client, request)

    assert "result 215/QĐ-UBND" in first.detail
    state = await motcua.state()
    assert state["results"] == {MA: ["215/QĐ-UBND"]}
    assert state["calls"]["by_service"]["TraCuuHoSo"] == 1
    assert state["calls"]["by_service"]["DongBoHoSoMC"] == 1
    services = [c["service"] for c in state["calls"]["recent"]]
    assert services[-2:] == ["TraCuuHoSo", "DongBoHoSoMC"]
    assert state["idempotency_keys"] == {"motcua:decision:215": 1}
    [dossier] = await motcua.lookup(connector, MA)
    assert dossier["TrangThaiHoSo"] == "10"
    assert dossier["ChuHoSo"] == "Hoàng Thị Lan"  # the full dossier, merged
    assert dossier["DeNghiTroCap"] == DOSSIER["DeNghiTroCap"]
    [document] = dossier["DanhSachGiayToKetQua"]
    assert document["GiayToId"] == "215/QĐ-UBND"
    assert document["TenGiayTo"] == "Quyết định 215/QĐ-UBND"
    assert dossier["NgayKetThucXuLy"] == "20200820170000"

    again = await connector.send(motcua.client, request)  # the engine resends after a crash
    rerendered = await connector.render(Message("decision.issued", "215/QĐ-UBND", DECISION))
    third = await connector.send(motcua.client, rerendered)

    assert "already has the result" in again.detail
    assert "already has the result" in third.detail
    state = await motcua.state()
    assert state["calls"]["by_service"]["DongBoHoSoMC"] == 1
    assert state["calls"]["by_service"]["TraCuuHoSo"] == 4  # 3 sends + this test's own look-up
    assert state["results_received"] == 1


async def test_a_second_decision_is_added_beside_the_first(motcua: Motcua) -> None:
    connector = motcua.connector()
    await deliver(connector, motcua.client, "decision.issued", DECISION)
    suspension = {**DECISION, "so": "301/QĐ-UBND", "loai": "tam_dung", "ngayKy": "2020-12-01"}
    await deliver(connector, motcua.client, "decision.issued", suspension)

    [dossier] = await motcua.lookup(connector, MA)
    ids = [d["GiayToId"] for d in dossier["DanhSachGiayToKetQua"]]
    assert ids == ["215/QĐ-UBND", "301/QĐ-UBND"]


async def test_result_for_an_unknown_dossier_is_permanent(motcua: Motcua) -> None:
    unknown = {**DECISION, "maHoSo": "000.00.12.H06-200803-9999"}
    with pytest.raises(PermanentError, match="unknown dossier"):
        await deliver(motcua.connector(), motcua.client, "decision.issued", unknown)
    assert (await motcua.state())["calls"]["by_service"].get("DongBoHoSoMC") is None


async def test_the_registrys_own_decision_without_a_desk_dossier_is_delivered(
    motcua: Motcua,
) -> None:
    own = {**DECISION, "loai": "tam_dung", "maHoSo": "000.00.12.H06-200803-9998"}
    receipt = await deliver(motcua.connector(), motcua.client, "decision.issued", own)
    assert receipt.status == 200
    assert "no dossier at the one-stop-shop" in receipt.detail


async def test_result_about_another_person_is_permanent_and_masked(motcua: Motcua) -> None:
    other = {**DECISION, "soDinhDanh": "006080004321"}
    with pytest.raises(PermanentError) as info:
        await deliver(motcua.connector(), motcua.client, "decision.issued", other)
    reason = str(info.value)
    assert "006080004321" not in reason and CCCD not in reason
    assert "Hoàng Thị Lan" not in reason
    assert "********4321" in reason and "********1234 H. T. L." in reason


async def test_progress_for_an_unknown_dossier_is_permanent(motcua: Motcua) -> None:
    with pytest.raises(PermanentError, match="error_code 02"):
        await deliver(motcua.connector(), motcua.client, "dossier.accepted", {"MaHoSo": "x"})


async def test_the_same_idempotency_key_is_applied_once(motcua: Motcua) -> None:
    connector = motcua.connector()
    for _ in range(3):
        await deliver(connector, motcua.client, "dossier.accepted", {"MaHoSo": MA}, key="k-1")

    state = await motcua.state()
    assert state["progress"] == {MA: ["4"]}
    assert state["idempotency_keys"] == {"k-1": 3}
    assert [c["idempotency_key"] for c in state["calls"]["recent"]] == ["k-1", "k-1", "k-1"]


async def test_expired_session_logs_in_again_once_and_succeeds(motcua: Motcua) -> None:
    motcua.set_profile(FaultProfile(name="short-sessions", session_ttl=0.2))
    connector = motcua.connector()
    await deliver(connector, motcua.client, "dossier.accepted", {"MaHoSo": MA})
    await asyncio.sleep(0.3)

    receipt = await deliver(connector, motcua.client, "decision.issued", DECISION)

    assert "result" in receipt.detail
    state = await motcua.state()
    assert state["logins"]["ok"] == 2
    assert state["session_expiries"] == 1
    assert state["results"] == {MA: ["215/QĐ-UBND"]}
    # the expired call was answered 401 and repeated: TraCuuHoSo twice, once under each token
    assert state["calls"]["by_service"]["TraCuuHoSo"] == 2


async def test_expiring_profile_expires_sessions(
    aiohttp_server: ServerFactory, client: aiohttp.ClientSession
) -> None:
    app = create_one_stop_shop_simulator(
        SimulatorOptions(seed=1, fault_profile="expiring", extra={"rate": 0})
    )
    motcua = Motcua(await aiohttp_server(app), client)
    await motcua.load(DOSSIER)
    assert app[FAULTS_KEY].profile.session_ttl == 5.0
    connector = motcua.connector()
    await deliver(connector, client, "dossier.accepted", {"MaHoSo": MA})
    # fast-forward: sessions shorter than the time already spent, long enough for the fresh
    # login's own request to go through on a busy machine
    motcua.set_profile(replace(app[FAULTS_KEY].profile, session_ttl=0.5))
    await asyncio.sleep(0.6)
    await deliver(connector, client, "dossier.refused", {"MaHoSo": MA, "lyDo": "Thiếu giấy tờ"})
    state = await motcua.state()
    assert (state["logins"]["ok"], state["session_expiries"]) == (2, 1)
    assert state["progress"] == {MA: ["4", "5"]}


async def test_a_session_that_never_holds_is_retryable(motcua: Motcua) -> None:
    motcua.set_profile(FaultProfile(name="instant-expiry", session_ttl=1e-9))
    with pytest.raises(RetryableError, match="expired again right after a fresh login"):
        await deliver(motcua.connector(), motcua.client, "dossier.accepted", {"MaHoSo": MA})
    assert (await motcua.state())["logins"]["ok"] == 2  # logged in again exactly once


async def test_concurrent_sends_log_in_once(motcua: Motcua) -> None:
    connector = motcua.connector()
    receipts = await asyncio.gather(
        *(deliver(connector, motcua.client, "dossier.accepted", {"MaHoSo": MA}) for _ in range(10))
    )
    assert len(receipts) == 10
    state = await motcua.state()
    assert state["logins"]["ok"] == 1
    assert state["progress"][MA] == ["4"] * 10


async def test_wrong_password_is_permanent(motcua: Motcua) -> None:
    connector = motcua.connector(password="wrong")
    with pytest.raises(PermanentError) as info:
        await deliver(connector, motcua.client, "dossier.accepted", {"MaHoSo": MA})
    reason = str(info.value)
    assert reason.startswith("đăng nhập thất bại")
    assert "Sai tên đăng nhập hoặc mật khẩu" in reason
    assert "login refused: check username/password in the config" in reason
    assert "wrong" not in reason
    assert (await motcua.state())["logins"] == {"ok": 0, "refused": 1}


async def test_missing_credentials_are_permanent_without_calling(motcua: Motcua) -> None:
    connector = motcua.connector(username="", password=None)
    with pytest.raises(PermanentError, match="username and password"):
        await deliver(connector, motcua.client, "dossier.accepted", {"MaHoSo": MA})
    assert (await motcua.state())["logins"] == {"ok": 0, "refused": 0}


async def test_flaky_link_gives_retryable_errors_only(motcua: Motcua) -> None:
    connector = motcua.connector()
    motcua.set_profile(get_profile("flaky"))
    outcomes: list[str] = []
    for _ in range(40):
        try:
            await deliver(connector, motcua.client, "dossier.accepted", {"MaHoSo": MA})
            outcomes.append("ok")
        except RetryableError as exc:
            outcomes.append("retry")
            assert exc.reason.startswith(("auth:", "CapNhatTienDoHoSoMC:"))
    motcua.set_profile(get_profile("none"))
    assert "ok" in outcomes and "retry" in outcomes
    faults = (await motcua.state())["faults"]
    assert faults.get("error", 0) + faults.get("reset", 0) >= outcomes.count("retry")


async def test_http_503_is_retryable_with_the_status(motcua: Motcua) -> None:
    motcua.set_profile(FaultProfile(name="down", error_rate=1.0))
    with pytest.raises(RetryableError) as info:
        await deliver(motcua.connector(), motcua.client, "dossier.accepted", {"MaHoSo": MA})
    assert info.value.status == 503


async def test_unreachable_adapter_is_retryable(client: aiohttp.ClientSession) -> None:
    with socket.socket() as sock:  # a port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    system = SystemConfig(
        name="motcua",
        plugin="one_stop_shop",
        base_url=f"http://127.0.0.1:{port}",
        username="gateway",
        password="secret",
        madonvi="000.00.12.H06",
    )
    connector = OneStopShopConnector(system)
    with pytest.raises(RetryableError, match=r"^auth: "):
        await deliver(connector, client, "dossier.accepted", {"MaHoSo": MA})


async def test_adapter_error_codes_are_classified(
    aiohttp_server: ServerFactory, client: aiohttp.ClientSession
) -> None:
    codes = iter(["-1", "99"])

    async def auth(request: web.Request) -> web.Response:
        return web.json_response({"session": "t", "error_code": 0})

    async def integration(request: web.Request) -> web.Response:
        return web.json_response({"error_code": next(codes), "message": "Lỗi"})

    app = web.Application()
    app.router.add_post("/auth", auth)
    app.router.add_post("/integration", integration)
    server = await aiohttp_server(app)
    system = SystemConfig(
        name="motcua",
        plugin="one_stop_shop",
        base_url=str(server.make_url("")),
        username="u",
        password="p",
        madonvi="d",
    )
    connector = OneStopShopConnector(system)
    with pytest.raises(RetryableError, match="error_code -1"):
        await deliver(connector, client, "dossier.accepted", {"MaHoSo": MA})
    with pytest.raises(PermanentError, match="error_code 99: Lỗi"):
        await deliver(connector, client, "dossier.accepted", {"MaHoSo": MA})


async def test_http_401_at_integration_means_an_expired_session(
    aiohttp_server: ServerFactory, client: aiohttp.ClientSession
) -> None:
    logins: list[str] = []

    async def auth(request: web.Request) -> web.Response:
        logins.append(f"t{len(logins)}")
        return web.json_response({"session": logins[-1], "error_code": 0})

    async def integration(request: web.Request) -> web.Response:
        call = await request.json()
        if call["session"] == "t0":
            return web.json_response({"message": "Unauthorized"}, status=401)
        return web.json_response({"error_code": "00"})

    app = web.Application()
    app.router.add_post("/auth", auth)
    app.router.add_post("/integration", integration)
    server = await aiohttp_server(app)
    system = SystemConfig(
        name="motcua", plugin="one_stop_shop", base_url=str(server.make_url("")),
        username="u", password="p", madonvi="d",
    )  # fmt: skip
    await deliver(OneStopShopConnector(system), client, "dossier.accepted", {"MaHoSo": MA})
    assert logins == ["t0", "t1"]


async def test_a_non_json_answer_is_retryable(
    aiohttp_server: ServerFactory, client: aiohttp.ClientSession
) -> None:
    async def maintenance(request: web.Request) -> web.Response:
        return web.Response(text="<html>Bảo trì hệ thống</html>", content_type="text/html")

    app = web.Application()
    app.router.add_post("/auth", maintenance)
    server = await aiohttp_server(app)
    system = SystemConfig(
        name="motcua", plugin="one_stop_shop", base_url=str(server.make_url("")),
        username="u", password="p", madonvi="d",
    )  # fmt: skip
    with pytest.raises(RetryableError, match="not a JSON object"):
        await deliver(OneStopShopConnector(system), client, "dossier.accepted", {"MaHoSo": MA})


async def test_poll_reads_the_feed_with_a_cursor(motcua: Motcua) -> None:
    async with motcua.client.post(motcua.url("/_sim/generate?count=7")) as resp:
        created = (await resp.json())["created"]
    connector = motcua.connector(poll=True)

    result, cursor = await connector.poll(motcua.client, None)

    assert [m.external_id for m in result.messages] == created
    assert result.rejected == []
    assert cursor == "7"
    again, same = await connector.poll(motcua.client, cursor)
    assert (again.messages, same) == ([], "7")


async def test_poll_without_a_server_cursor_uses_the_latest_reception_time(
    aiohttp_server: ServerFactory, client: aiohttp.ClientSession
) -> None:
    seen: list[str | None] = []

    async def feed(request: web.Request) -> web.Response:
        seen.append(request.query.get("tu"))
        return web.json_response({"isUpdating": "False", "data": [DOSSIER]})

    app = web.Application()
    app.router.add_get("/ho-so-moi", feed)
    server = await aiohttp_server(app)
    system = SystemConfig(
        name="motcua", plugin="one_stop_shop", base_url=str(server.make_url("")),
        poll=True, poll_path="/ho-so-moi",
    )  # fmt: skip
    connector = OneStopShopConnector(system)
    result, cursor = await connector.poll(client, None)
    assert [m.external_id for m in result.messages] == [MA]
    assert cursor == "20200803081500"
    await connector.poll(client, cursor)
    assert seen == [None, "20200803081500"]


async def test_send_passes_the_idempotency_key_only_on_the_write(
    aiohttp_server: ServerFactory, client: aiohttp.ClientSession
) -> None:
    seen: list[tuple[str, str | None]] = []
    app = create_one_stop_shop_simulator(SimulatorOptions(seed=2, extra={"rate": 0}))

    @web.middleware
    async def spy(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path == "/integration":
            call = json.loads(await request.read())
            seen.append((call["service"], request.headers.get("Idempotency-Key")))
        response: web.StreamResponse = await handler(request)
        return response

    app.middlewares.insert(0, spy)
    motcua = Motcua(await aiohttp_server(app), client)
    await motcua.load(DOSSIER)
    connector = motcua.connector()
    request = await connector.render(Message("decision.issued", "215/QĐ-UBND", DECISION))
    request.headers["Idempotency-Key"] = "idem-215"
    await connector.send(client, request)
    assert seen == [("TraCuuHoSo", None), ("DongBoHoSoMC", "idem-215")]
    assert isinstance(request, OutboundRequest)
