"""``POST /inbound/{system}`` refusals and per-item answers over real HTTP (FORMATS.md §1.1,
§4): every non-202 answer is ``{"error", "message"}`` and a refused request stores nothing."""

from __future__ import annotations

import json
import time
import unicodedata
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from conftest import SECRET, make_config, signed, wait_for
from sqlalchemy import func, select

from gateway import hookimpl
from gateway.connector import Connector
from gateway.model import ParseResult
from gateway.plugins import build_plugins
from gateway.signing import sign
from gateway.store.store import DeliveryFilter
from gateway.store.tables import deliveries, messages
from gateway.web.app import create_app
from gateway.web.keys import ENGINE, STORE

Client = TestClient[Any, Any]


async def stored(client: Client) -> tuple[int, int]:
    """(messages, deliveries) in the store."""
    store = client.app[STORE]
    async with store.reader.connect() as conn:
        n_msg = (await conn.execute(select(func.count()).select_from(messages))).scalar_one()
        n_del = (await conn.execute(select(func.count()).select_from(deliveries))).scalar_one()
    return int(n_msg), int(n_del)


async def error_of(resp: Any, status: int, code: str) -> str:
    assert resp.status == status, await resp.text()
    assert resp.content_type == "application/json"
    doc = await resp.json()
    assert set(doc) == {"error", "message"}, doc
    assert doc["error"] == code
    assert isinstance(doc["message"], str) and doc["message"]
    return str(doc["message"])


async def post(client: Client, body: Any, system: str = "src", **kw: Any) -> Any:
    raw, headers = signed(body, **kw)
    return await client.post(f"/inbound/{system}", data=raw, headers=headers)


GOOD = {"data": [{"id": "HS-1", "key": "HS-1", "ten": "Hoàng Thị Lan"}]}


# -- authentication -----------------------------------------------------------------------------


async def test_bad_signature_is_401_and_nothing_is_stored(gateway_factory: Any) -> None:
    client = await gateway_factory()
    resp = await post(client, GOOD, secret="not-the-secret")
    message = await error_of(resp, 401, "bad_signature")
    assert "does not match" in message
    assert await stored(client) == (0, 0)


async def test_missing_signature_is_401(gateway_factory: Any) -> None:
    client = await gateway_factory()
    resp = await client.post(
        "/inbound/src", data=json.dumps(GOOD), headers={"Content-Type": "application/json"}
    )
    assert "missing" in await error_of(resp, 401, "bad_signature")
    assert await stored(client) == (0, 0)


@pytest.mark.parametrize("offset", [-301, 301])
async def test_stale_or_future_timestamp_is_401(gateway_factory: Any, offset: int) -> None:
    client = await gateway_factory()
    resp = await post(client, GOOD, ts=int(time.time()) + offset)
    assert "away from the gateway clock" in await error_of(resp, 401, "bad_signature")
    assert await stored(client) == (0, 0)


async def test_body_changed_after_signing_is_401(gateway_factory: Any) -> None:
    client = await gateway_factory()
    raw, headers = signed(GOOD)
    resp = await client.post("/inbound/src", data=raw.replace(b"HS-1", b"HS-9"), headers=headers)
    await error_of(resp, 401, "bad_signature")
    assert await stored(client) == (0, 0)


async def test_signature_of_another_systems_secret_is_401(gateway_factory: Any) -> None:
    client = await gateway_factory(
        systems={
            "other": {"plugin": "http_json", "inbound_secret": "other-secret-7c2e9a41b8d3f6051e4d"}
        }
    )
    resp = await post(client, GOOD, system="other")  # signed with src's secret
    await error_of(resp, 401, "bad_signature")
    assert await stored(client) == (0, 0)


# -- bodies that cannot be read -----------------------------------------------------------------


async def test_not_json_is_400_with_the_reason(gateway_factory: Any) -> None:
    client = await gateway_factory()
    resp = await post(client, b"{not json")
    assert "not JSON" in await error_of(resp, 400, "bad_request")
    assert await stored(client) == (0, 0)


async def test_not_utf8_is_400(gateway_factory: Any) -> None:
    client = await gateway_factory()
    resp = await post(client, b'{"id": "\xff"}')
    await error_of(resp, 400, "bad_request")
    assert await stored(client) == (0, 0)


@pytest.mark.parametrize("body", ['"a string"', "42", "null", '{"data": 5}', '{"data": "x"}'])
async def test_json_of_the_wrong_shape_is_400(gateway_factory: Any, body: str) -> None:
    client = await gateway_factory()
    resp = await post(client, body.encode())
    assert "must be" in await error_of(resp, 400, "bad_request")
    assert await stored(client) == (0, 0)


