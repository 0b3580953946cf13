"""Slow links: 100 commune destinations on bad links must not slow the fast one.

After 2025 each commune runs its own registry, reached over links like 256 kbit/s with
seconds of latency. Here: 100 slow destinations, each behind its own
:class:`gateway.testing.faultproxy.FaultProxy` (latency 2 s per direction — so one exchange
takes at least 4 s — and 32,000 B/s per direction and connection) in front of one sink, plus
one fast destination (a sink on loopback). Every dossier goes to the fast destination and to
one of the slow ones (event ``d.NNN`` → routes ``["fast", "slowNNN"]``).

The client offers a fixed load (``--rate`` dossiers/s for ``--seconds``, open loop). Measured
twice, with the same load: once with a gateway that has only the fast destination, once with
the 100 slow ones as well:

* the fast destination's end-to-end latency per dossier, from the client's send (the time is
  also embedded in the payload, ``sent_at``) and from its 202, to the first arrival at the
  sink (``time.time()`` on both sides, one machine): p50, p99, max;
* the gateway's RSS, sampled every 0.5 s (max), and its CPU.

Targets: fast p99 with the slow ones ≤ 1.5 × without; gateway RSS ≤ 200 MB throughout.

    python tests/bench/slow_links.py [--quick] [--rate R] [--seconds S] [--slow N]
        [--repeat K] [--profile DIR] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    COMMON,
    RssSampler,
    dump_json,
    free_port,
    gateway_config,
    hotspots,
    machine_line,
    pct,
    push_all,
    push_paced,
    py_spy_record,
    reset_sink,
    sink_arrivals,
    sink_stats,
    spawn,
    spawn_gateway,
    stop,
    tree_cpu,
    wait_delivered,
    wait_http,
)

HERE = Path(__file__).resolve()
LATENCY = 2.0
BANDWIDTH = 32_000


# -- the slow farm (child process): one sink, N fault proxies in front of it -------------------
def run_farm(port: int, count: int, ports_file: str) -> None:
    from _common import sink_app
    from aiohttp import web

    from gateway.testing.faultproxy import FaultProxy

    async def main() -> None:
        app = sink_app()
        proxies: list[FaultProxy] = []

        async def proxy_stats(request: web.Request) -> web.Response:
            total: dict[str, int] = {}
            for p in proxies:
                for k, v in p.counters.as_dict().items():
                    total[k] = total.get(k, 0) + v
            return web.json_response(total)

        app.router.add_get("/proxies", proxy_stats)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        for _ in range(count):
            proxy = FaultProxy("127.0.0.1", port, latency=LATENCY, bandwidth=BANDWIDTH)
            await proxy.start()
            proxies.append(proxy)
        _publish(ports_file, [p.port for p in proxies])
        await asyncio.Event().wait()  # until killed

    asyncio.run(main())


def _publish(path: str, ports: list[int]) -> None:
    tmp = Path(path + ".tmp")
    tmp.write_text(json.dumps(ports))
    tmp.rename(path)


def _read_ports(path: Path, timeout: float = 30.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"the slow farm did not publish its ports within {timeout:g}s")
        time.sleep(0.1)
    ports: list[int] = json.loads(path.read_text())
    return ports


def slow_config(
    directory: Path, port: int, fast_port: int, slow_ports: list[int], buckets: int
) -> Path:
    """The gateway's config: ``src`` in, ``sink`` (the fast one) and ``slowNNN`` out."""
    systems = "".join(
        f"""
[systems.slow{k:03d}]
plugin = "http_json"
base_url = "http://127.0.0.1:{p}"
path = "/receive"
"""
        for k, p in enumerate(slow_ports)
    )
    routes = "".join(
        f"""
[[routes]]
from = "src"
event = "d.{k:03d}"
to = ["sink"{f', "slow{k:03d}"' if slow_ports else ""}]
"""
        for k in range(buckets)
    )
    return gateway_config(directory, port, fast_port, extra=systems, routes=routes)


async def phase(
    label: str,
    slow_ports: list[int],
    fast: str,
    fast_port: int,
    farm: str | None,
    args: argparse.Namespace,
    buckets: int,
    profile: Path | None,
) -> dict[str, Any]:
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="gw-slow-") as tmp:
        cfg = slow_config(Path(tmp), port, fast_port, slow_ports, buckets)
        proc = spawn_gateway(cfg, name="gateway-slow")
        try:
            await wait_http(f"http://127.0.0.1:{port}/healthz")
            url = f"http://127.0.0.1:{port}/inbound/src"
            await reset_sink(fast)
            # warm up the fast lane (the event of the slow bucket 0 routes to the fast one too)
            await push_all(url, 20, 4, True, f"warm{label}", event_for=lambda i: "d.000")
            await wait_delivered(fast, 20, 30)
            await reset_sink(fast)
            if farm:
                await reset_sink(farm)
            cpu0 = tree_cpu([proc.pid])
            spy = None
            with RssSampler([proc.pid], interval=0.5) as rss:
                t0 = time.perf_counter()
                if profile is not None:
                    spy = py_spy_record(proc.pid, min(10, args.seconds), profile, "py-spy-slow")
                pushed = await push_paced(
                    url,
                    args.rate,
                    args.seconds,
                    label,
                    event_for=lambda i: f"d.{i % buckets:03d}",
                )
                await wait_delivered(fast, len(pushed.acked), 60, raise_=False)
                elapsed = time.perf_counter() - t0
                await asyncio.sleep(1.0)  # a sample or two more with the slow lanes busy
            cpu = tree_cpu([proc.pid]) - cpu0
            arrivals = await sink_arrivals(fast, prefix=label)
            slow_stats = await sink_stats(farm) if farm else None
            if spy is not None:
                spy.wait(60)
        finally:
            stop(proc, timeout=30)
    from_send = [arrivals[k] - t for k, t in pushed.sent.items() if k in arrivals]
    from_ack = [arrivals[k] - t for k, t in pushed.acked.items() if k in arrivals]
    return {
        "label": label,
        "offered": int(args.rate * args.seconds),
        "acked": len(pushed.acked),
        "fast_delivered": len(from_send),
        "slow_delivered": slow_stats["distinct"] if slow_stats else 0,
        "p50_send": pct(from_send, 50),
        "p99_send": pct(from_send, 99),
        "max_send": max(from_send, default=float("nan")),
        "p50_ack": pct(from_ack, 50),
        "p99_ack": pct(from_ack, 99),
        "ack_p99": pct(pushed.latencies, 99),
        "rss_max": rss.peak,
        "cpu": cpu / elapsed,
    }


