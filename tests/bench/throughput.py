"""Throughput: the gateway end to end with durability on, against a bare aiohttp forwarder.

Same client, same sink, same machine, one run. Each side runs in its own process
(the pieces are in ``_common.py``, shared with ``peers.py``):

* sink       — counts what arrives (distinct dossier ids)
* floor      — a bare aiohttp forwarder: receive, forward to the sink, answer
* gateway    — `gateway run` on SQLite (WAL, synchronous=FULL: every 202 is fsynced)

The client pushes N signed ~2 KB dossiers with C concurrent connections. A run ends when the
sink has received all N (for the floor that is when the last answer arrives: it forwards
before answering). Printed last: ``ratio 0.NN`` = gateway dossiers/s ÷ floor dossiers/s.

    python tests/bench/throughput.py [--quick] [-n N] [-c C] [--repeat R]
        [--profile DIR] [--json PATH]

``--profile DIR`` samples the gateway with py-spy for 5 s of the run and prints its hotspots.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    COMMON,
    Floor,
    Gateway,
    dump_json,
    free_port,
    hotspots,
    machine_line,
    measure,
    spawn,
    stop,
    wait_http,
)

HEAD = (
    f"{'':34}{'dossiers/s':>12}{'p50 ms':>9}{'p99 ms':>9}{'RSS MB':>9}{'CPU %':>7}{'delivered':>11}"
)


def row(r: dict[str, Any]) -> str:
    return (
        f"{r['label']:34}{r['rate']:12.0f}{r['p50'] * 1000:9.1f}{r['p99'] * 1000:9.1f}"
        f"{r['rss']:9.0f}{r['cpu'] * 100:7.0f}{r['delivered']:11.0f}"
    )


async def run(n: int, c: int, profile: Path | None = None) -> dict[str, Any]:
    """One floor run and one gateway run against the same sink."""
    sink_port = free_port()
    sink_proc = spawn(sys.executable, str(COMMON), "sink", str(sink_port), name="sink")
    sink = f"http://127.0.0.1:{sink_port}"
    floor = Floor(sink_port)
    try:
        await wait_http(f"{sink}/stats")
        await floor.start()
        floor_r = await measure(floor, n, c, sink)
        floor.stop()
        with tempfile.TemporaryDirectory(prefix="gw-bench-") as tmp:
            gw = Gateway(Path(tmp), sink_port)
            try:
                await gw.start()
                gw_r = await measure(gw, n, c, sink, profile=profile)
            finally:
                gw.stop()
    finally:
        floor.stop()
        stop(sink_proc)
    return {"floor": floor_r, "gateway": gw_r, "ratio": gw_r["rate"] / floor_r["rate"]}


async def main(args: argparse.Namespace) -> None:
    n = args.n or (2000 if args.quick else 20000)
    machine = machine_line()
    profile = None
    if args.profile:
        profile = Path(args.profile) / "throughput-gateway.raw"
    runs = [await run(n, args.c, profile if i == 0 else None) for i in range(args.repeat)]
    print(f"machine: {machine}")
    print(f"{n} dossiers (~2 KB), {args.c} concurrent clients, {args.repeat} run(s)")
    print(HEAD)
    for i, r in enumerate(runs, 1):
        for side in ("floor", "gateway"):
            label = r[side]["label"] + (f" #{i}" if args.repeat > 1 else "")
            print(row({**r[side], "label": label}))
    for i, r in enumerate(runs, 1):
        gw = r["gateway"]
        print(
            f"run {i}: gateway accept rate (202s/s) {gw['accept_rate']:.0f}; sent twice to the "
            f"sink {gw['duplicates']:.0f}; ratio {r['ratio']:.2f}"
        )
    print(f"client peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    if profile is not None:
        print(f"gateway hotspots (py-spy, 5 s of run 1, {profile}):")
        print(hotspots(profile))
    dump_json(args.json, {"n": n, "c": args.c, "runs": runs})
    ratios = [r["ratio"] for r in runs]
    if len(ratios) > 1:
        print(f"ratios {' '.join(f'{x:.2f}' for x in ratios)}; the mean follows")
    print(f"ratio {sum(ratios) / len(ratios):.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="2,000 dossiers instead of 20,000")
    parser.add_argument("-n", type=int, default=None)
    parser.add_argument("-c", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=1, help="runs (the machine is noisy)")
    parser.add_argument("--profile", metavar="DIR", help="py-spy the gateway during run 1")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    a = parser.parse_args()
    if a.profile:
        Path(a.profile).mkdir(parents=True, exist_ok=True)
    asyncio.run(main(a))
