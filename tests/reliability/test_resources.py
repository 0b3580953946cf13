"""Resource faults against a ``gateway run`` child (DESIGN.md §5, back-pressure):

* **database locked** — another process holds ``BEGIN EXCLUSIVE`` on the gateway's SQLite
  file for longer than its ``busy_timeout`` (5 s): intake answers 503 with ``Retry-After``,
  stores nothing half-way, and takes the same dossiers once the lock is gone;
* **disk full** — the database lives on a tmpfs of a few MB (``mount -t tmpfs -o size=…``,
  root only; skipped otherwise) that a filler file fills up: intake answers 503, nothing
  acknowledged is lost, and everything goes on once space is freed. (``PRAGMA
  max_page_count`` from a second connection cannot simulate this: it is a per-connection
  limit and does not bind the gateway's own connection.)
* **queue bound** — the destination refuses everything, the queue fills to
  ``limits.queue_bound``: intake answers 503 ``queue_full`` at once, the pending queue stops
  growing and so does the process's memory while clients keep hammering; once the
  destination recovers, everything acknowledged is delivered.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from conftest import wait_for

from gateway.signing import sign

from .reliability_kit import (
    LONG,
    SECRET,
    GatewayProcess,
    Pusher,
    Receiver,
    cli,
    db_rows,
    free_port,
    gateway_config,
    uid_of_key,
    write_config,
)


async def post(
    session: aiohttp.ClientSession, url: str, items: list[dict[str, Any]]
) -> tuple[int, dict[str, Any], dict[str, str], float]:
    body = json.dumps({"data": items}, ensure_ascii=False).encode()
    headers = {"Content-Type": "application/json", **sign(SECRET, body)}
    t0 = time.monotonic()
    async with session.post(f"{url}/inbound/src", data=body, headers=headers) as r:
        text = await r.text()
        return r.status, json.loads(text), dict(r.headers), time.monotonic() - t0


def stored_ids(db: Path) -> set[str]:
    return {row[0] for row in db_rows(db, "SELECT external_id FROM messages")}


async def start_gateway(
    directory: Path, receiver: Receiver, name: str, **config: Any
) -> tuple[GatewayProcess, Path]:
    port = free_port()
    cfg = write_config(directory, gateway_config(directory, port, {"dst": receiver.url}, **config))
    gw = GatewayProcess(cfg, port, name)
    await gw.start()
    return gw, cfg


async def drain_and_check(
    gw: GatewayProcess, receiver: Receiver, acked: set[str], timeout: float = 60
) -> None:
    def all_arrived() -> bool:
        return acked <= {uid_of_key(k) for k in receiver.keys_delivered()}

    await wait_for(all_arrived, timeout=timeout, what="every acknowledged dossier delivered")


# -- database locked ---------------------------------------------------------------------------
@pytest.mark.slow
async def test_database_locked_answers_503_and_stores_nothing(tmp_path: Path, tally: Any) -> None:
    receiver = Receiver()
    await receiver.start()
    gw, cfg = await start_gateway(tmp_path, receiver, "locked")
    db = tmp_path / "gw.db"
    acked: set[str] = set()
    try:
        async with aiohttp.ClientSession() as s:
            status, answer, _, _ = await post(s, gw.url, [{"id": "before", "key": "B"}])
            assert status == 202
            acked.add(answer["accepted"][0]["id"])
            locker = sqlite3.connect(db, isolation_level=None, timeout=10)
            locker.execute("BEGIN EXCLUSIVE")
            locked_at = time.monotonic()
            try:
                results = await asyncio.gather(
                    *(post(s, gw.url, [{"id": f"L{i}", "key": f"L{i}"}]) for i in range(3))
                )
            finally:
                locker.execute("ROLLBACK")
                locker.close()
            held = time.monotonic() - locked_at
            after_lock = stored_ids(db)
            again = [await post(s, gw.url, [{"id": f"L{i}", "key": f"L{i}"}]) for i in range(3)]
        for status, answer, _, _ in again:
            if status == 202:
                acked.update(e["id"] for e in answer["accepted"] + answer["duplicates"])
        await drain_and_check(gw, receiver, acked)
        await gw.stop()
    finally:
        gw.kill()
        await receiver.stop()
    statuses = [r[0] for r in results]
    retry_after = [r[2].get("Retry-After") for r in results]
    codes = [r[1].get("error") for r in results]
    half_stored = sorted({f"L{i}" for i in range(3)} & after_lock)
    accepted_again = [len(a[1].get("accepted", [])) for a in again]
    verify = cli(cfg, "log", "verify")
    ok = (
        statuses == [503] * 3
        and all(retry_after)
        and not half_stored
        and accepted_again == [1, 1, 1]
        and verify.returncode == 0
    )
    tally.add(
        "Back-pressure: a locked store answers 503 with Retry-After, stores nothing half-way",
        "another process holds BEGIN EXCLUSIVE on the SQLite file past busy_timeout (5 s) "
        "while 3 dossiers are pushed",
        len(results),
        "requests",
        f"answers {statuses} ({codes[0]}, Retry-After {retry_after[0]}) after "
        f"{max(r[3] for r in results):.1f} s (lock held {held:.1f} s); {len(half_stored)} "
        f"stored half-way; re-sent after the lock: {accepted_again} accepted; "
        f"log verify {'ok' if verify.returncode == 0 else 'FAILED'}",
        ok=ok,
    )
    assert statuses == [503] * 3, [r[:2] for r in results]
    assert all(retry_after), retry_after
    assert set(codes) == {"store_unavailable"}, codes
    assert not half_stored, f"refused with 503 but stored: {half_stored}"
    assert accepted_again == [1, 1, 1], again
    assert verify.returncode == 0, verify.stdout


# -- disk full ---------------------------------------------------------------------------------
@contextlib.contextmanager
def tiny_disk(path: Path, size: str) -> Iterator[Path]:
    path.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (root needed): {done.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


def fill(directory: Path) -> Path:
    """Fill the file system until it refuses another byte."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        for size in (65536, 4096, 1):
            with contextlib.suppress(OSError):
                while os.write(fd, b"\0" * size):
                    pass
    finally:
        os.close(fd)
    return filler


