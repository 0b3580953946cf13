"""The long reliability run: every test of tests/reliability in its long version, then the
report.

    .venv/bin/python tests/reliability/run_long.py            # long run (~20-30 min)
    .venv/bin/python tests/reliability/run_long.py --quick    # the CI sizes, same report

It runs ``pytest tests/reliability tests/integration/test_auth_matrix.py`` with
``RELIABILITY_LONG=1`` (20 kills, 30 s blackouts, over 10,000 fuzz cases, …), keeps every
log of the run in ``var/reliability/logs`` (the privacy scan reads them), writes the results
to ``var/reliability/last-run.json`` and turns them into ``docs/RELIABILITY.md``
(``make_report.py``). Extra arguments go to pytest (``-k crash``, ``-x``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET  # our own pytest's junit file, not untrusted input
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "var" / "reliability"


def _commit() -> str:
    """The commit the run tested (with ``+changes`` when the tree had uncommitted edits)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return "?"
    return (head or "?") + ("+changes" if dirty else "")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the bounded CI sizes")
    parser.add_argument("--no-report", action="store_true", help="do not write the report")
    args, pytest_args = parser.parse_known_args()
    logs = OUT / "logs"
    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir(parents=True)
    results, junit = OUT / "last-run.json", OUT / "junit.xml"
    env = {
        **os.environ,
        "RELIABILITY_RESULTS": str(results),
        "GATEWAY_TEST_LOG_DIR": str(logs),
    }
    if not args.quick:
        env["RELIABILITY_LONG"] = "1"
    started = time.time()
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "-q",
        "-rfE",
        f"--junitxml={junit}",
        "tests/reliability",
        "tests/integration/test_auth_matrix.py",
        *pytest_args,
    ]
    print("$", " ".join(command), flush=True)
    code = subprocess.call(command, cwd=ROOT, env=env)
    data = json.loads(results.read_text(encoding="utf-8")) if results.exists() else {}
    data["run"] = {
        "command": "python tests/reliability/run_long.py" + (" --quick" if args.quick else ""),
        "commit": _commit(),
        "exit_code": code,
        "seconds": round(time.time() - started),
        "junit": junit_counts(junit),
    }
    scan = logs / "privacy-scan.json"
    if scan.exists():
        data["privacy_scan"] = json.loads(scan.read_text(encoding="utf-8"))
    results.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
    if not args.no_report:
        subprocess.check_call(
            [sys.executable, str(Path(__file__).with_name("make_report.py")), str(results)],
            cwd=ROOT,
        )
    return code


def junit_counts(path: Path) -> dict[str, object]:
    if not path.exists():
        return {}
    root = ET.parse(path).getroot()
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    if suite is None:
        return {}
    matrix = [c for c in suite.iter("testcase") if "test_auth_matrix" in (c.get("classname") or "")]
    return {
        "tests": int(suite.get("tests", 0)),
        "failures": int(suite.get("failures", 0)),
        "errors": int(suite.get("errors", 0)),
        "skipped": int(suite.get("skipped", 0)),
        "auth_matrix": {
            "cases": len(matrix),
            "failed": sum(1 for c in matrix if c.find("failure") is not None),
        },
    }


if __name__ == "__main__":
    sys.exit(main())
