"""The real job, end to end: one-stop-shop JSON in, XSD-valid registry XML out.

The README's generic figure (``throughput.py``) moves bytes from ``http_json`` to ``http_json``.
This measures what the offices run (issue 17), side by side in one run, same client, same sink:

* **client** — signed DongBoHoSoMC pushes (FORMATS.md §1.1), one dossier each, made by the
  one-stop-shop's own generator (``plugins/one_stop_shop/generator.py``: realistic Chợ Đồn
  dossiers, half of them sent in NFD as real one-stop-shops do), C concurrent connections;
  bodies are made before the clock starts;
* **sink** — the registry's ``POST /ho-so`` (FORMATS.md §2.1): remembers each ``maHoSo`` once
  and answers ``201 <BienNhan maHoSo="…" soBienNhan="…"/>``;
* **floor** — a bare aiohttp forwarder (receive, POST the bytes to ``/ho-so``, answer 202),
  on asyncio and on uvloop; the faster one is *the* floor;
* **gateway, real route** — ``gateway run`` with the shipped connectors: ``motcua``
  (``one_stop_shop``: parse, NFC, validate) → ``registry`` (``district_registry``: render
  ``HoSoTroCap``, check it against the XSD, classify the ``BienNhan``, record the attempt
  and the ``dossier.accepted`` follow-up); SQLite WAL ``synchronous=FULL``, a 202 only after
  the commit;
* **gateway, generic route** (unless ``--no-generic``) — ``http_json`` → ``http_json``
  with ``throughput.py``'s dossiers and its own floor, for the generic ratio in the same run.

Printed: dossiers/s end to end (first request until the sink holds all N), the client's p50 /
p99 accept latency, CPU (100 % = one core) and peak RSS of each system, the load average,
and last ``ratio 0.NN`` = gateway (real route) ÷ the floor.

    python tests/bench/real_flow.py [--quick] [-n N] [-c C] [--repeat R] [--warm W]
        [--no-generic] [--profile DIR] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from _common import (
    COMMON,
    SECRET,
    BodyFor,
    Floor,
    Gateway,
    Subject,
    dump_json,
    free_port,
    gateway_config,
    hotspots,
    machine_line,
    measure,
    spawn,
    stop,
    wait_http,
)

MADONVI = "000.00.12.H06"


#: the issue's "~2 KB" push: the generator's dossiers (1.3 KB on average) carry one or two
#: attachments; a real application carries more of the supporting papers (DOMAIN.md §2)
TARGET_BYTES = 1900
ATTACHMENTS = (
    "Bản sao căn cước công dân.pdf",
    "Giấy khai sinh.pdf",
    "Sổ hộ khẩu.pdf",
    "Biên bản họp Hội đồng xét duyệt.pdf",
    "Giấy xác nhận hộ nghèo.pdf",
)


def _attachment(ma_ho_so: str, index: int, name: str) -> dict[str, str]:
    """A supporting paper, in the generator's shape (``DossierGenerator._document``)."""
    file_id = f"{ma_ho_so}-f{index + 1}"
    return {
        "TepDinhKemId": file_id,
        "TenTepDinhKem": name,
        "IsDeleted": "False",
        "MaThanhPhanHoSo": f"TP{index + 1}",
        "DuongDanTaiTepTin": f"https://motcua.backan.gov.vn/tep/{file_id}",
    }


class Corpus:
    """Signed-ready DongBoHoSoMC bodies, made before the clock starts, one list per run id
    (each run id has its own office code, so a gateway never sees a MaHoSo twice)."""

    def __init__(self) -> None:
        self.bodies: dict[str, list[tuple[str, bytes]]] = {}

    def prepare(self, run_id: str, n: int) -> None:
        from plugins.one_stop_shop.generator import DossierGenerator

        have = self.bodies.get(run_id, [])
        if len(have) >= n:
            return
        gen = DossierGenerator(seed=len(self.bodies), madonvi=f"{MADONVI}.{run_id}")
        gen.other_procedure_rate = 0.0  # every dossier is 1.001776, the routed procedure
        out = []
        for _ in range(n):
            item = gen.new_dossier()
            extra = iter(ATTACHMENTS)
            while len(json.dumps(item, ensure_ascii=False).encode()) < TARGET_BYTES:
                docs = item["TaiLieuNop"]
                docs.append(_attachment(item["MaHoSo"], len(docs), next(extra)))
            gen.dossiers[item["MaHoSo"]] = item
            wire = gen.wire_form(item)
            body = json.dumps({"isUpdating": "False", "data": [wire]}, ensure_ascii=False)
            out.append((item["MaHoSo"], body.encode()))
        self.bodies[run_id] = out

    def body_for(self, i: int, run_id: str) -> tuple[str, bytes]:
        return self.bodies[run_id][i]

    def mean_size(self) -> float:
        sizes = [len(b) for bodies in self.bodies.values() for _, b in bodies]
        return sum(sizes) / max(1, len(sizes))


