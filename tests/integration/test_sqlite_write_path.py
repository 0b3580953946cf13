"""The SQLite write path: the engine's cycle runs its statements on the event loop and leaves
BEGIN (when another process holds the write lock) and COMMIT to the writer thread."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError

from gateway.model import Message, Outcome
from gateway.store import AttemptRecord, IntakeItem, Store, StoreUnavailable


def item(n: int) -> IntakeItem:
    key = f"000.00.12.H06-200803-{n:04d}"
    msg = Message(event="e", external_id=key, payload={"MaHoSo": key}, source="src")
    return IntakeItem(msg.normalised(), [("src:e", "dst")], {})


@pytest.fixture
async def store(tmp_path: Path) -> Store:
    s = Store(f"sqlite:///{tmp_path / 'gw.db'}", node_id="n1")
    await s.open()
    await s.upgrade()
    yield s  # type: ignore[misc]
    await s.close()


def hold_write_lock(path: Path, seconds: float, started: threading.Event) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    started.set()
    time.sleep(seconds)
    conn.execute("ROLLBACK")
    conn.close()


async def test_a_cycle_waits_in_the_thread_for_another_process_lock(
    store: Store, tmp_path: Path
) -> None:
    """The loop tries BEGIN at once; the lock is busy, so the writer thread waits for it (up
    to the busy timeout) while the loop stays free."""
    started = threading.Event()
    holder = threading.Thread(
        target=hold_write_lock, args=(tmp_path / "gw.db", 0.4, started), daemon=True
    )
    holder.start()
    assert started.wait(5)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    beat = asyncio.create_task(ticker())
    t0 = time.monotonic()
    result = await store.cycle([item(1)], [], {"dst": 5}, 60.0)
    waited = time.monotonic() - t0
    beat.cancel()
    holder.join()
    assert [r.duplicate for r in result.ingested] == [False]
    assert [d.dossier_key for d in result.claimed["dst"]] == ["000.00.12.H06-200803-0001"]
    assert waited >= 0.3
    assert ticks >= 15  # the event loop kept running while the thread waited for the lock


async def test_new_deliveries_are_leased_in_the_cycle_that_stores_them(store: Store) -> None:
    result = await store.cycle([item(1), item(2)], [], {"dst": 5}, 60.0)
    claimed = result.claimed["dst"]
    assert len(claimed) == 2
    now = time.time()
    done = [AttemptRecord(d, Outcome.DELIVERED, now, 1.0, http_status=200) for d in claimed]
    after = await store.cycle([], done, {"dst": 5}, 60.0)
    assert after.claimed["dst"] == []
    assert await store.queue_depth() == 0


async def test_a_failed_commit_keeps_nothing_and_the_next_write_works(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A COMMIT that fails (disk full) rolls back everything of the cycle, and the store
    opens a fresh connection for the next one."""
    real_end = store._end

    def failing_end(commit: bool) -> None:
        if commit:
            real_end(False)
            raise OperationalError("COMMIT", {}, sqlite3.OperationalError("disk is full"))
        real_end(commit)

    monkeypatch.setattr(store, "_end", failing_end)
    with pytest.raises(StoreUnavailable):
        await store.cycle([item(1)], [], {}, 60.0)
    monkeypatch.setattr(store, "_end", real_end)
    assert await store.queue_depth() == 0
    result = await store.cycle([item(1)], [], {}, 60.0)
    assert [r.duplicate for r in result.ingested] == [False]
    assert await store.queue_depth() == 1
