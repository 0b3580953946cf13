"""The engine end to end: signed intake → durable store → delivery to a loopback sink."""

from __future__ import annotations

from typing import Any

from conftest import signed, wait_for

from gateway.web.keys import STORE


async def test_accepted_dossier_is_delivered_with_idempotency_key(
    gateway_factory: Any, sink: Any
) -> None:
    received, _ = sink
    client = await gateway_factory()
    body, headers = signed({"data": [{"id": "HS-1", "key": "HS-1", "ten": "Hoàng Thị Lan"}]})
    resp = await client.post("/inbound/src", data=body, headers=headers)
    assert resp.status == 202
    answer = await resp.json()
    assert [a["ref"] for a in answer["accepted"]] == ["HS-1"]
    assert answer["duplicates"] == [] and answer["rejected"] == []
    await wait_for(lambda: len(received.accepted) == 1, what="delivery")
    got = received.accepted[0]
    assert got.idempotency_key.startswith(answer["accepted"][0]["id"])
    assert got.json()["payload"]["ten"] == "Hoàng Thị Lan"
    store = client.app[STORE]
    await wait_for(lambda: _delivered(store), what="delivered status")
    checked, problems = await store.verify_log()
    assert checked >= 1 and problems == []


async def _delivered(store: Any) -> bool:
    rows = await store.list_deliveries(
        __import__("gateway.store.store", fromlist=["DeliveryFilter"]).DeliveryFilter()
    )
    return bool(rows) and all(r["status"] == "delivered" for r in rows)
