"""The reliability suite's tools: gateway subprocesses, a recording receiver, a pushing client.

Everything here talks to real processes and real sockets on loopback:

* :class:`GatewayProcess` runs ``gateway run --config PATH`` as a child (its log goes to a
  file under :func:`log_dir`, which the privacy scan reads), and kills, stops and restarts it;
* :class:`Receiver` is an aiohttp server in the test's event loop that records every request
  (arrival, Idempotency-Key, the envelope's id, dossier and revision, what it answered);
* :class:`Pusher` keeps sending signed dossiers to ``/inbound/src`` from several workers,
  revisions of a dossier one after the other, and records every id answered 202 (accepted or
  duplicate). A request whose answer was lost is sent again, as a real system would.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from gateway.signing import sign

ROOT = Path(__file__).resolve().parents[2]
SECRET = "reliability-secret-7c2e9a41b8d3f6051e4d"
#: Set by tests/privacy_scan.py for the whole run; every child's output is written under it.
LOG_DIR_ENV = "GATEWAY_TEST_LOG_DIR"
LONG = os.environ.get("RELIABILITY_LONG", "") not in ("", "0")


def log_dir() -> Path:
    path = Path(
        os.environ.get(LOG_DIR_ENV) or Path(tempfile.gettempdir()) / "gateway-reliability-logs"
    )
    path.mkdir(parents=True, exist_ok=True)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- configuration ---------------------------------------------------------------------------
def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def to_toml(data: dict[str, Any]) -> str:
    """TOML for the shapes a gateway config has: tables, tables of tables, arrays of tables."""
    out: list[str] = []
    for name, value in data.items():
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for entry in value:
                out.append(f"[[{name}]]")
                out.extend(f"{k} = {_toml_value(v)}" for k, v in entry.items())
                out.append("")
        elif isinstance(value, dict):
            nested = {k: v for k, v in value.items() if isinstance(v, dict) and name == "systems"}
            plain = {k: v for k, v in value.items() if k not in nested}
            if plain:
                out.append(f"[{name}]")
                out.extend(f"{k} = {_toml_value(v)}" for k, v in plain.items())
                out.append("")
            for sub, table in nested.items():
                out.append(f"[{name}.{sub}]")
                out.extend(f"{k} = {_toml_value(v)}" for k, v in table.items())
                out.append("")
        else:
            out.append(f"{name} = {_toml_value(value)}")
    return "\n".join(out) + "\n"


def gateway_config(
    directory: Path,
    port: int,
    destinations: dict[str, str],
    *,
    node_id: str = "rel",
    gateway: dict[str, Any] | None = None,
    limits: dict[str, Any] | None = None,
    system: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A config with one signed JSON source ``src`` routed to each JSON destination given
    (name -> base URL); revisions are keyed by ``key`` so order per dossier applies."""
    dest: dict[str, Any] = {
        "plugin": "http_json",
        "path": "/receive",
        "timeout": {"connect": 1, "read": 3},
        "concurrency": 8,
        "retry": {"initial": 0.1, "multiplier": 2, "max": 0.5, "jitter": 0.05, "deadline": 600},
        "breaker": {"failures": 1000, "reset_after": 0.5},
        **(system or {}),
    }
    data: dict[str, Any] = {
        "gateway": {
            "listen": f"127.0.0.1:{port}",
            "database": f"sqlite:///{directory}/gw.db",
            "node_id": node_id,
            "poll_interval": 0.05,
            "shutdown_grace": 3,
            "lease_seconds": 30,
            "log_format": "json",
            **(gateway or {}),
        },
        "limits": {**(limits or {})},
        "systems": {
            "src": {
                "plugin": "http_json",
                "inbound_secret": SECRET,
                "key_field": "key",
                "timeout": {"connect": 1, "read": 3},
            },
            **{name: {**dest, "base_url": url} for name, url in destinations.items()},
        },
        "routes": [{"from": "src", "event": "message.received", "to": sorted(destinations)}],
        **(extra or {}),
    }
    if not data["limits"]:
        del data["limits"]
    return data


def write_config(directory: Path, data: dict[str, Any]) -> Path:
    path = directory / "gateway.toml"
    path.write_text(to_toml(data), encoding="utf-8")
    return path


