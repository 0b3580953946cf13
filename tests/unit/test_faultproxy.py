"""The fault proxy (gateway.testing.faultproxy): every knob against a real server on
loopback, changed while the proxy runs, with its counters."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.testing.faultproxy import PROXY_PROFILES, FaultProxy, ProxyKnobs

BIG = b"x" * 20_000


async def _answer(request: web.Request) -> web.Response:
    body = await request.read()
    seen: list[bytes] = request.app[SEEN]
    seen.append(body)
    if request.path == "/big":
        return web.Response(body=BIG)
    return web.Response(text=f"echo {len(body)}")


SEEN = web.AppKey("seen", list)


@pytest.fixture
async def upstream(aiohttp_server: Any) -> TestServer:
    app = web.Application()
    app[SEEN] = []
    app.router.add_route("*", "/{tail:.*}", _answer)
    server: TestServer = await aiohttp_server(app)
    return server


@pytest.fixture
async def proxy(upstream: TestServer) -> Any:
    assert upstream.port is not None
    p = FaultProxy("127.0.0.1", upstream.port, seed=1)
    await p.start()
    yield p
    await p.stop()


async def _get(url: str, path: str = "/", timeout: float = 2.0, data: bytes = b"") -> bytes:
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session,
        session.post(url + path, data=data) as resp,
    ):
        return await resp.read()


async def test_forwards_both_ways_and_counts_bytes(proxy: FaultProxy) -> None:
    assert proxy.url == f"http://127.0.0.1:{proxy.port}"
    assert await _get(proxy.url, data=b"hello") == b"echo 5"
    assert await _get(proxy.url, "/big") == BIG
    assert proxy.counters.connections == 2
    assert proxy.counters.bytes_up > 5 and proxy.counters.bytes_down > len(BIG)
    assert proxy.counters.resets == 0


async def test_latency_applies_per_direction_and_can_change_at_run_time(
    proxy: FaultProxy,
) -> None:
    proxy.set(latency=0.15)
    started = time.monotonic()
    await _get(proxy.url)
    assert time.monotonic() - started >= 0.3
    proxy.set(latency=0)
    started = time.monotonic()
    await _get(proxy.url)
    assert time.monotonic() - started < 0.2


async def test_bandwidth_drips_the_answer(proxy: FaultProxy) -> None:
    proxy.set(bandwidth=50_000)  # 20 kB at 50 kB/s: about 0.4 s
    started = time.monotonic()
    assert await _get(proxy.url, "/big") == BIG
    assert time.monotonic() - started >= 0.3


async def test_reset_on_request_never_reaches_the_server(
    proxy: FaultProxy, upstream: TestServer
) -> None:
    proxy.set(reset_rate=1.0, reset_on="request")
    with pytest.raises(aiohttp.ClientError):
        await _get(proxy.url, data=b"lost")
    assert proxy.counters.resets == 1
    assert upstream.app[SEEN] == []


async def test_reset_on_response_reaches_the_server_but_the_answer_is_lost(
    proxy: FaultProxy, upstream: TestServer
) -> None:
    proxy.set(**PROXY_PROFILES["reset_after_send"])
    with pytest.raises(aiohttp.ClientError):
        await _get(proxy.url, data=b"taken")
    assert upstream.app[SEEN] == [b"taken"]
    assert proxy.counters.resets == 1


async def test_reset_on_connect(proxy: FaultProxy) -> None:
    proxy.set(reset_rate=1.0, reset_on="connect")
    with pytest.raises(aiohttp.ClientError):
        await _get(proxy.url)


async def test_reset_rate_is_a_fraction_of_connections(upstream: TestServer) -> None:
    assert upstream.port is not None
    async with FaultProxy("127.0.0.1", upstream.port, seed=7, reset_rate=0.5) as p:
        outcomes = []
        for _ in range(20):
            try:
                await _get(p.url)
                outcomes.append(True)
            except aiohttp.ClientError:
                outcomes.append(False)
        assert 3 <= outcomes.count(False) <= 17
        assert p.counters.resets == outcomes.count(False)


async def test_blackhole_accepts_and_never_answers(proxy: FaultProxy, upstream: TestServer) -> None:
    proxy.set(blackhole=True)
    with pytest.raises(asyncio.TimeoutError):
        await _get(proxy.url, timeout=0.3, data=b"into the void")
    assert upstream.app[SEEN] == []
    assert proxy.counters.blackholed == 1
    proxy.set(blackhole=False)
    assert await _get(proxy.url) == b"echo 0"


async def test_half_write_cuts_the_answer_short(proxy: FaultProxy) -> None:
    proxy.set(half_write=True)
    with pytest.raises(aiohttp.ClientError):
        await _get(proxy.url, "/big")
    assert proxy.counters.half_written == 1
    assert 0 < proxy.counters.bytes_down < len(BIG)


async def test_stop_closes_open_connections(upstream: TestServer) -> None:
    assert upstream.port is not None
    p = FaultProxy("127.0.0.1", upstream.port, blackhole=True)
    await p.start()
    waiting = asyncio.create_task(_get(p.url, timeout=5))
    await asyncio.sleep(0.1)
    assert p.counters.active == 1
    await p.stop()
    with pytest.raises(aiohttp.ClientError):
        await waiting
    assert p.counters.active == 0


async def test_unreachable_target_is_a_reset_and_counted() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    async with FaultProxy("127.0.0.1", free) as p:
        with pytest.raises(aiohttp.ClientError):
            await _get(p.url)
        assert p.counters.upstream_failures == 1


def test_knobs_are_checked() -> None:
    proxy = FaultProxy("127.0.0.1", 1)
    with pytest.raises(TypeError, match="latencyy"):
        proxy.set(latencyy=1)
    with pytest.raises(ValueError, match="reset_rate"):
        proxy.set(reset_rate=2)
    with pytest.raises(ValueError, match="reset_on"):
        proxy.set(reset_on="sometimes")
    with pytest.raises(RuntimeError, match="start"):
        _ = proxy.port
    assert proxy.knobs == ProxyKnobs()
    assert set(PROXY_PROFILES["none"]) == set(PROXY_PROFILES["slow"])


async def test_the_pytest_plugin_fixtures_put_the_proxy_between_gateway_and_sink(
    gw_fault_proxy: Any, gw_sink: Any, gw_config: Any, gw_gateway: Any
) -> None:
    sink, url = gw_sink
    proxy = await gw_fault_proxy(int(url.rsplit(":", 1)[1]), reset_rate=1.0)
    config = gw_config(
        {
            "systems": {
                "src": {"plugin": "http_json", "inbound_secret": "s-7c2e9a41b8d3f6051e4d"},
                "dst": {"plugin": "http_json", "base_url": proxy.url},
            },
            "routes": [{"from": "src", "event": "message.received", "to": ["dst"]}],
        }
    )
    gateway = await gw_gateway(config)
    assert (await gateway.push("src", {"id": "A1"})).status == 202
    await _until(lambda: proxy.counters.resets >= 2)  # the link drops: retried
    proxy.set(reset_rate=0.0)
    await gateway.wait_for_deliveries("dst")
    [received] = sink.accepted
    assert received.json()["id"] == "A1" and received.idempotency_key


async def _until(predicate: Any, within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)
