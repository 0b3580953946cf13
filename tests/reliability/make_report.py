"""Turn the results of a reliability run (``var/reliability/last-run.json``, written by
``run_long.py``) into ``docs/RELIABILITY.md``: one row per attack — the promise, how it was
attacked, how many times, what happened — then the failures and how to rerun.

    .venv/bin/python tests/reliability/make_report.py [RESULTS.json] [--out docs/RELIABILITY.md]
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]

HEADER = """# Reliability: what the gateway survives

Every promise of DESIGN.md §5 (and the privacy promise of §6) is a test in
`tests/reliability/` that tries hard to break it. This page is **generated** by
`tests/reliability/make_report.py` from the results of the last run of
`tests/reliability/run_long.py`; do not edit it by hand.

"""

#: test files whose attacks get a section of their own (after the main table)
SECTIONS = {
    "tests/reliability/test_attacks_transport.py": (
        "Attack review (issue 14): transport and authentication"
    ),
    "tests/reliability/test_attacks_privacy.py": (
        "Attack review (issue 14): personal data at rest, in keys and on screen; sessions; paths"
    ),
}

#: what the same attacks did before the fixes (measured once on the code they fixed)
SECTION_BEFORE = {
    "tests/reliability/test_attacks_transport.py": (
        "Before the fixes (main at fe542d3, same tests): the one-stop-shop login posted the "
        "password to the host a 307 named (and a destination's 307 re-sent the dossier there, "
        "recorded delivered, as the attack review found); the two 10 MB floods grew the "
        "child's RSS by 301 and 308 MB; 500 "
        "unknown system names grew `/metrics` by 279 KB; a 600-deep dossier was accepted and "
        "then its delivery page, its API entry and the dead-letter page answered 500; no "
        "cookie was ever `Secure` behind a TLS proxy; non-ASCII `X-Signature`, session cookies, "
        "sign-in cookies and `csrf` answered 500; 1,000 wrong bearer tokens all got 401 and one "
        "sign-in nonce served 500 attempts; weak secrets started."
    ),
}

RERUN = """## How to rerun

```sh
.venv/bin/python tests/reliability/run_long.py           # the long run, then this page
.venv/bin/python tests/reliability/run_long.py --quick   # the CI sizes, same page
.venv/bin/python tests/reliability/run_long.py -k crash  # one part (extra args go to pytest)
RELIABILITY_LONG=1 .venv/bin/pytest tests/reliability/test_faults.py   # by hand
```

CI runs the bounded versions as part of the normal `pytest` (5 kills instead of 20, blackouts
of 8 s instead of 30 s, a few hundred fuzz cases instead of over ten thousand). The long run
keeps every log under `var/reliability/logs/` and the raw results in
`var/reliability/last-run.json`.

How each fault is made:

* **crash** — `gateway run` as a child process, `SIGKILL` at random moments while six clients
  push signed dossiers (revisions in order) and a loopback receiver answers slowly and
  sometimes 503; the last restart uses another node id so the dead node's leases must expire.
* **link faults** — `gateway.testing.faultproxy.FaultProxy` in front of each simulator
  (resets, half-written answers, 256 kbit/s, 10 s stalls, blackouts) and the simulators' own
  fault middleware for the 5xx answers; a poison dossier (the registry answers 400) and a
  poison payment list (totals that do not add up).
* **database locked** — another process holds `BEGIN EXCLUSIVE` on the SQLite file longer than
  `busy_timeout` (5 s).
* **disk full** — the database on a 4 MB tmpfs (`mount -t tmpfs -o size=4m`, root only; the
  test is skipped elsewhere) filled by another file. `PRAGMA max_page_count` set from a
  second connection cannot simulate this: it binds only the connection that sets it.
* **queue bound** — `limits.queue_bound = 300`, a destination that refuses everything, then
  16 clients hammering intake; the child's RSS is read from `/proc`.
* **fuzzing** — hypothesis strategies in `tests/reliability/wire_strategies.py` (valid, nearly
  valid, hostile) for the three wire formats, and schemathesis on the committed OpenAPI
  document; both against `gateway run` children.
* **transport and authentication (issue 14)** — loopback servers answering 301/302/303/307/308
  to another host (which records what reaches it); 30 aiohttp connections each POSTing a
  10 MB random body at once to a `gateway run` child whose RSS is sampled from `/proc` every
  10 ms; raw sockets for headers no client library sends (non-ASCII and undecodable bytes,
  a 1 GB `Content-Length` with no body); deep payloads written straight into the SQLite file.
* **personal data, sessions and paths (issue 14)** — a `gateway run` child fed payment
  results and dossiers carrying every kind of personal data (birth date, address, phone,
  e-mail, a CCCD in groups, a 9-digit old ID, single-quoted XML) read back as a viewer and an
  operator through the API, the dashboard, the CLI's tables and JSON, exports and `/metrics`;
  file modes read with `stat` while it runs, and again with a permissive umask and `chmod`
  disabled; sign-in `next` variants; one cookie shown to a second app on the same database
  and to a restarted one; the CLI run from another folder with a secret's variable unset.