# -- the gateway as a child process ------------------------------------------------------------
class GatewayProcess:
    """``gateway run --config PATH`` in a child process; one log file per start."""

    def __init__(self, config: Path, port: int, name: str = "gateway") -> None:
        self.config = config
        self.port = port
        self.name = name
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.logs: list[Path] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def spawn(self) -> None:
        self.starts += 1
        log = log_dir() / f"{self.name}-{os.getpid()}-{id(self):x}-{self.starts}.log"
        self.logs.append(log)
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gateway.cli", "run", "--config", str(self.config)],
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )

    async def start(self, timeout: float = 30.0) -> None:
        self.spawn()
        await self.wait_ready(timeout)

    async def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as s:
            while time.monotonic() < deadline:
                if self.proc is not None and self.proc.poll() is not None:
                    raise AssertionError(
                        f"gateway exited with {self.proc.returncode} at start: {self.tail()}"
                    )
                with contextlib.suppress(aiohttp.ClientError, OSError):
                    async with s.get(f"{self.url}/healthz") as r:
                        if r.status == 200:
                            return
                await asyncio.sleep(0.05)
        raise AssertionError(f"gateway did not come up in {timeout}s: {self.tail()}")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs at all."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def terminate(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    async def wait_exit(self, timeout: float = 30.0) -> int:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"gateway still running {timeout}s after the signal")
            await asyncio.sleep(0.02)
        return self.proc.returncode

    async def stop(self, timeout: float = 30.0) -> int:
        self.terminate()
        try:
            return await self.wait_exit(timeout)
        finally:
            self.kill()

    def tail(self, n: int = 3000) -> str:
        if not self.logs:
            return ""
        return self.logs[-1].read_text(encoding="utf-8", errors="replace")[-n:]

    def log_text(self) -> str:
        return "".join(p.read_text(encoding="utf-8", errors="replace") for p in self.logs)


def start_child(
    args: list[str], name: str, ready_url: str, timeout: float = 30
) -> subprocess.Popen[bytes]:
    """Start ``python -m gateway.cli ARGS`` (output to the log directory) and wait, without an
    event loop, until ``ready_url`` answers: for module-scoped fixtures."""
    import urllib.request

    log = log_dir() / f"{name}-{os.getpid()}.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", *args],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{name} exited with {proc.returncode}: see {log}")
        try:
            with urllib.request.urlopen(ready_url, timeout=2):
                return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"{ready_url} did not come up in {timeout}s")


