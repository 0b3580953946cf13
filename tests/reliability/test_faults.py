"""Faults on every link: a :class:`~gateway.testing.faultproxy.FaultProxy` in front of each of
the three simulators (one-stop-shop adapter, registry, post office), and the simulators' own
fault middleware for the 5xx answers.

While dossiers (with revisions) and payment lists flow, the links go through, in turn:
30 % 5xx answers, connection resets (before the request and after the answer), 256 kbit/s,
10 s stalls, and a blackout (30 s in the long run). Then they heal, and:

* everything acknowledged is delivered (the registry's follow-ups and decisions to the
  one-stop-shop included), and per dossier and destination the first arrivals are in the
  order the gateway queued them;
* a poison dossier (the registry answers 400 ``<Loi ma="xsd">`` to it) and a poison payment
  list (its totals do not add up) are dead-lettered at their first attempt, without holding up
  their destination; the poison dossier's next revision still goes;
* a message always travels under one ``Idempotency-Key``;
* the registry's breaker opens during the blackout and closes after it;
* the hash-chained log verifies.
"""

from __future__ import annotations

import asyncio
import copy
import json
import random
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from conftest import wait_for
from loopback import PLUGIN_OF, gateway_section, simulated_systems
from lxml import etree

from gateway.config import config_from_dict
from gateway.model import nfc
from gateway.plugins import build_plugins
from gateway.signing import sign
from gateway.simulation import SimulatorOptions
from gateway.store.records import DeliveryFilter
from gateway.testing.faultproxy import PROXY_PROFILES, FaultProxy
from gateway.testing.faults import FAULTS_KEY, FaultProfile
from gateway.web.app import create_app
from gateway.web.keys import ENGINE, STORE
from plugins.district_registry.simulator import registry_state
from plugins.one_stop_shop.generator import DossierGenerator
from plugins.one_stop_shop.simulator import sim_state as motcua_state
from plugins.vn_common.cccd import make_cccd
from plugins.vn_common.names import make_name

from .reliability_kit import LONG, free_port

SECRETS = {
    "motcua": "f-motcua-7c2e9a41b8d3f6051e4d",
    "registry": "f-registry-7c2e9a41b8d3f6051e4d",
    "post_office": "f-post-7c2e9a41b8d3f6051e4d",
    "sa": "f-sa-7c2e9a41b8d3f6051e4d",
}
SIMULATED = tuple(PLUGIN_OF)
REGISTRY_NS = "{urn:vn:btxh:registry:1}"

# (name, seconds in CI, seconds in the long run)
PHASES: list[tuple[str, float, float]] = [
    ("5xx 30 %", 5, 60),
    ("resets before the request", 3, 30),
    ("resets after the answer", 3, 30),
    ("256 kbit/s", 4, 45),
    ("half-written answers", 3, 30),
    ("10 s stall", 10, 10),
    ("blackout", 8, 30),
]
DOSSIERS = 400 if LONG else 80
#: pushes (1.5 dossiers each on average) spread over the phases, so traffic meets every fault
PUSH_EVERY = (sum(long if LONG else ci for _, ci, long in PHASES) + len(PHASES)) / (DOSSIERS / 1.5)
COMMUNES = ("02053", "02020", "02023")


@dataclass(slots=True)
class Arrival:
    at: float
    path: str
    key: str
    body: bytes
    status: int = 0


@dataclass
class Flow:
    gateway_port: int
    ports: dict[str, int]
    proxies: dict[str, FaultProxy]
    sims: dict[str, web.Application]
    app: web.Application
    arrivals: dict[str, list[Arrival]]
    poison_dossier: str = ""
    #: answer with ``Connection: close``: every request then opens a connection of its own,
    #: which the proxy's ``reset_rate`` (a per-connection fault) may doom
    close_connections: bool = False
    acked: dict[str, str] = field(default_factory=dict)  # what was pushed -> gateway uid
    breaker_seen: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"