@pytest.mark.slow
async def test_disk_full_answers_503_and_loses_nothing(tmp_path: Path, tally: Any) -> None:
    receiver = Receiver()
    await receiver.start()
    with tiny_disk(tmp_path / "disk", "4m") as disk:
        gw, cfg = await start_gateway(disk, receiver, "diskfull")
        db = disk / "gw.db"
        acked: set[str] = set()
        refused: list[tuple[int, str | None, str | None]] = []
        try:
            async with aiohttp.ClientSession() as s:
                status, answer, _, _ = await post(s, gw.url, [{"id": "before", "key": "B"}])
                assert status == 202
                acked.add(answer["accepted"][0]["id"])
                await drain_and_check(gw, receiver, acked)
                filler = fill(disk)
                big = "đ" * 50_000  # ~100 KB: each dossier needs new pages in the WAL
                for i in range(8):
                    status, answer, headers, _ = await post(
                        s, gw.url, [{"id": f"F{i}", "key": f"F{i}", "note": big}]
                    )
                    if status == 202:
                        acked.update(e["id"] for e in answer["accepted"])
                    else:
                        refused.append((status, answer.get("error"), headers.get("Retry-After")))
                alive_when_full = gw.alive()
                filler.unlink()
                retried: list[int] = []
                for i in range(8):
                    status, answer, _, _ = await post(
                        s, gw.url, [{"id": f"F{i}", "key": f"F{i}", "note": big}]
                    )
                    retried.append(status)
                    if status == 202:
                        acked.update(e["id"] for e in answer["accepted"] + answer["duplicates"])
            await drain_and_check(gw, receiver, acked)
            await gw.stop()
        finally:
            gw.kill()
            await receiver.stop()
        verify = cli(cfg, "log", "verify")
        states = dict(db_rows(db, "SELECT status, count(*) FROM deliveries GROUP BY status"))
    statuses = sorted({r[0] for r in refused})
    ok = (
        bool(refused)
        and statuses == [503]
        and all(r[2] for r in refused)
        and alive_when_full
        and retried == [202] * 8
        and verify.returncode == 0
        and set(states) == {"delivered"}
    )
    tally.add(
        "Back-pressure: a full disk answers 503 with Retry-After; nothing acknowledged lost",
        "the SQLite file on a 4 MB tmpfs filled by another file; 8 dossiers of ~100 KB pushed",
        8,
        "requests",
        f"{len(refused)} refused ({', '.join(sorted({f'{a} {b}' for a, b, _ in refused}))}), "
        f"{8 - len(refused)} accepted while full; after freeing space re-sent: "
        f"{retried.count(202)}/8 accepted; deliveries {states}; log verify "
        f"{'ok' if verify.returncode == 0 else 'FAILED'}",
        ok=ok,
    )
    assert refused, "a full disk never refused anything: the test did not fill it"
    assert statuses == [503], refused
    assert all(r[2] for r in refused), "503 without Retry-After"
    assert alive_when_full, gw.tail()
    assert retried == [202] * 8, retried
    assert verify.returncode == 0, verify.stdout
    assert set(states) == {"delivered"}, states


