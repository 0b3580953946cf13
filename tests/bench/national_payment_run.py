"""National payment run: one month's lists for every commune, built, checked and written.

3.5 million beneficiaries across 10,000 synthetic communes (the Chợ Đồn mix; 2 % granted late
so their first line carries arrears, 1 % suspended). Streaming end to end: each worker
generates one commune's decisions, parses them, builds that commune's roster, builds and
checks its list and writes it as DanhSachChiTra XML with ``lxml.etree.xmlfile`` before the
next commune — memory is bounded by one commune, not the country.

Printed: a table of the phases (CPU seconds summed over workers), wall time, total CPU time,
the load average (the machine may be shared), lines per second and peak RSS
(``resource.getrusage``; the main process and the largest worker). Target: ≤ 5 min and
≤ 500 MB.

    python tests/bench/national_payment_run.py [--quick] [--communes N] [--per-commune N]
        [--workers N] [--month YYYY-MM] [--out DIR | --sink]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from lxml import etree

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # sa_fixtures

from sa_fixtures import national_communes, national_payloads  # noqa: E402

from gateway.model import VN_TZ  # noqa: E402
from plugins.social_assistance.decision import Decision  # noqa: E402
from plugins.social_assistance.history import PaidHistory, SentHistory  # noqa: E402
from plugins.social_assistance.month import Month  # noqa: E402
from plugins.social_assistance.payment_list import PaymentList, iter_payment_lists  # noqa: E402
from plugins.social_assistance.roster import Roster, build_roster  # noqa: E402
from plugins.social_assistance.rules import Rules, load_admin_units, load_rules  # noqa: E402

NS = "urn:vn:btxh:chitra:1"
ROSTER_PHASES = ("generate payloads (bench)", "parse decisions", "build roster")


def admin_units_file(codes: list[str], directory: Path) -> Path:
    """A synthetic admin-units TOML with one province and district holding ``codes``."""
    rows = [
        'schema = 1\n[[province]]\ncode = "01"\nname = "Tỉnh thử"\n',
        '[[district]]\ncode = "001"\nname = "Huyện thử"\nprovince = "01"\n',
    ]
    rows += [f'[[commune]]\ncode = "{c}"\nname = "Xã {c}"\ndistrict = "001"\n' for c in codes]
    path = directory / "admin_units.toml"
    path.write_text("".join(rows), encoding="utf-8")
    return path


def write_xml(payload: dict[str, Any], path: str) -> None:
    """DanhSachChiTra, written incrementally: one Dong element at a time, streamed by
    ``xmlfile`` itself (no element tree built per line; each Dong takes the root's default
    namespace instead of declaring its own prefix)."""
    attrs = {k: str(v) for k, v in payload.items() if k != "lines"}
    dong = f"{{{NS}}}Dong"
    with etree.xmlfile(path, encoding="utf-8") as xf:
        xf.write_declaration()
        with xf.element(f"{{{NS}}}DanhSachChiTra", attrs, nsmap={None: NS}):
            for line in payload["lines"]:
                with xf.element(dong, {k: str(v) for k, v in line.items()}):
                    pass


class Timer:
    """CPU seconds per phase (``time.process_time``): fair on a machine shared with others."""

    def __init__(self) -> None:
        self.seconds: Counter[str] = Counter()

    def add(self, phase: str, since: float) -> float:
        now = time.process_time()
        self.seconds[phase] += now - since
        return now


def rosters(
    rules: Rules, codes: list[str], per_commune: int, month: Month, timer: Timer
) -> Iterator[Roster]:
    """One commune's roster at a time (decisions generated and parsed, then applied)."""
    for code in codes:
        t = time.process_time()
        payloads = list(national_payloads(rules, code, per_commune, int(code), month))
        t = timer.add("generate payloads (bench)", t)
        decisions = [Decision.from_payload(p, rules) for p in payloads]
        t = timer.add("parse decisions", t)
        roster = build_roster(rules, decisions)
        timer.add("build roster", t)
        yield roster