def tap(arrivals: list[Arrival], flow_ref: dict[str, Flow]) -> Any:
    """Outermost middleware of a simulator: records what reached it; answers the poison
    dossier's first revision 400 <Loi ma="xsd"> as a registry would an invalid document."""

    @web.middleware
    async def middleware(request: web.Request, handler: Any) -> web.StreamResponse:
        body = await request.read()
        arrival = Arrival(
            time.time(), request.path, request.headers.get("Idempotency-Key", ""), body
        )
        arrivals.append(arrival)
        flow = flow_ref.get("flow")
        if flow is not None and request.path == "/ho-so" and flow.poison_dossier:
            root = etree.fromstring(body)
            if root.get("maHoSo") == flow.poison_dossier and root.get("lanCapNhat") == "1":
                arrival.status = 400
                return web.Response(
                    status=400,
                    body=b'<Loi xmlns="urn:vn:btxh:registry:1" ma="xsd">poison</Loi>',
                    content_type="application/xml",
                )
        response = await handler(request)
        arrival.status = response.status
        if flow is not None and flow.close_connections:
            response.force_close()
        return response

    return middleware


def flow_config(tmp_path: Path, gateway_port: int, proxies: dict[str, FaultProxy]) -> Any:
    system = {
        "timeout": {"connect": 1, "read": 3},
        "concurrency": 4,
        "retry": {"initial": 0.2, "multiplier": 2, "max": 2, "jitter": 0.1, "deadline": 3600},
        "breaker": {"failures": 3, "reset_after": 2},
    }
    urls = {name: proxy.url for name, proxy in proxies.items()}
    return config_from_dict(
        {
            "gateway": {**gateway_section(tmp_path, gateway_port, "faults"), "shutdown_grace": 1},
            "systems": {
                **simulated_systems(urls, SECRETS, system),
                "sa": {
                    "plugin": "http_json",
                    "inbound_secret": SECRETS["sa"],
                    "key_field": "key",
                    "timeout": {"connect": 1, "read": 3},
                },
            },
            "routes": [
                {
                    "from": "motcua",
                    "event": "dossier.received",
                    "procedure": "1.001776",
                    "to": ["registry"],
                },
                {"from": "registry", "event": "dossier.accepted", "to": ["motcua"]},
                {"from": "registry", "event": "dossier.refused", "to": ["motcua"]},
                {"from": "registry", "event": "decision.issued", "to": ["motcua"]},
                {"from": "sa", "event": "payment.list", "to": ["post_office"]},
            ],
        },
        tmp_path / "gateway.toml",
    )


async def serve(app: web.Application, port: int) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


@pytest.fixture
async def flow(tmp_path: Path) -> AsyncIterator[Flow]:
    gateway_port = free_port()
    ports = {name: free_port() for name in SIMULATED}
    plugins = build_plugins()
    extra = {
        "motcua": {"rate": 0.0},
        "registry": {"appraisal_delay": 0.5, "refuse_rate": 0.0, "change_rate": 0.0},
        "post_office": {"payout_delay": 0.5, "push_retry_max": 2.0},
    }
    runners: list[web.AppRunner] = []
    proxies: dict[str, FaultProxy] = {}
    sims: dict[str, web.Application] = {}
    arrivals: dict[str, list[Arrival]] = {name: [] for name in SIMULATED}
    flow_ref: dict[str, Flow] = {}
    try:
        for name, port in ports.items():
            options = SimulatorOptions(
                gateway_url=f"http://127.0.0.1:{gateway_port}",
                secret=SECRETS[name],
                system=name,
                seed=11,
                extra=extra[name],
            )
            app = plugins.simulator_factory(PLUGIN_OF[name])(options)
            app.middlewares.insert(0, tap(arrivals[name], flow_ref))
            sims[name] = app
            runners.append(await serve(app, port))
            proxies[name] = FaultProxy("127.0.0.1", port, port=free_port(), seed=len(proxies))
            await proxies[name].start()
        app = create_app(flow_config(tmp_path, gateway_port, proxies), plugins=plugins)
        runners.append(await serve(app, gateway_port))
        flow = Flow(gateway_port, ports, proxies, sims, app, arrivals)
        flow_ref["flow"] = flow
        yield flow
    finally:
        for runner in reversed(runners[-1:]):
            await runner.cleanup()
        for proxy in proxies.values():
            await proxy.stop()
        for runner in reversed(runners[:-1]):
            await runner.cleanup()


# -- load ------------------------------------------------------------------------------------
async def push(
    session: aiohttp.ClientSession, flow: Flow, system: str, body: bytes, ctype: str
) -> dict[str, Any]:
    while True:
        headers = {"Content-Type": ctype, **sign(SECRETS[system], body)}
        try:
            async with session.post(
                f"{flow.url}/inbound/{system}", data=body, headers=headers
            ) as r:
                text = await r.text()
                if r.status == 202:
                    answer: dict[str, Any] = json.loads(text)
                    assert not answer["rejected"], answer
                    return answer
                assert r.status == 503, f"{system}: {r.status} {text[:300]}"
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.2)


