"""Delivery promises of DESIGN.md §5, each against a real loopback sink."""

from __future__ import annotations

import time
from typing import Any

import pytest
from aiohttp import web
from conftest import make_config, signed, wait_for

from gateway.engine.worker import SWEEP_SECONDS
from gateway.store.store import DeliveryFilter, LogFilter
from gateway.web.app import create_app
from gateway.web.keys import ENGINE, STORE


async def push(client: Any, items: list[dict[str, Any]]) -> dict[str, Any]:
    body, headers = signed({"data": items})
    resp = await client.post("/inbound/src", data=body, headers=headers)
    assert resp.status == 202, await resp.text()
    result: dict[str, Any] = await resp.json()
    return result


async def deliveries(client: Any, **flt: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = await client.app[STORE].list_deliveries(
        DeliveryFilter(**flt), limit=1000
    )
    return rows


async def log_rows(client: Any, **flt: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = await client.app[STORE].list_log(LogFilter(**flt), limit=1000)
    return list(reversed(rows))


async def all_status(client: Any, status: str, count: int) -> bool:
    rows = await deliveries(client)
    return len(rows) == count and all(r["status"] == status for r in rows)


async def test_retries_until_the_destination_recovers(gateway_factory: Any, sink: Any) -> None:
    received, _ = sink
    received.behaviour = lambda req, seen: 503 if seen <= 3 else None
    client = await gateway_factory()
    await push(client, [{"id": "A", "key": "A"}])
    await wait_for(lambda: all_status(client, "delivered", 1), what="delivered after retries")
    outcomes = [r["outcome"] for r in await log_rows(client)]
    assert outcomes == ["retry_scheduled"] * 3 + ["delivered"]
    assert len({r.idempotency_key for r in received.received}) == 1  # same key on every resend
    assert [r["attempt"] for r in await log_rows(client)] == [1, 2, 3, 4]


async def test_connection_reset_is_retried(gateway_factory: Any, sink: Any) -> None:
    received, _ = sink
    received.behaviour = lambda req, seen: "reset" if seen == 1 else None
    client = await gateway_factory()
    await push(client, [{"id": "R", "key": "R"}])
    await wait_for(lambda: all_status(client, "delivered", 1), what="delivered after reset")
    first = (await log_rows(client))[0]
    assert first["outcome"] == "retry_scheduled"
    assert first["http_status"] is None and first["error_class"] == "RetryableError"


async def test_stall_past_read_timeout_is_retried(gateway_factory: Any, sink: Any) -> None:
    received, _ = sink
    received.behaviour = lambda req, seen: "stall" if seen == 1 else None
    client = await gateway_factory(dst={"timeout": {"connect": 0.5, "read": 0.3}})
    started = time.monotonic()
    await push(client, [{"id": "S", "key": "S"}])
    await wait_for(lambda: all_status(client, "delivered", 1), what="delivered after stall")
    first = (await log_rows(client))[0]
    assert "timeout" in (first["error_message"] or "").lower()
    assert first["duration_ms"] < 2000
    assert time.monotonic() - started < 5


async def test_4xx_dead_letters_at_once_and_operator_retry_delivers(
    gateway_factory: Any, sink: Any
) -> None:
    received, _ = sink
    refuse = {"on": True}
    received.behaviour = lambda req, seen: 400 if refuse["on"] else None
    client = await gateway_factory()
    await push(client, [{"id": "D", "key": "D"}])
    await wait_for(lambda: all_status(client, "dead", 1), what="dead letter")
    dead = (await deliveries(client))[0]
    assert dead["attempts"] == 1 and dead["last_status"] == 400
    assert "HTTP 400" in dead["last_error"]
    refuse["on"] = False
    store = client.app[STORE]
    assert await store.retry_dead([dead["id"]], actor="test:operator") == [dead["id"]]
    client.app[ENGINE].wake()
    await wait_for(lambda: all_status(client, "delivered", 1), what="delivered after replay")
    outcomes = [(r["outcome"], r["actor"]) for r in await log_rows(client)]
    assert outcomes == [("dead", None), ("replayed", "test:operator"), ("delivered", None)]
    assert (await store.verify_log())[1] == []


async def test_429_retry_after_is_honoured(gateway_factory: Any, sink: Any) -> None:
    received, _ = sink
    received.behaviour = lambda req, seen: (429, {"Retry-After": "1"}) if seen == 1 else None
    client = await gateway_factory()
    await push(client, [{"id": "T", "key": "T"}])
    await wait_for(lambda: all_status(client, "delivered", 1), what="delivered after 429")
    first, second = (await log_rows(client))[:2]
    assert first["http_status"] == 429
    assert second["at"] - first["at"] >= 0.95  # waited Retry-After, not the 0.05 s backoff


async def test_deadline_dead_letters_with_last_error(gateway_factory: Any, sink: Any) -> None:
    received, _ = sink
    received.behaviour = lambda req, seen: 503
    client = await gateway_factory(
        dst={"retry": {"initial": 0.05, "max": 0.1, "jitter": 0, "deadline": 0.5}}
    )
    await push(client, [{"id": "X", "key": "X"}])
    await wait_for(lambda: all_status(client, "dead", 1), what="dead after deadline")
    dead = (await deliveries(client))[0]
    assert dead["last_error"].startswith("deadline passed after")
    assert "HTTP 503" in dead["last_error"]


async def test_order_per_dossier_under_retries_without_holding_up_others(
    gateway_factory: Any, sink: Any
) -> None:
    received, _ = sink
    # the first revision of dossier A fails three times; its later revisions must wait for it,
    # dossier B must not
    first_a: dict[str, str] = {}

    def behaviour(req: web.Request, seen: int) -> int | None:
        key = req.headers["Idempotency-Key"]
        if not first_a:
            first_a["key"] = key
        return 503 if key == first_a["key"] and seen <= 3 else None

    received.behaviour = behaviour
    client = await gateway_factory(dst={"concurrency": 4})
    await push(client, [{"id": "A", "key": "A", "step": 2}])
    await push(client, [{"id": "B", "key": "B", "step": 1}])
    await push(client, [{"id": "A", "key": "A", "step": 4}])
    await push(client, [{"id": "A", "key": "A", "step": 9}])
    await push(client, [{"id": "A", "key": "A", "step": 10}])
    await wait_for(lambda: all_status(client, "delivered", 5), what="all delivered")
    order = [(r.json()["dossier_key"], r.json()["payload"]["step"]) for r in received.accepted]
    assert [s for k, s in order if k == "A"] == [2, 4, 9, 10]
    assert order.index(("B", 1)) < order.index(("A", 2))  # B was not held up by A's retries


async def test_a_dossiers_next_delivery_goes_as_soon_as_the_previous_one_is_done(
    gateway_factory: Any, sink: Any
) -> None:
    """The lane that had nothing claimable (the second revision waits for the first) is woken
    by the first one's outcome in the same write cycle, not by the next sweep."""
    received, _ = sink
    arrivals: list[float] = []
    received.behaviour = lambda req, seen: arrivals.append(time.monotonic())  # accepts
    client = await gateway_factory(dst={"concurrency": 4})
    await push(client, [{"id": "A", "key": "A", "step": 1}])
    await push(client, [{"id": "A", "key": "A", "step": 2}])
    await wait_for(lambda: all_status(client, "delivered", 2), what="both delivered")
    assert [r.json()["payload"]["step"] for r in received.accepted] == [1, 2]
    assert arrivals[1] - arrivals[0] < SWEEP_SECONDS / 5


async def test_breaker_opens_then_half_opens_with_one_trial(
    gateway_factory: Any, sink: Any
) -> None:
    received, _ = sink
    down = {"on": True}
    received.behaviour = lambda req, seen: 503 if down["on"] else None
    client = await gateway_factory(
        dst={
            "breaker": {"failures": 3, "reset_after": 0.6},
            "concurrency": 1,
            "retry": {"initial": 0.01, "max": 0.02, "jitter": 0, "deadline": 60},
        }
    )
    await push(client, [{"id": f"K{i}", "key": f"K{i}"} for i in range(3)])
    lane = client.app[ENGINE].lanes["dst"]
    await wait_for(lambda: lane.breaker.state.value == "open", what="breaker open")
    opened = len(received.received)
    await client.app[ENGINE].store.load_breakers()
    time_opened = time.monotonic()
    await wait_for(lambda: len(received.received) > opened, timeout=3, what="half-open trial")
    assert time.monotonic() - time_opened >= 0.4  # nothing sent while open
    assert len(received.received) == opened + 1  # exactly one trial while half-open
    down["on"] = False
    await wait_for(lambda: all_status(client, "delivered", 3), what="recovered")
    assert lane.breaker.state.value == "closed"
    saved = await client.app[STORE].load_breakers()
    assert saved["dst"][0] == "closed"


async def test_dedupe_and_revisions(gateway_factory: Any, sink: Any) -> None:
    client = await gateway_factory()
    first = await push(client, [{"id": "HS", "key": "HS", "v": 1}])
    again = await push(client, [{"id": "HS", "key": "HS", "v": 1}])
    assert again["duplicates"] == first["accepted"] and again["accepted"] == []
    changed = await push(client, [{"id": "HS", "key": "HS", "v": 2}])
    assert changed["accepted"][0]["id"] != first["accepted"][0]["id"]
    await wait_for(lambda: all_status(client, "delivered", 2), what="two revisions delivered")
    received, _ = sink
    assert [r.json()["revision"] for r in received[0].accepted] if False else True
    revisions = [a.json()["revision"] for a in sink[0].accepted]
    assert revisions == [1, 2]


async def test_restart_resumes_the_stored_schedule(
    tmp_path: Any, aiohttp_client: Any, sink: Any
) -> None:
    received, server = sink
    received.behaviour = lambda req, seen: 503 if seen == 1 else None
    url = str(server.make_url("")).rstrip("/")
    config = make_config(
        tmp_path, url, dst={"retry": {"initial": 1.5, "max": 2, "jitter": 0, "deadline": 60}}
    )
    client = await aiohttp_client(create_app(config))
    await push(client, [{"id": "P", "key": "P"}])
    await wait_for(lambda: len(received.received) == 1, what="first attempt")
    await wait_for(lambda: _retry_scheduled(client), what="retry scheduled")
    row = (await deliveries(client))[0]
    await client.close()  # the gateway stops before the retry is due
    assert row["status"] == "pending" and row["next_attempt_at"] > time.time()

    client2 = await aiohttp_client(create_app(config))
    await wait_for(
        lambda: all_status(client2, "delivered", 1), timeout=6, what="delivered after restart"
    )
    resumed = (await log_rows(client2))[-1]
    assert resumed["attempt"] == 2
    assert resumed["at"] >= row["next_attempt_at"] - 0.05  # not before the stored time
    assert len({r.idempotency_key for r in received.received}) == 1


async def _retry_scheduled(client: Any) -> bool:
    rows = await log_rows(client)
    return bool(rows) and rows[-1]["outcome"] == "retry_scheduled"


async def test_queue_bound_answers_503_and_stores_nothing(gateway_factory: Any, sink: Any) -> None:
    received, _ = sink
    received.behaviour = lambda req, seen: "stall"
    client = await gateway_factory(limits={"queue_bound": 2})
    await push(client, [{"id": "Q1", "key": "Q1"}, {"id": "Q2", "key": "Q2"}])
    body, headers = signed({"data": [{"id": "Q3", "key": "Q3"}]})
    resp = await client.post("/inbound/src", data=body, headers=headers)
    assert resp.status == 503
    assert resp.headers["Retry-After"] == "30"
    assert (await resp.json())["error"] == "queue_full"
    assert {r["ref"] for r in await deliveries(client)} == {"Q1", "Q2"}


async def test_slow_destination_does_not_slow_others(
    tmp_path: Any, aiohttp_client: Any, aiohttp_server: Any
) -> None:
    from gateway.testing.sink import Sink

    slow, fast = Sink(), Sink()
    slow.behaviour = lambda req, seen: "stall"
    slow_server, fast_server = await aiohttp_server(slow.app()), await aiohttp_server(fast.app())
    config = make_config(
        tmp_path,
        str(fast_server.make_url("")).rstrip("/"),
        systems={
            "src": {
                "plugin": "http_json",
                "inbound_secret": "test-secret-7c2e9a41b8d3f6051e4d",
                "key_field": "key",
            },
            "dst": {
                "plugin": "http_json",
                "base_url": str(fast_server.make_url("")).rstrip("/"),
                "concurrency": 2,
            },
            "slow": {
                "plugin": "http_json",
                "base_url": str(slow_server.make_url("")).rstrip("/"),
                "concurrency": 2,
                "timeout": {"connect": 1, "read": 30},
            },
        },
        routes=[{"from": "src", "event": "message.received", "to": ["slow", "dst"]}],
    )
    client = await aiohttp_client(create_app(config))
    started = time.monotonic()
    await push(client, [{"id": f"M{i}", "key": f"M{i}"} for i in range(20)])
    await wait_for(lambda: len(fast.accepted) == 20, timeout=5, what="fast destination served")
    assert time.monotonic() - started < 3
    assert len(slow.received) == 2  # the slow lane holds only its own two slots


async def test_retention_prunes_old_rows_and_the_chain_still_verifies(gateway_factory: Any) -> None:
    client = await gateway_factory(gateway={"log_retention_days": 1})
    await push(client, [{"id": "O1", "key": "O1"}, {"id": "O2", "key": "O2"}])
    await wait_for(lambda: all_status(client, "delivered", 2), what="first two delivered")
    old = await log_rows(client)
    await push(client, [{"id": "N1", "key": "N1"}, {"id": "N2", "key": "N2"}])
    await wait_for(lambda: all_status(client, "delivered", 4), what="all delivered")
    store = client.app[STORE]
    assert await store.prune_log(max(r["at"] for r in old) + 1e-6) == len(old)
    checked, problems = await store.verify_log(pruned=True)
    assert checked == 2 and problems == []
    # without the retention setting, the missing start is reported
    assert (await store.verify_log())[1]


async def test_a_connector_that_hangs_is_cut_off_and_retried(
    tmp_path: Any, aiohttp_client: Any, sink: Any
) -> None:
    """A plugin's own send that never returns must not hold its slot past the attempt limit."""
    import asyncio

    from gateway import hookimpl
    from gateway.plugins import build_plugins
    from plugins.http_json import HttpJsonConnector

    calls = {"n": 0}

    class Hanging(HttpJsonConnector):
        async def send(self, session: Any, request: Any) -> Any:
            calls["n"] += 1
            if calls["n"] == 1:
                await asyncio.sleep(3600)
            return await super().send(session, request)

    class Plugin:
        @hookimpl
        def gateway_register_connectors(self, register: Any) -> None:
            register("hanging", Hanging)

    _received, server = sink
    config = make_config(
        tmp_path,
        str(server.make_url("")).rstrip("/"),
        dst={"plugin": "hanging", "timeout": {"connect": 0.1, "read": 0.2}},
    )
    client = await aiohttp_client(
        create_app(config, plugins=build_plugins(extra=[("hang", Plugin())]))
    )
    lane = client.app[ENGINE].lanes["dst"]
    assert lane is not None and client.app[ENGINE].attempt_limit(lane) == pytest.approx(0.9)
    await push(client, [{"id": "H", "key": "H"}])
    await wait_for(
        lambda: all_status(client, "delivered", 1), timeout=6, what="delivered after the hang"
    )
    first = (await log_rows(client))[0]
    assert (
        first["outcome"] == "retry_scheduled" and "did not finish within" in first["error_message"]
    )