def real_routes() -> str:
    return (
        '[[routes]]\nfrom = "motcua"\nevent = "dossier.received"\nprocedure = "1.001776"\n'
        'to = ["registry"]\n'
    )


def real_config(directory: Path, port: int, sink_port: int, concurrency: int) -> Path:
    """The shipped connectors on the real route, pointed at the sink."""
    path = directory / "gateway.toml"
    path.write_text(
        f"""
[gateway]
listen = "127.0.0.1:{port}"
database = "sqlite:///{directory}/gw.db"
node_id = "bench"
log_format = "json"
poll_interval = 0.5

[systems.motcua]
plugin = "one_stop_shop"
base_url = "http://127.0.0.1:{sink_port}"
inbound_secret = "{SECRET}"
username = "gateway"
password = "bench"
madonvi = "{MADONVI}"

[systems.registry]
plugin = "district_registry"
base_url = "http://127.0.0.1:{sink_port}"
concurrency = {concurrency}

{real_routes()}""",
        encoding="utf-8",
    )
    return path


class RealGateway(Subject):
    label = "gateway, real route (SQLite FULL)"
    sign = True

    def __init__(
        self, directory: Path, sink_port: int, concurrency: int, loop: str | None = None
    ) -> None:
        super().__init__()
        self.port = free_port()
        self.config = real_config(directory, self.port, sink_port, concurrency)
        self.url = f"http://127.0.0.1:{self.port}/inbound/motcua"
        self.loop = loop  # GATEWAY_LOOP for the child (None: the gateway's default)
        if loop:
            self.label = f"gateway, real route, {loop}"

    async def start(self) -> None:
        env = {"GATEWAY_LOOP": self.loop} if self.loop else None
        self.procs = [
            spawn(
                sys.executable,
                "-m",
                "gateway.cli",
                "run",
                "--config",
                str(self.config),
                name="gateway",
                env=env,
            )
        ]
        await wait_http(f"http://127.0.0.1:{self.port}/healthz")


class GenericGateway(Gateway):
    label = "gateway, generic route (SQLite FULL)"

    def __init__(self, directory: Path, sink_port: int, concurrency: int) -> None:
        super().__init__(directory, sink_port)
        self.config = gateway_config(directory, self.port, sink_port, concurrency=concurrency)


HEAD = (
    f"{'':42}{'dossiers/s':>11}{'÷ floor':>9}{'p50 ms':>8}{'p99 ms':>8}{'CPU %':>7}"
    f"{'µs CPU/d':>9}{'RSS MB':>8}{'delivered':>11}"
)


def row(r: dict[str, Any], floor: float) -> str:
    """One system's figures; ``µs CPU/d`` is its processes' CPU time per dossier (moves less
    with the machine's load than dossiers/s)."""
    return (
        f"{r['label']:42}{r['rate']:11.0f}{r['rate'] / floor:9.2f}{r['p50'] * 1000:8.1f}"
        f"{r['p99'] * 1000:8.1f}{r['cpu'] * 100:7.0f}{r['cpu'] / r['rate'] * 1e6:9.0f}"
        f"{r['rss']:8.0f}{r['delivered']:11.0f}"
    )


async def one_run(
    args: argparse.Namespace, corpus: Corpus, rep: int, profile: Path | None
) -> dict[str, Any]:
    n, c, warm = args.n, args.c, args.warm
    sink_port = free_port()
    sink_proc = spawn(sys.executable, str(COMMON), "sink", str(sink_port), name="sink")
    sink = f"http://127.0.0.1:{sink_port}"
    out: dict[str, Any] = {"load": os.getloadavg()}
    real: BodyFor = corpus.body_for

    async def run(subject: Subject, key: str, body_for: BodyFor | None, **kw: Any) -> None:
        try:
            await subject.start()
            out[key] = await measure(
                subject, n, c, sink, tag=f"r{rep}", warm=warm, body_for=body_for, **kw
            )
        finally:
            subject.stop()
        print(f"  [{key} #{rep + 1}] {out[key]['rate']:.0f}/s", file=sys.stderr, flush=True)

    try:
        await wait_http(f"{sink}/stats")
        with tempfile.TemporaryDirectory(prefix="real-flow-") as tmp_name:
            tmp = Path(tmp_name)
            await run(Floor(sink_port, path="/ho-so"), "floor", real)
            if args.uvloop_floor:
                await run(Floor(sink_port, path="/ho-so", uvloop=True), "floor_uvloop", real)
            loops = [None] if args.gateway_loop == "default" else [args.gateway_loop]
            if args.gateway_loop == "both":
                loops = ["asyncio", "uvloop"]
            for loop in loops:
                real_dir = tmp / f"real-{loop}"
                real_dir.mkdir()
                await run(
                    RealGateway(real_dir, sink_port, args.concurrency, loop),
                    "gateway" if loop in (None, loops[-1]) else f"gateway_{loop}",
                    real,
                    profile=profile,
                )
            if args.generic:
                await run(Floor(sink_port), "generic_floor", None)
                if args.uvloop_floor:
                    await run(Floor(sink_port, uvloop=True), "generic_floor_uvloop", None)
                generic_dir = tmp / "generic"
                generic_dir.mkdir()
                await run(
                    GenericGateway(generic_dir, sink_port, args.concurrency),
                    "generic_gateway",
                    None,
                )
    finally:
        stop(sink_proc)
    out["load_after"] = os.getloadavg()
    out["floor_best"] = max(out[k]["rate"] for k in ("floor", "floor_uvloop") if k in out)
    out["ratio"] = out["gateway"]["rate"] / out["floor_best"]
    if args.generic:
        best = max(out[k]["rate"] for k in ("generic_floor", "generic_floor_uvloop") if k in out)
        out["generic_floor_best"] = best
        out["generic_ratio"] = out["generic_gateway"]["rate"] / best
    return out