def payment_list(ma_xa: str, lan_gui: int, *, poison: bool = False) -> dict[str, Any]:
    rng = random.Random(f"{ma_xa}:{lan_gui}")
    lines = []
    for i in range(3 + lan_gui):
        female = rng.random() < 0.5
        lines.append(
            {
                "soDinhDanh": make_cccd("006", 1950 + i, female, rng.randrange(1_000_000)),
                "hoTen": make_name(rng, female=female),
                "loaiDoiTuong": "5.5a",
                "soTienThang": 540000,
                "soTienTruyLinh": 0,
                "soTienChuaNhan": 0,
                "nhanTien": "tai_diem",
                "bienDong": "khong_doi",
            }
        )
    item: dict[str, Any] = {
        "id": f"DS-{ma_xa}-2020-09-{lan_gui}" + ("-poison" if poison else ""),
        "key": f"DS-{ma_xa}-2020-09" + ("-poison" if poison else ""),
        "event": "payment.list",
        "ky": "2020-09",
        "maXa": ma_xa,
        "lanGui": lan_gui,
        "lapLuc": "2020-08-24T10:00:00+07:00",
        "lines": lines,
    }
    if poison:
        item["tongSoTien"] = 1  # does not add up: the gateway must refuse to send it
    return item


def revised(gen: DossierGenerator, ma_ho_so: str, n: int) -> dict[str, Any]:
    """The dossier again with its summary changed: a new revision (isUpdating)."""
    item = gen.dossiers[ma_ho_so]
    item["TrichYeuHoSo"] = f"Đề nghị trợ cấp xã hội hàng tháng (bổ sung lần {n})"
    return copy.deepcopy(item)


async def push_dossiers(
    s: aiohttp.ClientSession,
    flow: Flow,
    items: list[dict[str, Any]],
    updating: bool,
    revision: dict[str, int],
) -> None:
    desk = motcua_state(flow.sims["motcua"])
    for item in items:  # the one-stop-shop holds what it sends (results come back to it)
        desk.dossiers[item["MaHoSo"]] = nfc(item)
    doc = {"isUpdating": str(updating), "data": items}
    answer = await push(s, flow, "motcua", json.dumps(doc).encode(), "application/json")
    ids = {e["ref"]: e["id"] for e in answer["accepted"] + answer["duplicates"]}
    for item in items:
        ma = item["MaHoSo"]
        revision[ma] = revision.get(ma, 0) + 1
        flow.acked[f"{ma}#{revision[ma]}"] = ids[ma]


async def load(flow: Flow, stop: asyncio.Event) -> None:
    """Dossiers (one push in ten re-sends an earlier one as a new revision) and payment lists
    (three sendings per commune), until all are sent or stopped."""
    rng = random.Random(3)
    gen = DossierGenerator(seed=5, update_rate=0.0, other_procedure_rate=0.0)
    revision: dict[str, int] = {}
    lists = [(ma_xa, lan) for lan in (1, 2, 3) for ma_xa in COMMUNES]
    async with aiohttp.ClientSession() as s:
        first = gen.new_dossier()
        flow.poison_dossier = first["MaHoSo"]
        await push_dossiers(s, flow, [first], False, revision)
        poison_list = payment_list("02053", 1, poison=True)
        answer = await push(s, flow, "sa", json.dumps(poison_list).encode(), "application/json")
        flow.acked[poison_list["id"]] = answer["accepted"][0]["id"]
        pushes = 0
        while len(gen.dossiers) < DOSSIERS and not stop.is_set():
            pushes += 1
            if pushes == 3:  # the poison dossier's next revision must still go
                await push_dossiers(s, flow, [revised(gen, first["MaHoSo"], 1)], True, revision)
            elif rng.random() < 0.1:
                ma = rng.choice(sorted(gen.dossiers))
                item = revised(gen, ma, revision[ma])
                await push_dossiers(s, flow, [item], True, revision)
            else:
                new = [gen.new_dossier() for _ in range(rng.randint(1, 2))]
                await push_dossiers(s, flow, [gen.wire_form(i) for i in new], False, revision)
            if lists and pushes % 3 == 0:
                ma_xa, lan = lists.pop(0)
                pl = payment_list(ma_xa, lan)
                answer = await push(s, flow, "sa", json.dumps(pl).encode(), "application/json")
                flow.acked[pl["id"]] = answer["accepted"][0]["id"]
            await asyncio.sleep(PUSH_EVERY)


