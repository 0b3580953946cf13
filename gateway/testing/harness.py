"""Running a gateway, a simulator or a fault proxy on loopback, for tests and for scripts.

The pytest fixtures of :mod:`gateway.testing.pytest_plugin` are thin wrappers over these
functions, so a plugin author can use them the same way from a plain asyncio script.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gateway.config import Config, config_from_dict
from gateway.plugins import Plugins, build_plugins
from gateway.signing import sign
from gateway.simulation import SimulatorFactory, SimulatorOptions
from gateway.web.keys import STORE, need

#: What the test config sets unless told otherwise: fast polling, short grace, a quick retry.
FAST_RETRY: dict[str, Any] = {
    "initial": 0.05,
    "multiplier": 2,
    "max": 0.2,
    "jitter": 0,
    "deadline": 30,
}


def make_test_config(directory: Path, data: Mapping[str, Any] | None = None) -> Config:
    """A validated config for tests: SQLite in ``directory``, fast polling and short grace;
    ``data`` (the TOML document as a dict) is merged over those defaults, table by table.
    Systems without ``timeout``/``retry`` get short ones."""
    doc: dict[str, Any] = {
        "gateway": {
            "database": f"sqlite:///{directory}/gateway-test.db",
            "node_id": "test",
            "poll_interval": 0.05,
            "shutdown_grace": 2,
        },
    }
    for key, value in (data or {}).items():
        if isinstance(value, Mapping) and isinstance(doc.get(key), dict):
            doc[key] = {**doc[key], **value}
        else:
            doc[key] = value
    systems = {}
    for name, table in dict(doc.get("systems", {})).items():
        systems[name] = {"timeout": {"connect": 1, "read": 2}, "retry": FAST_RETRY, **table}
    if systems:
        doc["systems"] = systems
    return config_from_dict(doc, directory / "gateway.toml")


@dataclass(slots=True)
class RunningGateway:
    """A gateway app served on 127.0.0.1 (a real server, real store, real workers)."""

    app: web.Application
    client: TestClient[Any, Any]
    config: Config

    @property
    def url(self) -> str:
        return str(self.client.make_url("")).rstrip("/")

    @property
    def plugins(self) -> Plugins:
        from gateway.web.keys import PLUGINS

        return need(self.app, PLUGINS)

    async def push(
        self,
        system: str,
        body: Any,
        *,
        content_type: str = "application/json",
        secret: str | None = None,
    ) -> aiohttp.ClientResponse:
        """``POST /inbound/{system}`` signed with the system's ``inbound_secret``."""
        raw = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
        if secret is None:
            configured = self.config.systems[system].inbound_secret
            secret = configured.get_secret_value() if configured else ""
        headers = {"Content-Type": content_type, **sign(secret, raw)}
        return await self.client.post(f"/inbound/{system}", data=raw, headers=headers)

    async def counts(self) -> dict[str, dict[str, int]]:
        """Deliveries by destination and status (``pending``, ``delivered``, ``dead``...)."""
        return await need(self.app, STORE).destination_depths()

    async def wait_for_deliveries(
        self, destination: str, status: str = "delivered", count: int = 1, within: float = 10
    ) -> None:
        """Wait (at most ``within`` seconds) until ``destination`` has ``count`` deliveries
        in ``status``."""

        async def reached() -> bool:
            return (await self.counts()).get(destination, {}).get(status, 0) >= count

        await wait_until(reached, within, f"{count} {status} deliveries to {destination}")

    async def close(self) -> None:
        await self.client.close()


async def start_gateway(
    config: Config, *, plugins: Sequence[tuple[str, object]] = ()
) -> RunningGateway:
    """Build the app for ``config`` (its ``plugins_dir`` included, plus ``plugins`` registered
    in code) and serve it on loopback; ``close()`` stops it."""
    from gateway.web.app import create_app

    directory = config.gateway.plugins_dir
    built = build_plugins(
        extra=plugins, plugins_dir=config.resolve_path(directory) if directory else None
    )
    app = create_app(config, plugins=built)
    client: TestClient[Any, Any] = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    return RunningGateway(app, client, config)


@dataclass(slots=True)
class RunningSimulator:
    app: web.Application
    server: TestServer

    @property
    def url(self) -> str:
        return str(self.server.make_url("")).rstrip("/")

    @property
    def port(self) -> int:
        port = self.server.port
        if port is None:
            raise RuntimeError("the simulator is not started")
        return port

    async def close(self) -> None:
        await self.server.close()


async def start_simulator(
    simulator: str | SimulatorFactory,
    *,
    options: SimulatorOptions | None = None,
    plugins: Plugins | None = None,
) -> RunningSimulator:
    """Serve a simulator on loopback: by connector name (the simulator its plugin
    registers) or from a factory."""
    if isinstance(simulator, str):
        factory = (plugins or build_plugins()).simulator_factory(simulator)
        options = options or SimulatorOptions(system=simulator)
    else:
        factory = simulator
    app = factory(options or SimulatorOptions())
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return RunningSimulator(app, server)


async def wait_until(
    predicate: Callable[[], bool | Awaitable[bool]], within: float = 10.0, what: str = ""
) -> None:
    """Poll ``predicate`` (sync or async) until it holds; AssertionError after ``within`` s."""
    deadline = time.monotonic() + within
    while True:
        result = predicate()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {within:g}s waiting for {what or predicate}")
        await asyncio.sleep(0.02)
