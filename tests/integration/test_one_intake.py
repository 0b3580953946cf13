"""The engine's one intake (DESIGN.md §4): pushes, polls, follow-ups and the messages plugins
emit are all prepared by the same checks (validate and transform hooks, routing), stored under
the same dedupe and ordering locks, and counted by the engine."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from conftest import make_config, signed, wait_for
from sqlalchemy import select, text

from gateway import hookimpl
from gateway.api import Gateway, emit_in, prepare_message
from gateway.connector import Connector
from gateway.model import Message, OutboundRequest, Receipt
from gateway.plugins import build_plugins
from gateway.store import Store
from gateway.store.tables import messages
from gateway.testing.sink import Sink
from gateway.web.app import create_app
from gateway.web.keys import CONFIG, ENGINE, PLUGINS, STORE

Client = TestClient[Any, Any]


class Answering(Connector):
    """A destination whose answer gives rise to two follow-ups (one the validator refuses)."""

    async def render(self, message: Message) -> OutboundRequest:
        return OutboundRequest(method="LOCAL", url="local:answering", context=message.payload)

    async def send(self, session: aiohttp.ClientSession, request: OutboundRequest) -> Receipt:
        key = str(request.context["id"])
        return Receipt(
            status=200,
            detail="answered",
            follow_ups=[
                Message(event="reply.ok", external_id=f"ok-{key}", dossier_key=key, payload={}),
                Message(event="reply.bad", external_id=f"bad-{key}", dossier_key=key, payload={}),
            ],
        )


class AnsweringPlugin:
    @hookimpl
    def gateway_register_connectors(self, register: Any) -> None:
        register("answering", Answering)


class RefuseBadReplies:
    @hookimpl
    def gateway_validate_message(self, message: Message, system: str) -> list[str]:
        return ["bad replies are refused"] if message.event == "reply.bad" else []


class StampReplies:
    @hookimpl
    def gateway_transform_message(self, message: Message, system: str) -> Message | None:
        if not message.event.startswith("reply."):
            return None
        return dataclasses.replace(message, payload={**message.payload, "stamped_by": system})


async def stored(store: Store) -> dict[str, tuple[dict[str, Any], int | None]]:
    async with store.reader.connect() as conn:
        rows = await conn.execute(
            select(messages.c.external_id, messages.c.payload, messages.c.parent_delivery_id)
        )
        return {r.external_id: (json.loads(r.payload), r.parent_delivery_id) for r in rows}


@pytest.mark.both_databases
async def test_follow_ups_pass_the_validate_and_transform_hooks_like_a_push(
    tmp_path: Path, aiohttp_client: Any, sink: tuple[Sink, TestServer]
) -> None:
    received, server = sink
    config = make_config(
        tmp_path,
        str(server.make_url("")).rstrip("/"),
        systems={"answering": {"plugin": "answering"}},
        routes=[
            {"from": "src", "event": "message.received", "to": ["answering"]},
            {"from": "answering", "event": "reply.ok", "to": ["dst"]},
            {"from": "answering", "event": "reply.bad", "to": ["dst"]},
        ],
    )
    plugins = build_plugins(
        extra=[
            ("answering", AnsweringPlugin()),
            ("refuse", RefuseBadReplies()),
            ("stamp", StampReplies()),
        ]
    )
    client: Client = await aiohttp_client(create_app(config, plugins=plugins))
    raw, headers = signed({"id": "HS-1"})
    assert (await client.post("/inbound/src", data=raw, headers=headers)).status == 202
    await wait_for(lambda: len(received.accepted) == 1, what="the follow-up at dst")
    assert received.accepted[0].json()["payload"] == {"stamped_by": "answering"}
    found = await stored(client.app[STORE])
    assert set(found) == {"HS-1", "ok-HS-1"}  # the refused follow-up was not stored
    assert found["ok-HS-1"][1] is not None  # it names the delivery whose answer made it
    engine = client.app[ENGINE]
    await wait_for(lambda: engine.queue_depth == 0, what="the engine's count back to zero")


@pytest.mark.both_databases
async def test_a_plugin_emits_through_the_engines_group_commit_and_is_counted(
    tmp_path: Path, aiohttp_client: Any, sink: tuple[Sink, TestServer]
) -> None:
    received, server = sink
    config = make_config(tmp_path, str(server.make_url("")).rstrip("/"))
    client: Client = await aiohttp_client(create_app(config))
    engine = client.app[ENGINE]
    gw = Gateway.of(client.app)
    cycles = engine.cycles
    message = Message(
        event="message.received", external_id="E-1", dossier_key="E-1", payload={"id": "E-1"}
    )
    answer = await gw.emit("src", message)
    assert [a["ref"] for a in answer.accepted] == ["E-1"] and answer.new_deliveries == 1
    assert engine.cycles > cycles  # stored by the write cycle, not beside it
    again = await gw.emit("src", message)
    assert [d["ref"] for d in again.duplicates] == ["E-1"]
    await wait_for(lambda: len(received.accepted) == 1, what="the emitted message delivered")
    await wait_for(lambda: engine.queue_depth == 0, what="counted in and out")


async def test_emit_in_takes_the_intakes_advisory_locks_on_postgresql(
    tmp_path: Path, aiohttp_client: Any, sink: tuple[Sink, TestServer], postgres_url: str
) -> None:
    config = make_config(
        tmp_path, str(sink[1].make_url("")).rstrip("/"), gateway={"database": postgres_url}
    )
    client: Client = await aiohttp_client(create_app(config))
    app = client.app
    message = Message(
        event="message.received", external_id="L-1", dossier_key="L-1", payload={"id": "L-1"}
    )
    prepared = await prepare_message(app[CONFIG], app[PLUGINS], "src", message)

    def emit_and_count_locks(conn: Any) -> int:
        emit_in(conn, prepared)
        sql = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
        return int(conn.execute(text(sql)).scalar_one())

    # the dossier key and the (source, external id) dedupe key, held until the commit
    assert await app[STORE].write(emit_and_count_locks) == 2
