"""Real servers on loopback for the flow tests: free ports, the simulated desk, registry and
post office (their configuration blocks and the running simulators) and the gateway."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from sa_fixtures import quyet_dinh

from gateway.config import Config
from gateway.plugins import build_plugins
from gateway.signing import sign
from gateway.simulation import SimulatorOptions
from gateway.web.app import create_app

PLUGIN_OF = {
    "motcua": "one_stop_shop",
    "registry": "district_registry",
    "post_office": "post_office",
}
#: quick timeouts and retries for a system on loopback
FAST_SYSTEM: dict[str, Any] = {
    "timeout": {"connect": 2, "read": 5},
    "retry": {"initial": 0.05, "multiplier": 2, "max": 0.5, "jitter": 0, "deadline": 60},
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def local_urls(ports: Mapping[str, int]) -> dict[str, str]:
    return {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}


async def serve(app: web.Application, port: int) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


def gateway_section(tmp_path: Path, gw: int, node_id: str) -> dict[str, Any]:
    """The ``[gateway]`` table of a gateway listening on loopback port ``gw``, SQLite in
    ``tmp_path``."""
    return {
        "listen": f"127.0.0.1:{gw}",
        "database": f"sqlite:///{tmp_path}/gw.db",
        "node_id": node_id,
        "poll_interval": 0.05,
    }


def simulated_systems(
    urls: Mapping[str, str], secrets: Mapping[str, str], system: Mapping[str, Any]
) -> dict[str, dict[str, Any]]:
    """The ``[systems]`` entries of the simulated systems in ``urls`` (a name of
    :data:`PLUGIN_OF` to its base URL), each with its inbound secret and ``system``'s
    timeouts and retries."""
    out: dict[str, dict[str, Any]] = {}
    for name, url in urls.items():
        entry: dict[str, Any] = {
            "plugin": PLUGIN_OF[name],
            "base_url": url,
            "inbound_secret": secrets[name],
        }
        if name == "motcua":
            entry |= {"username": "gateway", "password": "secret", "madonvi": "000.00.12.H06"}
        out[name] = {**entry, **system}
    return out


@contextlib.asynccontextmanager
async def running_flow(
    config: Config,
    gw: int,
    ports: dict[str, int],
    secrets: dict[str, str],
    extra: dict[str, dict[str, Any]],
    seed: int = 7,
) -> AsyncIterator[web.Application]:
    """The simulators of ``ports`` (seeded, pushing to the gateway) and the gateway, on
    loopback; everything is stopped, gateway first, on the way out."""
    plugins = build_plugins()
    runners = []
    try:
        for name, port in ports.items():
            options = SimulatorOptions(
                gateway_url=f"http://127.0.0.1:{gw}",
                secret=secrets[name],
                system=name,
                seed=seed,
                extra=extra[name],
            )
            runners.append(await serve(plugins.simulator_factory(PLUGIN_OF[name])(options), port))
        app = create_app(config, plugins=plugins)
        runners.append(await serve(app, gw))
        yield app
    finally:
        for runner in reversed(runners):
            await runner.cleanup()


async def push_decision(url: str, secret: str, payload: dict[str, str]) -> None:
    """Pushes a decision to the gateway at ``url`` as the registry does (signed with
    ``secret``); the gateway must accept it."""
    body = quyet_dinh(payload)
    headers = {"Content-Type": "application/xml", **sign(secret, body)}
    async with (
        aiohttp.ClientSession() as s,
        s.post(f"{url}/inbound/registry", data=body, headers=headers) as r,
    ):
        assert r.status == 202, await r.text()