def run_worker(args: tuple[list[str], int, str, str, str | None]) -> dict[str, Any]:
    codes, per_commune, month_text, units_path, out_dir = args
    rules, units = load_rules(), load_admin_units(units_path)
    month = Month.parse(month_text)
    timer = Timer()
    now = datetime.combine(rules.calendar.build_date(month), datetime.min.time(), VN_TZ).replace(
        hour=10
    )
    stats: Counter[str] = Counter()
    stream = iter_payment_lists(
        rules, units, rosters(rules, codes, per_commune, month, timer), month,
        paid_history=PaidHistory(), sent_history=SentHistory(), now=now,
    )  # fmt: skip
    t, roster_seen = time.process_time(), 0.0
    for built in stream:
        # the stream pulls the next roster itself: keep that time out of the build phase
        roster_spent = sum(timer.seconds[k] for k in ROSTER_PHASES)
        t = timer.add("build + check lists", t + (roster_spent - roster_seen))
        roster_seen = roster_spent
        if not isinstance(built, PaymentList):
            stats["refused"] += 1
            continue
        payload = built.to_payload()  # checks the totals again, as the connector will
        t = timer.add("payload (checked)", t)
        target = (
            os.devnull
            if out_dir is None
            else os.path.join(out_dir, f"{built.commune}-{built.ky}.xml")
        )
        write_xml(payload, target)
        t = timer.add("write XML", t)
        stats["lists"] += 1
        stats["lines"] += built.total_people
        stats["vnd"] += built.total_amount
        for change, count in Counter(line.change for line in built.lines).items():
            stats[f"bienDong {change}"] += count
        stats["arrears lines"] += sum(1 for line in built.lines if line.arrears)
    return {
        "timer": dict(timer.seconds),
        "stats": dict(stats),
        "rss_kb": peak_rss_kb(resource.RUSAGE_SELF),
    }


def cpu_seconds() -> float:
    """User + system CPU of this process and its finished workers (contention-independent)."""
    own, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def peak_rss_kb(who: int) -> int:
    return resource.getrusage(who).ru_maxrss  # kilobytes on Linux


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="100 communes x 350 (35,000 people)")
    parser.add_argument("--communes", type=int, default=10_000)
    parser.add_argument("--per-commune", type=int, default=350)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--month", default="2024-08")
    parser.add_argument("--out", help="directory for the XML files (default: a temp dir)")
    parser.add_argument("--sink", action="store_true", help="write XML to /dev/null instead")
    args = parser.parse_args()
    if args.quick:
        args.communes = 100
    codes = national_communes(args.communes)
    with tempfile.TemporaryDirectory(prefix="national-run-") as tmp:
        out_dir = None if args.sink else (args.out or tmp)
        units_path = str(admin_units_file(codes, Path(tmp)))
        chunks = [codes[i :: args.workers] for i in range(args.workers)]
        jobs = [(chunk, args.per_commune, args.month, units_path, out_dir) for chunk in chunks]
        started = time.perf_counter()
        if args.workers == 1:
            results = [run_worker(jobs[0])]
        else:
            with multiprocessing.get_context("fork").Pool(args.workers) as pool:
                results = pool.map(run_worker, jobs)
        wall = time.perf_counter() - started
        written = sum(f.stat().st_size for f in Path(out_dir).glob("*.xml")) if out_dir else 0
    report(args, results, wall, written)


def report(
    args: argparse.Namespace, results: list[dict[str, Any]], wall: float, written: int
) -> None:
    timer: Counter[str] = Counter()
    stats: Counter[str] = Counter()
    for r in results:
        timer.update(r["timer"])
        stats.update(r["stats"])
    people = stats["lines"]
    print(
        f"\nnational payment run — {args.communes:,} communes x {args.per_commune} people, "
        f"month {args.month}, {args.workers} worker(s)"
    )
    print(f"{'phase':<30}{'CPU seconds, all workers':>28}")
    for phase in (
        "generate payloads (bench)",
        "parse decisions",
        "build roster",
        "build + check lists",
        "payload (checked)",
        "write XML",
    ):
        print(f"{phase:<30}{timer[phase]:>28.1f}")
    print("-" * 58)
    rows = [
        ("lists", f"{stats['lists']:,}"),
        ("lines", f"{people:,}"),
        ("total VND", f"{stats['vnd']:,}"),
        ("lines with arrears", f"{stats['arrears lines']:,}"),
        *[(k, f"{v:,}") for k, v in sorted(stats.items()) if k.startswith("bienDong")],
        ("refused communes", f"{stats['refused']:,}"),
        ("XML written", f"{written / 1e6:,.0f} MB" if written else "/dev/null"),
        ("wall time", f"{wall:,.1f} s"),
        ("CPU time, all processes", f"{cpu_seconds():,.1f} s (user + sys)"),
        ("load average at the end", " ".join(f"{x:.1f}" for x in os.getloadavg())),
        ("lines per second", f"{people / wall:,.0f}"),
        ("peak RSS, main process", f"{peak_rss_kb(resource.RUSAGE_SELF) / 1024:,.0f} MB"),
        ("peak RSS, largest worker", f"{max(r['rss_kb'] for r in results) / 1024:,.0f} MB"),
    ]
    for name, value in rows:
        print(f"{name:<30}{value:>28}")


if __name__ == "__main__":
    main()
