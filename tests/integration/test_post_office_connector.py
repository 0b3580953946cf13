"""The post-office connector against its simulator, over real loopback HTTP.

Covers FORMATS.md §3: a list is received (200), a resend of the same ``lanGui`` is a
delivered 409, a higher ``lanGui`` replaces the list, bad totals are a permanent 422, and the
payer pushes signed ``KetQuaChiTra`` results that the connector reads, retrying until the
gateway takes them.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import aiohttp
import pluggy
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway import PROJECT_NAME, hookspecs
from gateway.config import SystemConfig
from gateway.model import (
    Message,
    OutboundRequest,
    ParseResult,
    PermanentError,
    Receipt,
    RetryableError,
)
from gateway.signing import SignatureError, verify
from gateway.simulation import SimulatorOptions
from gateway.testing.faults import FAULTS_KEY, FaultProfile
from gateway.xmlsafe import parse_xml
from plugins import post_office
from plugins.post_office import PostOfficeConnector, create_post_office_simulator
from plugins.vn_common.cccd import make_cccd

ServerFactory = Callable[..., Awaitable[TestServer]]
SECRET = "post-office-test-secret-7c2e9a41b8d3f6051e4d"

LINES: list[dict[str, Any]] = [
    {
        "soDinhDanh": "006135001234",
        "hoTen": "Hoàng Thị Lan",
        "loaiDoiTuong": "5.5a",
        "soTienThang": 540000,
        "soTienTruyLinh": 540000,
        "truyLinhTu": "2020-08",
        "truyLinhDen": "2020-08",
        "soTienChuaNhan": 0,
        "nhanTien": "tai_nha",
        "bienDong": "tang",
    },
    {
        "soDinhDanh": "006080004321",
        "hoTen": "Lò Văn Pha",
        "loaiDoiTuong": "5.6",
        "mucDoKhuyetTat": "nang",
        "soTienThang": 405000,
        "soTienTruyLinh": 0,
        "soTienChuaNhan": 0,
        "nhanTien": "tai_diem",
        "bienDong": "khong_doi",
    },
]


def payment_list(lan_gui: int = 1, lines: list[dict[str, Any]] | None = None) -> Message:
    data = {
        "ky": "2020-09",
        "maXa": "02053",
        "lanGui": lan_gui,
        "lapLuc": "2020-08-24T10:00:00+07:00",
        "lines": copy.deepcopy(LINES if lines is None else lines),
    }
    return Message("payment.list", f"2020-09:02053:{lan_gui}", data)


def make_connector(server: TestServer) -> PostOfficeConnector:
    system = SystemConfig(
        name="post_office", plugin="post_office", base_url=str(server.make_url(""))
    )
    return PostOfficeConnector(system)


async def deliver(
    connector: PostOfficeConnector,
    session: aiohttp.ClientSession,
    message: Message,
    key: str | None = None,
) -> Receipt:
    """What the core's worker does: render, add the Idempotency-Key, send."""
    request = await connector.render(message)
    request.headers["Idempotency-Key"] = key or f"{message.external_id}:post_office"
    return await connector.send(session, request)


async def sim_state(session: aiohttp.ClientSession, server: TestServer) -> dict[str, Any]:
    async with session.get(server.make_url("/_sim/state")) as resp:
        assert resp.status == 200
        state: dict[str, Any] = await resp.json()
        return state


async def eventually(check: Callable[[], Awaitable[bool]]) -> None:
    """Poll (at most 5 s) until ``check()`` holds: the state lives in another server."""
    async with asyncio.timeout(5.0):
        while True:
            if await check():
                return
            await asyncio.sleep(0.02)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session


@pytest.fixture
async def payer(aiohttp_server: ServerFactory) -> TestServer:
    return await aiohttp_server(create_post_office_simulator(SimulatorOptions(seed=7)))


# -- the plugin --------------------------------------------------------------------------