# -- queue bound -------------------------------------------------------------------------------
def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


@pytest.mark.slow
async def test_queue_bound_is_back_pressure_not_memory_growth(tmp_path: Path, tally: Any) -> None:
    bound = 300
    receiver = Receiver(fail_rate=1.0)  # the destination refuses everything for now
    await receiver.start()
    gw, _ = await start_gateway(tmp_path, receiver, "queue", limits={"queue_bound": bound})
    db = tmp_path / "gw.db"
    hammer_seconds = 60 if LONG else 6
    try:
        pusher = Pusher(gw.url, workers=8, revisions=1, max_messages=bound + 200, filler=2000)
        pusher.start()
        await wait_for(lambda: pusher.stats.refused_503 > 0, timeout=60, what="intake to push back")
        await asyncio.sleep(1.0)
        assert gw.proc is not None
        rss_before = rss_kb(gw.proc.pid)
        pending_before = db_rows(db, "SELECT count(*) FROM deliveries")[0][0]
        answers: dict[int, int] = {}
        slowest = 0.0
        body = json.dumps({"data": [{"id": "X", "key": "X", "note": "y" * 2000}]}).encode()
        deadline = time.monotonic() + hammer_seconds
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=16)) as s:

            async def hammer() -> None:
                nonlocal slowest
                while time.monotonic() < deadline:
                    headers = {"Content-Type": "application/json", **sign(SECRET, body)}
                    t0 = time.monotonic()
                    async with s.post(f"{gw.url}/inbound/src", data=body, headers=headers) as r:
                        await r.read()
                        answers[r.status] = answers.get(r.status, 0) + 1
                        if r.status == 503:
                            assert r.headers.get("Retry-After"), "503 without Retry-After"
                    slowest = max(slowest, time.monotonic() - t0)

            await asyncio.gather(*(hammer() for _ in range(16)))
        rss_after = rss_kb(gw.proc.pid)
        stored = db_rows(db, "SELECT count(*) FROM deliveries")[0][0]
        receiver.fail_rate = 0.0
        await pusher.stop()
        acked = set(pusher.acked.values())
        await drain_and_check(gw, receiver, acked, timeout=120)
        await gw.stop()
    finally:
        gw.kill()
        await receiver.stop()
    growth_mb = (rss_after - rss_before) / 1024
    overshoot = stored - bound
    total = sum(answers.values())
    ok = (
        set(answers) <= {503}
        and growth_mb < 20
        and overshoot <= 8 * 3
        and stored == pending_before
        and slowest < 2.0
    )
    tally.add(
        "Back-pressure: the queue bound answers 503, the queue and memory stop growing",
        f"queue_bound {bound}, destination refusing everything, then 16 clients hammering "
        f"intake for {hammer_seconds} s",
        total,
        "requests",
        f"answers {answers}; deliveries stored {stored} (bound {bound}); RSS "
        f"{rss_before / 1024:.0f} → {rss_after / 1024:.0f} MB; slowest answer {slowest:.2f} s; "
        f"all {len(acked)} acknowledged delivered once the destination recovered",
        ok=ok,
    )
    assert set(answers) <= {503}, answers
    assert stored == pending_before, "the queue grew while intake answered 503"
    assert overshoot <= 8 * 3, f"{stored} deliveries stored with a bound of {bound}"
    assert growth_mb < 20, f"RSS grew {growth_mb:.1f} MB while refusing"
    assert slowest < 2.0, f"a refusal took {slowest:.2f}s"