* **privacy** — `tests/privacy_scan.py` routes the in-process gateway log to a file, collects
  every child's log and every test's captured output, and scans all of it at the end of every
  pytest run (CI included) for a 12-digit run standing alone (or written in groups), keys
  included, or a full name of the simulators' and fixtures' name lists; exports written
  into its folder (`.csv`) are scanned too.
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="?", default=str(ROOT / "var/reliability/last-run.json"))
    parser.add_argument("--out", default=str(ROOT / "docs/RELIABILITY.md"))
    args = parser.parse_args()
    data = json.loads(Path(args.results).read_text(encoding="utf-8"))
    Path(args.out).write_text(render(data), encoding="utf-8")
    print(f"wrote {args.out}")


def cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def rows(all_entries: list[dict[str, Any]]) -> list[str]:
    """Table rows: one per attack, or one per promise when it has many small cases."""
    out: list[str] = []
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in all_entries:
        grouped[e["promise"]].append(e)
    for promise, entries in grouped.items():
        if len(entries) > 8:  # many small cases of one kind: one row with the sum
            bad = [e for e in entries if not e["ok"]]
            total = sum(e["count"] for e in entries)
            unit = entries[0]["unit"]
            happened = (
                f"{len(entries) - len(bad)} of {len(entries)} attacks refused as expected"
                + (
                    ": failed — " + "; ".join(f"{e['attack']}: {e['happened']}" for e in bad[:6])
                    if bad
                    else ""
                )
            )
            attacks = "; ".join(sorted({e["attack"] for e in entries}))[:900]
            out.append(
                f"| {cell(promise)} | {cell(attacks)} | {total} {unit} | {cell(happened)} | "
                f"{'✅' if not bad else '❌'} |"
            )
            continue
        for e in entries:
            out.append(
                f"| {cell(promise)} | {cell(e['attack'])} | {e['count']} {e['unit']} | "
                f"{cell(e['happened'])} | {'✅' if e['ok'] else '❌'} |"
            )
    return out


def render(data: dict[str, Any]) -> str:
    run = data.get("run", {})
    machine = data.get("machine", {})
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(data.get("finished", time.time())))
    kind = "long run" if data.get("long") else "bounded (CI-sized) run"
    out = [HEADER]
    junit = run.get("junit", {})
    out.append(
        f"Last run: **{kind}**, {when}, {run.get('seconds', '?')} s on {machine.get('cpus')} "
        f"CPUs (Python {machine.get('python')}), commit {run.get('commit', '?')}; "
        f"`{run.get('command', '')}` → "
        f"{junit.get('tests', '?')} tests, {junit.get('failures', 0)} failed, "
        f"{junit.get('errors', 0)} errors, {junit.get('skipped', 0)} skipped.\n"
    )
    out.append("## Promises, attacks, results\n")
    out.append("| promise | how it was attacked | times | what happened | held |")
    out.append("|---|---|---:|---|:---:|")
    sectioned: dict[str, list[dict[str, Any]]] = defaultdict(list)
    main: list[dict[str, Any]] = []
    for e in data.get("entries", []):
        title = SECTIONS.get(e.get("test", "").split("::")[0])
        (sectioned[title] if title else main).append(e)
    out.extend(rows(main))
    matrix = junit.get("auth_matrix", {})
    if matrix:
        out.append(
            f"| The role matrix: every route × no token, viewer, operator, admin "
            f"(tests/integration/test_auth_matrix.py) | each route called by each role | "
            f"{matrix.get('cases')} cases | {matrix.get('cases', 0) - matrix.get('failed', 0)} "
            f"gave the expected status | {'✅' if not matrix.get('failed') else '❌'} |"
        )
    scan = data.get("privacy_scan")
    if scan:
        out.append(
            f"| Privacy: no unmasked CCCD or full name anywhere in the run | every log line and "
            f"captured output of the whole run scanned | {scan['lines']} lines | "
            f"{scan['findings']} found {scan.get('by_kind', {})} | "
            f"{'✅' if not scan['findings'] else '❌'} |"
        )
    out.append("")
    for file, title in SECTIONS.items():
        entries = sectioned.get(title)
        if not entries:
            continue
        out.append(f"## {title}\n")
        out.append(
            f"From `{file}`. Every finding has attacks here that got through before its fix; "
            "the other rows are controls (what must keep working).\n"
        )
        if file in SECTION_BEFORE:
            out.append(SECTION_BEFORE[file] + "\n")
        out.append("| promise | how it was attacked | times | what happened | held |")
        out.append("|---|---|---:|---|:---:|")
        out.extend(rows(entries))
        variants: dict[str, int] = defaultdict(int)
        for e in entries:
            variants[e["promise"]] += 1
        out.append("")
        out.append(
            "Variants per finding: "
            + "; ".join(f"{promise}: {n}" for promise, n in variants.items())
            + ".\n"
        )
    failed = {k: v for k, v in data.get("tests", {}).items() if v["outcome"] != "passed"}
    if failed:
        out.append("## Tests that did not pass\n")
        for nodeid, v in sorted(failed.items()):
            message = v.get("message", "").strip().splitlines()
            last = next((m for m in message if m.startswith("E ")), "")
            out.append(
                f"* `{nodeid}` — {v['outcome']}" + (f": `{last[1:].strip()[:300]}`" if last else "")
            )
        out.append("")
    out.append(RERUN)
    return "\n".join(out)


if __name__ == "__main__":
    main()
