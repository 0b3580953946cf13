"""Shared fixtures: real servers on loopback, a fresh plugin manager and SQLite per test."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gateway.config import Config, config_from_dict
from gateway.signing import sign
from gateway.testing.sink import Sink
from gateway.web.app import create_app

SECRET = "test-secret"


def make_config(tmp_path: Path, sink_url: str, **overrides: Any) -> Config:
    """A config with one signed JSON source ``src`` routed to one JSON destination ``dst``."""
    dst: dict[str, Any] = {
        "plugin": "http_json",
        "base_url": sink_url,
        "path": "/receive",
        "timeout": {"connect": 1, "read": 2},
        "concurrency": 4,
        "retry": {"initial": 0.05, "multiplier": 2, "max": 0.2, "jitter": 0, "deadline": 30},
        "breaker": {"failures": 50, "reset_after": 0.5},
    }
    dst.update(overrides.pop("dst", {}))
    data: dict[str, Any] = {
        "gateway": {
            "database": f"sqlite:///{tmp_path}/gw.db",
            "node_id": "test",
            "poll_interval": 0.05,
            "shutdown_grace": 2,
        },
        "systems": {
            "src": {"plugin": "http_json", "inbound_secret": SECRET, "key_field": "key"},
            "dst": dst,
        },
        "routes": [{"from": "src", "event": "message.received", "to": ["dst"]}],
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return config_from_dict(data, tmp_path / "gateway.toml")


def signed(body: Any, secret: str = SECRET, ts: int | None = None) -> tuple[bytes, dict[str, str]]:
    raw = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
    headers = {"Content-Type": "application/json", **sign(secret, raw, ts)}
    return raw, headers


async def wait_for(
    predicate: Callable[[], bool | Awaitable[bool]], timeout: float = 10.0, what: str = ""
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")


@pytest.fixture
async def sink(aiohttp_server: Any) -> tuple[Sink, TestServer]:
    s = Sink()
    server = await aiohttp_server(s.app())
    return s, server


@pytest.fixture
def gateway_factory(
    tmp_path: Path, aiohttp_client: Any, sink: tuple[Sink, TestServer]
) -> Callable[..., Awaitable[TestClient[Any, Any]]]:
    async def factory(**overrides: Any) -> TestClient[Any, Any]:
        config = make_config(tmp_path, str(sink[1].make_url("")).rstrip("/"), **overrides)
        app: web.Application = create_app(config)
        return await aiohttp_client(app)

    return factory
