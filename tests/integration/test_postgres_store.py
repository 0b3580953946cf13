"""The store with several nodes on one database (DESIGN.md §5, §8): concurrent claims keep
per-dossier order, intake on two nodes keeps order and dedupe, an expired lease is taken over
and its old owner cannot undo that, a duplicate node id fails loudly, LISTEN/NOTIFY wakes
idle nodes, nodes started together migrate once.

Each node is a :class:`Store` with its own node id and its own connection pool, as in a
separate process. Tests marked ``both_databases`` run on SQLite too (several stores on one
file); the others need PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import wait_for
from sqlalchemy.ext.asyncio import create_async_engine

from gateway.model import Message, Outcome
from gateway.store import writes
from gateway.store.records import DuplicateNodeId
from gateway.store.store import AttemptRecord, ClaimedDelivery, IntakeItem, Store

StoreFactory = Callable[[str], Awaitable[Store]]


def item(external_id: str, key: str, step: int, dest: str = "dst") -> IntakeItem:
    msg = Message(
        event="message.received",
        external_id=external_id,
        payload={"step": step},
        dossier_key=key,
        source="src",
    )
    return IntakeItem(message=msg.normalised(), routes=[("src→dst", dest)], deadlines={})


def attempt(d: ClaimedDelivery, outcome: Outcome, next_at: float | None = None) -> AttemptRecord:
    return AttemptRecord(
        delivery=d,
        outcome=outcome,
        started_at=time.time(),
        duration_ms=1.0,
        http_status=200 if outcome is Outcome.DELIVERED else 503,
        next_attempt_at=next_at,
    )


def step_of(d: ClaimedDelivery) -> int:
    return int(json.loads(d.payload)["step"])


@pytest.fixture
def url(request: pytest.FixtureRequest, backend: str, database_url: str) -> str:
    if backend == "sqlite" and not request.node.get_closest_marker("both_databases"):
        return str(request.getfixturevalue("postgres_url"))  # a PostgreSQL-only test
    return database_url


@pytest.fixture
async def stores(url: str) -> AsyncIterator[StoreFactory]:
    """Open stores (one per node id) on the test's database; all closed at the end."""
    opened: list[Store] = []

    async def open_store(node: str) -> Store:
        store = Store(url, node_id=node)
        await store.open()
        opened.append(store)
        await store.upgrade()
        return store

    yield open_store
    for store in opened:
        await store.close()


async def test_nodes_started_together_migrate_once(url: str) -> None:
    nodes = [Store(url, node_id=f"n{i}") for i in range(3)]
    for s in nodes:
        await s.open()
    try:
        await asyncio.gather(*(s.upgrade() for s in nodes))
        assert await nodes[0].pending_migrations() == set()
    finally:
        for s in nodes:
            await s.close()


@pytest.mark.both_databases
async def test_concurrent_claims_on_three_nodes_keep_each_dossier_in_order(
    stores: StoreFactory,
) -> None:
    a, b, c = [await stores(n) for n in ("a", "b", "c")]
    dossiers, steps = 60, 4
    for step in range(steps):  # step 0 of every dossier first, then step 1, ...
        await a.ingest([item(f"D{k}", f"D{k}", step) for k in range(dossiers)])
    rng = random.Random(7)
    in_flight: dict[str, str] = {}
    delivered: dict[str, list[int]] = defaultdict(list)
    overlaps: list[str] = []
    claims = 0

    async def worker(store: Store) -> None:
        nonlocal claims
        idle = 0
        while idle < 15:
            got = await store.claim("dst", 6, lease_seconds=30)
            idle = 0 if got else idle + 1
            claims += len(got)
            for d in got:
                if d.dossier_key in in_flight:
                    overlaps.append(f"{d.dossier_key}: {in_flight[d.dossier_key]} and {d.id}")
                in_flight[d.dossier_key] = f"{store.node_id}:{d.id}"
            await asyncio.sleep(rng.random() * 0.004)
            records = []
            for d in got:
                del in_flight[d.dossier_key]  # before the record commits: no false alarms
                if rng.random() < 0.25:
                    records.append(attempt(d, Outcome.RETRY, time.time()))
                else:
                    delivered[d.dossier_key].append(step_of(d))
                    records.append(attempt(d, Outcome.DELIVERED))
            if records:
                await store.record(records)
            if not got:
                await asyncio.sleep(0.01)

    await asyncio.gather(worker(a), worker(b), worker(c))
    assert overlaps == []  # never two deliveries of one dossier in flight at once
    assert len(delivered) == dossiers
    assert all(seen == list(range(steps)) for seen in delivered.values()), dict(delivered)
    assert claims > dossiers * steps  # some were retried
    assert await a.queue_depth() == 0
    assert (await a.verify_log())[1] == []


async def _ingest_uncommitted(url: str, node: str, items: list[IntakeItem]) -> Any:
    """Node ``node`` ingests ``items`` in a transaction left open: (engine, connection)."""
    engine = create_async_engine(url)
    conn = await engine.connect()
    await conn.begin()
    writer = writes.Writer(node, skip_locked=True)
    await conn.run_sync(writer.cycle, items, [], {}, 0.0, time.time())
    return engine, conn


