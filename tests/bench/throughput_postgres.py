"""Throughput on PostgreSQL, 1 and 2 nodes, printed beside SQLite's: the same client, sink,
floor and ~2 KB dossiers as throughput.py, in one run on one machine.

* floor            — a bare aiohttp forwarder (receive, forward to the sink, answer)
* SQLite           — one `gateway run`, WAL, synchronous=FULL
* PostgreSQL x1    — one `gateway run` on a throwaway cluster with PostgreSQL's durable
                     defaults (fsync=on, synchronous_commit=on), started from the server
                     binaries on the machine (Debian's postgresql) as the tests do
* PostgreSQL x2    — two `gateway run` nodes (own node ids, NOTIFY on) on one database; the
                     client spreads its connections over both, as a load balancer would

A gateway run ends when the sink has received all N distinct Idempotency-Keys. PostgreSQL,
the nodes and the client share the machine's cores, so on a small machine a second node buys
little: the figures say what one machine does, not what a cluster of machines does.

    python tests/bench/throughput_postgres.py [--quick] [-n N] [-c C]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp import web

from gateway.testing.postgres import ThrowawayPostgres

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import cpu_seconds, free_port, pct, rss_mb, run_floor

HERE = Path(__file__).resolve()
SECRET = "bench-secret-7c2e9a41b8d3f6051e4d"


def run_sink(port: int) -> None:
    keys: set[str] = set()
    count = 0

    async def receive(request: web.Request) -> web.Response:
        nonlocal count
        await request.read()
        count += 1
        keys.add(request.headers.get("Idempotency-Key", str(count)))
        return web.json_response({"ok": True})

    async def stats(request: web.Request) -> web.Response:
        return web.json_response({"received": count, "distinct": len(keys)})

    async def reset(request: web.Request) -> web.Response:
        nonlocal count
        count = 0
        keys.clear()
        return web.json_response({"ok": True})

    app = web.Application(client_max_size=10 * 1024 * 1024)
    app.router.add_post("/receive", receive)
    app.router.add_get("/stats", stats)
    app.router.add_post("/reset", reset)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


LOG_DIR = Path(tempfile.gettempdir()) / "gateway-bench-pg-logs"


def spawn(
    *args: str, name: str = "child", env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start a child; its output goes to a file (a pipe nobody reads would stall it)."""
    LOG_DIR.mkdir(exist_ok=True)
    out = (LOG_DIR / f"{name}.log").open("wb")
    return subprocess.Popen(
        args, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
    )


