"""The admin API under /api/v1/: real gateway, real store, a loopback sink as destination."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from conftest import make_config, signed, wait_for
from prometheus_client.parser import text_string_to_metric_families

from gateway.store import DeliveryFilter
from gateway.testing.admin import bearer, token_config
from gateway.web.admin.api import ROUTES as API_ROUTES
from gateway.web.app import create_app
from gateway.web.exports import LOG_COLUMNS
from gateway.web.keys import STORE

CCCD = "001203004567"


@pytest.fixture
async def api(tmp_path: Path, aiohttp_client: Any, sink: Any) -> TestClient[Any, Any]:
    url = str(sink[1].make_url("")).rstrip("/")
    return await aiohttp_client(create_app(make_config(tmp_path, url, tokens=token_config())))


async def send(client: TestClient[Any, Any], *items: dict[str, Any]) -> None:
    body, headers = signed({"data": list(items)})
    resp = await client.post("/inbound/src", data=body, headers=headers)
    assert resp.status == 202, await resp.text()


def dossier(n: int, **extra: Any) -> dict[str, Any]:
    return {
        "id": f"HS-{n}",
        "key": f"000.00.12.H06-2508{n:02d}",
        "hoTen": "Hoàng Thị Lan",
        "soDinhDanh": CCCD,
        **extra,
    }


def refuse(sink: Any, marker: bytes) -> Any:
    """A sink behaviour answering 400 (a permanent error) to the dossier containing ``marker``
    (the sink records a request before it asks its behaviour, with no await in between)."""
    return lambda req, n: 400 if marker in sink.received[-1].body else None


async def deliveries(client: TestClient[Any, Any], status: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = await client.app[STORE].list_deliveries(
        DeliveryFilter(status=status)
    )
    return rows


async def settled(client: TestClient[Any, Any], status: str, count: int) -> list[dict[str, Any]]:
    async def ready() -> bool:
        return len(await deliveries(client, status)) == count

    await wait_for(ready, what=f"{count} {status} deliveries")
    return await deliveries(client, status)


async def get_json(
    client: TestClient[Any, Any], path: str, role: str = "viewer", status: int = 200
) -> Any:
    resp = await client.get(path, headers=bearer(role))
    assert resp.status == status, await resp.text()
    assert resp.content_type == "application/json"
    return await resp.json()


async def test_systems_overview_counts_the_last_hour(api: TestClient[Any, Any], sink: Any) -> None:
    await send(api, dossier(1), dossier(2))
    await settled(api, "delivered", 2)
    body = await get_json(api, "/api/v1/systems")
    by_name = {s["name"]: s for s in body["systems"]}
    assert set(by_name) == {"src", "dst"}
    dst = by_name["dst"]
    assert dst["delivered_1h"] == 2 and dst["failed_1h"] == 0 and dst["queue_depth"] == 0
    assert dst["breaker"] == "closed" and dst["in_flight"] == 0 and dst["dead"] == 0
    assert dst["p95_ms"] is not None and dst["p95_ms"] > 0
    assert len(dst["hourly"]) == 24 and sum(h["delivered"] for h in dst["hourly"]) == 2
    assert dst["hourly"][-1]["delivered"] == 2  # the current hour is the last bar
    assert by_name["src"]["received_1h"] == 2
    assert body["generated_at"].endswith("+07:00")


async def test_deliveries_are_cursor_paginated_newest_first(api: TestClient[Any, Any]) -> None:
    await send(api, *(dossier(n) for n in range(1, 6)))
    await settled(api, "delivered", 5)
    seen: list[int] = []
    path = "/api/v1/deliveries?status=delivered&limit=2"
    while True:
        page = await get_json(api, path)
        seen += [item["id"] for item in page["items"]]
        assert all("payload" not in item for item in page["items"])
        if page["next_cursor"] is None:
            break
        path = f"/api/v1/deliveries?status=delivered&limit=2&before_id={page['next_cursor']}"
    assert len(seen) == 5 and seen == sorted(seen, reverse=True)
    assert (await get_json(api, "/api/v1/deliveries?status=lost", status=400))[
        "error"
    ] == "bad_parameter"


async def test_one_delivery_with_attempts_and_masked_payload(api: TestClient[Any, Any]) -> None:
    await send(api, dossier(1))
    [row] = await settled(api, "delivered", 1)
    body = await get_json(api, f"/api/v1/deliveries/{row['id']}")
    payload = body["delivery"]["payload"]
    assert payload["hoTen"] == "H. T. L." and payload["soDinhDanh"] == "********4567"
    assert CCCD not in json.dumps(body, ensure_ascii=False) and "Hoàng" not in json.dumps(
        body, ensure_ascii=False
    )
    assert [a["outcome"] for a in body["attempts"]] == ["delivered"]
    assert body["delivery"]["created_at"].endswith("+07:00")


@pytest.mark.parametrize("bad", ["999999", "99999999999999999999999", "abc", "0", "-1", "١٢"])
async def test_unknown_delivery_ids_are_404_json(api: TestClient[Any, Any], bad: str) -> None:
    body = await get_json(api, f"/api/v1/deliveries/{bad}", status=404)
    assert body["error"] == "not_found"
    resp = await api.post(f"/api/v1/deliveries/{bad}/retry", headers=bearer("operator"))
    assert resp.status == 404 and (await resp.json())["error"] == "not_found"


async def test_log_filters_and_next_cursor(api: TestClient[Any, Any], sink: Any) -> None:
    sink[0].behaviour = refuse(sink[0], b"HS-3")
    await send(api, dossier(1), dossier(2), dossier(3))
    await settled(api, "delivered", 2)
    await settled(api, "dead", 1)
    dead = await get_json(api, "/api/v1/log?outcome=dead")
    assert [i["dossier_key"] for i in dead["items"]] == ["000.00.12.H06-250803"]
    assert dead["items"][0]["error_message"].startswith("HTTP 400") and dead["next_cursor"] is None
    one = await get_json(api, "/api/v1/log?dossier=000.00.12.H06-250801")
    assert [i["outcome"] for i in one["items"]] == ["delivered"]
    first = await get_json(api, "/api/v1/log?system=dst&limit=2")
    assert len(first["items"]) == 2 and first["next_cursor"] == first["items"][-1]["id"]
    rest = await get_json(api, f"/api/v1/log?system=dst&limit=2&before_id={first['next_cursor']}")
    assert len(rest["items"]) == 1 and rest["next_cursor"] is None
    assert (await get_json(api, "/api/v1/log?since=2999-01-01"))["items"] == []
    assert len((await get_json(api, "/api/v1/log?since=2000-01-01&until=2999-01-01"))["items"]) == 3
    for bad in ("outcome=lost", "since=yesterday", "limit=0", "limit=501", "before_id=x"):
        assert (await get_json(api, f"/api/v1/log?{bad}", status=400))["error"] == "bad_parameter"
    # RFC 3339 with an offset, and the short local form, mean the same instant
    utc = await get_json(api, "/api/v1/log?until=2999-01-01T00:00:00Z")
    assert len(utc["items"]) == 3
    for bad in ("since=2020-02-30", "until=2024-01-01T12:99:00Z", "since=20200803", "system="):
        body = await get_json(api, f"/api/v1/log?{bad}", status=400)
        assert body["error"] == "bad_parameter" and bad.split("=")[0] in body["message"]


async def test_api_takes_only_the_documented_query_parameters_once(
    api: TestClient[Any, Any],
) -> None:
    """A misspelt filter would otherwise list everything: it is a 400 naming what is taken."""
    body = await get_json(api, "/api/v1/deliveries?statsu=dead", status=400)
    assert body["error"] == "unknown_parameter"
    assert "'statsu'" in body["message"] and "status" in body["message"]
    body = await get_json(api, "/api/v1/log?limit=2&limit=3", status=400)
    assert body["error"] == "bad_parameter" and "limit is given 2 times" in body["message"]
    body = await get_json(api, "/api/v1/systems?x=1", status=400)
    assert "takes: none" in body["message"]
    assert (await get_json(api, "/api/v1/deliveries?status=dead&limit=5"))["items"] == []


async def test_a_405_lists_only_the_methods_of_that_path(api: TestClient[Any, Any]) -> None:
    """``/deliveries/retry`` is not a ``/deliveries/{id}``: its 405 does not offer GET."""
    resp = await api.request("OPTIONS", "/api/v1/deliveries/retry", headers=bearer("admin"))
    assert resp.status == 405 and set(resp.headers["Allow"].split(",")) == {"POST"}


async def _refusing_destination(aiohttp_server: Any) -> str:
    async def refuse(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=422, text=f"SoDinhDanh {CCCD} không hợp lệ")

    app = web.Application()
    app.router.add_post("/receive", refuse)
    server = await aiohttp_server(app)
    return str(server.make_url("")).rstrip("/")


async def test_log_csv_has_the_cli_columns_and_masks_errors(
    tmp_path: Path, aiohttp_client: Any, aiohttp_server: Any
) -> None:
    url = await _refusing_destination(aiohttp_server)
    client = await aiohttp_client(create_app(make_config(tmp_path, url, tokens=token_config())))
    await send(client, dossier(1), dossier(2))
    await settled(client, "dead", 2)
    resp = await client.get("/api/v1/log.csv?outcome=dead", headers=bearer("viewer"))
    assert resp.status == 200 and resp.content_type == "text/csv"
    assert "attachment" in resp.headers["Content-Disposition"]
    text = (await resp.read()).decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0]) == LOG_COLUMNS and len(rows) == 2
    assert all(r["outcome"] == "dead" and "********4567" in r["error_message"] for r in rows)
    assert CCCD not in text
    assert rows[0]["at"].endswith("+0700")
    # the same masking in the JSON log and the overview's last error
    log = await get_json(client, "/api/v1/log")
    assert CCCD not in json.dumps(log) and "********4567" in log["items"][0]["error_message"]
    systems = await get_json(client, "/api/v1/systems")
    assert CCCD not in json.dumps(systems)


async def test_dead_letter_retried_via_api_is_delivered_and_audited(
    api: TestClient[Any, Any], sink: Any
) -> None:
    received, _ = sink
    received.behaviour = lambda req, n: 400
    await send(api, dossier(1))
    [dead] = await settled(api, "dead", 1)
    received.behaviour = None
    resp = await api.post(f"/api/v1/deliveries/{dead['id']}/retry", headers=bearer("viewer"))
    assert resp.status == 403 and (await resp.json())["error"] == "forbidden"
    resp = await api.post(f"/api/v1/deliveries/{dead['id']}/retry", headers=bearer("operator"))
    assert resp.status == 200 and (await resp.json()) == {"retried": [dead["id"]]}
    await wait_for(lambda: len(received.accepted) == 1, what="the retried delivery")
    await settled(api, "delivered", 1)
    again = await api.post(f"/api/v1/deliveries/{dead['id']}/retry", headers=bearer("operator"))
    assert again.status == 409 and (await again.json())["error"] == "not_dead"
    attempts = (await get_json(api, f"/api/v1/deliveries/{dead['id']}"))["attempts"]
    assert [(a["outcome"], a["actor"]) for a in attempts] == [
        ("dead", None),
        ("replayed", "api:ops"),
        ("delivered", None),
    ]
    audit = await get_json(api, "/api/v1/audit", role="admin")
    assert [(e["actor"], e["action"], e["target"]) for e in audit["items"]] == [
        ("api:ops", "retry", f"delivery:{dead['id']}")
    ]
    assert audit["items"][0]["at"].endswith("+07:00")
    await get_json(api, "/api/v1/audit", role="operator", status=403)


async def test_bulk_retry_reports_what_was_left_alone(api: TestClient[Any, Any], sink: Any) -> None:
    sink[0].behaviour = lambda req, n: 400
    await send(api, dossier(1), dossier(2))
    dead = await settled(api, "dead", 2)
    sink[0].behaviour = None
    ids = sorted(d["id"] for d in dead)
    resp = await api.post(
        "/api/v1/deliveries/retry", json={"ids": [*ids, 424242]}, headers=bearer("admin")
    )
    assert resp.status == 200
    assert await resp.json() == {"retried": ids, "not_retried": [424242]}
    await settled(api, "delivered", 2)
    for bad in ({}, {"ids": []}, {"ids": ["x"]}, {"ids": [1], "all": True}, [1, 2]):
        resp = await api.post("/api/v1/deliveries/retry", json=bad, headers=bearer("operator"))
        assert resp.status == 400 and (await resp.json())["error"] == "bad_request"
    resp = await api.post("/api/v1/deliveries/retry", data=b"{not json", headers=bearer("operator"))
    assert resp.status == 400


async def test_dossier_timeline_and_unknown_dossier(api: TestClient[Any, Any]) -> None:
    await send(api, dossier(1))
    await settled(api, "delivered", 1)
    body = await get_json(api, "/api/v1/dossiers/000.00.12.H06-250801")
    assert [m["source"] for m in body["messages"]] == ["src"]
    assert [d["destination"] for d in body["deliveries"]] == ["dst"]
    assert [a["outcome"] for a in body["attempts"]] == ["delivered"]
    missing = await get_json(api, "/api/v1/dossiers/NO-SUCH", status=404)
    assert missing["error"] == "not_found"


async def test_plugins_are_listed(api: TestClient[Any, Any]) -> None:
    body = await get_json(api, "/api/v1/plugins")
    assert "http_json" in {p["name"] for p in body["plugins"]}
    assert body["load_errors"] == []


async def test_openapi_document_matches_the_routes(api: TestClient[Any, Any]) -> None:
    resp = await api.get("/api/v1/openapi.json")
    assert resp.status == 200
    doc = await resp.json()
    assert doc["openapi"].startswith("3.1")
    documented = {
        (m.upper(), "/api/v1" + p if not p.startswith("/api") else p)
        for p, ops in doc["paths"].items()
        for m in ops
        if m != "parameters"
    }
    registered = {
        (r.method, r.resource.canonical)
        for r in api.app.router.routes()
        if r.resource is not None
        and r.resource.canonical.startswith("/api/v1/")
        and r.method != "HEAD"
    }
    assert documented == registered
    # the core's own routes, plus what plugins add and document (gateway_openapi_paths)
    assert {
        (m, "/api/v1" + re.sub(r"\{(\w+):[^}]+\}", r"{\1}", p)) for m, p, _, _ in API_ROUTES
    } <= registered
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            assert op.get("operationId") and op.get("responses"), (method, path)


def test_committed_openapi_is_what_the_generator_writes() -> None:
    from gateway.web.admin.openapi import OPENAPI_PATH, build_document, render

    assert OPENAPI_PATH.read_text(encoding="utf-8") == render(build_document())


async def test_errors_are_json_and_never_500(api: TestClient[Any, Any]) -> None:
    resp = await api.get("/api/v1/nothing-here", headers=bearer("viewer"))
    assert resp.status == 404 and (await resp.json())["error"] == "not_found"
    resp = await api.delete("/api/v1/systems", headers=bearer("admin"))
    assert resp.status == 405 and (await resp.json())["error"] == "method_not_allowed"
    resp = await api.get("/api/v1/systems", headers={"Authorization": "Bearer nope"})
    assert resp.status == 401 and (await resp.json())["error"] == "unauthorized"
    assert resp.headers.get("WWW-Authenticate", "").startswith("Bearer")
    resp = await api.get("/api/v1/systems", headers={"Authorization": "Basic Y2xlcms6eA=="})
    assert resp.status == 401


async def test_metrics_have_every_family(api: TestClient[Any, Any], sink: Any) -> None:
    sink[0].behaviour = refuse(sink[0], b"HS-2")
    await send(api, dossier(1), dossier(2))
    await settled(api, "delivered", 1)
    [dead] = await settled(api, "dead", 1)
    sink[0].behaviour = None
    await api.post(f"/api/v1/deliveries/{dead['id']}/retry", headers=bearer("operator"))
    await settled(api, "delivered", 2)
    await api.get("/api/v1/systems")  # refused: counted
    resp = await api.get("/metrics")
    assert resp.status == 200
    families = {f.name: f for f in text_string_to_metric_families(await resp.text())}
    for name in (
        "gateway_intake_items",
        "gateway_delivery_attempts",
        "gateway_attempt_duration_seconds",
        "gateway_queue_depth",
        "gateway_in_flight",
        "gateway_breaker_state",
        "gateway_dead_letters",
        "gateway_destination_queue_depth",
        "gateway_dead_letters_waiting",
        "gateway_replays",
        "gateway_admin_refusals",
    ):
        assert name in families, f"{name} missing from /metrics"

    def value(family: str, sample: str, **labels: str) -> float:
        return sum(
            s.value
            for s in families[family].samples
            if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items())
        )

    assert (
        value("gateway_intake_items", "gateway_intake_items_total", system="src", result="accepted")
        == 2
    )
    assert (
        value(
            "gateway_delivery_attempts",
            "gateway_delivery_attempts_total",
            destination="dst",
            outcome="delivered",
        )
        == 2
    )
    assert (
        value(
            "gateway_delivery_attempts",
            "gateway_delivery_attempts_total",
            destination="dst",
            outcome="dead",
        )
        == 1
    )
    assert (
        value(
            "gateway_attempt_duration_seconds",
            "gateway_attempt_duration_seconds_count",
            destination="dst",
        )
        == 3
    )
    assert value("gateway_replays", "gateway_replays_total", destination="dst", channel="api") == 1
    assert (
        value("gateway_admin_refusals", "gateway_admin_refusals_total", reason="unauthenticated")
        >= 1
    )
    assert families["gateway_breaker_state"].samples[0].labels["destination"] in {"src", "dst"}


def test_plugins_document_their_routes_through_gateway_openapi_paths() -> None:
    from gateway import hookimpl
    from gateway.plugins import PluginError, build_plugins
    from gateway.web.admin.openapi import build_document

    bundled = build_plugins()
    paths = bundled.openapi_paths()
    assert "/api/v1/payments/held/{id}/accept" in paths  # the social_assistance plugin's
    assert set(paths) <= set(build_document(bundled)["paths"])

    class Twice:
        @hookimpl
        def gateway_openapi_paths(self) -> dict[str, Any]:
            return {"/api/v1/payments": {}}

    with pytest.raises(PluginError, match="documented twice"):
        build_plugins(extra=[("twice", Twice())]).openapi_paths()
