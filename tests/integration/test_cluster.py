"""Once per cluster, fast take-over and the fence (DESIGN.md §5), on SQLite and PostgreSQL:

* a job scheduled on three nodes runs on one node at a time, once per interval for the
  whole cluster, not once per node;
* the node running a job dies (stops beating): another node fences it and runs the job;
* a fenced node records nothing it claimed before it was fenced, and cannot finish a run;
* (PostgreSQL) three whole gateways with the social-assistance plugin reach the payment day:
  the job runs once in the cluster and each commune's list is built and sent once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from conftest import make_config, wait_for
from sqlalchemy import text

from gateway import hookimpl
from gateway.config import SystemConfig, config_from_dict
from gateway.connector import Connector
from gateway.engine.cluster import Membership
from gateway.engine.scheduler import Scheduler
from gateway.model import VN_TZ, Message, Outcome, ParseResult
from gateway.plugins import build_plugins
from gateway.store import AttemptRecord, IntakeItem, Store, StoreUnavailable
from gateway.store.store import DeliveryFilter, LogFilter
from gateway.web.app import create_app
from gateway.web.keys import CONNECTORS, ENGINE, SCHEDULER, STORE

T = TypeVar("T")


async def again(call: Callable[[], Awaitable[T]]) -> T:
    """A fenced node's first statement may find its session ended by the fence (PostgreSQL):
    it fails once as unavailable, as it would in the engine, which tries again."""
    try:
        return await call()
    except StoreUnavailable:
        return await call()


@contextlib.asynccontextmanager
async def nodes(url: str, *names: str) -> AsyncIterator[list[Store]]:
    stores = [Store(url, node_id=name) for name in names]
    try:
        for store in stores:
            await store.open()
            await store.upgrade()
        yield stores
    finally:
        for store in stores:
            await store.close()


@pytest.mark.both_databases
async def test_a_job_runs_once_per_interval_in_the_cluster(database_url: str) -> None:
    runs: list[tuple[str, float, float]] = []
    interval, period = 0.3, 2.4
    async with nodes(database_url, "a", "b", "c") as stores:
        members = [Membership(s, timeout=3.0, interval=0.25) for s in stores]
        schedulers = [
            Scheduler(s, m, check_every=0.1) for s, m in zip(stores, members, strict=True)
        ]
        for store, member, scheduler in zip(stores, members, schedulers, strict=True):
            await member.join()
            member.start()

            async def tick(node: str = store.node_id) -> None:
                began = time.monotonic()
                await asyncio.sleep(0.05)
                runs.append((node, began, time.monotonic()))

            scheduler.schedule("tick", interval, tick)
        for scheduler in schedulers:
            scheduler.start()
        await asyncio.sleep(period)
        for scheduler in schedulers:
            await scheduler.stop()
        await asyncio.sleep(0.3)  # a finish shielded from the stop completes
        row = await stores[0].schedule_row("tick")
        for member in members:
            await member.stop()
    assert row is not None
    assert row["runs"] == len(runs), f"{len(runs)} {runs} {dict(row)}"  # each run counted once
    # one node at a time: each run starts after the previous one ended
    ordered = sorted(runs, key=lambda r: r[1])
    overlaps = [(a, b) for a, b in itertools.pairwise(ordered) if b[1] < a[2]]
    assert overlaps == [], runs
    # once per interval for the cluster (each run takes 0.05 s): three nodes running it each
    # would make about three times as many
    assert 3 <= len(runs) <= period / interval + 1, runs
    assert {node for node, _, _ in runs} <= {"a", "b", "c"}


@pytest.mark.both_databases
async def test_a_dead_runner_is_taken_over_and_the_job_runs_elsewhere(database_url: str) -> None:
    hang = asyncio.Event()
    ran_on_b = asyncio.Event()
    async with nodes(database_url, "a", "b") as (a, b):
        ma = Membership(a, timeout=1.0, interval=0.2)  # a never beats after joining: "dead"
        mb = Membership(b, timeout=1.0, interval=0.2)
        gen_a = await ma.join()
        sa, sb = Scheduler(a, ma, check_every=0.1), Scheduler(b, mb, check_every=0.1)
        started_on_a = asyncio.Event()

        async def on_a() -> None:
            started_on_a.set()
            await hang.wait()

        async def on_b() -> None:
            ran_on_b.set()

        sa.schedule("payment_day", 3600.0, on_a)
        sa.start()
        await asyncio.wait_for(started_on_a.wait(), 5)
        died = time.monotonic()
        await mb.join()
        mb.start()
        sb.schedule("payment_day", 3600.0, on_b)
        sb.start()
        try:
            await asyncio.wait_for(ran_on_b.wait(), 6)
            took = time.monotonic() - died
            assert mb.takeovers == 1
            # the timeout, one heartbeat, one look at the schedule, and slack for a busy box
            assert took < 1.0 + 0.2 + 0.1 + 2.0
            # a comes back: it may not finish the run it lost, and it learns it was fenced
            finish = functools.partial(
                a.finish_run, "payment_day", gen_a, time.time(), time.time() + 9
            )
            assert not await again(finish)
            assert not await ma.may_act(gen_a)
            assert ma.generation is not None and ma.generation > gen_a

            async def finished_on_b() -> bool:
                row = await b.schedule_row("payment_day")
                return row is not None and row["runs"] == 1 and row["last_node"] == "b"

            await wait_for(finished_on_b, timeout=5, what="b's run recorded")
        finally:
            hang.set()
            await sa.stop()
            await sb.stop()
            await mb.stop()
            await ma.stop()


def _item(n: int) -> IntakeItem:
    msg = Message(
        event="message.received", external_id=f"M{n}", payload={"n": n}, dossier_key=f"D{n}"
    )
    msg.source = "src"
    return IntakeItem(message=msg.normalised(), routes=[("src>dst", "dst")], deadlines={})


@pytest.mark.both_databases
async def test_a_fenced_node_records_nothing_it_had_claimed(database_url: str) -> None:
    async with nodes(database_url, "a", "b") as (a, b):
        await a.join()
        await b.join()
        await a.ingest([_item(1)])
        [mine] = await a.claim("dst", 5, 120.0)
        assert mine.generation == a.writes.generation
        # a falls silent; b fences it (its lease of 120 s is not waited for)
        fenced = await b.fence("a", a.writes.generation or 0, time.time() + 1)
        assert fenced is not None and fenced.deliveries == 1
        [taken] = await b.claim("dst", 5, 120.0)
        assert taken.id == mine.id
        # a comes back with what it had sent: its result is not recorded
        late = AttemptRecord(
            delivery=mine, outcome=Outcome.DELIVERED, started_at=time.time(), duration_ms=1.0
        )
        result = await again(lambda: a.cycle([], [late], {"dst": 5}, 120.0))
        assert result.fenced == [late] and not result.held and result.claimed == {}
        assert await a.list_log(LogFilter(), limit=10) == []
        [row] = await a.list_deliveries(DeliveryFilter(), limit=10)
        assert row["status"] == "in_flight"  # still b's: a's late result did not touch it
        done = AttemptRecord(
            delivery=taken, outcome=Outcome.DELIVERED, started_at=time.time(), duration_ms=1.0
        )
        assert (await b.cycle([], [done], {}, 120.0)).fenced == []
        rows = await b.list_log(LogFilter(), limit=10)
        assert [(r["node"], r["outcome"]) for r in rows] == [("b", "delivered")]
        # a re-joins under a new generation and may work again
        assert await a.join() > (mine.generation or 0)


# -- a poller on two whole gateways ---------------------------------------------------------------
class Feed:
    """A source that can only be polled: one new item per poll after the cursor; it notes
    which node asked, and when (two polls at once would mean two nodes ran it)."""

    def __init__(self) -> None:
        self.polls: list[tuple[str, float, float]] = []

    @hookimpl
    def gateway_register_connectors(self, register: Callable[..., None]) -> None:
        feed = self

        class FeedConnector(Connector):
            async def poll(
                self, session: aiohttp.ClientSession, cursor: str | None
            ) -> tuple[ParseResult, str | None]:
                began = time.monotonic()
                await asyncio.sleep(0.02)
                n = int(cursor or 0) + 1
                item = Message(
                    event="message.received",
                    external_id=f"F{n}",
                    payload={"n": n},
                    dossier_key=f"F{n}",
                )
                feed.polls.append((self.node, began, time.monotonic()))
                return ParseResult(messages=[item]), str(n)

        def factory(system: SystemConfig) -> Connector:
            connector = FeedConnector(system)
            connector.node = feed.starting
            return connector

        register("feed", factory)

    starting = ""


@pytest.mark.both_databases
async def test_a_poller_runs_on_one_node_per_interval(
    database_url: str, tmp_path: Path, aiohttp_client: Any, sink: Any
) -> None:
    received, server = sink
    feed = Feed()
    clients = []
    for node in ("a", "b"):
        feed.starting = node
        config = make_config(
            tmp_path,
            str(server.make_url("")).rstrip("/"),
            gateway={"database": database_url, "node_id": node},
            systems={"feed": {"plugin": "feed", "poll_interval": 0.2}},
            routes=[{"from": "feed", "event": "message.received", "to": ["dst"]}],
        )
        app = create_app(config, plugins=build_plugins(extra=[("feed", feed)]))
        clients.append(await aiohttp_client(app))
    await asyncio.sleep(2.0)
    for c in clients:
        await c.app[SCHEDULER].stop()
    polls = sorted(feed.polls, key=lambda p: p[1])
    assert [(a, b) for a, b in itertools.pairwise(polls) if b[1] < a[2]] == []  # one at a time
    assert 4 <= len(polls) <= 2.0 / 0.2 + 1  # once per interval, not once per node
    n = len(polls)  # the last poll may have been stopped before its commit, or its cursor

    async def delivered() -> bool:
        return len(received.accepted) >= n - 1

    await wait_for(delivered, timeout=10, what="every polled item delivered")
    await asyncio.sleep(0.5)
    got = sorted(r.json()["payload"]["n"] for r in received.accepted)
    assert got == list(range(1, len(got) + 1)) and len(got) in (n - 1, n)  # each once
    cursor = int(await clients[0].app[STORE].get_cursor("feed") or 0)
    assert cursor in (len(got) - 1, len(got))  # taken again on the next poll, and deduped


# -- the payment day on three whole gateways (PostgreSQL) ---------------------------------------
PAYMENT_DAY = 12
COMMUNES = ("02053", "02020", "02023")


async def test_the_payment_day_job_runs_once_across_three_nodes(
    postgres_url: str,
    tmp_path: Path,
    aiohttp_client: Any,
    sink: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from sa_fixtures import decision_payload

    from plugins.social_assistance import jobs
    from plugins.social_assistance.storage import load_domain
    from plugins.vn_common.cccd import make_cccd

    received, server = sink
    calls: list[str] = []
    real_job = jobs.build_on_payment_day

    async def counted(ctx: Any, now: datetime | None = None) -> None:
        calls.append(ctx.app[STORE].node_id)
        await asyncio.sleep(0.3)  # the others start meanwhile: they must not run it too
        await real_job(ctx, now)

    def config(node: str) -> Any:
        return config_from_dict(
            {
                "gateway": {"database": postgres_url, "node_id": node, "notify": True},
                "systems": {
                    "social_assistance": {"plugin": "social_assistance"},
                    "post_office": {
                        "plugin": "http_json",
                        "base_url": str(server.make_url("")).rstrip("/"),
                        "path": "/receive",
                        "timeout": {"connect": 1, "read": 2},
                    },
                },
                "routes": [
                    {"from": "social_assistance", "event": "payment.list", "to": ["post_office"]}
                ],
                "social_assistance": {"payment_day": PAYMENT_DAY},
            },
            tmp_path / "gateway.toml",
        )

    # the decisions are in the store before the nodes start (the roster the lists come from)
    first = create_app(config("seed"), plugins=build_plugins())
    seed: TestClient[Any, Any] = await aiohttp_client(first)
    rules = load_domain(config("seed")).rules
    for i, commune in enumerate(COMMUNES, start=1):
        payload = decision_payload(
            rules,
            so=f"{200 + i}/QĐ-UBND",
            ngayKy="2020-08-03",
            maHoSo=f"HS-{i}",
            soDinhDanh=make_cccd("006", 1935, True, i),
            hoTen="Hoàng Thị Lan",
            ngaySinh="1935-04-12",
            maXa=commune,
            loaiDoiTuong="5.5a",
        )
        receipt = await seed.app[CONNECTORS]["social_assistance"].apply("decision.issued", payload)
        assert receipt.detail == "applied"
    await seed.close()
    # the payment day is reached (in Vietnam), whatever today is
    monkeypatch.setattr(jobs, "now_vn", lambda: datetime(2020, 8, PAYMENT_DAY, 9, tzinfo=VN_TZ))
    monkeypatch.setattr(jobs, "build_on_payment_day", counted)
    store = Store(postgres_url, node_id="observer")
    await store.open()
    try:
        async with store.reader.begin() as conn:  # the seeding node ran the job (not the day)
            await conn.execute(text("DELETE FROM schedules"))

        clients = await asyncio.gather(
            *(
                aiohttp_client(create_app(config(f"n{i}"), plugins=build_plugins()))
                for i in range(1, 4)
            )
        )
        for c in clients:
            assert "social_assistance:payment_lists" in c.app[SCHEDULER].jobs

        async def sent_all() -> bool:
            got = {r.json()["payload"]["maXa"] for r in received.accepted}
            return got >= set(COMMUNES)

        await wait_for(sent_all, timeout=20, what="every commune's list at the post office")
        await asyncio.sleep(1.0)  # anything built or sent twice would show by now
        assert len(calls) == 1, calls  # once in the cluster
        async with store.reader.connect() as conn:
            lists = (
                await conn.execute(
                    text("SELECT ma_xa, count(*) FROM sa_lists WHERE ky = '2020-09' GROUP BY ma_xa")
                )
            ).all()
            runs = (
                await conn.execute(
                    text("SELECT runs, last_node FROM schedules WHERE name = :n"),
                    {"n": "social_assistance:payment_lists"},
                )
            ).one()
        assert dict(lists) == {c: 1 for c in COMMUNES}  # each commune's list built once
        keys = [r.idempotency_key for r in received.received]
        by_commune = [r.json()["payload"]["maXa"] for r in received.accepted]
        assert sorted(by_commune) == sorted(COMMUNES)  # and sent once
        assert len(keys) == len(set(keys)) == len(COMMUNES)
        assert runs.runs == 1 and runs.last_node == calls[0]
        for c in clients:
            assert c.app[ENGINE].membership.generation is not None
    finally:
        await store.close()
