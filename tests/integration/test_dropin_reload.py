"""Reloading drop-in plugins in a running gateway (gateway.reload, SIGHUP, ``gateway plugins
reload``): a changed file swaps the connector of the systems using it, attempts in flight
finish with the old one, nothing is dropped; an unchanged file is not executed again; a broken
edit keeps the previous version; path tricks in ``plugins_dir`` are refused."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

from gateway.reload import reload_plugins
from gateway.testing.harness import (
    RunningGateway,
    RunningSimulator,
    make_test_config,
    start_gateway,
    start_simulator,
    wait_until,
)
from gateway.testing.sink import Sink
from gateway.web.keys import ENGINE

MODULE = "gateway_dropin_relay"

# v{version} of a single-file connector: it stamps its version on every request, can be held
# in send (``GATE``), and records that it was closed (``CLOSED``).
RELAY = """
import asyncio
import json

from gateway import hookimpl
from gateway.connector import Connector
from gateway.model import OutboundRequest

VERSION = "{version}"
GATE = asyncio.Event()
GATE.set()
CLOSED = []


class Relay(Connector):
    async def render(self, message):
        return OutboundRequest(
            "POST",
            self.system.base_url + "/relay",
            json.dumps({{"id": message.external_id}}).encode(),
            {{"Content-Type": "application/json", "X-Relay-Version": VERSION}},
        )

    async def send(self, session, request):
        await GATE.wait()
        return await super().send(session, request)

    async def close(self):
        CLOSED.append(VERSION)


@hookimpl
def gateway_register_connectors(register):
    register("relay", Relay)
