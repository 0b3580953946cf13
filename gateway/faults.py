"""Fault injection for simulators: an aiohttp middleware driven by a :class:`FaultProfile`.

Simulators of external systems install :func:`fault_middleware` so tests, demos and plugin
authors can see the gateway cope with slow and broken links. Profiles are named
(:data:`PROFILES`) and can be changed at run time (``app[FAULTS_KEY].profile = ...``).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class FaultProfile:
    """What goes wrong, and how often.

    :param latency: seconds added before answering.
    :param bandwidth: bytes per second for the answer body (0 = unlimited): a slow drip.
    :param reset_rate: fraction of requests whose connection is dropped without an answer.
    :param error_rate: fraction of requests answered 503 (``burst`` in a row once started).
    :param blackout_every: every N seconds ... (0 = never) ...
    :param blackout_for: ... the system answers nothing (connections dropped) for this long.
    :param session_ttl: adapter sessions expire after this many seconds (0 = never); read by
        simulators that have sessions.
    """

    name: str = "none"
    latency: float = 0.0
    bandwidth: int = 0
    reset_rate: float = 0.0
    error_rate: float = 0.0
    burst: int = 1
    blackout_every: float = 0.0
    blackout_for: float = 0.0
    session_ttl: float = 0.0


PROFILES: dict[str, FaultProfile] = {
    "none": FaultProfile(),
    "slow": FaultProfile(name="slow", latency=2.0, bandwidth=32_000),
    "flaky": FaultProfile(name="flaky", reset_rate=0.1, error_rate=0.2, burst=3),
    "rural": FaultProfile(
        name="rural",
        latency=0.8,
        bandwidth=32_000,
        reset_rate=0.05,
        error_rate=0.1,
        burst=3,
        blackout_every=60.0,
        blackout_for=8.0,
        session_ttl=30.0,
    ),
    "blackout": FaultProfile(name="blackout", blackout_every=30.0, blackout_for=10.0),
    "expiring": FaultProfile(name="expiring", session_ttl=5.0),
}


def get_profile(name: str) -> FaultProfile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(
            f"unknown fault profile {name!r}; known: {', '.join(sorted(PROFILES))}"
        ) from None


@dataclass(slots=True)
class FaultState:
    profile: FaultProfile = field(default_factory=FaultProfile)
    rng: random.Random = field(default_factory=random.Random)
    started: float = field(default_factory=time.monotonic)
    burst_left: int = 0
    injected: dict[str, int] = field(default_factory=dict)

    def count(self, kind: str) -> None:
        self.injected[kind] = self.injected.get(kind, 0) + 1

    def in_blackout(self) -> bool:
        p = self.profile
        if p.blackout_every <= 0 or p.blackout_for <= 0:
            return False
        return (
            time.monotonic() - self.started
        ) % p.blackout_every >= p.blackout_every - p.blackout_for

    def with_profile(self, profile: FaultProfile) -> FaultState:
        return replace(self, profile=profile, burst_left=0)


FAULTS_KEY = web.AppKey("faults", FaultState)


def _drop(request: web.Request) -> None:
    if request.transport is not None:
        request.transport.abort()


@web.middleware
async def fault_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    state = request.app[FAULTS_KEY]
    p = state.profile
    if state.in_blackout():
        state.count("blackout")
        _drop(request)
        raise asyncio.CancelledError  # the connection is gone; nothing to answer
    if p.reset_rate and state.rng.random() < p.reset_rate:
        state.count("reset")
        _drop(request)
        raise asyncio.CancelledError
    if p.latency:
        await asyncio.sleep(p.latency)
    if state.burst_left > 0 or (p.error_rate and state.rng.random() < p.error_rate):
        state.burst_left = (state.burst_left or p.burst) - 1
        state.count("error")
        return web.json_response(
            {"error": "unavailable", "message": "injected fault"},
            status=503,
        )
    response = await handler(request)
    if p.bandwidth and isinstance(response, web.Response):
        body = response.body
        if isinstance(body, bytes) and body:  # a payload object (a file, a stream) goes as is
            return await _drip(request, response, body, p.bandwidth)
    return response


async def _drip(
    request: web.Request, response: web.Response, body: bytes, bandwidth: int
) -> web.StreamResponse:
    stream = web.StreamResponse(status=response.status, headers=response.headers)
    stream.content_length = len(body)
    await stream.prepare(request)
    chunk = max(1, bandwidth // 10)
    for i in range(0, len(body), chunk):
        await stream.write(body[i : i + chunk])
        await asyncio.sleep(len(body[i : i + chunk]) / bandwidth)
    await stream.write_eof()
    return stream


def install_faults(
    app: web.Application, profile: FaultProfile | str = "none", seed: int | None = None
) -> FaultState:
    """Put the fault middleware on a simulator app (before it starts)."""
    if isinstance(profile, str):
        profile = get_profile(profile)
    state = FaultState(profile=profile, rng=random.Random(seed))
    app[FAULTS_KEY] = state
    app.middlewares.append(fault_middleware)
    return state