async def wait_http(url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as s:
        while time.monotonic() < deadline:
            try:
                async with s.get(url) as r:
                    if r.status < 500:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def dossier(i: int, run_id: str) -> bytes:
    item = {
        "id": f"{run_id}-{i:07d}",
        "key": f"000.00.12.H06-200803-{i:04d}",
        "MaTTHC": "1.001776",
        "ChuHoSo": "Hoàng Thị Lan",
        "TrichYeuHoSo": "Đề nghị trợ cấp xã hội hàng tháng " * 3,
        "ThongTinNguoiNop": {
            "SoDinhDanh": "006135001234",
            "DiaChiChiTiet": "Thôn Bản Cuôn, xã Ngọc Phái",
        },
        "TaiLieuNop": [
            {
                "TepDinhKemId": f"f{j}",
                "TenTepDinhKem": f"Mẫu {j}.pdf",
                "DuongDanTaiTepTin": f"https://motcua.example/files/{i}/{j}",
            }
            for j in range(12)
        ],
    }
    return json.dumps({"data": [item]}, ensure_ascii=False).encode()


async def push_all(url: str, n: int, concurrency: int, sign: bool, run_id: str) -> list[float]:
    from gateway.signing import sign as hmac_sign

    latencies: list[float] = []
    counter = iter(range(n))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as s:

        async def worker() -> None:
            for i in counter:
                body = dossier(i, run_id)
                headers = {"Content-Type": "application/json"}
                if sign:
                    headers.update(hmac_sign(SECRET, body))
                while True:
                    t0 = time.perf_counter()
                    async with s.post(url, data=body, headers=headers) as r:
                        await r.read()
                        if r.status == 503:
                            await asyncio.sleep(float(r.headers.get("Retry-After", "1")))
                            continue
                        if r.status != 202:
                            raise RuntimeError(f"HTTP {r.status}")
                    latencies.append(time.perf_counter() - t0)
                    break

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies


async def sink_stats(sink: str) -> dict[str, int]:
    async with aiohttp.ClientSession() as s, s.get(f"{sink}/stats") as r:
        data: dict[str, int] = await r.json()
        return data


async def reset_sink(sink: str) -> None:
    async with aiohttp.ClientSession() as s, s.post(f"{sink}/reset") as r:
        await r.read()


async def measure_floor(n: int, c: int, sink: str, sink_port: int) -> dict[str, float]:
    port = free_port()
    proc = spawn(sys.executable, str(HERE), "floor", str(port), str(sink_port), name="floor")
    try:
        await wait_http(f"http://127.0.0.1:{port}/inbound/x")
        await push_all(f"http://127.0.0.1:{port}/inbound/x", min(200, n), c, False, "warm")
        await reset_sink(sink)
        cpu0 = cpu_seconds(proc.pid)
        t0 = time.perf_counter()
        lat = await push_all(f"http://127.0.0.1:{port}/inbound/x", n, c, False, "floor")
        elapsed = time.perf_counter() - t0
        got = (await sink_stats(sink))["received"]
        return {
            "rate": got / elapsed,
            "p50": pct(lat, 50),
            "p99": pct(lat, 99),
            "rss": rss_mb(proc.pid),
            "delivered": got,
            "cpu": (cpu_seconds(proc.pid) - cpu0) / elapsed,
        }
    finally:
        proc.terminate()
        proc.wait(10)


def node_config(directory: Path, i: int, port: int, sink_port: int, database: str) -> Path:
    path = directory / f"node-{i}.toml"
    path.write_text(
        f"""
[gateway]
listen = "127.0.0.1:{port}"
database = "{database}"
node_id = "bench-{i}"
log_format = "json"
poll_interval = 0.5
notify = true

[systems.src]
plugin = "http_json"
inbound_secret = "{SECRET}"
key_field = "key"

[systems.sink]
plugin = "http_json"
base_url = "http://127.0.0.1:{sink_port}"
path = "/receive"
concurrency = 32

[[routes]]
from = "src"
event = "message.received"
to = ["sink"]
""",
        encoding="utf-8",
    )
    return path


async def push_spread(urls: list[str], n: int, c: int, run_id: str) -> list[float]:
    """push_all over several nodes: each node gets its share of the connections and items."""
    shares = [n // len(urls) + (1 if i < n % len(urls) else 0) for i in range(len(urls))]
    conns = max(1, c // len(urls))
    parts = await asyncio.gather(
        *(
            push_all(url, share, conns, True, f"{run_id}-{i}")
            for i, (url, share) in enumerate(zip(urls, shares, strict=True))
        )
    )
    return [x for part in parts for x in part]


async def measure_gateway(
    n: int, c: int, sink: str, sink_port: int, databases: list[str], name: str
) -> dict[str, float]:
    """`gateway run` once per database URL given (the same URL twice: two nodes)."""
    ports = [free_port() for _ in databases]
    with tempfile.TemporaryDirectory(prefix="gw-bench-pg-") as tmp:
        procs = []
        for i, (port, database) in enumerate(zip(ports, databases, strict=True), start=1):
            cfg = node_config(Path(tmp), i, port, sink_port, database)
            cmd = (sys.executable, "-m", "gateway.cli", "run", "--config", str(cfg))
            procs.append(spawn(*cmd, name=f"{name}-{i}"))
        try:
            for port in ports:
                await wait_http(f"http://127.0.0.1:{port}/healthz", timeout=60)
            urls = [f"http://127.0.0.1:{p}/inbound/src" for p in ports]
            await reset_sink(sink)
            warm = min(200, n)
            await push_spread(urls, warm, c, f"warm-{name}")
            await wait_delivered(sink, warm, 60)
            await reset_sink(sink)
            cpu0 = sum(cpu_seconds(p.pid) for p in procs)
            t0 = time.perf_counter()
            lat = await push_spread(urls, n, c, name)
            accepted_at = time.perf_counter() - t0
            await wait_delivered(sink, n, 900)
            elapsed = time.perf_counter() - t0
            await asyncio.sleep(0.5)  # anything sent twice would arrive now
            stats = await sink_stats(sink)
            return {
                "rate": n / elapsed,
                "accept_rate": n / accepted_at,
                "duplicates": stats["received"] - stats["distinct"],
                "p50": pct(lat, 50),
                "p99": pct(lat, 99),
                "rss": sum(rss_mb(p.pid) for p in procs),
                "delivered": stats["distinct"],
                "cpu": (sum(cpu_seconds(p.pid) for p in procs) - cpu0) / elapsed,
            }
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                p.wait(30)


async def wait_delivered(sink: str, n: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (await sink_stats(sink))["distinct"] >= n:
            return
        await asyncio.sleep(0.05)
    raise RuntimeError(f"sink did not receive {n} dossiers within {timeout}s")


async def main(n: int, c: int) -> None:
    sink_port = free_port()
    sink_proc = spawn(sys.executable, str(HERE), "sink", str(sink_port), name="sink")
    sink = f"http://127.0.0.1:{sink_port}"
    results: list[tuple[str, dict[str, float]]] = []
    try:
        await wait_http(f"{sink}/stats")
        results.append(
            ("bare aiohttp forwarder (floor)", await measure_floor(n, c, sink, sink_port))
        )
        with tempfile.TemporaryDirectory(prefix="gw-bench-sqlite-") as tmp:
            sqlite = f"sqlite:///{tmp}/gw.db"
            results.append(
                (
                    "gateway, SQLite",
                    await measure_gateway(n, c, sink, sink_port, [sqlite], "sqlite"),
                )
            )
        with ThrowawayPostgres(durable=True) as pg:
            for nodes in (1, 2):
                url = pg.create_database(f"bench{nodes}")
                label = f"gateway, PostgreSQL, {nodes} node{'s' if nodes > 1 else ''}"
                got = await measure_gateway(n, c, sink, sink_port, [url] * nodes, f"pg{nodes}")
                results.append((label, got))
    finally:
        sink_proc.terminate()
        sink_proc.wait(10)
    print(
        f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}, {n} dossiers (~2 KB), "
        f"{c} concurrent clients; PostgreSQL on the same machine, fsync on"
    )
    cols = ("dossiers/s", "202s/s", "p50 ms", "p99 ms", "RSS MB", "CPU %", "twice")
    print(f"{'':34}{cols[0]:>12}" + "".join(f"{h:>9}" for h in cols[1:]))
    for label, r in results:
        print(
            f"{label:34}{r['rate']:12.0f}{r.get('accept_rate', r['rate']):9.0f}"
            f"{r['p50'] * 1000:9.1f}{r['p99'] * 1000:9.1f}{r['rss']:9.0f}{r['cpu'] * 100:9.0f}"
            f"{r.get('duplicates', 0):9.0f}"
        )
    print(f"client peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    sqlite_rate = results[1][1]["rate"]
    for label, r in results[2:]:
        print(f"{label}: {r['rate'] / sqlite_rate:.2f} x SQLite")
    print(f"ratio {sqlite_rate / results[0][1]['rate']:.2f}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "sink":
        run_sink(int(sys.argv[2]))
    elif len(sys.argv) > 1 and sys.argv[1] == "floor":
        run_floor(int(sys.argv[2]), int(sys.argv[3]))
    else:
        parser = argparse.ArgumentParser(
            description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
        )
        parser.add_argument("--quick", action="store_true", help="2,000 dossiers instead of 20,000")
        parser.add_argument("-n", type=int, default=None)
        parser.add_argument("-c", type=int, default=32)
        args = parser.parse_args()
        asyncio.run(main(args.n or (2000 if args.quick else 20000), args.c))