def stop_child(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def error_texts(data: bytes) -> str:
    """The error messages of an answer, for the privacy scan. Not the ``ref`` of an item:
    FORMATS.md §4 makes it the sender's own key (for a payment result, a pseudonym)."""
    try:
        answer = json.loads(data)
    except ValueError:
        return data.decode("utf-8", "replace")
    if not isinstance(answer, dict):
        return str(answer)
    errors = [e for r in answer.get("rejected", []) for e in r.get("errors", [])]
    return "\n".join([str(answer.get("message", "")), *map(str, errors)])


def cli(config: Path, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    """Run one ``gateway`` command against the same config (the store it names)."""
    result = subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args, "--config", str(config)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    with (log_dir() / f"cli-{os.getpid()}.log").open("a", encoding="utf-8") as out:
        out.write(result.stdout + result.stderr)
    return result


def db_rows(db: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Read the gateway's database directly (read-only), e.g. after it stopped."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return list(conn.execute(sql, params))
    finally:
        conn.close()


# -- the receiver ------------------------------------------------------------------------------
@dataclass(slots=True)
class Receipt:
    arrived: float
    key: str
    id: str
    dossier_key: str
    revision: int
    payload: dict[str, Any]
    status: int = 0
    answered: float = 0.0


@dataclass
class Receiver:
    """Records what the gateway delivers. ``latency`` (s, uniform from 0) and ``fail_rate``
    (answered 503) make attempts overlap and retries happen; ``stall`` holds every request
    that long before answering."""

    latency: float = 0.0
    fail_rate: float = 0.0
    stall: float = 0.0
    seed: int = 0
    receipts: list[Receipt] = field(default_factory=list)
    in_progress: int = 0
    _rng: random.Random = field(default_factory=random.Random)
    _runner: web.AppRunner | None = None
    port: int = 0

    async def start(self) -> None:
        self._rng.seed(self.seed)
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        self.port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def handle(self, request: web.Request) -> web.Response:
        arrived = time.time()
        body = await request.read()
        try:
            env = json.loads(body)
        except ValueError:
            env = {}
        receipt = Receipt(
            arrived=arrived,
            key=request.headers.get("Idempotency-Key", ""),
            id=str(env.get("id", "")),
            dossier_key=str(env.get("dossier_key", "")),
            revision=int(env.get("revision") or 0),
            payload=env.get("payload") or {},
        )
        self.receipts.append(receipt)
        self.in_progress += 1
        try:
            delay = self.stall or (self._rng.uniform(0, self.latency) if self.latency else 0)
            if delay:
                await asyncio.sleep(delay)
            status = 503 if self.fail_rate and self._rng.random() < self.fail_rate else 200
        finally:
            self.in_progress -= 1
        receipt.status, receipt.answered = status, time.time()
        if status == 503:
            return web.json_response({"error": "busy"}, status=503)
        return web.json_response({"ok": True})

    def delivered(self) -> list[Receipt]:
        """Requests answered 200 (the receiver took them), in arrival order."""
        return [r for r in self.receipts if r.status == 200]

    def keys_delivered(self) -> set[str]:
        return {r.key for r in self.delivered()}


# -- the client --------------------------------------------------------------------------------
@dataclass
class PushStats:
    requests: int = 0
    acknowledged: int = 0
    refused_503: int = 0
    connection_errors: int = 0
    other: dict[int, int] = field(default_factory=dict)


@dataclass
class Pusher:
    """Workers that push signed dossiers until stopped. Each worker owns its dossiers and sends
    a dossier's revisions one after the other (the next only once the previous was answered
    202); one request carries 1-3 items of different dossiers."""

    url: str
    workers: int = 6
    revisions: int = 3
    max_messages: int = 10_000
    seed: int = 0
    filler: int = 400
    acked: dict[str, str] = field(default_factory=dict)  # message id "HS-n/r" -> gateway uid
    sent: set[str] = field(default_factory=set)
    stats: PushStats = field(default_factory=PushStats)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _next: Iterator[int] = field(default_factory=lambda: iter(range(10**9)))
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _session: aiohttp.ClientSession | None = None

    def open(self) -> None:
        """Ready for explicit :meth:`push` calls (no workers)."""
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self.workers),
            timeout=aiohttp.ClientTimeout(total=60),
        )

    def start(self) -> None:
        """Open, and start the workers."""
        self.open()
        self._tasks = [asyncio.create_task(self._worker(i)) for i in range(self.workers)]

    async def stop(self) -> None:
        """Stop starting new dossiers; wait until every request sent is answered 202."""
        self._stop.set()
        await asyncio.gather(*self._tasks)
        if self._session is not None:
            await self._session.close()

    def item(self, n: int, rev: int) -> dict[str, Any]:
        return {
            "id": f"HS-{n}",
            "key": f"HS-{n}",
            "rev": rev,
            "note": "x" * self.filler,
        }

    async def _worker(self, w: int) -> None:
        rng = random.Random(self.seed * 1000 + w)
        while not self._stop.is_set():
            if len(self.sent) >= self.max_messages:
                await asyncio.sleep(0.05)
                continue
            chains = [next(self._next) for _ in range(rng.randint(1, 3))]
            for rev in range(1, self.revisions + 1):
                await self.push([self.item(n, rev) for n in chains])

    async def push(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        """Send until answered 202 (re-signing each time); returns the answer."""
        assert self._session is not None
        body = json.dumps({"data": items}, ensure_ascii=False).encode()
        for it in items:
            self.sent.add(f"{it['id']}/{it['rev']}")
        while True:
            headers = {"Content-Type": "application/json", **sign(SECRET, body)}
            self.stats.requests += 1
            try:
                async with self._session.post(
                    f"{self.url}/inbound/src", data=body, headers=headers
                ) as r:
                    text = await r.text()
                    if r.status == 202:
                        answer: dict[str, Any] = json.loads(text)
                        break
                    if r.status == 503:
                        self.stats.refused_503 += 1
                        wait = min(float(r.headers.get("Retry-After", "1")), 0.5)
                        await asyncio.sleep(wait)
                        continue
                    self.stats.other[r.status] = self.stats.other.get(r.status, 0) + 1
                    raise AssertionError(f"intake answered {r.status}: {text[:300]}")
            except (aiohttp.ClientError, OSError, TimeoutError):
                self.stats.connection_errors += 1
                await asyncio.sleep(0.05)
        by_ref = {e["ref"]: e["id"] for e in answer["accepted"] + answer["duplicates"]}
        assert not answer["rejected"], answer
        for it in items:
            self.acked[f"{it['id']}/{it['rev']}"] = by_ref[it["id"]]
        self.stats.acknowledged += len(items)
        return answer


def uid_of_key(key: str) -> str:
    """The message uid an Idempotency-Key was made from (``<uid>-<destination hash>``)."""
    return key.rsplit("-", 1)[0]
