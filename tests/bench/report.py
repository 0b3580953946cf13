"""Every benchmark, one command, one table: the README's "Performance" section.

Runs, each in its own process, one after the other (so they do not share the 2 cores):

R. ``real_flow.py``             — the real route (one-stop-shop JSON in, XSD-checked registry
                                  XML out) ÷ the floor, p99, RSS; and the generic route
R. ``peers.py --real``          — the same job against Node-RED and Celery + Redis doing the
                                  same conversion, and their pass-through
1. ``throughput.py``            — generic route: gateway ÷ bare aiohttp forwarder
2. ``peers.py``                 — generic route: against Celery 5 + Redis and Node-RED, SIGKILL
3. ``slow_links.py``            — 100 slow commune links and one fast destination
4. ``restart.py``               — 100,000 pending deliveries: start to first delivery
5. ``national_payment_run.py``  — the domain's national payment run

prints each one's own table, then the summary against the targets (Markdown, ready to paste:
the README's Performance section), the real route first. ``--quick`` passes ``--quick`` to
each (about 8 minutes in all); without it, about 30 minutes. ``--repeat`` (default 2)
repeats the noisy throughput measurements. Names for ``--skip``: real_flow, peers_real,
throughput, peers, slow_links, restart, national_payment_run.

    python tests/bench/report.py [--quick] [--repeat R] [--skip name,...] [--out FILE]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import BENCH, machine_line

LIMITS = {  # seconds each script may take before it is stopped
    "real_flow": (600, 1500),
    "peers_real": (900, 2400),
    "throughput": (300, 900),
    "peers": (900, 2400),
    "slow_links": (300, 600),
    "restart": (300, 900),
    "national_payment_run": (300, 900),
}


def run(name: str, args: list[str], quick: bool, script: str = "") -> tuple[str, float, int]:
    limit = LIMITS[name][0 if quick else 1]
    cmd = [sys.executable, str(BENCH / f"{script or name}.py"), *args]
    print(f"\n## {name}: {' '.join(cmd[1:])}", flush=True)
    t0 = time.perf_counter()
    try:
        done = subprocess.run(
            cmd, capture_output=True, text=True, timeout=limit, check=False, cwd=BENCH.parents[1]
        )
        out, code = done.stdout, done.returncode
        if code:
            out += f"\n(exit {code})\n{done.stderr[-2000:]}"
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b"").decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
        out += f"\n(stopped after {limit} s)"
        code = -1
    print(out, flush=True)
    return out, time.perf_counter() - t0, code


def load(path: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
        return data
    except (OSError, ValueError):
        return {}


def verdict(ok: bool | None) -> str:
    return "—" if ok is None else ("met" if ok else "**missed**")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--skip", default="", help="comma list of the names above")
    parser.add_argument("--out", help="also write the summary (Markdown) to this file")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    quick = ["--quick"] if args.quick else []
    rep = ["--repeat", str(args.repeat)]
    machine = machine_line()
    started = dt.datetime.now().astimezone()
    tmp = Path(tempfile.mkdtemp(prefix="bench-report-"))
    rows: list[tuple[str, str, str, str]] = []
    real_rows: list[tuple[str, str, str, str]] = []
    seconds: dict[str, float] = {}
    loads: list[float] = []

    if "real_flow" not in skip:
        _, seconds["real_flow"], _ = run(
            "real_flow", [*quick, *rep, "--json", str(tmp / "rf.json")], args.quick
        )
        rf = load(tmp / "rf.json")
        if rf:
            runs = rf["runs"]
            loads += [r["load"][0] for r in runs]
            ratios = [r["ratio"] for r in runs]
            mean = sum(ratios) / len(ratios)
            rates = "; ".join(
                f"{r['gateway']['rate']:.0f} vs {r['floor_best']:.0f}/s" for r in runs
            )
            real_rows.append(
                (
                    "real route: gateway ÷ bare aiohttp forwarder (the faster of asyncio and "
                    "uvloop), end to end, durable",
                    f"{mean:.2f} ({', '.join(f'{x:.2f}' for x in ratios)}: {rates})",
                    "≥ 0.4",
                    verdict(mean >= 0.4),
                )
            )
            p99 = max(r["gateway"]["p99"] for r in runs) * 1000
            real_rows.append(
                (
                    "real route: gateway p99 accept latency (64 clients)",
                    f"{p99:.0f} ms (p50 "
                    + ", ".join(f"{r['gateway']['p50'] * 1000:.0f}" for r in runs)
                    + " ms)",
                    "≤ 50 ms",
                    verdict(p99 <= 50),
                )
            )
            rss = max(r["gateway"]["rss"] for r in runs)
            real_rows.append(
                ("real route: gateway peak RSS", f"{rss:.0f} MB", "≤ 100 MB", verdict(rss <= 100))
            )
            cpu = [r["gateway"]["cpu"] / r["gateway"]["rate"] * 1e6 for r in runs]
            fcpu = [r["floor"]["cpu"] / r["floor"]["rate"] * 1e6 for r in runs]
            real_rows.append(
                (
                    "real route: CPU per dossier, gateway vs floor",
                    ", ".join(f"{g:.0f} vs {f:.0f} µs" for g, f in zip(cpu, fcpu, strict=True)),
                    "",
                    "—",
                )
            )
            if all("generic_ratio" in r for r in runs):
                generic = [r["generic_ratio"] for r in runs]
                gmean = sum(generic) / len(generic)
                grates = "; ".join(
                    f"{r['generic_gateway']['rate']:.0f} vs {r['generic_floor_best']:.0f}/s"
                    for r in runs
                )
                rows.append(
                    (
                        "generic route: gateway ÷ floor, same run as the real route",
                        f"{gmean:.2f} ({', '.join(f'{x:.2f}' for x in generic)}: {grates})",
                        "≥ 0.55",
                        verdict(gmean >= 0.55),
                    )
                )

    if "peers_real" not in skip:
        _, seconds["peers_real"], _ = run(
            "peers_real",
            [*quick, *rep, "--real", "--json", str(tmp / "pr.json")],
            args.quick,
            script="peers",
        )
        pr = load(tmp / "pr.json").get("results", {})

        def real_rate(name: str) -> float | None:
            runs = pr.get(name, {}).get("runs", [])
            loads.extend(r["load"] for r in runs if "load" in r)
            return sum(r["rate"] for r in runs) / len(runs) if runs else None

        gw = real_rate("gateway")
        for name, what, target in (
            ("node-red-real", "Node-RED doing the same conversion (function node, no XSD)", 1.1),
            ("celery-real", "Celery 5 + Redis doing the same conversion (lxml + XSD)", 3.0),
            ("node-red", "Node-RED passing the push through (converts nothing)", 1.0),
            ("celery", "Celery 5 + Redis passing the push through", None),
        ):
            peer = real_rate(name)
            if gw and peer:
                rss = max(r["rss"] for r in pr[name]["runs"])
                real_rows.append(
                    (
                        f"real route: gateway ÷ {what}",
                        f"{gw / peer:.2f} ({gw:.0f} vs {peer:.0f}/s; its RSS {rss:.0f} MB)",
                        f"≥ {target:g}" if target else "",
                        verdict(gw / peer >= target) if target else "—",
                    )
                )

    if "throughput" not in skip:
        _, seconds["throughput"], _ = run(
            "throughput", [*quick, *rep, "--json", str(tmp / "t.json")], args.quick
        )
        t = load(tmp / "t.json")
        if t:
            ratios = [r["ratio"] for r in t["runs"]]
            mean = sum(ratios) / len(ratios)
            each = ", ".join(f"{x:.2f}" for x in ratios)
            rates = ", ".join(
                f"{r['gateway']['rate']:.0f} vs {r['floor']['rate']:.0f}/s" for r in t["runs"]
            )
            rows.append(
                (
                    "1. floor ratio: gateway ÷ bare aiohttp forwarder, end to end, durable",
                    f"{mean:.2f} (runs: {each}; {rates})",
                    "≥ 0.55",
                    verdict(mean >= 0.55),
                )
            )

    if "peers" not in skip:
        _, seconds["peers"], _ = run(
            "peers", [*quick, *rep, "--json", str(tmp / "p.json")], args.quick
        )
        p = load(tmp / "p.json").get("results", {})

        def rate(name: str) -> float | None:
            runs = p.get(name, {}).get("runs", [])
            return sum(r["rate"] for r in runs) / len(runs) if runs else None

        gw, celery, nr = rate("gateway"), rate("celery"), rate("node-red")
        if gw and celery:
            rows.append(
                (
                    "2. gateway ÷ Celery 5 + Redis, delivered dossiers/s",
                    f"{gw / celery:.2f} ({gw:.0f} vs {celery:.0f}/s)",
                    "≥ 4",
                    verdict(gw / celery >= 4),
                )
            )
        if gw and nr:
            rows.append(
                (
                    "2. gateway ÷ Node-RED, delivered dossiers/s",
                    f"{gw / nr:.2f} ({gw:.0f} vs {nr:.0f}/s)",
                    "≥ 1.2",
                    verdict(gw / nr >= 1.2),
                )
            )
        if gw:
            rss = max(r["rss"] for r in p["gateway"]["runs"])
            rows.append(
                (
                    "2. gateway peak RSS (peers run)",
                    f"{rss:.0f} MB",
                    "≤ 100 MB",
                    verdict(rss <= 100),
                )
            )
        for name in ("gateway", "celery", "node-red"):
            res = p.get(name, {})
            crash, outage = res.get("crash"), res.get("outage")
            if not crash:
                continue
            text = f"{crash['kept']}/{crash['acked']} acknowledged reached the sink"
            if outage:
                text += f"; sink outage: {outage['kept']}/{outage['acked']} 202s delivered"
            rss = max(r["rss"] for r in res["runs"])
            rows.append(
                (
                    f"2. {res['label']}: kept across SIGKILL (RSS {rss:.0f} MB)",
                    text,
                    "gateway: all" if name == "gateway" else "",
                    verdict(crash["lost"] == 0 and (not outage or outage["lost"] == 0))
                    if name == "gateway"
                    else "—",
                )
            )

    if "slow_links" not in skip:
        _, seconds["slow_links"], _ = run(
            "slow_links", [*quick, *rep, "--json", str(tmp / "s.json")], args.quick
        )
        s = load(tmp / "s.json")
        if s:
            ratios = s["ratios"]
            worst = max(ratios)
            each = "; ".join(
                f"{x:.2f}: {r['with']['p99_send'] * 1000:.0f} vs "
                f"{r['without']['p99_send'] * 1000:.0f} ms"
                for x, r in zip(ratios, s["runs"], strict=True)
            )
            rows.append(
                (
                    "3. slow links: fast destination p99, with 100 slow ÷ without",
                    f"{worst:.2f} worst ({each})",
                    "≤ 1.5",
                    verdict(worst <= 1.5),
                )
            )
            rows.append(
                (
                    "3. slow links: gateway RSS max",
                    f"{s['rss']:.0f} MB",
                    "≤ 200 MB",
                    verdict(s["rss"] <= 200),
                )
            )

    if "restart" not in skip:
        _, seconds["restart"], _ = run(
            "restart", [*quick, "--json", str(tmp / "r.json")], args.quick
        )
        r = load(tmp / "r.json")
        firsts = [x["first"] for x in r.get("rows", []) if x["first"] == x["first"]]
        if firsts:
            rows.append(
                (
                    "4. restart with 100,000 pending: start → first delivery",
                    f"{max(firsts):.2f} s worst ({', '.join(f'{x:.2f}' for x in firsts)})",
                    "≤ 2 s",
                    verdict(max(firsts) <= 2),
                )
            )

    npr = BENCH / "national_payment_run.py"
    if "national_payment_run" not in skip and npr.exists():
        out, seconds["national_payment_run"], _ = run(
            "national_payment_run", [*quick, "--sink"], args.quick
        )
        wall = re.search(r"wall time\s+([\d,.]+) s", out)
        lines = re.search(r"^lines\s+([\d,]+)", out, re.M)
        rss = re.search(r"peak RSS, largest worker\s+([\d,]+) MB", out)
        main_rss = re.search(r"peak RSS, main process\s+([\d,]+) MB", out)
        if wall and lines:
            w = float(wall.group(1).replace(",", ""))
            mb = max(float(x.group(1).replace(",", "")) for x in (rss, main_rss) if x is not None)
            rows.append(
                (
                    "5. national payment run (lists for every commune)",
                    f"{lines.group(1)} lines in {w:.0f} s, peak RSS {mb:.0f} MB",
                    "≤ 300 s, ≤ 500 MB" if not args.quick else "(quick: a sample)",
                    verdict(w <= 300 and mb <= 500) if not args.quick else "—",
                )
            )

    mode = "--quick" if args.quick else "full"
    command = "`.venv/bin/python tests/bench/report.py" + (" --quick`" if args.quick else "`")
    measured = f"Measured {started:%Y-%m-%d %H:%M %Z} ({mode}), machine: {machine}"
    if loads:
        measured += f"; load average {min(loads):.1f}-{max(loads):.1f} during the runs"
    table = ["| what | measured | target | |", "|---|---|---|---|"]
    lines_out = []
    if real_rows:
        lines_out += [
            "**The real route** — one-stop-shop JSON in (signed DongBoHoSoMC pushes, ~2 KB, "
            "64 clients), XSD-checked registry XML out (`one_stop_shop` → `district_registry`, "
            "the sink answering `BienNhan`), 202 only after the fsync.",
            f"{measured}. Regenerate: {command}.",
            "",
            *table,
            *[f"| {a} | {b} | {c} | {d} |" for a, b, c, d in real_rows],
            "",
        ]
    if rows:
        lines_out += [
            "**The generic route** (`http_json` → `http_json`, bytes in, bytes out) and the rest.",
            f"{measured}. Regenerate: {command}.",
            "",
            *table,
            *[f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows],
            "",
        ]
    lines_out.append(f"Times: {', '.join(f'{k} {v:.0f} s' for k, v in seconds.items())}.")
    summary = "\n".join(lines_out)
    print("\n# summary\n")
    print(summary)
    if args.out:
        Path(args.out).write_text(summary + "\n", encoding="utf-8")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
