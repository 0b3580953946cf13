"""A TCP proxy that breaks links on purpose: slow, throttled, reset, black-holed, cut short.

Put a :class:`FaultProxy` between the gateway and any server (a simulator, the recording
:mod:`gateway.testing.sink`, a real system on a test bench) and point the system's
``base_url`` at ``proxy.url``. Every knob can be changed while traffic flows::

    proxy = FaultProxy("127.0.0.1", simulator_port)
    await proxy.start()                 # listens on 127.0.0.1, any free port
    proxy.set(latency=0.2, bandwidth=16_000)
    proxy.set(blackhole=True)           # from now on nothing goes through, nothing answers
    proxy.set(**PROXY_PROFILES["none"]) # heal the link
    print(proxy.counters.resets)
    await proxy.stop()

It works below HTTP, so it shows what a commune's real link does to a connector: the
request or the answer delayed, dripped, lost, or half-written. Unlike the simulators'
in-process :mod:`gateway.testing.faults` middleware it needs nothing from the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
import time
from dataclasses import asdict, dataclass, field, fields
from types import TracebackType
from typing import Any, Literal

ResetOn = Literal["connect", "request", "response"]

_READ_SIZE = 65_536
#: how long a half-written answer is collected before half of it is sent
_HALF_WRITE_COLLECT = 0.05


@dataclass(slots=True)
class ProxyKnobs:
    """What the proxy does to the traffic; read live, so a change applies at once.

    :param latency: seconds added to every chunk, in each direction (a request/answer
        exchange therefore takes at least ``2 * latency`` longer).
    :param bandwidth: bytes per second per direction and connection (0 = unlimited).
    :param reset_rate: fraction (0..1) of new connections that are reset (TCP RST).
    :param reset_on: when a doomed connection is reset: ``"connect"`` (at once),
        ``"request"`` (once the client has sent its first bytes, which are never forwarded)
        or ``"response"`` (the request reaches the server, the answer is replaced by a
        reset: the case that makes an at-least-once sender resend what was already taken).
    :param blackhole: accept connections and read from them, but forward nothing and
        answer nothing (also applies to connections already open).
    :param half_write: forward only the first half of the server's answer, then close the
        client connection.
    """

    latency: float = 0.0
    bandwidth: int = 0
    reset_rate: float = 0.0
    reset_on: ResetOn = "request"
    blackhole: bool = False
    half_write: bool = False

    def check(self) -> None:
        if self.latency < 0:
            raise ValueError("latency must be >= 0 seconds")
        if self.bandwidth < 0:
            raise ValueError("bandwidth must be >= 0 bytes/s (0 = unlimited)")
        if not 0.0 <= self.reset_rate <= 1.0:
            raise ValueError("reset_rate must be between 0 and 1")
        if self.reset_on not in ("connect", "request", "response"):
            raise ValueError("reset_on must be 'connect', 'request' or 'response'")


#: Named settings of the knobs (``proxy.set(**PROXY_PROFILES["slow"])``); each names every
#: knob, so applying one undoes the previous profile.
PROXY_PROFILES: dict[str, dict[str, Any]] = {
    "none": asdict(ProxyKnobs()),
    "slow": asdict(ProxyKnobs(latency=0.15, bandwidth=64_000)),
    "reset": asdict(ProxyKnobs(reset_rate=1.0, reset_on="request")),
    "reset_after_send": asdict(ProxyKnobs(reset_rate=1.0, reset_on="response")),
    "blackhole": asdict(ProxyKnobs(blackhole=True)),
    "half_write": asdict(ProxyKnobs(half_write=True)),
}


@dataclass(slots=True)
class ProxyCounters:
    """What the proxy has seen and done (cumulative since it was created)."""

    connections: int = 0
    active: int = 0
    resets: int = 0
    blackholed: int = 0
    half_written: int = 0
    upstream_failures: int = 0
    bytes_up: int = 0
    bytes_down: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(slots=True, eq=False)  # identity-hashed: kept in a set
class _Conn:
    client_writer: asyncio.StreamWriter
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    upstream_writer: asyncio.StreamWriter | None = None


class FaultProxy:
    """An asyncio TCP proxy on ``host:port`` in front of ``target_host:target_port``.

    API (kept stable for the reliability suite and plugin authors):

    * ``FaultProxy(target_host, target_port, *, host="127.0.0.1", port=0, seed=None,
      **knobs)`` — ``port=0`` picks a free port; ``knobs`` are :class:`ProxyKnobs` fields.
    * ``await start()`` / ``await stop()`` (or ``async with FaultProxy(...) as proxy``);
      ``stop()`` closes every open connection.
    * ``.host``, ``.port`` (valid after ``start()``), ``.url`` (``http://host:port``).
    * ``.set(**knobs)`` — change knobs at run time (unknown names are a ``TypeError``,
      bad values a ``ValueError``); ``.knobs`` — the current :class:`ProxyKnobs`.
    * ``.counters`` — a :class:`ProxyCounters` (connections, active, resets, blackholed,
      half_written, upstream_failures, bytes_up, bytes_down).
    """

    def __init__(
        self,
        target_host: str,
        target_port: int,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int | None = None,
        **knobs: Any,
    ) -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.host = host
        self._requested_port = port
        self.knobs = ProxyKnobs()
        self.counters = ProxyCounters()
        self._rng = random.Random(seed)
        self._server: asyncio.Server | None = None
        self._conns: set[_Conn] = set()
        self._port = 0
        self.set(**knobs)

    # -- life cycle --------------------------------------------------------------------------
    async def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("the proxy is already started")
        self._server = await asyncio.start_server(self._handle, self.host, self._requested_port)
        self._port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for conn in list(self._conns):
            _abort(conn.client_writer)
            if conn.upstream_writer is not None:
                _abort(conn.upstream_writer)
            for task in conn.tasks:
                task.cancel()
        tasks = [t for conn in self._conns for t in conn.tasks]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()

    async def __aenter__(self) -> FaultProxy:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        if not self._port:
            raise RuntimeError("the proxy has no port until start() is awaited")
        return self._port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def set(self, **knobs: Any) -> None:
        """Change knobs (names of :class:`ProxyKnobs` fields); applies to traffic at once."""
        known = {f.name for f in fields(ProxyKnobs)}
        unknown = sorted(set(knobs) - known)
        if unknown:
            raise TypeError(f"unknown fault proxy knob(s) {unknown}; known: {sorted(known)}")
        candidate = ProxyKnobs(**{**asdict(self.knobs), **knobs})
        candidate.check()
        self.knobs = candidate

    # -- one connection ----------------------------------------------------------------------
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = _Conn(writer)
        task = asyncio.current_task()
        if task is not None:
            conn.tasks.add(task)
        self._conns.add(conn)
        self.counters.connections += 1
        self.counters.active += 1
        try:
            await self._serve(conn, reader, writer)
        except (asyncio.CancelledError, ConnectionError, OSError):
            pass
        finally:
            self.counters.active -= 1
            self._conns.discard(conn)
            for other in conn.tasks:
                if other is not task:
                    other.cancel()
            if conn.upstream_writer is not None:
                await _close(conn.upstream_writer)
            await _close(writer)

    async def _serve(
        self, conn: _Conn, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        knobs = self.knobs
        doomed = knobs.reset_rate > 0 and self._rng.random() < knobs.reset_rate
        if knobs.blackhole:
            await self._swallow(reader)
            return
        if doomed and knobs.reset_on == "connect":
            self._reset(writer)
            return
        if doomed and knobs.reset_on == "request":
            await reader.read(1)
            self._reset(writer)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(self.target_host, self.target_port)
        except OSError:
            self.counters.upstream_failures += 1
            self._reset(writer)
            return
        conn.upstream_writer = up_writer
        up = asyncio.create_task(self._pump(reader, up_writer, upstream=True))
        down = asyncio.create_task(
            self._pump(up_reader, writer, upstream=False, reset_client=doomed)
        )
        conn.tasks.update((up, down))
        # the answer decides when the exchange is over; a client that stops sending is normal
        await down
        up.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError, OSError):
            await up

    async def _swallow(self, reader: asyncio.StreamReader) -> None:
        self.counters.blackholed += 1
        while await reader.read(_READ_SIZE):
            pass

    def _reset(self, writer: asyncio.StreamWriter) -> None:
        self.counters.resets += 1
        sock = writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        _abort(writer)

    async def _pump(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        upstream: bool,
        reset_client: bool = False,
    ) -> None:
        """Copy one direction, keeping chunk order; each chunk is due ``latency`` after it
        was read, so latency delays the stream without adding up over its chunks."""
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def read_side() -> None:
            while chunk := await reader.read(_READ_SIZE):
                await queue.put((time.monotonic(), chunk))
            await queue.put((time.monotonic(), b""))

        reading = asyncio.create_task(read_side())
        try:
            while True:
                arrived, chunk = await queue.get()
                if not chunk:
                    with contextlib.suppress(OSError, RuntimeError):
                        if writer.can_write_eof():
                            writer.write_eof()
                    return
                if self.knobs.blackhole:
                    continue
                if not upstream and reset_client:
                    self._reset(writer)
                    return
                if not upstream and self.knobs.half_write:
                    chunk += await _collect_more(queue)
                    await self._write(writer, chunk[: len(chunk) // 2], arrived, upstream)
                    self.counters.half_written += 1
                    await _close(writer)
                    return
                await self._write(writer, chunk, arrived, upstream)
        finally:
            reading.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError, OSError):
                await reading

    async def _write(
        self, writer: asyncio.StreamWriter, chunk: bytes, arrived: float, upstream: bool
    ) -> None:
        wait = arrived + self.knobs.latency - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        bandwidth = self.knobs.bandwidth
        step = max(1, bandwidth // 20) if bandwidth else len(chunk)
        for i in range(0, len(chunk), step):
            piece = chunk[i : i + step]
            writer.write(piece)
            await writer.drain()
            if upstream:
                self.counters.bytes_up += len(piece)
            else:
                self.counters.bytes_down += len(piece)
            if bandwidth:
                await asyncio.sleep(len(piece) / bandwidth)


async def _collect_more(queue: asyncio.Queue[tuple[float, bytes]]) -> bytes:
    """The rest of an answer that is still arriving (up to a short pause)."""
    more = b""
    while True:
        try:
            _, chunk = await asyncio.wait_for(queue.get(), _HALF_WRITE_COLLECT)
        except TimeoutError:
            return more
        if not chunk:
            return more
        more += chunk


def _abort(writer: asyncio.StreamWriter) -> None:
    writer.transport.abort()


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(ConnectionError, OSError, asyncio.CancelledError):
        await writer.wait_closed()
