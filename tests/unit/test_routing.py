"""The route table (DESIGN.md §9): event and procedure filters, each destination once, and a
message no route names is stored but not routed."""

from __future__ import annotations

from typing import Any

from conftest import signed
from sqlalchemy import func, select

from gateway.config import RouteConfig, config_from_dict
from gateway.model import Message
from gateway.routing import RouteTable
from gateway.store.tables import deliveries, messages
from gateway.web.keys import STORE

SYSTEMS = {name: {"plugin": "http_json"} for name in ("motcua", "registry", "post_office", "audit")}


def table(*routes: dict[str, Any]) -> RouteTable:
    config = config_from_dict({"systems": SYSTEMS, "routes": list(routes)})
    return RouteTable(config.routes)


def msg(
    source: str = "motcua", event: str = "dossier.received", procedure: str | None = "1.001776"
) -> Message:
    return Message(event=event, external_id="HS-1", payload={}, procedure=procedure, source=source)


def test_route_with_procedure_matches_only_that_procedure() -> None:
    routes = table(
        {"from": "motcua", "event": "dossier.received", "procedure": "1.001776", "to": ["registry"]}
    )
    assert routes.destinations(msg(procedure="1.001776")) == [
        ("motcua:dossier.received[1.001776]", "registry")
    ]
    assert routes.destinations(msg(procedure="2.000001")) == []
    assert routes.destinations(msg(procedure=None)) == []


def test_route_without_procedure_matches_every_procedure() -> None:
    routes = table({"from": "motcua", "event": "dossier.received", "to": ["registry"]})
    for procedure in ("1.001776", "2.000001", None):
        assert routes.destinations(msg(procedure=procedure)) == [
            ("motcua:dossier.received", "registry")
        ]


def test_event_and_source_must_both_match() -> None:
    routes = table({"from": "motcua", "event": "dossier.received", "to": ["registry"]})
    assert routes.destinations(msg(event="dossier.accepted")) == []
    assert routes.destinations(msg(source="registry")) == []


def test_several_routes_give_each_destination_once_in_route_order() -> None:
    routes = table(
        {
            "from": "motcua",
            "event": "dossier.received",
            "procedure": "1.001776",
            "to": ["registry", "audit"],
        },
        {"from": "motcua", "event": "dossier.received", "to": ["audit", "post_office", "registry"]},
        {"from": "motcua", "event": "dossier.received", "procedure": "9.999999", "to": ["motcua"]},
    )
    got = routes.destinations(msg(procedure="1.001776"))
    assert [dest for _, dest in got] == ["registry", "audit", "post_office"]
    assert got[0][0] == "motcua:dossier.received[1.001776]"
    assert got[2][0] == "motcua:dossier.received"
    other = routes.destinations(msg(procedure="2.000001"))
    assert [dest for _, dest in other] == ["audit", "post_office", "registry"]


def test_a_route_listing_a_destination_twice_sends_once() -> None:
    routes = table({"from": "motcua", "event": "dossier.received", "to": ["registry", "registry"]})
    assert [dest for _, dest in routes.destinations(msg())] == ["registry"]


def test_no_route_means_no_destination() -> None:
    assert table().destinations(msg()) == []


def test_route_names() -> None:
    route = RouteConfig.model_validate({"from": "a", "event": "e", "procedure": "p", "to": ["b"]})
    assert RouteTable([route]).routes[0].name == "a:e[p]"


# -- over HTTP ----------------------------------------------------------------------------------


async def _counts(client: Any) -> tuple[int, list[tuple[str, str]]]:
    store = client.app[STORE]
    async with store.reader.connect() as conn:
        n_messages = (await conn.execute(select(func.count()).select_from(messages))).scalar_one()
        rows = (
            await conn.execute(
                select(messages.c.external_id, deliveries.c.destination)
                .join(messages, messages.c.id == deliveries.c.message_id)
                .order_by(deliveries.c.id)
            )
        ).all()
    return int(n_messages), [(r[0], r[1]) for r in rows]


async def test_message_without_a_route_is_stored_but_not_routed(gateway_factory: Any) -> None:
    client = await gateway_factory(routes=[{"from": "src", "event": "other.event", "to": ["dst"]}])
    body, headers = signed({"id": "HS-NOROUTE", "ten": "x"})
    resp = await client.post("/inbound/src", data=body, headers=headers)
    assert resp.status == 202
    answer = await resp.json()
    assert [a["ref"] for a in answer["accepted"]] == ["HS-NOROUTE"]
    assert await _counts(client) == (1, [])
    assert await client.app[STORE].queue_depth() == 0


async def test_procedure_filter_over_http(gateway_factory: Any, sink: Any) -> None:
    sink_url = str(sink[1].make_url("")).rstrip("/")
    client = await gateway_factory(
        systems={
            "src": {
                "plugin": "http_json",
                "inbound_secret": "test-secret-7c2e9a41b8d3f6051e4d",
                "procedure_field": "MaTTHC",
            },
            "other": {"plugin": "http_json", "base_url": sink_url, "path": "/other"},
        },
        routes=[
            {"from": "src", "event": "message.received", "procedure": "1.001776", "to": ["dst"]},
            {"from": "src", "event": "message.received", "to": ["other"]},
        ],
    )
    body, headers = signed(
        [{"id": "A", "MaTTHC": "1.001776"}, {"id": "B", "MaTTHC": "2.000001"}, {"id": "C"}]
    )
    resp = await client.post("/inbound/src", data=body, headers=headers)
    assert resp.status == 202
    assert len((await resp.json())["accepted"]) == 3
    n, routed = await _counts(client)
    assert n == 3
    assert sorted(routed) == [("A", "dst"), ("A", "other"), ("B", "other"), ("C", "other")]