"""


@pytest.fixture(autouse=True)
def _forget_dropin_modules() -> Iterator[None]:
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        if name.startswith("gateway_dropin_"):
            del sys.modules[name]


def write_relay(directory: Path, version: str) -> None:
    (directory / "relay.py").write_text(RELAY.format(version=version), encoding="utf-8")


def lane_busy(gateway: RunningGateway, name: str) -> bool:
    return gateway.app[ENGINE].lanes[name].in_flight > 0


def versions(sink: Sink) -> list[tuple[str, str]]:
    return [(r.json()["id"], r.headers.get("X-Relay-Version", "")) for r in sink.accepted]


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[tuple[RunningGateway, Sink, Path]]:
    dropins = tmp_path / "dropins"
    dropins.mkdir()
    write_relay(dropins, "1")
    sink = Sink()
    sim: RunningSimulator = await start_simulator(lambda _options: sink.app())
    config = make_test_config(
        tmp_path,
        {
            "gateway": {"plugins_dir": "dropins", "shutdown_grace": 1},
            "systems": {
                "src": {"plugin": "http_json", "inbound_secret": "s-7c2e9a41b8d3f6051e4d"},
                "dst": {"plugin": "relay", "base_url": sim.url, "concurrency": 2},
            },
            "routes": [{"from": "src", "event": "message.received", "to": ["dst"]}],
        },
    )
    gateway = await start_gateway(config)
    try:
        yield gateway, sink, dropins
    finally:
        sys.modules[MODULE].GATE.set()
        await gateway.close()
        await sim.close()


async def push(gateway: RunningGateway, ref: str) -> None:
    answer = await gateway.push("src", {"id": ref})
    assert answer.status == 202, await answer.text()


async def test_a_changed_dropin_swaps_the_connector_and_traffic_goes_on(
    running: tuple[RunningGateway, Sink, Path],
) -> None:
    gateway, sink, dropins = running
    await push(gateway, "A")
    await gateway.wait_for_deliveries("dst", count=1)
    write_relay(dropins, "2")
    report = await reload_plugins(gateway.app)
    assert (report.swapped, report.kept, report.error) == (["dst"], {}, None)
    await push(gateway, "B")
    await gateway.wait_for_deliveries("dst", count=2)
    assert versions(sink) == [("A", "1"), ("B", "2")]
    await asyncio.gather(*report.retiring)
    assert sys.modules[MODULE].VERSION == "2"


async def test_an_attempt_in_flight_finishes_with_the_old_connector(
    running: tuple[RunningGateway, Sink, Path],
) -> None:
    gateway, sink, dropins = running
    old = sys.modules[MODULE]
    old.GATE.clear()  # v1 holds its sends
    await push(gateway, "slow")
    await wait_until(lambda: lane_busy(gateway, "dst"), what="v1 holding an attempt")
    write_relay(dropins, "2")
    report = await reload_plugins(gateway.app)
    assert report.swapped == ["dst"]
    await push(gateway, "fast")
    await wait_until(lambda: len(sink.accepted) == 1, what="v2 delivering beside v1")
    assert versions(sink) == [("fast", "2")]
    assert old.CLOSED == []  # still in use
    old.GATE.set()
    await gateway.wait_for_deliveries("dst", count=2)
    assert sorted(versions(sink)) == [("fast", "2"), ("slow", "1")]
    await asyncio.gather(*report.retiring)
    assert old.CLOSED == ["1"]  # closed once its attempt was done
    assert (await gateway.counts())["dst"] == {"delivered": 2}


async def test_an_unchanged_dropin_is_not_executed_again(
    running: tuple[RunningGateway, Sink, Path],
) -> None:
    gateway, _sink, _dropins = running
    module = sys.modules[MODULE]
    report = await reload_plugins(gateway.app)
    assert (report.swapped, report.kept, report.load_errors) == ([], {}, [])
    assert gateway.plugins.pm.get_plugin("relay") is module


async def test_a_broken_edit_keeps_the_previous_version_running(
    running: tuple[RunningGateway, Sink, Path],
) -> None:
    gateway, sink, dropins = running
    (dropins / "relay.py").write_text("def broken(:\n", encoding="utf-8")
    report = await reload_plugins(gateway.app)
    assert report.swapped == []
    [error] = report.load_errors
    assert error.name == "relay" and "SyntaxError" in error.reason
    assert "the previous version keeps running" in error.reason
    assert [e.name for e in gateway.plugins.load_errors] == ["relay"]
    assert sys.modules[MODULE].VERSION == "1"  # the broken module is not left behind
    await push(gateway, "C")
    await gateway.wait_for_deliveries("dst", count=1)
    assert versions(sink) == [("C", "1")]
    write_relay(dropins, "3")  # fixed: the next reload takes it
    assert (await reload_plugins(gateway.app)).swapped == ["dst"]
    assert gateway.plugins.load_errors == []


async def test_a_vanished_connector_keeps_the_old_one(
    running: tuple[RunningGateway, Sink, Path],
) -> None:
    gateway, sink, dropins = running
    (dropins / "relay.py").unlink()
    report = await reload_plugins(gateway.app)
    assert report.kept == {"dst": "connector 'relay' is no longer registered"}
    await push(gateway, "D")
    await gateway.wait_for_deliveries("dst", count=1)
    assert versions(sink) == [("D", "1")]


async def test_path_tricks_in_plugins_dir_are_refused_at_reload(
    running: tuple[RunningGateway, Sink, Path], tmp_path: Path
) -> None:
    gateway, _sink, dropins = running
    trap = "raise RuntimeError('must not be imported')\n"
    outside = tmp_path / "outside.py"
    outside.write_text(trap)
    (dropins / "linked.py").symlink_to(outside)
    (dropins / "sub").mkdir()
    (dropins / "sub" / "nested.py").write_text(trap)
    (dropins / "bad-name.py").write_text(trap)
    (dropins / "two.parts.py").write_text(trap)
    (dropins / "notes.txt").write_text(trap)
    (dropins / "fine.py").write_text("X = 1\n")
    report = await reload_plugins(gateway.app)
    assert report.load_errors == [] and report.error is None
    dropped_in = {n for n, o in gateway.plugins.origins.items() if o.startswith("drop-in")}
    assert dropped_in == {"relay", "fine"}


# -- SIGHUP and `gateway plugins reload` on a real `gateway run` --------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_sighup_through_plugins_reload_reloads_a_running_gateway(tmp_path: Path) -> None:
    dropins = tmp_path / "dropins"
    dropins.mkdir()
    write_relay(dropins, "1")
    port = _free_port()
    config = tmp_path / "gateway.toml"
    config.write_text(
        "[gateway]\n"
        f'listen = "127.0.0.1:{port}"\n'
        f'database = "sqlite:///{tmp_path}/gw.db"\n'
        'plugins_dir = "dropins"\n'
        "shutdown_grace = 1\n\n"
        "[systems.dst]\n"
        'plugin = "relay"\n'
        'base_url = "http://127.0.0.1:9"\n',
        encoding="utf-8",
    )
    pid_file = tmp_path / "var" / "gateway.pid"
    gateway = [sys.executable, "-m", "gateway.cli"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    proc = subprocess.Popen(
        [*gateway, "run", "--config", str(config), "--pid-file", str(pid_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        deadline = time.monotonic() + 20
        while not (pid_file.exists() and _healthy(port)):
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline, "the gateway did not start"
            time.sleep(0.05)
        assert pid_file.read_text().strip() == str(proc.pid)
        write_relay(dropins, "2")
        reload = subprocess.run(
            [*gateway, "plugins", "reload", "--pid-file", str(pid_file)],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        assert reload.returncode == 0, reload.stderr
        assert f"sent SIGHUP to gateway pid {proc.pid}" in reload.stdout
        time.sleep(0.5)
        assert _healthy(port)  # still serving
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=20)
    events = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    [reloaded] = [e for e in events if e.get("event") == "plugins_reloaded"]
    assert reloaded["swapped"] == ["dst"] and reloaded["error"] is None
    assert not pid_file.exists()  # removed at shutdown


def _healthy(port: int) -> bool:
    async def probe() -> bool:
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1)) as session,
                session.get(f"http://127.0.0.1:{port}/healthz") as resp,
            ):
                return resp.status == 200
        except (aiohttp.ClientError, OSError, TimeoutError):
            return False

    return asyncio.run(probe())