@pytest.mark.parametrize("ctype", ["text/plain", "application/xml", "multipart/form-data"])
async def test_wrong_content_type_is_415(gateway_factory: Any, ctype: str) -> None:
    client = await gateway_factory()
    raw, headers = signed(GOOD)
    headers["Content-Type"] = ctype
    resp = await client.post("/inbound/src", data=raw, headers=headers)
    message = await error_of(resp, 415, "unsupported_media_type")
    assert "application/json" in message
    assert await stored(client) == (0, 0)


async def test_content_type_parameters_are_accepted(gateway_factory: Any) -> None:
    client = await gateway_factory()
    raw, headers = signed(GOOD)
    headers["Content-Type"] = "application/json; charset=utf-8"
    resp = await client.post("/inbound/src", data=raw, headers=headers)
    assert resp.status == 202


async def test_unknown_system_is_404(gateway_factory: Any) -> None:
    client = await gateway_factory()
    resp = await post(client, GOOD, system="nowhere")
    assert "nowhere" in await error_of(resp, 404, "unknown_system")


async def test_system_without_inbound_secret_is_404_no_inbound(gateway_factory: Any) -> None:
    client = await gateway_factory()
    resp = await post(client, GOOD, system="dst")  # a destination only: it cannot push
    assert "inbound_secret" in await error_of(resp, 404, "no_inbound")
    assert await stored(client) == (0, 0)


async def test_body_over_max_body_bytes_is_413_json(gateway_factory: Any) -> None:
    client = await gateway_factory(limits={"max_body_bytes": 1000})
    big = {"data": [{"id": "HS-BIG", "ten": "x" * 2000}]}
    resp = await post(client, big)
    message = await error_of(resp, 413, "too_large")
    assert "1000" in message
    assert await stored(client) == (0, 0)
    small = await post(client, GOOD)  # the gateway is still serving
    assert small.status == 202


async def test_get_on_the_inbound_endpoint_is_a_json_405(gateway_factory: Any) -> None:
    client = await gateway_factory()
    resp = await client.get("/inbound/src")
    await error_of(resp, 405, "method_not_allowed")


# -- per-item answers ---------------------------------------------------------------------------


async def test_one_bad_item_never_blocks_the_good_ones(gateway_factory: Any) -> None:
    client = await gateway_factory()
    resp = await post(
        client, {"data": [{"id": "A"}, {"ten": "no id"}, {"id": "B"}, "not an object"]}
    )
    assert resp.status == 202
    answer = await resp.json()
    assert [a["ref"] for a in answer["accepted"]] == ["A", "B"]
    assert all(len(a["id"]) == 32 for a in answer["accepted"])
    assert answer["duplicates"] == []
    assert answer["rejected"] == [
        {"ref": "data[1]", "errors": ["id: missing or not a string"]},
        {"ref": "data[3]", "errors": ["item is not a JSON object"]},
    ]
    assert await stored(client) == (2, 2)


async def test_same_body_twice_is_a_duplicate_with_the_same_id(gateway_factory: Any) -> None:
    client = await gateway_factory()
    first = await (await post(client, GOOD)).json()
    resp = await post(client, GOOD)  # freshly signed, same body
    assert resp.status == 202
    second = await resp.json()
    assert second["accepted"] == [] and second["rejected"] == []
    assert second["duplicates"] == first["accepted"]
    assert await stored(client) == (1, 1)


async def test_changed_body_for_the_same_id_is_revision_2(gateway_factory: Any) -> None:
    client = await gateway_factory()
    first = await (await post(client, {"id": "HS-R", "TrangThaiHoSo": "2"})).json()
    second = await (await post(client, {"id": "HS-R", "TrangThaiHoSo": "4"})).json()
    assert len(second["accepted"]) == 1 and second["duplicates"] == []
    assert second["accepted"][0]["id"] != first["accepted"][0]["id"]
    third = await (await post(client, {"id": "HS-R", "TrangThaiHoSo": "2"})).json()
    assert third["duplicates"] == first["accepted"]  # an old revision re-sent is a duplicate
    async with client.app[STORE].reader.connect() as conn:
        rows = (
            await conn.execute(
                select(messages.c.uid, messages.c.revision)
                .where(messages.c.external_id == "HS-R")
                .order_by(messages.c.id)
            )
        ).all()
    assert [(r.uid, r.revision) for r in rows] == [
        (first["accepted"][0]["id"], 1),
        (second["accepted"][0]["id"], 2),
    ]


