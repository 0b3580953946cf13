"""Fixtures of the reliability suite: the tally of attacks and what they found.

Every test adds what it did to :class:`Tally` (which promise, how it was attacked, how many
times, what happened) *before* it asserts, so a failing run is counted too. When
``RELIABILITY_RESULTS`` names a file, the tally and every test's outcome are written there as
JSON at the end of the session; ``tests/reliability/make_report.py`` turns that file into
``docs/RELIABILITY.md``. ``RELIABILITY_LONG=1`` selects the long versions (run_long.py).
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pytest

RESULTS_ENV = "RELIABILITY_RESULTS"


@dataclass(slots=True)
class Entry:
    promise: str
    attack: str
    count: int
    unit: str
    happened: str
    ok: bool
    test: str = ""
    facts: dict[str, Any] = field(default_factory=dict)


@dataclass
class Tally:
    entries: list[Entry] = field(default_factory=list)
    outcomes: dict[str, dict[str, Any]] = field(default_factory=dict)
    started: float = field(default_factory=time.time)
    current_test: str = ""

    def add(
        self,
        promise: str,
        attack: str,
        count: int,
        unit: str,
        happened: str,
        *,
        ok: bool,
        **facts: Any,
    ) -> None:
        self.entries.append(
            Entry(promise, attack, count, unit, happened, ok, self.current_test, facts)
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "started": self.started,
            "finished": time.time(),
            "long": os.environ.get("RELIABILITY_LONG", "") not in ("", "0"),
            "machine": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "system": platform.platform(),
            },
            "entries": [asdict(e) for e in self.entries],
            "tests": self.outcomes,
        }


_TALLY = Tally()


@pytest.fixture
def tally(request: pytest.FixtureRequest) -> Iterator[Tally]:
    _TALLY.current_test = request.node.nodeid
    yield _TALLY
    _TALLY.current_test = ""


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    entry = _TALLY.outcomes.setdefault(
        report.nodeid, {"outcome": "passed", "duration": 0.0, "message": ""}
    )
    entry["duration"] = round(entry["duration"] + report.duration, 2)
    if report.failed:
        entry["outcome"] = "failed" if report.when == "call" else f"error in {report.when}"
        entry["message"] = str(report.longrepr)[-1500:]
    elif report.skipped and report.when in ("setup", "call"):
        entry["outcome"] = "skipped"


def pytest_sessionfinish(session: pytest.Session) -> None:
    target = os.environ.get(RESULTS_ENV)
    if target:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        Path(target).write_text(
            json.dumps(_TALLY.as_json(), ensure_ascii=False, indent=1), encoding="utf-8"
        )