async def set_faults(flow: Flow, phase: str | None) -> None:
    flow.close_connections = phase is not None and phase.startswith(("resets", "half"))
    for name in SIMULATED:
        flow.sims[name][FAULTS_KEY].profile = FaultProfile()
        flow.proxies[name].set(**PROXY_PROFILES["none"])
        if phase is not None:  # the link drops: open connections die, new ones meet the fault
            await flow.proxies[name].stop()
            await flow.proxies[name].start()
    for name in SIMULATED:
        proxy = flow.proxies[name]
        if phase == "5xx 30 %":
            flow.sims[name][FAULTS_KEY].profile = FaultProfile(name="5xx", error_rate=0.3)
        elif phase == "resets before the request":
            proxy.set(reset_rate=0.3, reset_on="request")
        elif phase == "resets after the answer":
            proxy.set(reset_rate=0.3, reset_on="response")
        elif phase == "half-written answers":
            proxy.set(half_write=True)
        elif phase == "256 kbit/s":
            proxy.set(bandwidth=32_000, latency=0.05)
        elif phase == "10 s stall":
            proxy.set(latency=10.0)
        elif phase == "blackout":
            proxy.set(blackhole=True)


async def watch_breakers(flow: Flow, stop: asyncio.Event) -> None:
    engine = flow.app[ENGINE]
    while not stop.is_set():
        for name, lane in engine.lanes.items():
            flow.breaker_seen[name].add(lane.breaker.state.value)
        await asyncio.sleep(0.05)


