"""CPU per dossier of each step of the real route, in µs, in one process (no HTTP).

The gateway's real job (``real_flow.py``) split into the steps a dossier goes through, each
timed alone over the same ``real_flow.Corpus`` dossiers, with the shipped connectors and
routes and a real store (SQLite WAL, ``synchronous=FULL``, in a temporary directory):

  verify      HMAC of the push (``gateway.signing.verify``)
  parse       ``one_stop_shop`` parse: JSON decode, NFC, validation
  prepare     intake: normalise (canonical JSON once), route
  ingest      the store's cycle for B dossiers: dedupe read, content hash, inserts, commit
  claim       the lease of B deliveries and their rows (JSON text of the payload)
  message     the claimed row back into a Message (``json.loads`` of the payload)
  render      ``district_registry`` render: ``HoSoTroCap`` built, XSD-checked, serialised
  classify    the ``BienNhan`` answer read, the receipt and its ``dossier.accepted`` follow-up
  record      the cycle that records B attempts: log rows hash-chained, outcomes, follow-ups

These are CPU seconds of this process (``time.process_time``, the fsync waits excluded) ÷
dossiers, except ``ingest``/``claim``/``record``, which are also given in wall time (they
include the commit's fsync, shared by the B dossiers of a cycle). What a dossier costs on the
wire (aiohttp's server and client, the event loop) is not here: ``real_flow.py --profile``
samples the whole process.

    python tests/bench/real_path_costs.py [-n N] [-b B] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from _common import SECRET, dump_json, free_port
from real_flow import Corpus, real_config

from gateway.config import load_config
from gateway.engine.intake import Intake
from gateway.model import OutboundRequest, Outcome
from gateway.plugins import plugins_for
from gateway.routing import RouteTable
from gateway.signing import sign, verify
from gateway.store import Store
from gateway.store.records import AttemptRecord
from gateway.web.app import build_connectors
from plugins.district_registry.wire import CONTENT_TYPE

ANSWER = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<BienNhan xmlns="urn:vn:btxh:registry:1" '
    b'maHoSo="M" soBienNhan="BN-0000001"/>'
)


def timed(steps: dict[str, list[float]], name: str, fn: Callable[[], Any]) -> Any:
    t0 = time.process_time()
    out = fn()
    steps.setdefault(name, []).append(time.process_time() - t0)
    return out


async def atimed(
    steps: dict[str, list[float]], walls: dict[str, list[float]], name: str, coro: Any
) -> Any:
    t0, w0 = time.process_time(), time.perf_counter()
    out = await coro
    steps.setdefault(name, []).append(time.process_time() - t0)
    walls.setdefault(name, []).append(time.perf_counter() - w0)
    return out


async def main(args: argparse.Namespace) -> None:
    corpus = Corpus()
    corpus.prepare("costs", args.n)
    bodies = corpus.bodies["costs"]
    steps: dict[str, list[float]] = {}
    walls: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="real-costs-") as tmp_name:
        tmp = Path(tmp_name)
        config = load_config(real_config(tmp, free_port(), free_port(), args.b))
        plugins = plugins_for(config)
        connectors = build_connectors(config, plugins)
        source, registry = connectors["motcua"], connectors["registry"]
        intake = Intake(config, plugins, RouteTable(config.routes))
        store = Store(config.gateway.database, node_id="costs")
        await store.open()
        await store.upgrade(plugins.migration_dirs())
        try:
            for start in range(0, len(bodies), args.b):
                chunk = bodies[start : start + args.b]
                items = []
                for _, body in chunk:
                    headers = sign(SECRET, body)
                    timed(steps, "verify", lambda b=body, h=headers: verify(SECRET, b, h))
                    t0 = time.process_time()
                    parsed = await source.parse(body, "application/json")
                    steps.setdefault("parse", []).append(time.process_time() - t0)
                    t0 = time.process_time()
                    prepared, _ = await intake.prepare("motcua", parsed)
                    steps.setdefault("prepare", []).append(time.process_time() - t0)
                    items += prepared
                now = time.time()
                await atimed(steps, walls, "ingest", store.cycle(items, [], {}, 60.0, now))
                claimed = await atimed(
                    steps, walls, "claim", store.cycle([], [], {"registry": len(items)}, 60, now)
                )
                records = []
                for delivery in claimed.claimed["registry"]:
                    message = timed(steps, "message", delivery.message)
                    t0 = time.process_time()
                    request: OutboundRequest = await registry.render(message)
                    steps.setdefault("render", []).append(time.process_time() - t0)
                    answer = ANSWER.replace(b'"M"', f'"{delivery.dossier_key}"'.encode())

                    def classify(
                        r: OutboundRequest = request,
                        a: bytes = answer,
                        d: Any = delivery,
                        at: float = now,
                    ) -> AttemptRecord:
                        receipt = registry.classify_response(
                            201, a, {"Content-Type": CONTENT_TYPE}, r
                        )
                        follow = []
                        for m in receipt.follow_ups:
                            msg = m.normalised()
                            msg.source = "registry"
                            follow.append(intake.item_for(msg, d.id))
                        return AttemptRecord(
                            delivery=d,
                            outcome=Outcome.DELIVERED,
                            started_at=at,
                            duration_ms=1.0,
                            http_status=receipt.status,
                            bytes_sent=r.size,
                            bytes_received=receipt.bytes_received,
                            error_message=receipt.detail,
                            follow_ups=follow,
                        )

                    records.append(timed(steps, "classify", classify))
                await atimed(steps, walls, "record", store.cycle([], records, {}, 60.0, now))
        finally:
            await store.close()
    n = len(bodies)
    print(f"{n} dossiers ({corpus.mean_size():.0f} B), store cycles of {args.b}")
    print(f"{'step':10}{'CPU µs/dossier':>16}{'wall µs/dossier':>17}")
    total = 0.0
    figures: dict[str, dict[str, float]] = {}
    for name, values in steps.items():
        cpu = sum(values) / n * 1e6
        wall = sum(walls[name]) / n * 1e6 if name in walls else float("nan")
        total += cpu
        figures[name] = {"cpu_us": cpu, "wall_us": wall}
        wall_text = f"{wall:17.0f}" if name in walls else f"{'':17}"
        print(f"{name:10}{cpu:16.0f}{wall_text}")
    print(f"{'total':10}{total:16.0f}")
    dump_json(args.json, {"n": n, "b": args.b, "steps": figures, "total_cpu_us": total})


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-n", type=int, default=3000, help="dossiers")
    parser.add_argument("-b", type=int, default=32, help="dossiers per store cycle")
    parser.add_argument("--json", metavar="PATH")
    asyncio.run(main(parser.parse_args()))