async def main(args: argparse.Namespace) -> None:
    machine = machine_line()
    fast_port, farm_port = free_port(), free_port()
    fast_proc = spawn(sys.executable, str(COMMON), "sink", str(fast_port), name="sink-fast")
    fast = f"http://127.0.0.1:{fast_port}"
    farm = f"http://127.0.0.1:{farm_port}"
    results: list[dict[str, Any]] = []
    profile = None
    if args.profile:
        profile = Path(args.profile) / "slow-links-gateway.raw"
    with tempfile.TemporaryDirectory(prefix="slow-farm-") as tmp:
        ports_file = Path(tmp) / "ports.json"
        farm_proc = spawn(
            sys.executable,
            str(HERE),
            "farm",
            str(farm_port),
            str(args.slow),
            str(ports_file),
            name="slow-farm",
        )
        try:
            await wait_http(f"{fast}/stats")
            slow_ports = await asyncio.to_thread(_read_ports, ports_file)
            for rep in range(args.repeat):
                base = await phase(f"base{rep}", [], fast, fast_port, None, args, args.slow, None)
                slow = await phase(
                    f"slow{rep}",
                    slow_ports,
                    fast,
                    fast_port,
                    farm,
                    args,
                    args.slow,
                    profile if rep == 0 else None,
                )
                results.append({"without": base, "with": slow})
        finally:
            stop(farm_proc)
            stop(fast_proc)
    print(f"machine: {machine}")
    print(
        f"offered {args.rate:g} dossiers/s for {args.seconds:g} s, each to the fast destination "
        f"and to one of {args.slow} slow ones (FaultProxy: {LATENCY:g} s latency per direction, "
        f"{BANDWIDTH} B/s); {args.repeat} run(s)"
    )
    print(
        f"{'fast destination, end to end':40}{'p50 ms':>8}{'p99 ms':>8}{'max ms':>8}"
        f"{'p99 from 202':>13}{'gw RSS max':>11}{'gw CPU %':>9}{'delivered':>16}"
    )
    for i, r in enumerate(results, 1):
        for key, name in (("without", "without the slow ones"), ("with", "with 100 slow ones")):
            x = r[key]
            name = name.replace("100", str(args.slow))
            delivered = f"{x['fast_delivered']}/{x['acked']}"
            if key == "with":
                delivered += f" +{x['slow_delivered']} slow"
            print(
                f"{name + f' #{i}':40}{x['p50_send'] * 1000:8.0f}{x['p99_send'] * 1000:8.0f}"
                f"{x['max_send'] * 1000:8.0f}{x['p99_ack'] * 1000:13.0f}{x['rss_max']:11.0f}"
                f"{x['cpu'] * 100:9.0f}{delivered:>22}"
            )
    ratios = [r["with"]["p99_send"] / r["without"]["p99_send"] for r in results]
    rss = max(r["with"]["rss_max"] for r in results)
    if profile is not None:
        print(f"gateway hotspots with the slow lanes (py-spy, run 1, {profile}):")
        print(hotspots(profile))
    print(f"gateway RSS max {rss:.0f} MB (target <= 200)")
    print(
        f"fast p99 with ÷ without: {' '.join(f'{x:.2f}' for x in ratios)} (target <= 1.5); "
        f"mean {sum(ratios) / len(ratios):.2f}"
    )
    dump_json(args.json, {"machine": machine, "runs": results, "ratios": ratios, "rss": rss})


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "farm":
        sys.path.insert(0, str(HERE.parents[2]))
        run_farm(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
    else:
        parser = argparse.ArgumentParser(
            description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
        )
        parser.add_argument("--quick", action="store_true", help="12 s per phase, not 40 s")
        parser.add_argument("--rate", type=float, default=100.0, help="dossiers per second")
        parser.add_argument("--seconds", type=float, default=None)
        parser.add_argument("--slow", type=int, default=100, help="slow destinations")
        parser.add_argument("--repeat", type=int, default=1)
        parser.add_argument("--profile", metavar="DIR", help="py-spy the gateway, slow phase")
        parser.add_argument("--json", metavar="PATH")
        a = parser.parse_args()
        a.seconds = a.seconds or (12.0 if a.quick else 40.0)
        if a.profile:
            Path(a.profile).mkdir(parents=True, exist_ok=True)
        asyncio.run(main(a))