# -- the test ----------------------------------------------------------------------------------
@pytest.mark.slow
async def test_every_link_fault_then_everything_delivered_in_order(flow: Flow, tally: Any) -> None:
    store = flow.app[STORE]
    stop_load, stop_watch = asyncio.Event(), asyncio.Event()
    loader = asyncio.create_task(load(flow, stop_load))
    watcher = asyncio.create_task(watch_breakers(flow, stop_watch))
    started = time.monotonic()
    phase_log: list[str] = []
    try:
        await asyncio.sleep(2.0)
        for name, ci, long in PHASES:
            await set_faults(flow, name)
            before = {n: p.counters.as_dict() for n, p in flow.proxies.items()}
            await asyncio.sleep(long if LONG else ci)
            after = {n: p.counters.as_dict() for n, p in flow.proxies.items()}
            resets = sum(after[n]["resets"] - before[n]["resets"] for n in after)
            phase_log.append(f"{name} ({long if LONG else ci:g} s, {resets} resets)")
            await set_faults(flow, None)
            await asyncio.sleep(1.0)
        stop_load.set()
        await loader
        breaker_after_blackout = {n: set(s) for n, s in flow.breaker_seen.items()}

        async def settled() -> bool:
            rows = await store.list_deliveries(DeliveryFilter(), limit=100_000)
            active = [r for r in rows if r["status"] in ("pending", "in_flight")]
            registry = flow.sims["registry"]
            waiting = registry_state(registry).snapshot()["decisions_pending"]
            return not active and not waiting and bool(rows)

        await wait_for(settled, timeout=600 if LONG else 120, what="every delivery finished")
        await asyncio.sleep(1.0)
        await wait_for(settled, timeout=60, what="still settled")
        final_breakers = {n: lane.breaker.state.value for n, lane in flow.app[ENGINE].lanes.items()}
    finally:
        stop_load.set()
        stop_watch.set()
        loader.cancel()
        await asyncio.gather(loader, watcher, return_exceptions=True)
    elapsed = time.monotonic() - started

    rows = await store.list_deliveries(DeliveryFilter(), limit=100_000)
    by_key = {r["idempotency_key"]: r for r in rows}
    uid_of: dict[int, str] = {}
    for r in rows:
        d = await store.get_delivery(r["id"])
        assert d is not None
        uid_of[r["id"]] = d["message_uid"]
    dead = [r for r in rows if r["status"] == "dead"]
    not_done = [r for r in rows if r["status"] not in ("delivered", "dead")]
    acked_uids = set(flow.acked.values())
    delivered_uids = {uid_of[r["id"]] for r in rows if r["status"] == "delivered"}
    poison_uids = {flow.acked[f"{flow.poison_dossier}#1"], flow.acked["DS-02053-2020-09-1-poison"]}
    lost = sorted(k for k, uid in flow.acked.items() if uid not in delivered_uids | poison_uids)

    # first arrivals per (destination, dossier) in the order the gateway queued them
    out_of_order: list[str] = []
    duplicates = 0
    for name, arrivals in flow.arrivals.items():
        firsts: dict[str, float] = {}
        for a in arrivals:
            if a.key and a.key not in firsts:
                firsts[a.key] = a.at
            elif a.key:
                duplicates += 1
        per_dossier: dict[str, list[tuple[float, int]]] = defaultdict(list)
        for key, at in firsts.items():
            row = by_key.get(key)
            if row is not None:
                per_dossier[row["dossier_key"]].append((at, row["id"]))
        for dossier, seq in per_dossier.items():
            ids = [i for _, i in sorted(seq)]
            if ids != sorted(ids):
                out_of_order.append(f"{name} {dossier}: {ids}")
    # one message (dossier revision / payment list sending) under one key
    keys_per_message: dict[tuple[str, ...], set[str]] = defaultdict(set)
    for a in flow.arrivals["registry"]:
        if a.path == "/ho-so" and a.key:
            root = etree.fromstring(a.body)
            keys_per_message[("ho-so", root.get("maHoSo") or "", root.get("lanCapNhat") or "")].add(
                a.key
            )
    for a in flow.arrivals["post_office"]:
        if a.key:
            root = etree.fromstring(a.body)
            keys_per_message[("list", root.get("maXa") or "", root.get("lanGui") or "")].add(a.key)
    mixed = {k: v for k, v in keys_per_message.items() if len(v) > 1}
    poison_rows = [r for r in rows if uid_of[r["id"]] in poison_uids]
    poison_ok = all(r["status"] == "dead" and r["attempts"] == 1 for r in poison_rows)
    poison_list_sent = any(b"-poison" in a.body for a in flow.arrivals["post_office"])
    next_revision = flow.acked.get(f"{flow.poison_dossier}#2")
    next_revision_delivered = next_revision in delivered_uids
    checked, problems = await store.verify_log()
    registry_opened = "open" in breaker_after_blackout.get("registry", set())
    faults_seen = {n: dict(flow.sims[n][FAULTS_KEY].injected) for n in SIMULATED}
    proxy_counters = {n: p.counters.as_dict() for n, p in flow.proxies.items()}

    ok = not (lost or not_done or out_of_order or mixed or problems)
    ok = ok and poison_ok and len(poison_rows) == 2 and not poison_list_sent
    ok = (
        ok
        and next_revision_delivered
        and registry_opened
        and set(final_breakers.values()) == {"closed"}
    )
    tally.add(
        "Durable retry; bulkheads and breakers; order per dossier; poison dead-lettered; "
        "at-least-once with one key",
        "FaultProxy in front of each simulator: " + ", ".join(phase_log),
        len(PHASES) * len(SIMULATED),
        "link faults",
        f"{len(acked_uids)} messages acknowledged, {len(lost)} lost, {len(rows)} deliveries "
        f"({len(dead)} dead: the 2 poisons, each after {[r['attempts'] for r in poison_rows]} "
        f"attempt); {duplicates} duplicate arrivals, {len(mixed)} messages under two keys; "
        f"{len(out_of_order)} out of order; breakers seen "
        f"{ {n: sorted(s) for n, s in breaker_after_blackout.items()} }, finally "
        f"{final_breakers}; log verify {'ok' if not problems else 'FAILED'} ({checked} rows)",
        ok=ok,
        seconds=round(elapsed, 1),
        injected_5xx=faults_seen,
        proxy=proxy_counters,
    )
    assert not lost, f"acknowledged, never delivered: {lost[:10]}"
    assert not not_done, not_done[:5]
    assert not out_of_order, out_of_order[:10]
    assert not mixed, mixed
    assert len(poison_rows) == 2 and poison_ok, [
        (r["id"], r["status"], r["attempts"]) for r in poison_rows
    ]
    assert not poison_list_sent, "a list whose totals do not add up reached the payer"
    assert next_revision_delivered, "the poison dossier's next revision was held up"
    assert len(dead) == 2, [(r["dossier_key"], r["last_error"]) for r in dead]
    assert registry_opened, breaker_after_blackout
    assert set(final_breakers.values()) == {"closed"}, final_breakers
    assert problems == [], problems[:5]
