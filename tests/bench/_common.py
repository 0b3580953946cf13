"""What the benchmarks share: the client, the sink, the floor, child processes, RSS and CPU.

Every benchmark in this directory measures with the same pieces, so their figures compare:

* the **sink** (``python _common.py sink PORT``) — counts what arrives, remembers each
  dossier id once with its first arrival time (wall clock), can be told to fail (HTTP 500);
* the **floor** (``python _common.py floor PORT SINK_PORT``) — a bare aiohttp forwarder:
  receive, forward to the sink, answer 202;
* the **client** (:func:`push_all`, :func:`push_paced`) — signed ~2 KB dossiers over
  ``aiohttp`` with C concurrent connections;
* children (:func:`spawn`), whose output goes to files under ``$TMPDIR/gateway-bench-logs``
  and which are always stopped (:func:`stop`, :func:`kill_tree`) by the caller's ``finally``;
* RSS and CPU read from ``/proc`` (:class:`RssSampler` sums a process tree).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parents[1]
COMMON = BENCH / "_common.py"
SECRET = "bench-secret-7c2e9a41b8d3f6051e4d"
LOG_DIR = Path(tempfile.gettempdir()) / "gateway-bench-logs"
_ID = re.compile(rb'"id":\s*"([^"]*)"')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def machine_line() -> str:
    model = "?"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = 0
    with contextlib.suppress(OSError), open("/proc/meminfo") as f:
        mem = int(f.readline().split()[1]) // 1024 // 1024
    load = os.getloadavg()[0]
    return (
        f"{os.cpu_count()} cores ({model}), {mem} GiB, Python {sys.version.split()[0]}, "
        f"load average {load:.1f} at start"
    )


# -- child processes --------------------------------------------------------------------------
def run_sink(port: int) -> None:
    web.run_app(sink_app(), host="127.0.0.1", port=port, print=None, access_log=None)


def sink_app() -> web.Application:
    """Count arrivals; remember each dossier id's first arrival; fail on request."""
    state: dict[str, Any] = {"count": 0, "fail": False, "first": None, "last": None}
    keys: set[str] = set()
    arrivals: dict[str, float] = {}

    async def receive(request: web.Request) -> web.Response:
        body = await request.read()
        now = time.time()
        if state["fail"]:
            return web.json_response({"error": "sink told to fail"}, status=500)
        state["count"] += 1
        state["first"] = state["first"] or now
        state["last"] = now
        found = _ID.search(body)
        ident = found.group(1).decode() if found else f"#{state['count']}"
        arrivals.setdefault(ident, now)
        keys.add(request.headers.get("Idempotency-Key", ident))
        return web.json_response({"ok": True})

    async def stats(request: web.Request) -> web.Response:
        return web.json_response(
            {
                "received": state["count"],
                "distinct": len(arrivals),
                "keys": len(keys),
                "first_at": state["first"],
                "last_at": state["last"],
            }
        )

    async def arrived(request: web.Request) -> web.Response:
        prefix = request.query.get("prefix", "")
        return web.json_response({k: t for k, t in arrivals.items() if k.startswith(prefix)})

    async def reset(request: web.Request) -> web.Response:
        state.update(count=0, first=None, last=None)
        keys.clear()
        arrivals.clear()
        return web.json_response({"ok": True})

    async def mode(request: web.Request) -> web.Response:
        state["fail"] = request.query.get("fail") == "1"
        return web.json_response({"fail": state["fail"]})

    app = web.Application(client_max_size=10 * 1024 * 1024)
    app.router.add_post("/receive", receive)
    app.router.add_post("/inbound/{system}", receive)  # so a client can hit the sink directly
    app.router.add_get("/stats", stats)
    app.router.add_get("/arrivals", arrived)
    app.router.add_post("/reset", reset)
    app.router.add_post("/mode", mode)
    return app


