"""The one-stop-shop simulator: signed pushes that never drop a dossier, its feed and state."""

from __future__ import annotations

import asyncio
import json
import unicodedata
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.config import SystemConfig
from gateway.signing import SignatureError, verify
from gateway.simulation import SimulatorOptions
from plugins.one_stop_shop import OneStopShopConnector, create_one_stop_shop_simulator
from plugins.one_stop_shop.simulator import sim_state

ServerFactory = Callable[[web.Application], Awaitable[TestServer]]
SECRET = "bí-mật-chung"


@dataclass
class Receiver:
    """A tiny stand-in for the gateway's ``POST /inbound/{system}``: verifies signatures,
    parses with the real connector, and can be told to fail the first requests."""

    fail_first: int = 0
    requests: int = 0
    paths: list[str] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)
    refs: list[str] = field(default_factory=list)
    updating: list[bool] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)
    bad_signatures: int = 0

    def app(self) -> web.Application:
        connector = OneStopShopConnector(SystemConfig(name="motcua", plugin="one_stop_shop"))

        async def inbound(request: web.Request) -> web.Response:
            self.requests += 1
            body = await request.read()
            if self.requests <= self.fail_first:
                return web.json_response(
                    {"error": "busy", "message": "try later"},
                    status=503,
                    headers={"Retry-After": "0"},
                )
            try:
                verify(SECRET, body, request.headers)
            except SignatureError as exc:
                self.bad_signatures += 1
                return web.json_response({"error": "signature", "message": str(exc)}, status=401)
            self.paths.append(request.path)
            self.bodies.append(body)
            result = await connector.parse(body, request.content_type)
            accepted, duplicates = [], []
            for message in result.messages:
                key = message.external_id + json.dumps(message.payload, sort_keys=True)
                (duplicates if key in self.seen else accepted).append(
                    {"ref": message.ref, "id": str(len(self.seen))}
                )
                self.seen.add(key)
                self.refs.append(message.ref)
                self.updating.append(message.payload["isUpdating"])
            rejected = [{"ref": r.ref, "errors": list(r.errors)} for r in result.rejected]
            answer = {"accepted": accepted, "duplicates": duplicates, "rejected": rejected}
            return web.json_response(answer, status=202)

        app = web.Application()
        app.router.add_post("/inbound/{system}", inbound)
        return app


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def read_state(client: aiohttp.ClientSession, server: TestServer) -> dict[str, Any]:
    async with client.get(server.make_url("/_sim/state")) as resp:
        state: dict[str, Any] = await resp.json()
        return state


async def eventually(condition: Callable[[], bool], limit: float = 20.0) -> None:
    """Wait until ``condition()`` holds: the simulator counts in its own background tasks."""
    async with asyncio.timeout(limit):
        while not condition():  # noqa: ASYNC110 - polling another task's plain counters
            await asyncio.sleep(0.02)


async def test_pushes_signed_batches_until_count_and_never_drops_one(
    aiohttp_server: ServerFactory, client: aiohttp.ClientSession
) -> None:
    receiver = Receiver(fail_first=2)
    gateway = await aiohttp_server(receiver.app())
    options = SimulatorOptions(
        gateway_url=str(gateway.make_url("")).rstrip("/"),
        secret=SECRET,
        system="motcua",
        seed=11,
        speed=50.0,
        extra={"rate": 200, "count": 40},
    )
    app = create_one_stop_shop_simulator(options)
    sim = await aiohttp_server(app)

    state_now = sim_state(app)
    await eventually(lambda: state_now.created >= 40 and state_now.waiting_to_push == 0)

    state = await read_state(client, sim)
    created = list(sim_state(app).dossiers)
    dossiers = state["dossiers"]
    assert dossiers["created"] == 40
    assert dossiers["pushed"] == 40 + dossiers["updates"]
    assert dossiers["push_failures"] == 2
    assert dossiers["last_push_error"] is None
    assert dossiers["acknowledged"]["rejected"] == 0
    assert (
        dossiers["acknowledged"]["accepted"] + dossiers["acknowledged"]["duplicates"]
        == (dossiers["pushed"])
    )
    assert receiver.bad_signatures == 0
    assert set(receiver.paths) == {"/inbound/motcua"}
    assert set(receiver.refs) == set(created)  # every dossier arrived
    assert len(receiver.refs) == dossiers["pushed"]
    assert all(1 <= len(json.loads(b)["data"]) <= 5 for b in receiver.bodies)
    assert dossiers["other_procedure"] >= 1
    nfd_bodies = [b for b in receiver.bodies if not unicodedata.is_normalized("NFC", b.decode())]
    assert nfd_bodies  # some dossiers travel decomposed ...
    assert len(nfd_bodies) < len(receiver.bodies)  # ... not all


async def test_a_push_with_the_wrong_secret_is_refused_and_retried(
    aiohttp_server: ServerFactory, client: aiohttp.ClientSession
) -> None:
    receiver = Receiver()
    gateway = await aiohttp_server(receiver.app())
    options = SimulatorOptions(
        gateway_url=str(gateway.make_url("")).rstrip("/"),
        secret="not-the-shared-secret",
        seed=1,
        speed=50.0,
        extra={"rate": 100, "count": 2},
    )
    app = create_one_stop_shop_simulator(options)
    await aiohttp_server(app)

    await eventually(lambda: receiver.bad_signatures >= 2)
    state = sim_state(app)
    assert state.push.items == 0
    assert state.waiting_to_push > 0  # kept, not dropped
    assert state.push.last_error == "HTTP 401"