def test_plugin_registers_connector_and_simulator() -> None:
    pm = pluggy.PluginManager(PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    pm.register(post_office, name="post_office")
    try:
        connectors: dict[str, Any] = {}
        simulators: dict[str, Any] = {}
        pm.hook.gateway_register_connectors(register=connectors.__setitem__)
        pm.hook.gateway_register_simulators(register=simulators.__setitem__)
    finally:
        pm.unregister(name="post_office")
    assert connectors == {"post_office": PostOfficeConnector}
    assert simulators == {"post_office": create_post_office_simulator}


# -- sending lists -------------------------------------------------------------------------


async def test_list_is_received_resend_is_409_and_higher_lan_gui_replaces(
    payer: TestServer, session: aiohttp.ClientSession
) -> None:
    connector = make_connector(payer)

    first = await deliver(connector, session, payment_list(1))
    assert first.status == 200
    assert first.detail.startswith(
        "bưu điện đã tiếp nhận 2 dòng / the post office received 2 lines"
    )

    again = await deliver(connector, session, payment_list(1), key="another-key")
    assert again.status == 409
    assert "already received" in again.detail

    corrected = payment_list(2, LINES[:1])
    second = await deliver(connector, session, corrected)
    assert second.status == 200 and second.detail.startswith(
        "bưu điện đã tiếp nhận 1 dòng / the post office received 1 lines"
    )

    stale = await deliver(connector, session, payment_list(1))
    assert stale.status == 409

    state = await sim_state(session, payer)
    assert state["lists"] == [
        {
            "ky": "2020-09",
            "maXa": "02053",
            "lanGui": 2,
            "soDong": 1,
            "tongSoTien": 1080000,
            "replaced": [1],
        }
    ]
    assert state["conflicts_409"] == 2
    assert state["idempotency_keys"] == {
        "2020-09:02053:1:post_office": 2,
        "another-key": 1,
        "2020-09:02053:2:post_office": 1,
    }
    assert state["results"]["push_enabled"] is False


async def test_bad_totals_are_refused_422_permanently(
    payer: TestServer, session: aiohttp.ClientSession
) -> None:
    connector = make_connector(payer)
    request = await connector.render(payment_list(1))
    # the connector never renders such a list; forge one to see the payer's refusal
    forged = request.body.replace(b'tongSoTien="1485000"', b'tongSoTien="1485001"')
    assert forged != request.body
    forged_request = OutboundRequest(
        "POST",
        request.url,
        forged,
        {**request.headers, "Idempotency-Key": "forged"},
        request.context,
    )
    with pytest.raises(PermanentError) as caught:
        await connector.send(session, forged_request)
    assert caught.value.status == 422
    assert "tong: tổng không khớp" in caught.value.reason
    assert "1485001" in caught.value.reason and "1485000" in caught.value.reason
    assert (await sim_state(session, payer))["rejected_422"] == 1


async def test_invalid_document_or_missing_key_is_a_gateway_bug(
    payer: TestServer, session: aiohttp.ClientSession
) -> None:
    connector = make_connector(payer)
    request = await connector.render(payment_list(1))
    invalid = request.body.replace(b'bienDong="tang"', b'bienDong="moi"')
    broken = OutboundRequest(
        "POST", request.url, invalid, {**request.headers, "Idempotency-Key": "k"}
    )
    with pytest.raises(PermanentError, match=r"invalid document \(gateway bug\).*bienDong"):
        await connector.send(session, broken)
    without_key = OutboundRequest("POST", request.url, request.body, dict(request.headers))
    with pytest.raises(PermanentError, match="Idempotency-Key"):
        await connector.send(session, without_key)
    assert (await sim_state(session, payer))["rejected_400"] == 2


async def test_payer_outage_is_retryable(payer: TestServer, session: aiohttp.ClientSession) -> None:
    payer.app[FAULTS_KEY].profile = FaultProfile(name="down", error_rate=1.0)
    with pytest.raises(RetryableError) as caught:
        await deliver(make_connector(payer), session, payment_list(1))
    assert caught.value.status == 503


async def test_unreachable_payer_is_retryable(
    unused_tcp_port: int, session: aiohttp.ClientSession
) -> None:
    system = SystemConfig(
        name="post_office",
        plugin="post_office",
        base_url=f"http://127.0.0.1:{unused_tcp_port}",
    )
    with pytest.raises(RetryableError):
        await deliver(PostOfficeConnector(system), session, payment_list(1))


async def test_two_thousand_lines_over_loopback(
    payer: TestServer, session: aiohttp.ClientSession
) -> None:
    lines = []
    for i in range(2000):
        line = copy.deepcopy(LINES[i % 2])
        line["soDinhDanh"] = make_cccd("006", 1940 + i % 50, i % 2 == 0, i)
        lines.append(line)
    receipt = await deliver(make_connector(payer), session, payment_list(1, lines))
    assert receipt.detail.startswith(
        "bưu điện đã tiếp nhận 2000 dòng / the post office received 2000 lines"
    )


# -- results pushed by the payer -------------------------------------------------------------


@dataclass
class Receiver:
    """A tiny stand-in for the gateway's inbound endpoint: verifies, parses, records."""

    connector: PostOfficeConnector
    secret: str = SECRET
    refuse_first: int = 0
    requests: int = 0
    results: list[ParseResult] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        body = await request.read()
        try:
            verify(self.secret, body, request.headers)
        except SignatureError as exc:
            return web.json_response({"error": "unauthorized", "message": str(exc)}, status=401)
        if self.requests <= self.refuse_first:
            return web.json_response({"error": "busy", "message": "later"}, status=503)
        result = await self.connector.parse(body, request.content_type)
        self.results.append(result)
        accepted = [{"ref": m.ref, "id": str(i)} for i, m in enumerate(result.messages)]
        rejected = [{"ref": r.ref, "errors": list(r.errors)} for r in result.rejected]
        return web.json_response(
            {"accepted": accepted, "duplicates": [], "rejected": rejected}, status=202
        )

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/inbound/post_office", self.handle)
        return app


def receiver() -> Receiver:
    system = SystemConfig(name="post_office", plugin="post_office", base_url="http://unused")
    return Receiver(PostOfficeConnector(system))


def simulator_options(gateway: str, **extra: Any) -> SimulatorOptions:
    settings = {"payout_delay": 0.05, "push_retry_initial": 0.02, "push_retry_max": 0.1}
    return SimulatorOptions(
        gateway_url=gateway, secret=SECRET, system="post_office", seed=3, extra=settings | extra
    )


async def test_payer_pushes_signed_results_that_the_connector_reads(
    aiohttp_server: ServerFactory, session: aiohttp.ClientSession
) -> None:
    inbound = receiver()
    inbound.refuse_first = 2  # the gateway is busy twice: the payer must keep trying
    gateway = await aiohttp_server(inbound.app())
    sim = await aiohttp_server(
        create_post_office_simulator(simulator_options(str(gateway.make_url("")), unpaid_rate=0.5))
    )
    lines = []
    for i in range(40):
        line = copy.deepcopy(LINES[i % 2])
        line["soDinhDanh"] = make_cccd("006", 1940, False, i)
        lines.append(line)
    suspended = copy.deepcopy(LINES[1])
    suspended |= {"soDinhDanh": make_cccd("006", 1950, True, 99), "soTienThang": 0}
    suspended["bienDong"] = "tam_dung"
    lines.append(suspended)
    receipt = await deliver(make_connector(sim), session, payment_list(1, lines))
    assert receipt.detail.startswith(
        "bưu điện đã tiếp nhận 41 dòng / the post office received 41 lines"
    )

    async def pushed() -> bool:
        return bool(inbound.results)

    await eventually(pushed)
    (result,) = inbound.results
    assert result.rejected == []
    due = {
        line["soDinhDanh"]: line["soTienThang"] + line["soTienTruyLinh"] + line["soTienChuaNhan"]
        for line in lines
    }
    by_person = {m.payload["soDinhDanh"]: m.payload for m in result.messages}
    assert set(by_person) == {
        cccd for cccd, amount in due.items() if amount
    }  # nothing due: no line
    statuses = {p["trangThai"] for p in by_person.values()}
    assert statuses == {"da_chi", "chua_chi"}
    for cccd, line in by_person.items():
        assert line["ky"] == "2020-09" and line["maXa"] == "02053"
        if line["trangThai"] == "da_chi":
            assert line["soTien"] == due[cccd]
            paid_on = date.fromisoformat(line["ngayChi"])
            assert (paid_on.year, paid_on.month) == (2020, 9)
        else:
            assert line["soTien"] == 0 and line["lyDo"]
    assert inbound.requests == 3

    state = await sim_state(session, sim)
    results = state["results"]
    assert (results["pushed"], results["pending"]) == (1, 0)
    assert results["attempts"] == 3 and results["failed_attempts"] == 2
    assert results["history"] == [
        {"ky": "2020-09", "maXa": "02053", "lanGui": 1, "soDong": 40, "attempts": 3}
    ]


async def test_results_wait_for_an_unreachable_gateway_and_are_never_dropped(
    aiohttp_server: ServerFactory,
    unused_tcp_port: int,
    session: aiohttp.ClientSession,
) -> None:
    port = unused_tcp_port
    sim = await aiohttp_server(
        create_post_office_simulator(simulator_options(f"http://127.0.0.1:{port}"))
    )
    await deliver(make_connector(sim), session, payment_list(1))

    async def failed_twice() -> bool:
        return (await sim_state(session, sim))["results"]["failed_attempts"] >= 2

    await eventually(failed_twice)
    state = await sim_state(session, sim)
    assert state["results"]["pending"] == 1 and state["results"]["pushed"] == 0

    inbound = receiver()
    await aiohttp_server(inbound.app(), port=port)

    async def pushed() -> bool:
        return bool(inbound.results)

    await eventually(pushed)
    people = [m.payload["soDinhDanh"] for m in inbound.results[0].messages]
    assert people == ["006135001234", "006080004321"]


async def test_a_wrong_signature_is_not_accepted_and_the_payer_keeps_trying(
    aiohttp_server: ServerFactory, session: aiohttp.ClientSession
) -> None:
    inbound = receiver()
    inbound.secret = "the-gateway-expects-another-secret"
    gateway = await aiohttp_server(inbound.app())
    sim = await aiohttp_server(
        create_post_office_simulator(simulator_options(str(gateway.make_url(""))))
    )
    await deliver(make_connector(sim), session, payment_list(1))

    async def refused_twice() -> bool:
        return inbound.requests >= 2

    await eventually(refused_twice)
    assert inbound.results == []
    assert (await sim_state(session, sim))["results"]["last_error"] == "HTTP 401"
    inbound.secret = SECRET  # the operator fixes the configuration

    async def pushed() -> bool:
        return bool(inbound.results)

    await eventually(pushed)


async def test_a_list_replaced_before_payout_is_paid_from_the_new_one(
    aiohttp_server: ServerFactory, session: aiohttp.ClientSession
) -> None:
    inbound = receiver()
    gateway = await aiohttp_server(inbound.app())
    options = simulator_options(str(gateway.make_url("")), payout_delay=0.3, unpaid_rate=0.0)
    sim = await aiohttp_server(create_post_office_simulator(options))
    connector = make_connector(sim)
    await deliver(connector, session, payment_list(1))
    await deliver(connector, session, payment_list(2, LINES[1:]))

    async def pushed() -> bool:
        return bool(inbound.results)

    await eventually(pushed)
    await asyncio.sleep(0.4)  # nothing more comes for the replaced list
    assert len(inbound.results) == 1
    assert [m.payload["soDinhDanh"] for m in inbound.results[0].messages] == ["006080004321"]
    history = (await sim_state(session, sim))["results"]["history"]
    assert [h["lanGui"] for h in history] == [2]


async def test_results_push_is_xml_in_the_profile(
    aiohttp_server: ServerFactory, session: aiohttp.ClientSession
) -> None:
    bodies: list[tuple[str, bytes]] = []

    async def capture(request: web.Request) -> web.Response:
        bodies.append((request.content_type, await request.read()))
        return web.json_response({"accepted": [], "duplicates": [], "rejected": []}, status=202)

    app = web.Application()
    app.router.add_post("/inbound/payer", capture)
    gateway = await aiohttp_server(app)
    options = simulator_options(str(gateway.make_url("")))
    options.system = "payer"  # the gateway's own name for this system
    sim = await aiohttp_server(create_post_office_simulator(options))
    await deliver(make_connector(sim), session, payment_list(1))

    async def pushed() -> bool:
        return bool(bodies)

    await eventually(pushed)
    content_type, body = bodies[0]
    assert content_type == "application/xml"
    root = parse_xml(body)
    assert root.tag == "{urn:vn:btxh:chitra:1}KetQuaChiTra"
    assert (root.get("ky"), root.get("maXa")) == ("2020-09", "02053")
