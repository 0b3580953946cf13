"""Extension hooks in a running gateway (DESIGN.md §4): validators, transforms, outcome
observers, web routes, start-up, jobs and plugin migrations — and a plugin that raises is
contained: its item or delivery fails with a recorded error, everything else goes on."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from conftest import make_config, signed, wait_for
from sqlalchemy import select, text

from gateway import hookimpl
from gateway.config import Config
from gateway.connector import Connector
from gateway.hookspecs import JobContext
from gateway.model import Message, OutboundRequest
from gateway.plugins import build_plugins
from gateway.store.store import DeliveryFilter, LogFilter
from gateway.store.tables import messages
from gateway.web.admin import protect
from gateway.web.app import create_app
from gateway.web.keys import CONFIG, STORE

Client = TestClient[Any, Any]
AppFactory = Callable[..., Awaitable[Client]]
CCCD = "006135001234"


@pytest.fixture
def app_with(tmp_path: Path, aiohttp_client: Any, sink: Any) -> AppFactory:
    """A gateway (conftest.make_config) with extra plugins registered in code."""

    async def factory(*plugins: tuple[str, object], **overrides: Any) -> Client:
        config = make_config(tmp_path, str(sink[1].make_url("")).rstrip("/"), **overrides)
        app = create_app(config, plugins=build_plugins(extra=list(plugins)))
        client: Client = await aiohttp_client(app)
        return client

    return factory


async def post(client: Client, body: Any, system: str = "src") -> dict[str, Any]:
    raw, headers = signed(body)
    resp = await client.post(f"/inbound/{system}", data=raw, headers=headers)
    assert resp.status == 202, await resp.text()
    answer: dict[str, Any] = await resp.json()
    return answer


async def stored_payloads(client: Client) -> dict[str, Any]:
    async with client.app[STORE].reader.connect() as conn:
        rows = (await conn.execute(select(messages.c.external_id, messages.c.payload))).all()
    return {r.external_id: json.loads(r.payload) for r in rows}


async def statuses(client: Client) -> dict[tuple[str, str], str]:
    rows = await client.app[STORE].list_deliveries(DeliveryFilter())
    return {(r["ref"], r["destination"]): r["status"] for r in rows}


# -- gateway_validate_message -------------------------------------------------------------------


class RequireName:
    """A sync validator: every item needs a non-empty ``ten``."""

    @hookimpl
    def gateway_validate_message(self, message: Message, system: str) -> list[str]:
        if not message.payload.get("ten"):
            return [f"ten: required (system {system}, công dân {CCCD})"]
        return []


class NoTestIds:
    """An async validator."""

    @hookimpl
    async def gateway_validate_message(self, message: Message, system: str) -> list[str]:
        await asyncio.sleep(0)
        return ["id: test ids are refused"] if message.external_id.startswith("TEST") else []


async def test_validators_reject_an_item_with_the_plugins_error(app_with: AppFactory) -> None:
    client = await app_with(("require_name", RequireName()), ("no_test_ids", NoTestIds()))
    answer = await post(
        client,
        [{"id": "A", "ten": "Lan"}, {"id": "B", "ten": ""}, {"id": "TEST-1", "ten": "x"}],
    )
    assert [a["ref"] for a in answer["accepted"]] == ["A"]
    rejected = {r["ref"]: r["errors"] for r in answer["rejected"]}
    assert rejected == {
        "B": ["ten: required (system src, công dân ********1234)"],  # masked on the way out
        "TEST-1": ["id: test ids are refused"],
    }
    assert set(await stored_payloads(client)) == {"A"}


class ExplodingValidator:
    @hookimpl
    def gateway_validate_message(self, message: Message, system: str) -> list[str]:
        if message.payload.get("explode"):
            raise RuntimeError(f"validator bug on {CCCD}")
        return []


async def test_validator_that_raises_rejects_only_that_item_and_the_gateway_keeps_serving(
    app_with: AppFactory, sink: Any
) -> None:
    received, _ = sink
    client = await app_with(("exploding_validator", ExplodingValidator()))
    answer = await post(client, [{"id": "BAD", "explode": True}, {"id": "GOOD-1"}])
    assert [a["ref"] for a in answer["accepted"]] == ["GOOD-1"]
    [rejection] = answer["rejected"]
    assert rejection["ref"] == "BAD"
    assert len(rejection["errors"]) == 1
    assert rejection["errors"][0].startswith("validator plugin failed")
    assert CCCD not in json.dumps(answer)
    again = await post(client, {"id": "GOOD-2"})
    assert [a["ref"] for a in again["accepted"]] == ["GOOD-2"]
    await wait_for(lambda: len(received.accepted) == 2, what="both good items delivered")
    assert set(await stored_payloads(client)) == {"GOOD-1", "GOOD-2"}


# -- gateway_transform_message ------------------------------------------------------------------


class Enrich:
    @hookimpl
    def gateway_transform_message(self, message: Message, system: str) -> Message:
        return dataclasses.replace(
            message, payload={**message.payload, "enriched_by": system}, procedure="1.001776"
        )


class LeaveAlone:
    @hookimpl
    async def gateway_transform_message(self, message: Message, system: str) -> Message | None:
        return None


async def test_transform_changes_the_message_before_it_is_stored_and_routed(
    app_with: AppFactory, sink: Any
) -> None:
    received, _ = sink
    client = await app_with(
        ("enrich", Enrich()),
        ("leave_alone", LeaveAlone()),
        routes=[
            {"from": "src", "event": "message.received", "procedure": "1.001776", "to": ["dst"]}
        ],
    )
    answer = await post(client, {"id": "HS-T", "ten": "Lan"})
    assert [a["ref"] for a in answer["accepted"]] == ["HS-T"]
    assert (await stored_payloads(client))["HS-T"] == {
        "id": "HS-T",
        "ten": "Lan",
        "enriched_by": "src",
    }
    # routed on the transformed procedure (the route filters on it; the parsed one had none)
    await wait_for(lambda: len(received.accepted) == 1, what="delivery")
    assert received.accepted[0].json()["payload"]["enriched_by"] == "src"


class Trail:
    def __init__(self, mark: str) -> None:
        self.mark = mark

    @hookimpl
    def gateway_transform_message(self, message: Message, system: str) -> Message:
        trail = [*message.payload.get("trail", []), self.mark]
        return dataclasses.replace(message, payload={**message.payload, "trail": trail})


async def test_transforms_run_in_registration_order_each_receiving_the_previous_result(
    app_with: AppFactory,
) -> None:
    # hookspecs.gateway_transform_message: "Implementations run in registration order, each
    # receiving the previous one's result."
    client = await app_with(("first", Trail("first")), ("second", Trail("second")))
    await post(client, {"id": "HS-O"})
    assert (await stored_payloads(client))["HS-O"]["trail"] == ["first", "second"]


class ExplodingTransform:
    @hookimpl
    def gateway_transform_message(self, message: Message, system: str) -> Message | None:
        if message.external_id == "BAD":
            raise KeyError("transform bug")
        return None


async def test_transform_that_raises_rejects_only_that_item(app_with: AppFactory) -> None:
    client = await app_with(("exploding_transform", ExplodingTransform()))
    answer = await post(client, [{"id": "BAD"}, {"id": "OK"}])
    assert [a["ref"] for a in answer["accepted"]] == ["OK"]
    assert answer["rejected"] == [{"ref": "BAD", "errors": ["transform plugin failed: KeyError"]}]


# -- gateway_delivery_outcome -------------------------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    @hookimpl
    def gateway_delivery_outcome(
        self, delivery_id: int, destination: str, dossier_key: str, outcome: str, error: str | None
    ) -> None:
        self.calls.append(
            {
                "id": delivery_id,
                "destination": destination,
                "dossier_key": dossier_key,
                "outcome": outcome,
                "error": error,
            }
        )


class AsyncRecorder(Recorder):
    @hookimpl
    async def gateway_delivery_outcome(  # type: ignore[override]  # async variant of the hook
        self, delivery_id: int, destination: str, dossier_key: str, outcome: str, error: str | None
    ) -> None:
        await asyncio.sleep(0)
        self.calls.append({"id": delivery_id, "outcome": outcome, "error": error})


async def test_outcome_observers_sync_and_async_see_delivered(app_with: AppFactory) -> None:
    sync_rec, async_rec = Recorder(), AsyncRecorder()
    client = await app_with(("sync_rec", sync_rec), ("async_rec", async_rec))
    await post(client, {"id": "HS-D", "key": "DOSSIER-D"})
    await wait_for(lambda: bool(sync_rec.calls and async_rec.calls), what="observers called")
    [delivery] = await client.app[STORE].list_deliveries(DeliveryFilter())
    assert sync_rec.calls == [
        {
            "id": delivery["id"],
            "destination": "dst",
            "dossier_key": "DOSSIER-D",
            "outcome": "delivered",
            "error": None,
        }
    ]
    assert async_rec.calls == [{"id": delivery["id"], "outcome": "delivered", "error": None}]


class ExplodingObserver:
    @hookimpl
    def gateway_delivery_outcome(
        self, delivery_id: int, destination: str, dossier_key: str, outcome: str, error: str | None
    ) -> None:
        raise RuntimeError("observer bug")


async def test_an_observer_that_raises_neither_stops_delivery_nor_the_other_observers(
    app_with: AppFactory, sink: Any
) -> None:
    received, _ = sink
    recorder = Recorder()
    # pluggy calls the last registered first: the raising observer runs before the recorder
    client = await app_with(("recorder", recorder), ("exploding_observer", ExplodingObserver()))
    await post(client, {"id": "HS-1"})
    await post(client, {"id": "HS-2"})
    await wait_for(lambda: len(received.accepted) == 2, what="deliveries")
    await wait_for(
        lambda: (
            {c["outcome"] for c in recorder.calls} == {"delivered"} and len(recorder.calls) == 2
        ),
        timeout=1.5,
        what="the well-behaved observer still told of both deliveries",
    )


# -- a connector whose render raises ------------------------------------------------------------


class RenderBug(Connector):
    async def render(self, message: Message) -> OutboundRequest:
        raise ValueError(f"cannot render {message.external_id} for {CCCD}")


class RenderBugPlugin:
    @hookimpl
    def gateway_register_connectors(self, register: Callable[..., None]) -> None:
        register("render_bug", RenderBug)


async def test_render_that_raises_dead_letters_with_the_error_and_other_destinations_continue(
    app_with: AppFactory, sink: Any
) -> None:
    received, _ = sink
    recorder = Recorder()
    client = await app_with(
        ("render_bug_plugin", RenderBugPlugin()),
        ("recorder", recorder),
        systems={"broken": {"plugin": "render_bug", "base_url": "http://127.0.0.1:9"}},
        routes=[{"from": "src", "event": "message.received", "to": ["broken", "dst"]}],
    )
    await post(client, [{"id": "HS-1"}, {"id": "HS-2"}])
    await wait_for(lambda: len(received.accepted) == 2, what="deliveries to dst")

    async def settled() -> bool:
        return set((await statuses(client)).values()) <= {"dead", "delivered"}

    await wait_for(settled, what="all deliveries settled")
    assert await statuses(client) == {
        ("HS-1", "broken"): "dead",
        ("HS-2", "broken"): "dead",
        ("HS-1", "dst"): "delivered",
        ("HS-2", "dst"): "delivered",
    }
    store = client.app[STORE]
    log = await store.list_log(LogFilter(system="broken", outcome="dead"))
    assert len(log) == 2
    for row in log:
        assert row["attempt"] == 1  # permanent: dead at once, never retried
        assert row["error_class"] == "PermanentError"
        assert "render_bug" in row["error_message"] and "ValueError" in row["error_message"]
        assert "cannot render HS-" in row["error_message"]
        assert CCCD not in row["error_message"] and "********1234" in row["error_message"]
    await wait_for(lambda: len(recorder.calls) == 4, what="observer told of all four")
    dead = [c for c in recorder.calls if c["outcome"] == "dead"]
    assert len(dead) == 2 and all(c["destination"] == "broken" and c["error"] for c in dead)
    assert (await store.verify_log())[1] == []


# -- web routes, start-up, jobs, migrations -----------------------------------------------------

STARTED = web.AppKey("test_plugin_started", list)


class WebAndStartup:
    def __init__(self) -> None:
        self.started_with: list[Any] = []

    @hookimpl
    def gateway_web_routes(self, app: web.Application) -> None:
        async def hello(request: web.Request) -> web.Response:
            return web.json_response({"hello": request.app[CONFIG].gateway.node_id})

        app[STARTED] = []
        app.router.add_get("/plugin/hello", hello)
        protect(app, "/plugin/hello", "public")  # plugin routes are admin-only unless declared

    @hookimpl
    async def gateway_startup(self, app: web.Application) -> None:
        await asyncio.sleep(0)
        # the store is open and migrated when start-up hooks run
        await app[STORE].ping()
        app[STARTED].append("started")
        self.started_with.append(app)


async def test_gateway_web_routes_and_gateway_startup(app_with: AppFactory) -> None:
    plugin = WebAndStartup()
    client = await app_with(("web_and_startup", plugin))
    assert plugin.started_with == [client.app]
    assert client.app[STARTED] == ["started"]
    resp = await client.get("/plugin/hello", allow_redirects=False)
    assert resp.status == 200
    assert await resp.json() == {"hello": "test"}


class Jobs:
    def __init__(self) -> None:
        self.runs: list[str] = []
        self.failures = 0
        self.seen_config: Config | None = None

    @hookimpl
    def gateway_register_jobs(self, register: Callable[..., None], config: Config) -> None:
        self.seen_config = config

        async def tick(ctx: JobContext) -> None:
            assert ctx.app[STORE] is not None
            self.runs.append(ctx.name)

        async def flaky(ctx: JobContext) -> None:
            self.failures += 1
            raise RuntimeError("job bug")

        register("tick", 0.02, tick)
        register("flaky", 0.02, flaky)


async def test_gateway_register_jobs_run_repeatedly_and_a_failing_job_runs_again(
    app_with: AppFactory,
) -> None:
    jobs = Jobs()
    client = await app_with(("jobs", jobs))
    assert jobs.seen_config is client.app[CONFIG]
    await wait_for(lambda: len(jobs.runs) >= 3 and jobs.failures >= 3, timeout=3, what="jobs")
    assert set(jobs.runs) == {"tick"}
    assert (await client.get("/healthz")).status == 200


PLUGIN_MIGRATION = '''
"""A plugin's own table."""
import sqlalchemy as sa
from alembic import op

revision = "testplugin_0001"
down_revision = None
branch_labels = ("testplugin",)
depends_on = None


def upgrade() -> None:
    op.create_table("testplugin_notes", sa.Column("id", sa.Integer, primary_key=True))


def downgrade() -> None:
    op.drop_table("testplugin_notes")
'''


class Migrations:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @hookimpl
    def gateway_migration_dirs(self) -> list[str]:
        return [str(self.directory)]


async def test_gateway_migration_dirs_are_applied_at_start(
    app_with: AppFactory, tmp_path: Path
) -> None:
    versions = tmp_path / "plugin_versions"
    versions.mkdir()
    (versions / "testplugin_0001_notes.py").write_text(PLUGIN_MIGRATION)
    client = await app_with(("migrations", Migrations(versions)))
    async with client.app[STORE].reader.connect() as conn:
        await conn.execute(text("SELECT count(*) FROM testplugin_notes"))
        heads = {r[0] for r in await conn.execute(text("SELECT version_num FROM alembic_version"))}
    assert "testplugin_0001" in heads
    assert (await client.get("/readyz")).status == 200