async def test_intake_of_one_dossier_on_two_nodes_follows_commit_order(
    url: str, stores: StoreFactory
) -> None:
    b, c = await stores("b"), await stores("c")
    # node a has stored revision 1 of dossier K but not committed yet
    engine, conn = await _ingest_uncommitted(url, "a", [item("K", "K", 1)])
    try:
        later = asyncio.create_task(b.ingest([item("K", "K", 2), item("L", "L", 1)]))
        await asyncio.sleep(0.5)
        assert not later.done()  # b waits for a's dossier K (and so does the unrelated L)
        assert await c.claim("dst", 10, 30) == []  # nothing of K is visible yet
        await conn.commit()
    finally:
        await conn.close()
        await engine.dispose()
    results = await later
    assert [r.duplicate for r in results] == [False, False]
    first = await c.claim("dst", 10, 30)
    assert [(d.dossier_key, step_of(d), d.revision) for d in first] == [("K", 1, 1), ("L", 1, 1)]
    await c.record([attempt(first[0], Outcome.DELIVERED)])
    second = await c.claim("dst", 10, 30)
    assert [(d.dossier_key, step_of(d), d.revision) for d in second] == [("K", 2, 2)]
    assert second[0].id > first[0].id


async def test_same_message_on_two_nodes_is_stored_once(url: str, stores: StoreFactory) -> None:
    b = await stores("b")
    engine, conn = await _ingest_uncommitted(url, "a", [item("M", "M", 1)])
    try:
        again = asyncio.create_task(b.ingest([item("M", "M", 1)]))
        await asyncio.sleep(0.3)
        assert not again.done()
        await conn.commit()
    finally:
        await conn.close()
        await engine.dispose()
    (result,) = await again
    assert result.duplicate and result.deliveries == 0
    assert await b.queue_depth() == 1


@pytest.mark.both_databases
async def test_expired_lease_is_taken_over_and_the_old_owner_cannot_undo_it(
    stores: StoreFactory,
) -> None:
    a, b = await stores("a"), await stores("b")
    await a.ingest([item("E", "E", 1)])
    (mine,) = await a.claim("dst", 1, lease_seconds=2.0)
    now = time.time()
    assert await b.reclaim_expired(now) == 0  # not expired yet
    assert await b.reclaim_expired(now + 2.5) == 1  # a is gone: its lease expired
    (theirs,) = await b.claim("dst", 1, lease_seconds=30)
    assert theirs.id == mine.id
    # a wakes up late and reports a retry: b's lease stands
    await a.record([attempt(mine, Outcome.RETRY, time.time() + 60)])
    row = await b.get_delivery(mine.id)
    assert row is not None
    assert (row["status"], row["lease_owner"]) == ("in_flight", "b")
    await b.record([attempt(theirs, Outcome.DELIVERED)])
    row = await b.get_delivery(mine.id)
    assert row is not None and row["status"] == "delivered"
    assert (await b.verify_log())[1] == []  # two chains, both intact


@pytest.mark.both_databases
async def test_a_duplicate_node_id_fails_loudly(stores: StoreFactory) -> None:
    first, second = await stores("same"), await stores("same")
    await first.ingest([item(f"N{i}", f"N{i}", 1) for i in range(3)])
    claimed = await first.claim("dst", 3, lease_seconds=30)
    await first.record([attempt(claimed[0], Outcome.DELIVERED)])
    await second.record([attempt(claimed[1], Outcome.DELIVERED)])
    with pytest.raises(DuplicateNodeId, match="node_id 'same'"):
        await first.record([attempt(claimed[2], Outcome.DELIVERED)])


async def test_notify_wakes_another_node(stores: StoreFactory) -> None:
    a, b = await stores("a"), await stores("b")
    woken: list[list[str] | None] = []
    stop = asyncio.Event()
    listeners = [
        asyncio.create_task(a.listen(lambda _names: None, stop)),
        asyncio.create_task(b.listen(woken.append, stop)),
    ]
    try:
        await wait_for(lambda: woken == [None], what="b listening")
        await a.ingest([item("W", "W", 1, dest="registry")])
        await wait_for(lambda: len(woken) == 2, timeout=5, what="b woken")
        assert woken[1] == ["registry"]
        (d,) = await b.claim("registry", 1, 30)
        await b.record([attempt(d, Outcome.DELIVERED)])  # a finished delivery wakes a
        await b.ingest([item("W2", "W2", 1)])
        await asyncio.sleep(0.3)
        assert len(woken) == 2  # a node is not woken by its own work
    finally:
        stop.set()
        await asyncio.gather(*listeners)


@pytest.mark.both_databases
async def test_queue_depth_and_next_due(stores: StoreFactory) -> None:
    a = await stores("a")
    await a.ingest([item(f"Q{i}", f"Q{i}", 1, dest="dst" if i % 2 else "other") for i in range(6)])
    assert await a.queue_depth() == 6
    claimed = await a.claim("dst", 3, 30)
    later = time.time() + 120
    await a.record([attempt(d, Outcome.RETRY, later) for d in claimed[:2]])
    await a.record([attempt(claimed[2], Outcome.DELIVERED)])
    assert await a.queue_depth() == 5
    due = await a.next_due()
    assert set(due) == {"dst", "other"}
    assert due["dst"] == pytest.approx(later)
    assert due["other"] <= time.time()


async def test_gateway_db_upgrade_on_postgresql(url: str, tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text(f'[gateway]\ndatabase = "{url}"\nnode_id = "ops"\n', encoding="utf-8")
    cmd = [sys.executable, "-m", "gateway.cli", "db", "upgrade", "--config", str(config)]
    proc = await asyncio.create_subprocess_exec(
        *cmd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, out.decode()
    assert "up to date" in out.decode()
    store = Store(url, node_id="check")
    await store.open()
    try:
        assert await store.pending_migrations() == set()
    finally:
        await store.close()