async def test_unreachable_gateway_keeps_the_dossiers(
    aiohttp_server: ServerFactory, client: aiohttp.ClientSession
) -> None:
    options = SimulatorOptions(
        gateway_url="http://127.0.0.1:9", secret=SECRET, seed=1, speed=50.0,
        extra={"rate": 100, "count": 3},
    )  # fmt: skip
    app = create_one_stop_shop_simulator(options)
    sim = await aiohttp_server(app)

    await eventually(lambda: sim_state(app).push.failures >= 2)
    state = await read_state(client, sim)
    assert state["dossiers"]["pushed"] == 0
    assert state["dossiers"]["waiting_to_push"] == state["dossiers"]["created"] > 0
    assert "ClientConnectorError" in state["dossiers"]["last_push_error"]


async def test_same_seed_same_feed(
    aiohttp_server: ServerFactory, client: aiohttp.ClientSession
) -> None:
    async def feed(seed: int) -> list[dict[str, Any]]:
        options = SimulatorOptions(seed=seed, speed=50.0, extra={"rate": 500, "count": 30})
        app = create_one_stop_shop_simulator(options)
        server = await aiohttp_server(app)

        await eventually(lambda: sim_state(app).created >= 30)
        pages: list[dict[str, Any]] = []
        cursor = "0"
        while True:
            async with client.get(server.make_url("/ho-so"), params={"tu": cursor}) as resp:
                page = await resp.json()
            if not page["data"]:
                return pages
            pages.append(page)
            cursor = page["cursor"]

    first, again, other = await feed(4), await feed(4), await feed(5)
    assert first == again
    assert first != other
    items = [item for page in first for item in page["data"]]
    assert len({item["MaHoSo"] for item in items}) == 30
    for page in first:  # a page never mixes new dossiers with re-sends
        assert page["isUpdating"] in ("True", "False")


async def test_feed_pages_and_cursor(
    aiohttp_server: ServerFactory, client: aiohttp.ClientSession
) -> None:
    app = create_one_stop_shop_simulator(SimulatorOptions(seed=3, extra={"rate": 0}))
    server = await aiohttp_server(app)
    async with client.post(server.make_url("/_sim/generate"), params={"count": "5"}) as resp:
        created = (await resp.json())["created"]
    async with client.get(server.make_url("/ho-so"), params={"tu": "1", "limit": "2"}) as resp:
        page = await resp.json()
    assert [i["MaHoSo"] for i in page["data"]] == created[1:3]
    assert page["cursor"] == "3"
    async with client.get(server.make_url("/ho-so"), params={"tu": "x"}) as resp:
        assert resp.status == 400


async def test_state_reports_everything_the_brief_names(
    aiohttp_server: ServerFactory, client: aiohttp.ClientSession
) -> None:
    app = create_one_stop_shop_simulator(SimulatorOptions(seed=3, extra={"rate": 0}))
    server = await aiohttp_server(app)
    async with client.post(server.make_url("/auth"), json={"username": "x", "password": "y"}) as r:
        assert await r.json() == {"error_code": 1, "message": "Sai tên đăng nhập hoặc mật khẩu"}
    async with client.post(
        server.make_url("/auth"), json={"username": "gateway", "password": "secret"}
    ) as resp:
        login = await resp.json()
    assert login["error_code"] == 0 and login["session"]
    call = {"session": "nope", "madonvi": "d", "service": "TraCuuHoSo", "mahoso": "x"}
    async with client.post(server.make_url("/integration"), json=call) as resp:
        assert (await resp.json())["error_code"] == "401"
    call["session"] = login["session"]
    async with client.post(server.make_url("/integration"), json=call) as resp:
        assert await resp.json() == {"error_code": "00", "result": []}
    async with client.post(
        server.make_url("/integration"), json={**call, "service": "KhongCo"}
    ) as resp:
        assert (await resp.json())["error_code"] == "03"

    state = await read_state(client, server)

    assert set(state) >= {
        "dossiers",
        "progress",
        "results",
        "results_received",
        "logins",
        "session_expiries",
        "calls",
        "idempotency_keys",
        "faults",
    }
    assert set(state["dossiers"]["acknowledged"]) == {"accepted", "duplicates", "rejected"}
    assert state["logins"] == {"ok": 1, "refused": 1}
    assert state["calls"]["by_service"] == {"TraCuuHoSo": 2, "KhongCo": 1}


async def test_custom_credentials_from_extra(
    aiohttp_server: ServerFactory, client: aiohttp.ClientSession
) -> None:
    options = SimulatorOptions(extra={"rate": 0, "username": "motcua", "password": "mk"})
    server = await aiohttp_server(create_one_stop_shop_simulator(options))
    async with client.post(
        server.make_url("/auth"), json={"username": "motcua", "password": "mk"}
    ) as resp:
        assert (await resp.json())["error_code"] == 0


def test_unknown_extra_key_is_refused() -> None:
    with pytest.raises(ValueError, match=r"extra\.rat: unknown key"):
        create_one_stop_shop_simulator(SimulatorOptions(extra={"rat": 1}))
