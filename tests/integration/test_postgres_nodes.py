"""Two gateway nodes on one PostgreSQL (DESIGN.md §8): intake on any node, delivery by any
node, per-dossier order across nodes, an open breaker respected by every node."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from conftest import SECRET, make_config, signed, wait_for

from gateway.engine.breaker import BreakerState
from gateway.store.store import DeliveryFilter, LogFilter
from gateway.web.app import create_app
from gateway.web.keys import ENGINE, STORE

Node = TestClient[Any, Any]


@pytest.fixture
def nodes(
    tmp_path: Path, aiohttp_client: Any, sink: Any, postgres_url: str
) -> Callable[..., Awaitable[Node]]:
    """Start a node (a whole gateway app) with its own node id on the test's database."""

    async def start(node_id: str, **overrides: Any) -> Node:
        gateway = {
            "database": postgres_url,
            "node_id": node_id,
            "notify": True,
            "lease_seconds": 4,
            **overrides.pop("gateway", {}),
        }
        src = {
            "plugin": "http_json",
            "inbound_secret": SECRET,
            "key_field": "key",
            "timeout": {"connect": 1, "read": 2},  # shorter than the 4 s lease
        }
        url = str(sink[1].make_url("")).rstrip("/")
        config = make_config(tmp_path, url, gateway=gateway, systems={"src": src}, **overrides)
        client: Node = await aiohttp_client(create_app(config))
        return client

    return start


async def push(node: Node, items: list[dict[str, Any]]) -> None:
    body, headers = signed({"data": items})
    resp = await node.post("/inbound/src", data=body, headers=headers)
    assert resp.status == 202, await resp.text()


async def all_delivered(node: Node, count: int) -> bool:
    rows = await node.app[STORE].list_deliveries(DeliveryFilter(), limit=1000)
    return len(rows) == count and all(r["status"] == "delivered" for r in rows)


async def test_intake_on_one_node_delivery_by_another_in_dossier_order(
    nodes: Callable[..., Awaitable[Node]], sink: Any
) -> None:
    received, _ = sink
    a, b = await nodes("a"), await nodes("b")
    # node a takes intake but cannot deliver (its lane is shut): b must deliver a's dossiers
    a.app[ENGINE].lanes["dst"].breaker.state = BreakerState.OPEN
    a.app[ENGINE].lanes["dst"].breaker.opened_at = time.time() + 3600
    started = time.monotonic()
    for step in (2, 4, 9, 10):  # each revision through a different node
        for key in ("A", "B", "C"):
            await push(a if step in (2, 9) else b, [{"id": key, "key": key, "step": step}])
    await wait_for(lambda: all_delivered(b, 12), timeout=10, what="all delivered")
    assert time.monotonic() - started < 5  # woken by NOTIFY, not by a slow poll
    for key in ("A", "B", "C"):
        got = [r.json() for r in received.accepted]
        assert [g["payload"]["step"] for g in got if g["dossier_key"] == key] == [2, 4, 9, 10]
    rows = await b.app[STORE].list_log(LogFilter(), limit=100)
    assert {r["node"] for r in rows} == {"b"}
    checked, problems = await a.app[STORE].verify_log()
    assert checked == 12 and problems == []


async def test_a_breaker_opened_by_one_node_is_respected_by_the_other(
    nodes: Callable[..., Awaitable[Node]], sink: Any
) -> None:
    received, _ = sink
    down = {"on": True}
    received.behaviour = lambda req, seen: 503 if down["on"] else None
    dst = {
        "breaker": {"failures": 2, "reset_after": 1.5},
        "concurrency": 1,
        "retry": {"initial": 0.05, "max": 0.1, "jitter": 0, "deadline": 60},
    }
    a, b = await nodes("a", dst=dst), await nodes("b", dst=dst)
    b_engine = b.app[ENGINE]
    b_engine.draining = True  # b claims nothing: whatever its breaker does, it learnt from a
    b_lane, a_lane = b_engine.lanes["dst"], a.app[ENGINE].lanes["dst"]
    await push(a, [{"id": "K", "key": "K"}])
    await wait_for(lambda: a_lane.breaker.state is BreakerState.OPEN, what="a's breaker open")
    await wait_for(
        lambda: b_lane.breaker.state is BreakerState.OPEN, timeout=3, what="b adopts open"
    )
    assert b_lane.breaker.opened_at == a_lane.breaker.opened_at
    down["on"] = False  # a's half-open trial succeeds and closes its breaker: b follows
    await wait_for(lambda: all_delivered(a, 1), timeout=5, what="delivered after the trial")
    await wait_for(
        lambda: b_lane.breaker.state is BreakerState.CLOSED, timeout=3, what="b adopts closed"
    )
