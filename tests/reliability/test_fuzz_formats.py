"""Fuzzing the three wire formats against a ``gateway run`` child (hypothesis).

For each inbound system (``motcua`` JSON, ``registry`` and ``post_office`` XML) three
strategies (:mod:`.wire_strategies`): valid documents, nearly valid ones (one to three small
mutations) and hostile ones (DTDs, entity bombs, deep nesting, huge attributes, bad
encodings, random bytes). Every case is signed and pushed; the gateway must

* never answer 5xx, never take longer than :data:`HANG_SECONDS`, never die;
* answer in the shape of FORMATS.md §4 (202 with accepted / duplicates / rejected, or
  400 / 413 / 415 with ``{"error", "message"}``);
* accept every item of a valid case;
* and, at the end, have delivered what it accepted to the registry simulator without dead
  letters (what intake accepts, the registry connector can render), with no unhandled error
  in its log and a log that verifies.

Every answer that is not 202, and every rejected item's errors, is written to the privacy
scan's directory. CI runs a bounded sample; ``RELIABILITY_LONG=1`` runs over 10,000 cases.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from gateway.signing import sign
from plugins.one_stop_shop.generator import DossierGenerator

from .reliability_kit import LONG, ROOT, cli, db_rows, error_texts, free_port, log_dir, to_toml
from .wire_strategies import STRATEGIES, Case

SECRETS = {
    "motcua": "z-motcua-7c2e9a41b8d3f6051e4d",
    "registry": "z-registry-7c2e9a41b8d3f6051e4d",
    "post_office": "z-post-7c2e9a41b8d3f6051e4d",
}
HANG_SECONDS = 10.0
MAX_BODY = 10_485_760
EXAMPLES = (
    {"valid": 700, "nearly": 1600, "hostile": 1200}
    if LONG
    else {"valid": 25, "nearly": 60, "hostile": 45}
)
#: hypothesis describes large drawn values while it explains a failure; that is not a failure
pytestmark = pytest.mark.filterwarnings(
    "ignore:Generating overly large repr:hypothesis.errors.HypothesisWarning"
)
FUZZ_SETTINGS = {
    "deadline": None,
    "derandomize": not LONG,
    "database": None,
    "suppress_health_check": list(HealthCheck),
    "print_blob": True,
}


@dataclass
class FuzzTarget:
    port: int
    config: Path
    db: Path
    procs: list[subprocess.Popen[bytes]]
    logs: list[Path]
    answers: Path
    counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    slowest: float = 0.0
    conn: http.client.HTTPConnection | None = None

    def alive(self) -> bool:
        return all(p.poll() is None for p in self.procs)

    def connection(self) -> http.client.HTTPConnection:
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=HANG_SECONDS)
        return self.conn

    def post(self, system: str, case: Case) -> tuple[int, bytes, float]:
        headers = {**sign(SECRETS[system], case.body), "Connection": "keep-alive"}
        if case.content_type:
            headers["Content-Type"] = case.content_type
        t0 = time.monotonic()
        resp: http.client.HTTPResponse | None = None
        try:
            conn = self.connection()
            conn.request("POST", f"/inbound/{system}", body=case.body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            status = resp.status
            if resp.will_close:
                self.reset()
        except (ConnectionError, http.client.HTTPException, OSError):
            self.reset()
            status, data = 0, b""
        finally:
            if resp is not None:
                resp.close()  # a response that took the connection over owns its socket
        return status, data, time.monotonic() - t0

    def reset(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.conn = None

    def record(self, system: str, case: Case, status: int, data: bytes) -> None:
        self.counts[(system, case.kind)] += 1
        self.statuses[(system, status)] += 1
        if status != 202 or b'"errors"' in data:
            with self.answers.open("a", encoding="utf-8") as out:
                out.write(error_texts(data) + "\n")


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{url}: the process exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not come up in {timeout}s")


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzTarget]:
    directory = tmp_path_factory.mktemp("fuzz")
    port, sim_port, nowhere = free_port(), free_port(), free_port()
    system = {"timeout": {"connect": 1, "read": 3}, "concurrency": 4}
    retry = {"initial": 0.2, "multiplier": 2, "max": 1, "jitter": 0, "deadline": 120}
    data = {
        "gateway": {
            "listen": f"127.0.0.1:{port}",
            "database": f"sqlite:///{directory}/gw.db",
            "node_id": "fuzz",
            "poll_interval": 0.05,
            "shutdown_grace": 1,
            "log_format": "json",
        },
        "systems": {
            "motcua": {
                "plugin": "one_stop_shop",
                "base_url": f"http://127.0.0.1:{nowhere}",
                "inbound_secret": SECRETS["motcua"],
                "username": "gateway",
                "password": "secret",
                "madonvi": "000.00.12.H06",
                **system,
            },
            "registry": {
                "plugin": "district_registry",
                "base_url": f"http://127.0.0.1:{sim_port}",
                "inbound_secret": SECRETS["registry"],
                "retry": retry,
                **system,
            },
            "post_office": {
                "plugin": "post_office",
                "base_url": f"http://127.0.0.1:{nowhere}",
                "inbound_secret": SECRETS["post_office"],
                **system,
            },
        },
        "routes": [
            {
                "from": "motcua",
                "event": "dossier.received",
                "procedure": "1.001776",
                "to": ["registry"],
            },
        ],
    }
    config = directory / "gateway.toml"
    config.write_text(to_toml(data), encoding="utf-8")
    logs = [log_dir() / f"fuzz-sim-{os.getpid()}.log", log_dir() / f"fuzz-gw-{os.getpid()}.log"]
    procs: list[subprocess.Popen[bytes]] = []
    target_ref: list[FuzzTarget] = []
    base = [sys.executable, "-m", "gateway.cli"]
    sim_args = ["--set", "refuse_rate=0", "--set", "appraisal_delay=0.1", "--set", "change_rate=0"]
    commands = [
        [
            *base,
            "simulate",
            "registry",
            "--port",
            str(sim_port),
            *sim_args,
            "--config",
            str(config),
        ],
        [*base, "run", "--config", str(config)],
    ]
    try:
        for command, log in zip(commands, logs, strict=True):
            with log.open("wb") as out:
                procs.append(
                    subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
                )
        wait_http(f"http://127.0.0.1:{port}/healthz", procs[1])
        answers = log_dir() / f"fuzz-answers-{os.getpid()}.log"
        target_ref.append(FuzzTarget(port, config, directory / "gw.db", procs, logs, answers))
        yield target_ref[0]
    finally:
        if target_ref:
            target_ref[0].reset()
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()


def check(target: FuzzTarget, system: str, case: Case) -> None:
    status, data, took = target.post(system, case)
    target.slowest = max(target.slowest, took)
    target.record(system, case, status, data)
    assert target.alive(), f"the gateway died on {case!r}"
    assert took < HANG_SECONDS, f"{took:.1f}s for {case!r}"
    if status == 0:  # the gateway closed the connection: only for a body over the limit
        assert len(case.body) > MAX_BODY, f"connection dropped without an answer for {case!r}"
        return
    assert status < 500, f"HTTP {status} {data[:500]!r} for {case!r}"
    answer = json.loads(data)
    if status == 202:
        assert set(answer) == {"accepted", "duplicates", "rejected"}, answer
        for entry in answer["accepted"] + answer["duplicates"]:
            assert isinstance(entry["ref"], str) and isinstance(entry["id"], str), entry
        for entry in answer["rejected"]:
            assert entry["errors"] and all(isinstance(e, str) and e for e in entry["errors"])
    else:
        assert status in (400, 413, 415), f"HTTP {status} {answer} for {case!r}"
        assert set(answer) == {"error", "message"} and answer["message"], answer
    if case.kind == "valid":
        assert status == 202, f"a valid document was refused: {answer} for {case!r}"
        taken = {e["ref"] for e in answer["accepted"] + answer["duplicates"]}
        # a result's ref stands for its CCCD by a keyed pseudonym (********1234-…), never the
        # number itself: a 12-digit ref is found by its masked form
        taken |= {t.split("-", 1)[0] for t in taken if t.startswith("********")}
        wanted = {f"********{r[-4:]}" if len(r) == 12 and r.isdigit() else r for r in case.refs}
        assert not answer["rejected"] and wanted <= taken, (answer, case)
        assert not set(case.refs) & taken - wanted, ("a full CCCD in a ref", answer)


def fuzz(system: str, kind: str) -> Any:
    """A test that runs every example (it does not stop at the first failure, so the counts
    are complete and every distinct failure is listed), then fails if any example did."""

    def test(target: FuzzTarget) -> None:
        failures: dict[str, list[str]] = {}

        @settings(max_examples=EXAMPLES[kind], **FUZZ_SETTINGS)  # type: ignore[arg-type]
        @given(case=STRATEGIES[system][kind])
        def run(case: Case) -> None:
            try:
                check(target, system, case)
            except AssertionError as exc:
                problem = str(exc).splitlines()[0]
                failures.setdefault(problem[:130], []).append(problem[:600])

        run()
        assert not failures, "\n".join(
            f"{len(v)} × {v[0]}" for v in sorted(failures.values(), key=len, reverse=True)[:10]
        )

    test.__name__ = f"test_{system}_{kind}"
    return test


test_motcua_valid = fuzz("motcua", "valid")
test_motcua_nearly_valid = fuzz("motcua", "nearly")
test_motcua_hostile = fuzz("motcua", "hostile")
test_registry_valid = fuzz("registry", "valid")
test_registry_nearly_valid = fuzz("registry", "nearly")
test_registry_hostile = fuzz("registry", "hostile")
test_post_office_valid = fuzz("post_office", "valid")
test_post_office_nearly_valid = fuzz("post_office", "nearly")
test_post_office_hostile = fuzz("post_office", "hostile")


def test_motcua_documents_the_registry_cannot_take(target: FuzzTarget) -> None:
    """Explicit cases the long run found: a document entry without its name or its link, or
    with a link that is not text. Intake must refuse them (rejected item) or deliver them;
    accepted-then-dead-lettered is checked by the next test."""
    gen = DossierGenerator(seed=99, other_procedure_rate=0.0)
    bad_entries = [
        {"TepDinhKemId": "f1", "DuongDanTaiTepTin": "https://motcua.example/f1"},
        {"TepDinhKemId": "f2", "TenTepDinhKem": "Mẫu 1a.pdf"},
        {"TepDinhKemId": "f3", "TenTepDinhKem": "Mẫu 1a.pdf", "DuongDanTaiTepTin": {"a": 1}},
        {"TepDinhKemId": "f4", "TenTepDinhKem": "Mẫu\x01 1a.pdf", "DuongDanTaiTepTin": "x"},
    ]
    for entry in bad_entries:
        item = gen.new_dossier()
        item["TaiLieuNop"] = [entry]
        body = json.dumps({"isUpdating": "False", "data": [item]}).encode()
        case = Case("nearly", body, "application/json", note=f"document entry {entry}")
        status, data, _ = target.post("motcua", case)
        target.record("motcua", case, status, data)
        assert status in (202, 400), (status, data[:300])


def test_after_fuzzing_alive_everything_delivered_log_clean(target: FuzzTarget, tally: Any) -> None:
    """Runs last in this module: the state the fuzzing left behind."""
    alive = target.alive()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        active = db_rows(
            target.db,
            "SELECT count(*) FROM deliveries WHERE status IN ('pending', 'in_flight')",
        )[0][0]
        if not active:
            break
        time.sleep(0.5)
    states = dict(db_rows(target.db, "SELECT status, count(*) FROM deliveries GROUP BY status"))
    dead = db_rows(
        target.db, "SELECT id, last_status, last_error FROM deliveries WHERE status = 'dead'"
    )
    log = "".join(p.read_text(encoding="utf-8", errors="replace") for p in target.logs)
    alarms = {
        word: log.count(word)
        for word in (
            "unhandled_error",
            "parse_raised",
            "connector_raised",
            "Traceback",
            "write_cycle_failed",
        )
    }
    verify = cli(target.config, "log", "verify")
    total = sum(target.counts.values())
    five_xx = sum(n for (_, s), n in target.statuses.items() if s >= 500)
    by_status: Counter[int] = Counter()
    for (_, s), n in target.statuses.items():
        by_status[s] += n
    ok = alive and not dead and not any(alarms.values()) and verify.returncode == 0
    tally.add(
        "Intake never fails on what it is sent (no 5xx, no crash, no hang)",
        "hypothesis: valid, nearly valid and hostile documents of the three wire formats, "
        "signed, against a `gateway run` child routed to the registry simulator",
        total,
        "cases",
        f"answers {dict(sorted(by_status.items()))}"
        f" ({five_xx} 5xx); slowest {target.slowest:.2f} s; gateway "
        f"{'alive' if alive else 'DEAD'}; deliveries {states}; unhandled errors in the log "
        f"{sum(alarms.values())}; log verify {'ok' if verify.returncode == 0 else 'FAILED'}",
        ok=ok and five_xx == 0,
        by_format={f"{s} {k}": n for (s, k), n in sorted(target.counts.items())},
    )
    assert alive
    assert not dead, f"accepted at intake, then dead-lettered (not renderable): {dead[:5]}"
    assert not any(alarms.values()), alarms
    assert verify.returncode == 0, verify.stdout
