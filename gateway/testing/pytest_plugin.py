"""pytest plugin for plugin authors (entry point ``pytest11``: loaded wherever the gateway is
installed). Every fixture starts with ``gw_`` so it never clashes with a project's own.

* ``gw_config(data)`` — a validated test config (SQLite in ``tmp_path``, fast polling);
* ``await gw_gateway(config, plugins=[...])`` — a running gateway on loopback
  (:class:`~gateway.testing.harness.RunningGateway`: ``push``, ``wait_for_deliveries``...);
* ``await gw_simulator("connector_name" or factory, options=...)`` — a running simulator;
* ``await gw_fault_proxy(port, **knobs)`` — a :class:`~gateway.testing.faultproxy.FaultProxy`;
* ``gw_sink`` — a recording receiver (:class:`~gateway.testing.sink.Sink`) and its URL.

Everything started is stopped when the test ends. The connector contract suite is a class
to subclass: :class:`gateway.testing.contract.ConnectorContract`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

import pytest

from gateway.testing.faultproxy import FaultProxy
from gateway.testing.sink import Sink

if TYPE_CHECKING:  # the rest is imported when a fixture is used: loading this plugin (in
    # every pytest run where the gateway is installed) stays cheap and cannot fail
    from gateway.config import Config
    from gateway.simulation import SimulatorFactory, SimulatorOptions
    from gateway.testing.harness import RunningGateway, RunningSimulator

F = TypeVar("F", bound=Callable[..., Any])
_fixture: Any
try:  # strict or auto asyncio mode alike; without pytest-asyncio only the sync ones work
    import pytest_asyncio

    _fixture = pytest_asyncio.fixture
except ImportError:  # pragma: no cover - pytest-asyncio is a test dependency of the gateway
    _fixture = pytest.fixture


def async_fixture(fn: F) -> F:
    """An async fixture that works in pytest-asyncio's strict and auto modes."""
    return cast(F, _fixture(fn))


@pytest.fixture
def gw_config(tmp_path: Path) -> Callable[..., Config]:
    """``gw_config({"systems": {...}, "routes": [...]})``: a validated test config."""

    from gateway.testing.harness import make_test_config

    def make(data: Mapping[str, Any] | None = None) -> Config:
        return make_test_config(tmp_path, data)

    return make


@async_fixture
async def gw_gateway() -> AsyncIterator[Callable[..., Any]]:
    """``await gw_gateway(config, plugins=[("name", plugin)])``: a running gateway."""
    from gateway.testing.harness import start_gateway

    running: list[RunningGateway] = []

    async def start(
        config: Config, *, plugins: Sequence[tuple[str, object]] = ()
    ) -> RunningGateway:
        gateway = await start_gateway(config, plugins=plugins)
        running.append(gateway)
        return gateway

    yield start
    for gateway in reversed(running):
        await gateway.close()


@async_fixture
async def gw_simulator() -> AsyncIterator[Callable[..., Any]]:
    """``await gw_simulator("district_registry", options=SimulatorOptions(...))``."""
    from gateway.testing.harness import start_simulator

    running: list[RunningSimulator] = []

    async def start(
        simulator: str | SimulatorFactory, *, options: SimulatorOptions | None = None
    ) -> RunningSimulator:
        sim = await start_simulator(simulator, options=options)
        running.append(sim)
        return sim

    yield start
    for sim in reversed(running):
        await sim.close()


@async_fixture
async def gw_fault_proxy() -> AsyncIterator[Callable[..., Any]]:
    """``await gw_fault_proxy(target_port, latency=0.1, ...)``: a started FaultProxy in
    front of ``127.0.0.1:target_port``."""
    running: list[FaultProxy] = []

    async def start(target_port: int, target_host: str = "127.0.0.1", **knobs: Any) -> FaultProxy:
        proxy = FaultProxy(target_host, target_port, **knobs)
        await proxy.start()
        running.append(proxy)
        return proxy

    yield start
    for proxy in reversed(running):
        await proxy.stop()


@async_fixture
async def gw_sink() -> AsyncIterator[tuple[Sink, str]]:
    """A recording receiver on loopback: ``(sink, base_url)``."""
    from gateway.testing.harness import start_simulator

    sink = Sink()
    sim = await start_simulator(lambda _options: sink.app())
    try:
        yield sink, sim.url
    finally:
        await sim.close()