async def test_nfd_text_is_delivered_as_nfc_and_nfc_nfd_variants_dedupe(
    gateway_factory: Any, sink: Any
) -> None:
    received, _ = sink
    client = await gateway_factory()
    name = "Hoàng Thị Lan, xã Ngọc Phái"
    nfd = unicodedata.normalize("NFD", name)
    assert nfd != name
    first = await (await post(client, {"id": "HS-N", "ChuHoSo": nfd})).json()
    assert len(first["accepted"]) == 1
    second = await (await post(client, {"id": "HS-N", "ChuHoSo": name})).json()
    assert second["duplicates"] == first["accepted"]
    assert await stored(client) == (1, 1)
    await wait_for(lambda: len(received.accepted) == 1, what="delivery")
    delivered = received.accepted[0].json()["payload"]["ChuHoSo"]
    assert delivered == name and unicodedata.is_normalized("NFC", delivered)


# -- back-pressure ------------------------------------------------------------------------------


async def test_queue_bound_reached_is_503_with_retry_after(gateway_factory: Any, sink: Any) -> None:
    received, _ = sink
    received.behaviour = lambda request, seen: 503  # the delivery stays queued (retrying)
    client = await gateway_factory(limits={"queue_bound": 1})
    resp = await post(client, {"id": "HS-Q1"})
    assert resp.status == 202
    resp = await post(client, {"id": "HS-Q2"})
    assert "bound 1" in await error_of(resp, 503, "queue_full")
    assert int(resp.headers["Retry-After"]) > 0
    assert await stored(client) == (1, 1)
    async with client.app[STORE].reader.connect() as conn:
        ids = (await conn.execute(select(messages.c.external_id))).scalars().all()
    assert ids == ["HS-Q1"]


async def test_draining_gateway_answers_503(gateway_factory: Any) -> None:
    client = await gateway_factory()
    client.app[ENGINE].draining = True
    try:
        resp = await post(client, GOOD)
        await error_of(resp, 503, "shutting_down")
        assert "Retry-After" in resp.headers
    finally:
        client.app[ENGINE].draining = False
    assert await stored(client) == (0, 0)


# -- a connector that raises --------------------------------------------------------------------


class ExplodingConnector(Connector):
    async def parse(self, body: bytes, content_type: str) -> ParseResult:
        raise RuntimeError("parser bug while reading 006135001234")


class ExplodingPlugin:
    @hookimpl
    def gateway_register_connectors(self, register: Callable[..., None]) -> None:
        register("boom", ExplodingConnector)


@pytest.fixture
def app_with_plugins(
    tmp_path: Path, aiohttp_client: Any, sink: Any
) -> Callable[..., Awaitable[Client]]:
    async def factory(extra: list[tuple[str, object]], **overrides: Any) -> Client:
        config = make_config(tmp_path, str(sink[1].make_url("")).rstrip("/"), **overrides)
        app = create_app(config, plugins=build_plugins(extra=extra))
        client: Client = await aiohttp_client(app)
        return client

    return factory


async def test_connector_parse_raising_is_500_plugin_error_and_others_keep_working(
    app_with_plugins: Any,
) -> None:
    client = await app_with_plugins(
        [("boom_plugin", ExplodingPlugin())],
        systems={"boom": {"plugin": "boom", "inbound_secret": SECRET}},
    )
    resp = await post(client, GOOD, system="boom")
    message = await error_of(resp, 500, "plugin_error")
    assert "'boom'" in message and "RuntimeError" in message and "nothing was stored" in message
    assert "006135001234" not in message
    assert await stored(client) == (0, 0)
    resp = await post(client, GOOD)  # another system, same gateway
    assert resp.status == 202
    assert await stored(client) == (1, 1)
    rows = await client.app[STORE].list_deliveries(DeliveryFilter())
    assert [r["ref"] for r in rows] == ["HS-1"]


@pytest.mark.parametrize("ts", ["abc", "\u00b2"])
async def test_malformed_timestamp_is_401_not_a_crash(gateway_factory: Any, ts: str) -> None:
    # "\u00b2" (superscript two) passes str.isdigit() but not int()
    client = await gateway_factory()
    raw, headers = signed(GOOD)
    headers["X-Timestamp"] = ts
    headers["X-Signature"] = sign(SECRET, raw)["X-Signature"]
    resp = await client.post("/inbound/src", data=raw, headers=headers)
    assert "unix seconds" in await error_of(resp, 401, "bad_signature")
    assert await stored(client) == (0, 0)
