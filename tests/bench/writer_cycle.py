"""The store's write path alone: CPU per dossier in the writer (SQLite), for A/B work on it.

    .venv/bin/python tests/bench/writer_cycle.py [--batch 32] [--cycles 300] [--sync OFF|FULL]

Steady state of the throughput run without HTTP: every cycle ingests ``--batch`` new dossiers
(one route each), records the previous cycle's claims as delivered (log rows, outcomes) and
claims ``--batch`` again. Prints wall and CPU time per dossier (the process's, which does
nothing else; message construction included); the CPU figure moves little with the machine's
load, so two versions can be compared on a shared machine.
``--sync OFF`` leaves the fsync out (the Python and SQL cost only).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from gateway.model import Message, Outcome
from gateway.store import AttemptRecord, IntakeItem, Store


def dossier(i: int) -> Message:
    key = f"000.00.12.H06-{i:012d}"
    payload = {
        "MaHoSo": key,
        "TrangThaiHoSo": 2,
        "ChuHoSo": {"HoVaTen": "Nguyễn Văn An", "SoDinhDanh": "001099012345"},
        "TaiLieuNop": [{"TenTepDinhKem": f"don-{i}.pdf", "DuongDanTaiTepTin": "https://x/y"}],
        "GhiChu": "x" * 1500,
    }
    return Message(
        event="dossier.received", external_id=key, payload=payload, dossier_key=key, source="src"
    )


async def run(batch: int, cycles: int, sync: str) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite:///{Path(tmp) / 'bench.db'}", node_id="bench")
        await store.open()
        await store.upgrade()
        if sync != "FULL":
            assert store._sync_writer is not None
            from sqlalchemy import event

            @event.listens_for(store._sync_writer, "connect")
            def _sync(dbapi_conn: object, _r: object) -> None:
                dbapi_conn.execute(f"PRAGMA synchronous={sync}")  # type: ignore[attr-defined]

            store._sync_writer.dispose()
        claimed: list = []
        n = 0
        await store.cycle([], [], {}, 60.0)  # warm up: connect
        cpu0, t0 = time.process_time(), time.perf_counter()
        for _ in range(cycles):
            items = [
                IntakeItem(dossier(n + k).normalised(), [("src:dossier.received", "dst")], {})
                for k in range(batch)
            ]
            n += batch
            now = time.time()
            records = [
                AttemptRecord(d, Outcome.DELIVERED, now, 3.0, http_status=200, bytes_sent=2000)
                for d in claimed
            ]
            result = await store.cycle(items, records, {"dst": batch}, 60.0, now)
            claimed = result.claimed.get("dst", [])
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        await store.close()
    dossiers = batch * cycles
    return {
        "dossiers": dossiers,
        "wall_us": wall / dossiers * 1e6,
        "cpu_us": cpu / dossiers * 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--cycles", type=int, default=300)
    parser.add_argument("--sync", default="FULL", choices=["OFF", "NORMAL", "FULL"])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"{'run':>4} {'dossiers':>9} {'wall µs/dossier':>16} {'CPU µs/dossier':>15}")
    for i in range(args.repeat):
        r = asyncio.run(run(args.batch, args.cycles, args.sync))
        print(f"{i + 1:>4} {r['dossiers']:>9} {r['wall_us']:>16.1f} {r['cpu_us']:>15.1f}")


if __name__ == "__main__":
    main()
