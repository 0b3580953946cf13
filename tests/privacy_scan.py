"""Privacy scan of the whole test run: no unmasked CCCD and no full name in any log line or
error message the run produced (a pytest plugin, loaded by ``tests/conftest.py``).

* At start it points the gateway's production logging (JSON, masked: ``configure_logging``)
  at a file in one directory for the run, ``$GATEWAY_TEST_LOG_DIR`` (created when unset), and
  exports that variable so gateway child processes started by tests write their output there
  too (``tests/reliability/reliability_kit.py`` does; so may any test).
* While the run goes, it scans every test's captured stdout, stderr and log records.
* At the end it scans every file in the directory, lists what it found in the terminal
  summary (masked again, so the summary leaks nothing) and fails the run if anything was found.

An unmasked CCCD is a run of exactly 12 digits standing alone (the mask leaves ``********``
and four digits), or 12 digits written in groups of three or four (``006 135 001 234``,
``0061.3500.1234``). Keys count as much as text: a dossier key or reference holding a CCCD
(``02053:006135001234``) is a finding. Exports the tests write into the directory (``.csv``)
are scanned too. A full name is a name the simulators and fixtures use: family name, one or
two middle names and a given name from :mod:`plugins.vn_common.names`, or a literal name given
to a personal-name field in the test and plugin sources; NFC and NFD, raw or JSON-escaped.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ENV = "GATEWAY_TEST_LOG_DIR"
ROOT = Path(__file__).resolve().parent.parent
MAX_REPORTED = 30

_CCCD = re.compile(r"(?<![0-9A-Za-z])\d{12}(?![0-9A-Za-z])")
_GROUPED_CCCD = re.compile(
    r"(?<![0-9A-Za-z])(?:\d{3}([ .])\d{3}\1\d{3}\1\d{3}|\d{4}([ .])\d{4}\2\d{4})(?![0-9A-Za-z])"
)
_JSON_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")
_NAME_LITERAL = re.compile(
    r"""(?:"(?:hoTen|ChuHoSo|TenNguoiNop|HoTen|TenDoiTuong)"\s*:\s*"|hoTen=")([^"{}\\.]+)\""""
)


def _alternatives(words: set[str]) -> str:
    return "|".join(sorted((re.escape(w) for w in words), key=len, reverse=True))


def name_pattern(extra: set[str] | frozenset[str] = frozenset()) -> re.Pattern[str]:
    from plugins.vn_common import names

    family = _alternatives(set(names.FAMILY_NAMES))
    middle = _alternatives(set(names.MIDDLE_NAMES_MALE) | set(names.MIDDLE_NAMES_FEMALE))
    given = _alternatives(set(names.GIVEN_NAMES_MALE) | set(names.GIVEN_NAMES_FEMALE))
    generated = rf"(?:{family})\s+(?:{middle})(?:\s+(?:{middle}))?\s+(?:{given})"
    literal = _alternatives({unicodedata.normalize("NFC", n) for n in extra})
    body = f"{generated}|{literal}" if literal else generated
    return re.compile(rf"(?<!\w)(?:{body})(?!\w)")


def literal_names(*roots: Path) -> set[str]:
    """Names written literally into personal-name fields of the sources (fixtures, tests)."""
    found: set[str] = set()
    for root in roots:
        for path in root.rglob("*.py"):
            text = path.read_text(encoding="utf-8", errors="replace")
            for m in _NAME_LITERAL.finditer(text):
                value = unicodedata.normalize("NFC", m.group(1)).strip()
                if len(value.split()) >= 2:
                    found.add(value)
    return found


def normalised(text: str) -> str:
    if "\\u" in text:
        text = _JSON_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text)
    return unicodedata.normalize("NFC", text)


def mask_excerpt(text: str, names: re.Pattern[str]) -> str:
    text = _CCCD.sub(lambda m: "*" * 8 + m.group(0)[-4:], text)
    text = _GROUPED_CCCD.sub(lambda m: "*" * 8 + m.group(0)[-4:], text)
    return names.sub(lambda m: " ".join(f"{w[0]}." for w in m.group(0).split()), text)


@dataclass
class Finding:
    source: str
    kind: str
    excerpt: str


@dataclass
class Scanner:
    names: re.Pattern[str]
    findings: list[Finding] = field(default_factory=list)
    lines: int = 0
    sources: int = 0

    def scan(self, text: str, source: str) -> None:
        self.sources += 1
        for line in normalised(text).splitlines():
            self.lines += 1
            for kind, pattern in (
                ("CCCD", _CCCD),
                ("CCCD", _GROUPED_CCCD),
                ("full name", self.names),
            ):
                for m in pattern.finditer(line):
                    lo, hi = max(0, m.start() - 60), min(len(line), m.end() + 60)
                    excerpt = mask_excerpt(line[lo:hi], self.names)
                    self.findings.append(Finding(source, kind, excerpt))

    def summary(self) -> dict[str, Any]:
        return {
            "sources": self.sources,
            "lines": self.lines,
            "findings": len(self.findings),
            "by_kind": {k: sum(f.kind == k for f in self.findings) for k in ("CCCD", "full name")},
            "examples": [f.__dict__ for f in self.findings[:MAX_REPORTED]],
        }


class PrivacyScan:
    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        given = os.environ.get(ENV)
        self.keep = bool(given)
        self.directory = Path(given or tempfile.mkdtemp(prefix="gateway-test-logs-"))
        self.directory.mkdir(parents=True, exist_ok=True)
        os.environ[ENV] = str(self.directory)
        names = literal_names(ROOT / "tests", ROOT / "plugins")
        self.scanner = Scanner(name_pattern(names))
        self.log_file = (self.directory / f"in-process-{os.getpid()}.log").open(
            "a", encoding="utf-8"
        )
        self._configure_logging()

    def _configure_logging(self) -> None:
        from gateway.log import configure_logging

        configure_logging("json", stream=self.log_file)

    # -- hooks -------------------------------------------------------------------------------
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for title, content in report.sections:
            if content:
                self.scanner.scan(content, f"{report.nodeid} [{title}]")

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self.log_file.flush()
        for path in sorted(self.directory.rglob("*")):
            if path.is_file() and path.suffix in (".log", ".txt", ".jsonl", ".json", ".csv"):
                if path.name == "privacy-scan.json":
                    continue
                text = path.read_text(encoding="utf-8", errors="replace")
                self.scanner.scan(text, str(path.relative_to(self.directory)))
        summary = self.scanner.summary()
        (self.directory / "privacy-scan.json").write_text(
            json.dumps(summary, ensure_ascii=False, indent=1), encoding="utf-8"
        )
        if self.scanner.findings:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        s = self.scanner
        tr = terminalreporter
        if not s.findings:
            tr.write_line(
                f"privacy scan: {s.lines} lines from {s.sources} logs and captures, "
                "no unmasked CCCD or full name"
            )
            return
        tr.section("privacy scan: personal data found unmasked", red=True)
        for f in s.findings[:MAX_REPORTED]:
            tr.write_line(f"{f.kind} in {f.source}: …{f.excerpt}…")
        if len(s.findings) > MAX_REPORTED:
            tr.write_line(f"… and {len(s.findings) - MAX_REPORTED} more")
        tr.write_line(f"logs kept in {self.directory}")

    def pytest_unconfigure(self) -> None:
        self.log_file.close()
        if not self.keep and not self.scanner.findings:
            shutil.rmtree(self.directory, ignore_errors=True)


def pytest_configure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput"):  # under xdist the controller scans
        config.pluginmanager.register(PrivacyScan(config), "gateway-privacy-scan")