def run_floor(port: int, sink_port: int) -> None:
    async def on_start(app: web.Application) -> None:
        app["session"] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64))

    async def on_stop(app: web.Application) -> None:
        await app["session"].close()

    async def forward(request: web.Request) -> web.Response:
        body = await request.read()
        async with request.app["session"].post(
            f"http://127.0.0.1:{sink_port}/receive",
            data=body,
            headers={"Content-Type": "application/json"},
        ) as resp:
            await resp.read()
        return web.json_response({"accepted": 1}, status=202)

    app = web.Application(client_max_size=10 * 1024 * 1024)
    app.router.add_post("/inbound/{system}", forward)
    app.on_startup.append(on_start)
    app.on_cleanup.append(on_stop)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def spawn(
    *args: str,
    name: str = "child",
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start a child in its own process group; its output goes to a file (a pipe nobody
    reads would stall it)."""
    LOG_DIR.mkdir(exist_ok=True)
    out = (LOG_DIR / f"{name}.log").open("ab")
    out.write(f"\n--- {time.strftime('%H:%M:%S')} {' '.join(args)}\n".encode())
    out.flush()
    return subprocess.Popen(
        args,
        stdout=out,
        stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        start_new_session=True,
        preexec_fn=_die_with_parent,
    )


def _die_with_parent() -> None:
    """In the child: SIGKILL me if the benchmark process dies (Linux prctl PDEATHSIG)."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def stop(proc: subprocess.Popen[bytes] | None, timeout: float = 15.0) -> None:
    """SIGTERM, then SIGKILL the whole group if it has not stopped within ``timeout``."""
    if proc is None:
        return
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            kill_tree(proc)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # stragglers of the group (worker children)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(5)


def kill_tree(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the child and every process of its group, at once (a crash, not a stop)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(10)


async def wait_http(url: str, timeout: float = 30.0, interval: float = 0.1) -> float:
    """Poll until ``url`` answers below 500; return the time.time() it first did."""
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as s:
        while time.monotonic() < deadline:
            try:
                async with s.get(url) as r:
                    if r.status < 500:
                        return time.time()
            except (aiohttp.ClientError, TimeoutError):
                pass
            await asyncio.sleep(interval)
    raise RuntimeError(f"{url} did not come up within {timeout:g}s")


# -- the client -------------------------------------------------------------------------------
def dossier(
    i: int, run_id: str, *, event: str | None = None, sent_at: float | None = None
) -> bytes:
    item: dict[str, Any] = {
        "id": f"{run_id}-{i:07d}",
        "key": f"000.00.12.H06-200803-{i:04d}",
        "MaTTHC": "1.001776",
        "ChuHoSo": "Hoàng Thị Lan",
        "TrichYeuHoSo": "Đề nghị trợ cấp xã hội hàng tháng " * 3,
        "ThongTinNguoiNop": {
            "SoDinhDanh": "006135001234",
            "DiaChiChiTiet": "Thôn Bản Cuôn, xã Ngọc Phái",
        },
        "TaiLieuNop": [
            {
                "TepDinhKemId": f"f{j}",
                "TenTepDinhKem": f"Mẫu {j}.pdf",
                "DuongDanTaiTepTin": f"https://motcua.example/files/{i}/{j}",
            }
            for j in range(12)
        ],
    }
    if event is not None:
        item["event"] = event
    if sent_at is not None:
        item["sent_at"] = sent_at
    return json.dumps({"data": [item]}, ensure_ascii=False).encode()


@dataclass
class PushResult:
    latencies: list[float] = field(default_factory=list)
    acked: dict[str, float] = field(default_factory=dict)  # id -> time.time() of the 202
    sent: dict[str, float] = field(default_factory=dict)  # id -> time.time() it was sent
    errors: int = 0
    retried_503: int = 0


async def push_all(
    url: str,
    n: int,
    concurrency: int,
    sign: bool,
    run_id: str,
    *,
    tolerate_errors: bool = False,
    on_ack: Callable[[int], None] | None = None,
    timeout: float = 120.0,
    event_for: Callable[[int], str | None] = lambda i: None,
) -> PushResult:
    """Push ``n`` dossiers with ``concurrency`` connections; each is retried on 503.

    ``tolerate_errors``: a connection error or a non-202 ends that worker (crash tests);
    otherwise it raises. ``on_ack(acked so far)`` is called after every 202.
    """
    from gateway.signing import sign as hmac_sign

    out = PushResult()
    counter = iter(range(n))
    conn = aiohttp.TCPConnector(limit=concurrency)
    client_timeout = aiohttp.ClientTimeout(total=timeout)
    async with aiohttp.ClientSession(connector=conn, timeout=client_timeout) as s:

        async def worker() -> None:
            for i in counter:
                body = dossier(i, run_id, event=event_for(i))
                headers = {"Content-Type": "application/json"}
                if sign:
                    headers.update(hmac_sign(SECRET, body))
                while True:
                    t0 = time.perf_counter()
                    try:
                        async with s.post(url, data=body, headers=headers) as r:
                            await r.read()
                            status = r.status
                            retry_after = float(r.headers.get("Retry-After", "1"))
                    except (aiohttp.ClientError, TimeoutError, OSError):
                        if tolerate_errors:
                            out.errors += 1
                            return
                        raise
                    if status == 503:
                        out.retried_503 += 1
                        await asyncio.sleep(retry_after)
                        continue
                    if status != 202:
                        if tolerate_errors:
                            out.errors += 1
                            return
                        raise RuntimeError(f"HTTP {status}")
                    out.latencies.append(time.perf_counter() - t0)
                    out.acked[f"{run_id}-{i:07d}"] = time.time()
                    if on_ack is not None:
                        on_ack(len(out.acked))
                    break

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return out


async def push_paced(
    url: str,
    rate: float,
    seconds: float,
    run_id: str,
    *,
    event_for: Callable[[int], str | None] = lambda i: None,
    max_in_flight: int = 256,
) -> PushResult:
    """Open loop: start one signed dossier every ``1/rate`` s for ``seconds``, whatever the
    answers take (a fixed offered load, so latency is not hidden by a slower client)."""
    from gateway.signing import sign as hmac_sign

    out = PushResult()
    n = int(rate * seconds)
    gate = asyncio.Semaphore(max_in_flight)
    conn = aiohttp.TCPConnector(limit=max_in_flight)
    async with aiohttp.ClientSession(connector=conn, timeout=aiohttp.ClientTimeout(total=60)) as s:

        async def one(i: int) -> None:
            async with gate:
                sent_at = time.time()
                out.sent[f"{run_id}-{i:07d}"] = sent_at
                body = dossier(i, run_id, event=event_for(i), sent_at=sent_at)
                headers = {"Content-Type": "application/json", **hmac_sign(SECRET, body)}
                t0 = time.perf_counter()
                try:
                    async with s.post(url, data=body, headers=headers) as r:
                        await r.read()
                        ok = r.status == 202
                except (aiohttp.ClientError, TimeoutError):
                    ok = False
                if ok:
                    out.latencies.append(time.perf_counter() - t0)
                    out.acked[f"{run_id}-{i:07d}"] = time.time()
                else:
                    out.errors += 1

        start = time.perf_counter()
        tasks = []
        for i in range(n):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
    return out


# -- the sink from outside ----------------------------------------------------------------------
async def sink_stats(sink: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as s, s.get(f"{sink}/stats") as r:
        data: dict[str, Any] = await r.json()
        return data


async def sink_arrivals(sink: str, prefix: str = "") -> dict[str, float]:
    async with aiohttp.ClientSession() as s, s.get(f"{sink}/arrivals?prefix={prefix}") as r:
        data: dict[str, float] = await r.json()
        return data


async def reset_sink(sink: str) -> None:
    async with aiohttp.ClientSession() as s, s.post(f"{sink}/reset") as r:
        await r.read()


async def sink_fail(sink: str, fail: bool) -> None:
    async with aiohttp.ClientSession() as s, s.post(f"{sink}/mode?fail={int(fail)}") as r:
        await r.read()


async def wait_delivered(sink: str, n: int, timeout: float, *, raise_: bool = True) -> bool:
    """Wait until the sink holds ``n`` distinct dossiers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (await sink_stats(sink))["distinct"] >= n:
            return True
        await asyncio.sleep(0.02)
    if raise_:
        raise RuntimeError(f"sink did not receive {n} dossiers within {timeout}s")
    return False


async def wait_quiet(sink: str, want: set[str], timeout: float, quiet: float = 5.0) -> int:
    """Wait until every id in ``want`` arrived, or nothing new arrived for ``quiet``
    seconds, or ``timeout``; return how many of ``want`` arrived."""
    deadline = time.monotonic() + timeout
    last_count, last_change = -1, time.monotonic()
    got = 0
    while time.monotonic() < deadline:
        arrived = await sink_arrivals(sink)
        got = len(want.intersection(arrived))
        if got >= len(want):
            return got
        if len(arrived) != last_count:
            last_count, last_change = len(arrived), time.monotonic()
        elif time.monotonic() - last_change >= quiet:
            return got
        await asyncio.sleep(0.25)
    return got


# -- /proc ----------------------------------------------------------------------------------------
def _status_kb(pid: int, key: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_mb(pid: int) -> float:
    """Peak RSS (VmHWM) of one process so far."""
    return _status_kb(pid, "VmHWM:") / 1024


def tree(pid: int) -> list[int]:
    """``pid`` and all its descendants."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except OSError:
            continue
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (its reaped children not included)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return 0.0


def tree_cpu(roots: Iterable[int]) -> float:
    return sum(cpu_seconds(p) for r in roots for p in tree(r))


class RssSampler:
    """Sample the summed RSS (VmRSS) of the process trees under ``roots`` every
    ``interval`` s in a thread; ``peak`` is the largest sum seen, ``samples`` all of them."""

    def __init__(self, roots: Iterable[int], interval: float = 0.2) -> None:
        self.roots = list(roots)
        self.interval = interval
        self.peak = 0.0
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> float:
        total = sum(_status_kb(p, "VmRSS:") for r in self.roots for p in tree(r)) / 1024
        self.peak = max(self.peak, total)
        self.samples.append((time.monotonic(), total))
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sample()


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


# -- the gateway --------------------------------------------------------------------------------
def gateway_config(
    directory: Path,
    port: int,
    sink_port: int,
    *,
    concurrency: int = 32,
    extra: str = "",
    routes: str | None = None,
) -> Path:
    path = directory / "gateway.toml"
    default_routes = '[[routes]]\nfrom = "src"\nevent = "message.received"\nto = ["sink"]\n'
    path.write_text(
        f"""
[gateway]
listen = "127.0.0.1:{port}"
database = "sqlite:///{directory}/gw.db"
node_id = "bench"
log_format = "json"
poll_interval = 0.5

[systems.src]
plugin = "http_json"
inbound_secret = "{SECRET}"
key_field = "key"

[systems.sink]
plugin = "http_json"
base_url = "http://127.0.0.1:{sink_port}"
path = "/receive"
concurrency = {concurrency}
{extra}
{default_routes if routes is None else routes}
""",
        encoding="utf-8",
    )
    return path


def spawn_gateway(config: Path, name: str = "gateway") -> subprocess.Popen[bytes]:
    return spawn(sys.executable, "-m", "gateway.cli", "run", "--config", str(config), name=name)


class Subject:
    """A system under test: processes started by :meth:`start` (again after a crash, on the
    state it kept), an inbound URL, and whether the client signs its requests."""

    label = "?"
    sign = False

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []
        self.url = ""

    async def start(self) -> None:
        raise NotImplementedError

    def roots(self) -> list[int]:
        return [p.pid for p in self.procs if p.poll() is None]

    def stop(self) -> None:
        for proc in reversed(self.procs):
            stop(proc)
        self.procs = []

    def crash(self) -> None:
        """SIGKILL every process of the system at the same moment."""
        for proc in self.procs:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        for proc in self.procs:
            kill_tree(proc)
        self.procs = []


class Floor(Subject):
    label = "bare aiohttp forwarder (floor)"

    def __init__(self, sink_port: int) -> None:
        super().__init__()
        self.sink_port = sink_port

    async def start(self) -> None:
        port = free_port()
        self.procs = [
            spawn(
                sys.executable, str(COMMON), "floor", str(port), str(self.sink_port), name="floor"
            )
        ]
        self.url = f"http://127.0.0.1:{port}/inbound/src"
        await wait_http(self.url.replace("/src", "/x"))


class Gateway(Subject):
    label = "gateway, SQLite synchronous=FULL"
    sign = True

    def __init__(self, directory: Path, sink_port: int) -> None:
        super().__init__()
        self.port = free_port()
        self.config = gateway_config(directory, self.port, sink_port)
        self.url = f"http://127.0.0.1:{self.port}/inbound/src"

    async def start(self) -> None:
        self.procs = [spawn_gateway(self.config)]
        await wait_http(f"http://127.0.0.1:{self.port}/healthz")


async def measure(
    subject: Subject,
    n: int,
    c: int,
    sink: str,
    *,
    profile: Path | None = None,
    tag: str = "run",
) -> dict[str, Any]:
    """Throughput end to end: from the first request until the sink holds all ``n``
    (for a forwarder that answers after forwarding, that is when the last answer came)."""
    await reset_sink(sink)
    warm = min(200, n)
    await push_all(subject.url, warm, c, subject.sign, f"warm{tag}")
    await wait_delivered(sink, warm, 60)
    await reset_sink(sink)
    roots = subject.roots()
    cpu0 = tree_cpu(roots)
    spy = None
    with RssSampler(roots) as rss:
        t0 = time.perf_counter()
        if profile is not None:
            spy = py_spy_record(roots[0], 5, profile, name="py-spy")
        pushed = await push_all(subject.url, n, c, subject.sign, tag)
        accepted_at = time.perf_counter() - t0
        await wait_delivered(sink, n, 600)
        elapsed = time.perf_counter() - t0
    cpu = tree_cpu(roots) - cpu0
    await asyncio.sleep(0.5)  # anything sent twice would arrive now
    stats = await sink_stats(sink)
    if spy is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            spy.wait(30)
        stop(spy)
    return {
        "label": subject.label,
        "rate": n / elapsed,
        "accept_rate": n / accepted_at,
        "p50": pct(pushed.latencies, 50),
        "p99": pct(pushed.latencies, 99),
        "rss": rss.peak,
        "rss_hwm": sum(rss_mb(p) for r in roots for p in tree(r)),
        "cpu": cpu / elapsed,
        "delivered": stats["distinct"],
        "duplicates": stats["received"] - stats["distinct"],
        "seconds": elapsed,
    }


async def crash_test(
    subject: Subject, n: int, c: int, sink: str, kill_after: int, tag: str = "crash"
) -> dict[str, Any]:
    """Push ``n``; once the client holds ``kill_after`` acknowledgements SIGKILL the whole
    system; start it again on what it kept; count the acknowledged dossiers that reach the
    sink (waiting until all did, or nothing new came for 15 s, at most 90 s)."""
    await reset_sink(sink)
    crashed_at: list[float] = []

    def on_ack(count: int) -> None:
        if count >= kill_after and not crashed_at:
            crashed_at.append(time.monotonic())
            subject.crash()

    pushed = await push_all(
        subject.url, n, c, subject.sign, tag, tolerate_errors=True, on_ack=on_ack, timeout=30
    )
    acked = set(pushed.acked)
    before = len(set(await sink_arrivals(sink)) & acked)
    t0 = time.monotonic()
    await subject.start()
    restarted = time.monotonic() - t0
    kept = await wait_quiet(sink, acked, timeout=90, quiet=15)
    stats = await sink_stats(sink)
    return {
        "duplicates": stats["received"] - stats["distinct"],
        "acked": len(acked),
        "at_sink_before_restart": before,
        "kept": kept,
        "lost": len(acked) - kept,
        "restart_s": restarted,
    }


# -- py-spy -----------------------------------------------------------------------------------
def py_spy_record(pid: int, seconds: float, out: Path, name: str) -> subprocess.Popen[bytes]:
    """Sample ``pid`` for ``seconds`` at 250 Hz into a collapsed-stack file (``-f raw``)."""
    exe = Path(sys.executable).parent / "py-spy"
    return spawn(
        str(exe if exe.exists() else "py-spy"),
        "record",
        "-p",
        str(pid),
        "-d",
        str(max(1, round(seconds))),
        "-r",
        "250",
        "-f",
        "raw",
        "-o",
        str(out),
        "--threads",
        "--nonblocking",
        name=name,
    )


def _frame_name(frame: str) -> str:
    """``fn (path/to/file.py:123)`` -> ``fn (file.py)``, merging a function's lines."""
    m = re.match(r"(.*?) \((.*?)(?::\d+)?\)$", frame)
    if not m:
        return frame
    fn, path = m.groups()
    parts = Path(path).parts
    for anchor in ("gateway", "plugins", "site-packages", "lib"):
        if anchor in parts:
            tail = parts[parts.index(anchor) + 1 :] if anchor != "gateway" else parts[-2:]
            if anchor in ("gateway", "plugins"):
                tail = parts[parts.index(anchor) :]
            return f"{fn} ({'/'.join(tail[-3:])})"
    return f"{fn} ({Path(path).name})"


#: leaf frames of a thread that waits (not counted as work)
IDLE_LEAVES = (
    "EpollSelector.select",
    "select (selectors.py",
    "_worker (concurrent/futures/thread.py:81)",
    "_wait_for_tstate_lock",
    "Condition.wait",
)
#: frames too general to name a hotspot (everything is under them)
ENTRY = re.compile(
    r"(cli/|runpy|click/|run_app|run_forever|run_until_complete|_run_once|Handle\._run"
    r"|Thread\.|_bootstrap|_worker|_WorkItem)"
)


def hotspots(raw: Path, top: int = 20) -> str:
    """Where the active (not waiting) samples of a py-spy ``-f raw`` file went: by thread,
    self time per function, and inclusive time of the gateway's and plugins' own functions."""
    if not raw.exists():
        return f"(no profile: {raw} missing)"
    self_t: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    ours: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    idle: Counter[str] = Counter()
    active = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        thread = frames[0].split(": ", 1)[-1][:24]
        threads[thread] += n
        if len(frames) == 1 or any(
            frames[-1].startswith(x) or x in frames[-1] for x in IDLE_LEAVES
        ):
            idle[thread] += n
            continue
        active += n
        names = [_frame_name(f) for f in frames[1:]]
        self_t[names[-1]] += n
        for name in set(names):
            if ENTRY.search(name):
                continue
            incl[name] += n
            if "(gateway/" in name or "(plugins/" in name:
                ours[name] += n
    if not active:
        return "(no active samples)"
    total = sum(threads.values())
    out = [
        f"{total} samples, {active} active (not waiting); by thread (active/all): "
        + ", ".join(f"{t} {c - idle[t]}/{c}" for t, c in threads.most_common(4)),
        f"  {'self %':>7}  function (share of active samples)",
    ]
    out += [f"  {c * 100 / active:7.1f}  {f}" for f, c in self_t.most_common(top)]
    out.append(f"  {'incl %':>7}  the gateway's and plugins' own functions, inclusive")
    out += [f"  {c * 100 / active:7.1f}  {f}" for f, c in ours.most_common(top)]
    out.append(f"  {'incl %':>7}  any function, inclusive")
    out += [f"  {c * 100 / active:7.1f}  {f}" for f, c in incl.most_common(top)]
    return "\n".join(out)


def dump_json(path: str | None, data: dict[str, Any]) -> None:
    if path:
        Path(path).write_text(json.dumps(data, indent=1, default=str), encoding="utf-8")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    if sys.argv[1] == "sink":
        run_sink(int(sys.argv[2]))
    elif sys.argv[1] == "floor":
        run_floor(int(sys.argv[2]), int(sys.argv[3]))
    else:
        raise SystemExit(f"unknown role {sys.argv[1]!r}: sink PORT | floor PORT SINK_PORT")
