"""Restart: with 100,000 pending deliveries, how soon does the first one go out?

Builds a gateway database with N pending deliveries (through the store's own write path,
``Store.upgrade()`` then ``Store.ingest`` in batches: the real schema, real rows), then, on a
fresh copy of it each time, starts ``gateway run`` with a sink and measures:

* from process start to "listening" (``/healthz`` answers; polled every 10 ms);
* from process start to the first delivery at the sink (the sink's own arrival time);
* deliveries in the first 5 s after the first one.

Two layouts of the same N: one delivery per dossier, and 4 per dossier (statuses 2 → 4 → 9 →
10 of one dossier in order, the ``NOT EXISTS`` ordering check has work to do). The same start
on an empty database is the reference for import and set-up time. Then each start-up query is
timed on its own against the N-row database (``--explain`` adds SQLite's query plans).

Target: first delivery ≤ 2 s after start.

    python tests/bench/restart.py [--quick] [-n N] [--repeat K] [--profile DIR] [--json PATH]

``--quick`` builds 100,000 rows with ~200-byte payloads instead of the ~2 KB dossiers.
``--profile DIR`` starts one gateway under ``py-spy record`` (stopped at the first delivery) and
prints where start-up went.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from _common import (
    COMMON,
    dossier,
    dump_json,
    free_port,
    gateway_config,
    hotspots,
    machine_line,
    reset_sink,
    sink_stats,
    spawn,
    stop,
)

from gateway.model import Message
from gateway.store.store import IntakeItem, Store

ROUTE = ("src:message.received", "sink")


async def build(db: Path, n: int, per_dossier: int, small: bool) -> float:
    """Create the database with ``n`` pending deliveries to ``sink``; return seconds taken."""
    t0 = time.perf_counter()
    store = Store(f"sqlite:///{db}", node_id="bench")
    await store.open()
    try:
        await store.upgrade()
        batch: list[IntakeItem] = []
        for i in range(n):
            if small:
                payload: Any = {"id": f"pending-{i:07d}", "ChuHoSo": "Hoàng Thị Lan", "n": i}
            else:
                payload = json.loads(dossier(i, "pending"))["data"][0]
            msg = Message(
                event="message.received",
                external_id=f"pending-{i:07d}",
                payload=payload,
                dossier_key=f"000.00.12.H06-200803-{i // per_dossier:07d}",
                source="src",
            )
            batch.append(IntakeItem(msg, [ROUTE], {"sink": 259_200.0}))
            if len(batch) == 5000:
                await store.ingest(batch)
                batch = []
        if batch:
            await store.ingest(batch)
    finally:
        await store.close()
    return time.perf_counter() - t0


async def one_start(
    db: Path | None, workdir: Path, sink: str, sink_port: int, profile: Path | None = None
) -> dict[str, float]:
    """Start ``gateway run`` on a copy of ``db`` (None: empty) and time it."""
    import aiohttp

    run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=workdir))
    if db is not None:
        shutil.copy(db, run_dir / "gw.db")
    port = free_port()
    cfg = gateway_config(run_dir, port, sink_port)
    await reset_sink(sink)
    args = [sys.executable, "-m", "gateway.cli", "run", "--config", str(cfg)]
    if profile is not None:
        spy = Path(sys.executable).parent / "py-spy"
        args = [str(spy), "record", "-r", "250", "-f", "raw", "-o", str(profile), "--", *args]
    t_start = time.time()
    proc = spawn(*args, name="gateway-restart")
    listening = first = float("nan")
    after5 = 0
    try:
        deadline = time.monotonic() + 60
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1)) as s:
            while time.monotonic() < deadline and listening != listening:
                try:
                    async with s.get(f"http://127.0.0.1:{port}/healthz") as r:
                        if r.status < 500:
                            listening = time.time() - t_start
                except (aiohttp.ClientError, TimeoutError):
                    pass
                if listening != listening:
                    await asyncio.sleep(0.01)
        if db is not None:
            while time.monotonic() < deadline:
                stats = await sink_stats(sink)
                if stats["first_at"]:
                    first = stats["first_at"] - t_start
                    break
                await asyncio.sleep(0.02)
            if first == first and profile is None:  # a profile stops at the first delivery
                await asyncio.sleep(max(0.0, t_start + first + 5 - time.time()))
                after5 = (await sink_stats(sink))["distinct"]
    finally:
        if profile is not None:
            os.killpg(proc.pid, signal.SIGINT)  # py-spy writes its file; the gateway stops
            proc.wait(60)
        stop(proc, timeout=30)
        shutil.rmtree(run_dir, ignore_errors=True)
    return {"listening": listening, "first": first, "first5s": after5}


async def time_queries(db: Path, explain: bool) -> list[tuple[str, float, str]]:
    """Each start-up step on its own, on a copy of the built database, in this process."""
    copy = db.with_name("probe.db")
    shutil.copy(db, copy)
    out: list[tuple[str, float, str]] = []
    store = Store(f"sqlite:///{copy}", node_id="bench")
    await store.open()
    try:
        steps: list[tuple[str, Any]] = [
            ("Store.upgrade() (alembic, up to date)", store.upgrade),
            ("release_leases()", store.release_leases),
            ("load_breakers()", store.load_breakers),
            ("queue_depth() COUNT", store.queue_depth),
            ("next_due() GROUP BY", store.next_due),
            ("first claim (32, NOT EXISTS check)", lambda: store.claim("sink", 32, 120.0)),
            ("second claim (32)", lambda: store.claim("sink", 32, 120.0)),
            ("queue_depth() again (warm cache)", store.queue_depth),
        ]
        for name, fn in steps:
            t0 = time.perf_counter()
            await fn()
            out.append((name, time.perf_counter() - t0, ""))
    finally:
        await store.close()
    if explain:
        con = sqlite3.connect(copy)
        plans = {
            "queue_depth": "SELECT count(*) FROM deliveries "
            "WHERE status IN ('pending','in_flight')",
            "next_due": "SELECT destination, min(next_attempt_at) FROM deliveries "
            "WHERE status='pending' GROUP BY destination",
            "claim": "SELECT d.id FROM deliveries d WHERE d.destination='sink' AND "
            "d.status='pending' AND d.next_attempt_at <= 1e12 AND NOT EXISTS (SELECT 1 FROM "
            "deliveries e WHERE e.dossier_key=d.dossier_key AND e.destination=d.destination "
            "AND e.id < d.id AND e.status IN ('pending','in_flight')) ORDER BY d.id LIMIT 32",
        }
        for name, sql in plans.items():
            plan = "; ".join(r[3] for r in con.execute("EXPLAIN QUERY PLAN " + sql))
            out.append((f"plan {name}", float("nan"), plan))
        con.close()
    copy.unlink(missing_ok=True)
    return out


async def main(args: argparse.Namespace) -> None:
    machine = machine_line()
    n = args.n
    sink_port = free_port()
    sink_proc = spawn(sys.executable, str(COMMON), "sink", str(sink_port), name="sink")
    sink = f"http://127.0.0.1:{sink_port}"
    rows: list[dict[str, Any]] = []
    queries: dict[str, list[tuple[str, float, str]]] = {}
    profile_txt = ""
    try:
        from _common import wait_http

        await wait_http(f"{sink}/stats")
        with tempfile.TemporaryDirectory(prefix="gw-restart-") as tmp_name:
            tmp = Path(tmp_name)
            for _ in range(args.repeat):
                r = await one_start(None, tmp, sink, sink_port)
                rows.append({"layout": "empty database (reference)", "build": 0.0, **r})
            for per in (1, 4):
                db = tmp / f"pending-{per}.db"
                built = await build(db, n, per, args.quick)
                size = db.stat().st_size / 1e6
                layout = f"{n:,} pending, {per} per dossier ({size:.0f} MB db)"
                for _ in range(args.repeat):
                    r = await one_start(db, tmp, sink, sink_port)
                    rows.append({"layout": layout, "build": built, **r})
                queries[layout] = await time_queries(db, args.explain)
                if args.profile and per == 4:
                    raw = Path(args.profile) / "restart-gateway.raw"
                    await one_start(db, tmp, sink, sink_port, profile=raw)
                    profile_txt = hotspots(raw, top=25)
                db.unlink()
    finally:
        stop(sink_proc)
    print(f"machine: {machine}")
    print(f"{'start of gateway run on':52}{'listening s':>12}{'1st delivery s':>15}{'in 5 s':>8}")
    for r in rows:
        print(f"{r['layout']:52}{r['listening']:12.2f}{r['first']:15.2f}{r['first5s']:8}")
    for layout, steps in queries.items():
        print(f"start-up steps alone, {layout}:")
        for name, secs, plan in steps:
            print(f"  {name:44}{secs * 1000:9.1f} ms" if not plan else f"  {name}: {plan}")
    if profile_txt:
        print("start-up under py-spy (4 per dossier), from process start to first delivery:")
        print(profile_txt)
    firsts = [r["first"] for r in rows if r["first"] == r["first"]]
    worst = max(firsts, default=float("nan"))
    print(f"first delivery after start: worst {worst:.2f} s (target <= 2)")
    dump_json(args.json, {"machine": machine, "n": n, "rows": rows, "queries": queries})


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small payloads (faster build)")
    parser.add_argument("-n", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--explain", action="store_true", help="print SQLite query plans")
    parser.add_argument("--profile", metavar="DIR", help="one start under py-spy record")
    parser.add_argument("--json", metavar="PATH")
    a = parser.parse_args()
    if a.profile:
        Path(a.profile).mkdir(parents=True, exist_ok=True)
    asyncio.run(main(a))
