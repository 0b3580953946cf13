"""Peers: the gateway against what a province would otherwise pick, in one run.

Same client, same sink, same machine (``_common.py``, as ``throughput.py``):

* bare aiohttp forwarder — the floor (what Python on aiohttp can do at all);
* the gateway            — ``gateway run``, SQLite WAL synchronous=FULL;
* Celery 5 + Redis       — an aiohttp front that enqueues (``forward.delay``) and answers 202,
  a Celery worker that POSTs to the sink (``acks_late``, ``autoretry_for`` connection
  errors/timeouts/5xx), Debian's ``redis-server`` with its default persistence
  (``celery_forwarder.py``);
* Node-RED 4             — the flow ``node_red/flow.json`` (http in → http request → http
  response 202), headless: no editor, admin API, projects or telemetry
  (``node_red/settings.js``).

Measured for each: delivered dossiers/s end to end (until the sink holds all N), the client's
p50/p99, peak RSS (the sum over the system's processes: Celery's front + worker + pool + Redis),
CPU, and a crash test: push, SIGKILL every process of the system once the client holds K
acknowledgements, start it again on what it kept, count the acknowledged dossiers that reach
the sink. The sink-outage test (not with ``--quick`` unless ``--outage``): the sink answers
500 while 200 dossiers are pushed, then heals; how many of the acknowledged ones reach it.

Needs (bench only): ``pip install -e '.[bench]'`` (celery, redis), ``apt-get install -y
redis-server``, Node.js + npm (``node-red`` is installed into ``tests/bench/.node-red/`` on
first use). A peer whose tools are missing is skipped with the reason.

``--real`` compares equal work on the real job (issue 17; ``real_flow.py`` has the details):
signed DongBoHoSoMC pushes from the one-stop-shop's generator; the gateway on its real route
(``one_stop_shop`` → ``district_registry``: parse, validate, render ``HoSoTroCap``, XSD);
Node-RED with a function node building the same ``HoSoTroCap`` (``node_red/flow_real.json``,
no XSD: Node.js has none without a native add-on); Celery with a task building it with lxml
and checking the XSD (``celery_forwarder.py``, ``BENCH_TASK=real``); the sink answers the
registry's ``201 <BienNhan>``; and both peers' pass-through flows on the same bodies. The
crash and outage tests are the generic run's (``--real`` skips them).

Every system is warmed up before it is measured (``--warm``, 2,000 dossiers; ``--quick``
300): V8's JIT and CPython's caches alike — a short cold run understates Node-RED by ~40 %.

Celery's worker pool: ``--pool threads --concurrency 8`` by default. The task is I/O (one
HTTP POST), so threads keep 8 POSTs in flight on 2 cores in one process; prefork with
``-c 2`` (one process per core, Celery's default) delivered the same within the noise
(254-361/s against 232-303/s) at ~215 MB instead of ~125 MB
(``--celery-pool prefork --celery-concurrency 2`` to compare).

    python tests/bench/peers.py [--quick] [--real] [-n N] [-c C] [--repeat R] [--warm W]
        [--[no-]outage] [--only gateway,celery,...] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    BENCH,
    COMMON,
    BodyFor,
    Floor,
    Gateway,
    Subject,
    crash_test,
    dump_json,
    free_port,
    machine_line,
    measure,
    push_all,
    reset_sink,
    sink_fail,
    sink_stats,
    spawn,
    stop,
    wait_http,
    wait_quiet,
)
from real_flow import Corpus, RealGateway

NODE_RED_VERSION = "4.1.15"
NODE_RED_DIR = BENCH / ".node-red"
NODE_RED_JS = NODE_RED_DIR / "node_modules" / "node-red" / "red.js"


class CeleryRedis(Subject):
    label = "Celery 5 + Redis"

    def __init__(
        self, directory: Path, sink_port: int, pool: str, concurrency: int, real: bool = False
    ) -> None:
        super().__init__()
        self.directory = directory
        self.redis_port = free_port()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/inbound/src"
        self.pool, self.concurrency = pool, concurrency
        self.env = {
            "BENCH_BROKER": f"redis://127.0.0.1:{self.redis_port}/0",
            "BENCH_SINK": f"127.0.0.1:{sink_port}",
            "BENCH_TASK": "real" if real else "forward",
        }
        what = "HoSoTroCap + XSD" if real else "pass-through"
        self.label = f"Celery 5 + Redis ({pool} x{concurrency}), {what}"

    async def start(self) -> None:
        redis = spawn(
            "redis-server",
            "--port", str(self.redis_port),
            "--bind", "127.0.0.1",
            "--dir", str(self.directory),
            "--save", "3600 1 300 100 60 10000",  # Debian's /etc/redis/redis.conf
            "--appendonly", "no",
            "--daemonize", "no",
            "--loglevel", "warning",
            name="redis",
        )  # fmt: skip
        self.procs = [redis]
        await _wait_tcp(self.redis_port)
        front = spawn(
            sys.executable,
            str(BENCH / "celery_forwarder.py"),
            "front",
            str(self.port),
            name="celery-front",
            env=self.env,
            cwd=BENCH,
        )
        worker = spawn(
            sys.executable, "-m", "celery",
            "-A", "celery_forwarder",
            "worker",
            "--pool", self.pool,
            "--concurrency", str(self.concurrency),
            "--loglevel", "WARNING",
            "--without-gossip", "--without-mingle", "--without-heartbeat",
            "-O", "fair",
            name="celery-worker",
            env=self.env,
            cwd=BENCH,
        )  # fmt: skip
        self.procs += [front, worker]
        await wait_http(self.url.replace("/inbound/src", "/"))


class NodeRed(Subject):
    label = f"Node-RED {NODE_RED_VERSION}"

    def __init__(self, directory: Path, sink_port: int, real: bool = False) -> None:
        super().__init__()
        self.directory = directory
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/inbound/src"
        self.real = real
        self.sink_url = f"http://127.0.0.1:{sink_port}/{'ho-so' if real else 'receive'}"
        what = "function node HoSoTroCap" if real else "pass-through"
        self.label = f"Node-RED {NODE_RED_VERSION}, {what}"

    async def start(self) -> None:
        flow = self.directory / "flow.json"
        shutil.copy(BENCH / "node_red" / ("flow_real.json" if self.real else "flow.json"), flow)
        proc = spawn(
            "node",
            str(NODE_RED_JS),
            "--settings", str(BENCH / "node_red" / "settings.js"),
            "--userDir", str(self.directory),
            str(flow),
            name="node-red",
            env={"PORT": str(self.port), "SINK_URL": self.sink_url},
        )  # fmt: skip
        self.procs = [proc]
        await wait_http(f"http://127.0.0.1:{self.port}/", timeout=60)


async def _wait_tcp(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        await asyncio.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port} after {timeout:g}s")


def missing(name: str) -> str | None:
    """Why a peer cannot run here (None: it can)."""
    if name == "celery":
        try:
            import celery  # noqa: F401
            import redis  # noqa: F401
        except ImportError:
            return "celery/redis not installed: pip install -e '.[bench]'"
        if not shutil.which("redis-server"):
            return "no redis-server: apt-get install -y redis-server"
    if name == "node-red":
        if not (shutil.which("node") and shutil.which("npm")):
            return "no node/npm"
        if not NODE_RED_JS.exists():
            NODE_RED_DIR.mkdir(exist_ok=True)
            done = subprocess.run(
                [
                    "npm", "install", "--prefix", str(NODE_RED_DIR),
                    "--no-audit", "--no-fund", "--omit=dev", f"node-red@{NODE_RED_VERSION}",
                ],
                capture_output=True,
                timeout=600,
                check=False,
            )  # fmt: skip
            if done.returncode or not NODE_RED_JS.exists():
                return f"npm install node-red failed: {done.stderr.decode()[-300:]}"
    return None


async def outage_test(subject: Subject, sink: str, n: int = 200, c: int = 8) -> dict[str, Any]:
    """The sink answers 500 while ``n`` dossiers are pushed, then heals: how many of the
    acknowledged ones reach it (waiting until all did or 40 s passed without news)."""
    await reset_sink(sink)
    await sink_fail(sink, True)
    try:
        pushed = await push_all(subject.url, n, c, subject.sign, "outage", tolerate_errors=True)
        await asyncio.sleep(2)
    finally:
        await sink_fail(sink, False)
    acked = set(pushed.acked)
    kept = await wait_quiet(sink, acked, timeout=120, quiet=40)
    stats = await sink_stats(sink)
    return {
        "acked": len(acked),
        "kept": kept,
        "lost": len(acked) - kept,
        "duplicates": stats["received"] - stats["distinct"],
    }


def make(name: str, tmp: Path, sink_port: int, args: argparse.Namespace) -> Subject:
    directory = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=tmp))
    if name == "floor":
        return Floor(sink_port, path="/ho-so" if args.real else "/receive")
    if name == "floor-uvloop":
        return Floor(sink_port, path="/ho-so" if args.real else "/receive", uvloop=True)
    if name == "gateway":
        if args.real:
            return RealGateway(directory, sink_port, args.gw_concurrency)
        return Gateway(directory, sink_port)
    if name in ("celery", "celery-real"):
        return CeleryRedis(
            directory,
            sink_port,
            args.celery_pool,
            args.celery_concurrency,
            real=name == "celery-real",
        )
    return NodeRed(directory, sink_port, real=name == "node-red-real")


async def run(args: argparse.Namespace, names: list[str], n: int) -> dict[str, Any]:
    sink_port = free_port()
    sink_proc = spawn(sys.executable, str(COMMON), "sink", str(sink_port), name="sink")
    sink = f"http://127.0.0.1:{sink_port}"
    results: dict[str, Any] = {name: {"runs": []} for name in names}
    n_crash = args.crash_n or (3000 if args.quick else 6000)
    body_for: BodyFor | None = None
    if args.real:
        corpus = Corpus()
        for rep in range(args.repeat):
            corpus.prepare(f"warmr{rep}", args.warm)
            corpus.prepare(f"r{rep}", n)
        body_for = corpus.body_for
    try:
        await wait_http(f"{sink}/stats")
        with tempfile.TemporaryDirectory(prefix="peers-") as tmp_name:
            tmp = Path(tmp_name)
            for rep in range(args.repeat):
                for name in names:
                    subject = make(name, tmp, sink_port, args)
                    try:
                        await subject.start()
                        r = await measure(
                            subject,
                            n,
                            args.c,
                            sink,
                            tag=f"r{rep}",
                            warm=args.warm,
                            body_for=body_for,
                        )
                        r["load"] = os.getloadavg()[0]
                        results[name]["label"] = r["label"]
                        results[name]["runs"].append(r)
                    finally:
                        subject.stop()
                    print(f"  [{name} #{rep + 1}] {r['rate']:.0f}/s", file=sys.stderr)
            for name in names:
                if name.startswith("floor") or args.real:
                    continue
                subject = make(name, tmp, sink_port, args)
                try:
                    await subject.start()
                    results[name]["crash"] = await crash_test(
                        subject, n_crash, args.c, sink, n_crash // 2
                    )
                finally:
                    subject.stop()
                print(f"  [{name} crash] {results[name]['crash']}", file=sys.stderr)
                if args.outage:
                    subject = make(name, tmp, sink_port, args)
                    try:
                        await subject.start()
                        results[name]["outage"] = await outage_test(subject, sink)
                    finally:
                        subject.stop()
                    print(f"  [{name} outage] {results[name]['outage']}", file=sys.stderr)
    finally:
        stop(sink_proc)
    return results


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


def print_table(results: dict[str, Any], n: int, args: argparse.Namespace, machine: str) -> None:
    print(f"machine: {machine}")
    print(
        f"{n} dossiers (~2 KB), {args.c} concurrent clients, {args.repeat} run(s) each "
        "(figures: mean, each run in brackets)"
    )
    floors = [
        mean([r["rate"] for r in results[k]["runs"]])
        for k in ("floor", "floor-uvloop")
        if k in results and results[k]["runs"]
    ]
    floor = max(floors) if floors else None
    gw = mean([r["rate"] for r in results["gateway"]["runs"]]) if "gateway" in results else None
    head = (
        f"{'system':34}{'dossiers/s':>22}{'÷ floor':>9}{'gw ÷ it':>9}{'p50 ms':>8}{'p99 ms':>8}"
        f"{'RSS MB':>8}{'CPU %':>7}  kept across SIGKILL"
    )
    print(head)
    for res in results.values():
        runs = res["runs"]
        if not runs:
            continue
        rate = mean([r["rate"] for r in runs])
        each = "/".join(f"{r['rate']:.0f}" for r in runs)
        crash = res.get("crash")
        kept = (
            f"{crash['kept']}/{crash['acked']} acked reached the sink"
            if crash
            else "— (answers after forwarding)"
        )
        print(
            f"{res['label']:34}{rate:8.0f} [{each:>11}]"
            f"{rate / floor if floor else float('nan'):9.2f}"
            f"{gw / rate if gw else float('nan'):9.2f}"
            f"{mean([r['p50'] for r in runs]) * 1000:8.1f}"
            f"{mean([r['p99'] for r in runs]) * 1000:8.1f}"
            f"{max(r['rss'] for r in runs):8.0f}"
            f"{mean([r['cpu'] for r in runs]) * 100:7.0f}  {kept}"
        )
    print("RSS: peak of the summed RSS of the system's processes, sampled every 0.2 s;")
    print("CPU: the system's processes (100 % = one core); the sink and client are not counted.")
    for res in results.values():
        crash = res.get("crash")
        if crash:
            print(
                f"crash, {res['label']}: killed at {crash['acked']} acknowledgements "
                f"({crash['at_sink_before_restart']} already at the sink), restarted in "
                f"{crash['restart_s']:.1f} s, {crash['kept']} reached the sink, "
                f"{crash['lost']} lost, {crash['duplicates']} resent"
            )
        outage = res.get("outage")
        if outage:
            print(
                f"sink outage, {res['label']}: {outage['acked']} answered 202 while the sink "
                f"failed, {outage['kept']} reached it after it healed, {outage['lost']} lost, "
                f"{outage['duplicates']} sent twice"
            )
    loads = [r["load"] for res in results.values() for r in res["runs"] if "load" in r]
    if loads:
        print(f"load average (1 min) after each system's run: {min(loads):.1f}-{max(loads):.1f}")
    targets = (
        {"celery-real": 3.0, "node-red-real": 1.1, "celery": 3.0, "node-red": 1.0}
        if args.real
        else {"celery": 4.0, "node-red": 1.2}
    )
    for name, target in targets.items():
        if gw and name in results and results[name]["runs"]:
            peer = mean([r["rate"] for r in results[name]["runs"]])
            label = results[name]["label"]
            print(f"gateway ÷ {label} {gw / peer:.2f} (target >= {target:g})")
    if gw:
        rss = max(r["rss"] for r in results["gateway"]["runs"])
        p99 = max(r["p99"] for r in results["gateway"]["runs"])
        print(f"gateway peak RSS {rss:.0f} MB (target <= 100)")
        print(f"gateway p99 accept {p99 * 1000:.1f} ms" + (" (target <= 50)" if args.real else ""))
    if gw and floor:
        print(f"ratio {gw / floor:.2f}")


async def main(args: argparse.Namespace) -> None:
    n = args.n or (2000 if args.quick else 20000)
    machine = machine_line()
    default = ["floor", "gateway", "celery", "node-red"]
    if args.real:
        default = ["floor", "floor-uvloop", "gateway", "node-red-real", "node-red"]
        default += ["celery-real", "celery"]
    wanted = args.only.split(",") if args.only else default
    names = []
    for name in wanted:
        peer = name.removesuffix("-real")
        why = missing(peer) if peer in ("celery", "node-red") else None
        if why:
            print(f"skipping {name}: {why}", file=sys.stderr)
        else:
            names.append(name)
    results = await run(args, names, n)
    print_table(results, n, args, machine)
    dump_json(args.json, {"n": n, "c": args.c, "machine": machine, "results": results})


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="2,000 dossiers instead of 20,000")
    parser.add_argument("-n", type=int, default=None)
    parser.add_argument("-c", type=int, default=None, help="clients (32; --real: 64)")
    parser.add_argument("--repeat", type=int, default=1, help="throughput runs per system")
    parser.add_argument("--crash-n", type=int, default=None, help="dossiers in the crash test")
    parser.add_argument(
        "--outage",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="the sink-failure test (default: on, off with --quick)",
    )
    parser.add_argument(
        "--real",
        action="store_true",
        help="the real job: DongBoHoSoMC in, HoSoTroCap out (peers convert too)",
    )
    parser.add_argument("--warm", type=int, default=None, help="warm-up dossiers per system")
    parser.add_argument(
        "--gw-concurrency", type=int, default=32, help="the gateway's registry lane (--real)"
    )
    parser.add_argument(
        "--only",
        help="comma list of floor,floor-uvloop,gateway,celery,celery-real,node-red,node-red-real",
    )
    parser.add_argument("--celery-pool", default="threads")
    parser.add_argument("--celery-concurrency", type=int, default=8)
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    a = parser.parse_args()
    a.outage = (not a.quick and not a.real) if a.outage is None else a.outage
    a.c = a.c or (64 if a.real else 32)
    a.warm = a.warm if a.warm is not None else (300 if a.quick else 2000)
    asyncio.run(main(a))