async def main(args: argparse.Namespace) -> None:
    machine = machine_line()
    corpus = Corpus()
    for rep in range(args.repeat):
        corpus.prepare(f"warmr{rep}", args.warm)
        corpus.prepare(f"r{rep}", args.n)
    profile = Path(args.profile) / "real-flow-gateway.raw" if args.profile else None
    runs = [
        await one_run(args, corpus, rep, profile if rep == 0 else None)
        for rep in range(args.repeat)
    ]
    print(f"machine: {machine}")
    print(
        f"{args.n} signed DongBoHoSoMC pushes (one dossier each, {corpus.mean_size():.0f} B on "
        f"average, half in NFD), {args.c} concurrent, warm-up {args.warm} per system, "
        f"{args.repeat} run(s)"
    )
    print(
        "real route: motcua (one_stop_shop parse + validate) -> registry (district_registry "
        "HoSoTroCap + XSD), sink answers 201 BienNhan; durable: SQLite synchronous=FULL"
    )
    for i, r in enumerate(runs, 1):
        la = r["load"]
        print(
            f"run {i}: load average {la[0]:.1f} {la[1]:.1f} {la[2]:.1f} at start, "
            f"{r['load_after'][0]:.1f} at end"
        )
        print(HEAD)
        for key in ("floor", "floor_uvloop", "gateway_asyncio", "gateway"):
            if key in r:
                print(row(r[key], r["floor_best"]))
        if args.generic:
            for key in ("generic_floor", "generic_floor_uvloop", "generic_gateway"):
                if key in r:
                    print(row(r[key], r["generic_floor_best"]))
        gw = r["gateway"]
        print(
            f"run {i}: real route {gw['rate']:.0f}/s (202s at {gw['accept_rate']:.0f}/s), "
            f"p50 {gw['p50'] * 1000:.1f} ms, p99 {gw['p99'] * 1000:.1f} ms, "
            f"CPU {gw['cpu'] * 100:.0f} %, peak RSS {gw['rss']:.0f} MB, "
            f"sent twice {gw['duplicates']:.0f}; ratio {r['ratio']:.2f}"
            + (f"; generic ratio {r['generic_ratio']:.2f}" if args.generic else "")
        )
    if profile is not None:
        print(f"gateway hotspots (py-spy, 5 s of run 1, {profile}):")
        print(hotspots(profile))
    dump_json(args.json, {"n": args.n, "c": args.c, "machine": machine, "runs": runs})
    ratios = [r["ratio"] for r in runs]
    if args.generic:
        generic = [r["generic_ratio"] for r in runs]
        print(f"generic ratio {sum(generic) / len(generic):.2f}")
    if len(ratios) > 1:
        print(f"ratios {' '.join(f'{x:.2f}' for x in ratios)}; the mean follows")
    print(f"ratio {sum(ratios) / len(ratios):.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="2,000 dossiers, warm-up 300")
    parser.add_argument("-n", type=int, default=None, help="dossiers (default 20,000)")
    parser.add_argument("-c", type=int, default=64, help="concurrent client connections")
    parser.add_argument("--warm", type=int, default=None, help="warm-up dossiers (2,000)")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument(
        "--concurrency", type=int, default=32, help="the gateway's registry lane concurrency"
    )
    parser.add_argument(
        "--generic",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also the generic route and its floor (default on)",
    )
    parser.add_argument(
        "--uvloop-floor",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also run the floor on uvloop; the faster floor counts (default on)",
    )
    parser.add_argument(
        "--gateway-loop",
        choices=("default", "asyncio", "uvloop", "both"),
        default="default",
        help="the gateway's event loop (GATEWAY_LOOP); both: one run on each, uvloop counts",
    )
    parser.add_argument("--profile", metavar="DIR", help="py-spy the gateway during run 1")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    a = parser.parse_args()
    a.n = a.n or (2000 if a.quick else 20000)
    a.warm = a.warm if a.warm is not None else (300 if a.quick else 2000)
    if a.profile:
        Path(a.profile).mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    asyncio.run(main(a))
