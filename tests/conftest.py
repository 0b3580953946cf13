"""Shared fixtures: real servers on loopback, a fresh plugin manager and SQLite per test.

The store and engine suites run on both databases: tests in :data:`BOTH_DATABASES` modules
(or marked ``both_databases``) are parametrised ``[sqlite]`` / ``[postgresql]``; the
PostgreSQL run gets a fresh database on a throwaway cluster (one per test session, started
from the server binaries on the machine), and :func:`make_config` points at it. Where the
binaries are missing those runs skip, unless ``CI`` is set: then they fail.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gateway.config import Config, config_from_dict
from gateway.signing import sign
from gateway.testing.postgres import PostgresUnavailable, ThrowawayPostgres
from gateway.testing.sink import Sink
from gateway.web.app import create_app

SECRET = "test-secret-7c2e9a41b8d3f6051e4d"
#: test modules whose every test runs on SQLite and on PostgreSQL
BOTH_DATABASES = {"test_engine.py", "test_delivery_flow.py"}
#: the database make_config uses when the running test is a PostgreSQL one (None: SQLite)
_DATABASE: dict[str, str | None] = {"url": None}
_DB_NAMES = itertools.count(1)


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
            "database": _DATABASE["url"] or f"sqlite:///{tmp_path}/gw.db",
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


# -- SQLite and PostgreSQL ---------------------------------------------------------------------
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "both_databases: run the test on SQLite and on PostgreSQL")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" not in metafunc.fixturenames:
        return
    module = Path(str(metafunc.module.__file__)).name
    if module in BOTH_DATABASES or metafunc.definition.get_closest_marker("both_databases"):
        metafunc.parametrize("backend", ["sqlite", "postgresql"], indirect=True)


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[ThrowawayPostgres]:
    """A throwaway PostgreSQL cluster for the whole session (initdb in a temporary directory,
    a loopback port, stopped and removed at the end)."""
    try:
        pg = ThrowawayPostgres()
    except PostgresUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(f"{exc} (CI installs it in .ci/run)")
        pytest.skip(str(exc))
    pg.start()
    try:
        yield pg
    finally:
        pg.stop()


def fresh_postgres_database(pg: ThrowawayPostgres) -> str:
    """A new empty database on the session's cluster; returns its URL."""
    return pg.create_database(f"t{os.getpid()}_{next(_DB_NAMES)}")


@pytest.fixture(autouse=True)
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    """``sqlite`` (the default) or ``postgresql``: a fresh database for this test, which
    :func:`make_config` (and so ``gateway_factory``) uses."""
    name: str = getattr(request, "param", "sqlite")
    if name == "postgresql":
        _DATABASE["url"] = fresh_postgres_database(request.getfixturevalue("postgres_cluster"))
    try:
        yield name
    finally:
        _DATABASE["url"] = None


@pytest.fixture
def postgres_url(postgres_cluster: ThrowawayPostgres) -> str:
    """A fresh database on the throwaway cluster (for PostgreSQL-only tests)."""
    return fresh_postgres_database(postgres_cluster)


@pytest.fixture
def database_url(backend: str, tmp_path: Path) -> str:
    """This test's database: the fresh PostgreSQL one, or SQLite in ``tmp_path``."""
    return _DATABASE["url"] or f"sqlite:///{tmp_path}/gw.db"


# the privacy scan of the whole run (tests/privacy_scan.py): no unmasked CCCD or name in any log
pytest_plugins = ["privacy_scan"]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Collect what tests left behind before pytest's own end-of-run check, and *report*
    sockets still open then instead of failing the whole run at exit: a client connection
    cancelled mid-connect by a test's teardown can be garbage-collected only now, after every
    test has passed. Leaks inside a test still fail that test (filterwarnings = error)."""
    import gc
    import sys
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        gc.collect()
    for leaked in caught:
        print(f"\nleft open at the end of the run: {leaked.message}", file=sys.stderr)
