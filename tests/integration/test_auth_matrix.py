"""Every route of the app × {no token, viewer, operator, admin}: the expected status.

The routes are read from the app's router when the tests are collected, so a route added
without an expectation here (by the core or by a plugin) fails instead of going unchecked.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from conftest import make_config, signed, wait_for

from gateway.store import DeliveryFilter
from gateway.testing.admin import bearer, sign_in, token_config
from gateway.web.admin.roles import allows
from gateway.web.app import create_app
from gateway.web.keys import STORE

ANONYMOUS = "anonymous"
WHO = (ANONYMOUS, "viewer", "operator", "admin")
DOSSIER = "000.00.12.H06-250801"

#: (method, route as registered) -> (who may call it, the status they get)
EXPECTED: dict[tuple[str, str], tuple[str, int]] = {
    ("GET", "/healthz"): ("public", 200),
    ("GET", "/readyz"): ("public", 200),
    ("GET", "/metrics"): ("public", 200),
    ("POST", "/inbound/{system}"): ("public", 202),
    ("GET", "/static/admin"): ("public", 200),
    ("GET", "/api/v1/openapi.json"): ("public", 200),
    ("GET", "/api/v1/systems"): ("viewer", 200),
    ("GET", "/api/v1/deliveries"): ("viewer", 200),
    ("GET", "/api/v1/deliveries/{id}"): ("viewer", 200),
    ("POST", "/api/v1/deliveries/{id}/retry"): ("operator", 200),
    ("POST", "/api/v1/deliveries/retry"): ("operator", 200),
    ("POST", "/api/v1/deliveries/{id}/reveal"): ("operator", 200),
    ("GET", "/api/v1/log"): ("viewer", 200),
    ("GET", "/api/v1/log.csv"): ("viewer", 200),
    ("GET", "/api/v1/dossiers/{key}"): ("viewer", 200),
    ("GET", "/api/v1/plugins"): ("viewer", 200),
    ("GET", "/api/v1/audit"): ("admin", 200),
    ("GET", "/"): ("viewer", 200),
    ("GET", "/signin"): ("public", 200),
    ("POST", "/signin"): ("public", 403),  # sent without the sign-in form's CSRF token
    ("POST", "/signout"): ("viewer", 303),
    ("GET", "/log"): ("viewer", 200),
    ("GET", "/log.csv"): ("viewer", 200),
    ("GET", "/deliveries/{id}"): ("viewer", 200),
    ("POST", "/deliveries/{id}/reveal"): ("operator", 200),
    ("GET", "/dossiers"): ("viewer", 200),
    ("GET", "/dead"): ("viewer", 200),
    ("POST", "/dead/retry"): ("operator", 200),
    ("POST", "/dead/retry/confirm"): ("operator", 303),
    ("GET", "/audit"): ("admin", 200),
    # social_assistance plugin
    ("GET", "/payments"): ("viewer", 200),
    ("GET", "/payments/held"): ("viewer", 200),
    ("GET", "/payments/candidates"): ("viewer", 200),
    ("GET", "/payments/timeliness"): ("viewer", 200),
    ("POST", "/payments/held/accept"): ("operator", 400),  # the matrix sends no id / figure
    ("POST", "/payments/send"): ("operator", 400),  # the matrix sends no month
    ("GET", "/api/v1/payments"): ("viewer", 200),
    ("GET", "/api/v1/reports/monthly"): ("viewer", 200),
    ("GET", "/api/v1/payments/held"): ("viewer", 200),
    ("POST", "/api/v1/payments/held/{id}/accept"): ("operator", 400),  # no "figure" sent
    # signing lists name the payees: operators; none was built in the matrix's gateway (404)
    ("GET", "/payments/lists/{ky}/{commune}"): ("operator", 404),
    ("GET", "/payments/lists/{ky}/{commune}.xlsx"): ("operator", 404),
    ("GET", "/payments/report.xlsx"): ("viewer", 200),
    ("GET", "/payments/print.css"): ("public", 200),
}
#: Where a role gets something else than the rule gives.
OVERRIDES: dict[tuple[str, str, str], int] = {
    ("GET", "/signin", who): 303
    for who in WHO
    if who != ANONYMOUS  # signed in: go on
}


def _routes() -> list[tuple[str, str]]:
    workdir = Path(tempfile.gettempdir()) / "gateway-auth-matrix"
    app = create_app(make_config(workdir, "http://127.0.0.1:9", tokens=token_config()))
    return sorted(
        {(r.method, r.resource.canonical) for r in app.router.routes() if r.resource is not None}
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "route" in metafunc.fixturenames:
        metafunc.parametrize("route", _routes(), ids=lambda r: f"{r[0]} {r[1]}")
        metafunc.parametrize("who", WHO)


def expected_status(method: str, path: str, who: str) -> int:
    key = ("GET" if method == "HEAD" else method, path)
    assert key in EXPECTED, f"{method} {path} has no expectation in EXPECTED: add one"
    if (*key, who) in OVERRIDES:
        return OVERRIDES[(*key, who)]
    access, allowed = EXPECTED[key]
    if access == "public" or (who != ANONYMOUS and allows(who, access)):  # type: ignore[arg-type]
        return allowed
    if who != ANONYMOUS:
        return 403
    if path.startswith("/api/"):
        return 401
    return 303 if method in ("GET", "HEAD") else 403


def concrete(path: str, delivery_id: int) -> str:
    url = (
        path.replace("{id}", str(delivery_id)).replace("{key}", DOSSIER).replace("{system}", "src")
    )
    url = url.replace("{ky}", "2020-09").replace("{commune}", "02053")
    if url == "/static/admin":
        url = "/static/admin/admin.css"
    assert "{" not in url, f"give a value for the placeholders of {path} in concrete()"
    return url


async def _dead_letter(client: TestClient[Any, Any], sink: Any) -> int:
    sink[0].behaviour = lambda req, n: 400
    body, headers = signed({"id": "HS-1", "key": DOSSIER})
    assert (await client.post("/inbound/src", data=body, headers=headers)).status == 202
    store = client.app[STORE]

    async def dead() -> bool:
        return bool(await store.list_deliveries(DeliveryFilter(status="dead")))

    await wait_for(dead, what="a dead letter")
    sink[0].behaviour = None
    rows = await store.list_deliveries(DeliveryFilter(status="dead"))
    return int(rows[0]["id"])


async def test_route_access(
    route: tuple[str, str], who: str, gateway_factory: Any, sink: Any
) -> None:
    method, path = route
    want = expected_status(method, path, who)
    client = await gateway_factory(tokens=token_config())
    delivery_id = await _dead_letter(client, sink)
    csrf = await sign_in(client, who) if who != ANONYMOUS else None
    headers = bearer(who) if who != ANONYMOUS and path.startswith("/api/") else {}
    kwargs: dict[str, Any] = {"headers": headers, "allow_redirects": False}
    if method == "POST":
        if path == "/inbound/{system}":
            body, signed_headers = signed({"id": "HS-2", "key": "other"})
            kwargs.update(data=body, headers={**headers, **signed_headers})
        elif path.startswith("/api/"):
            kwargs["json"] = {"ids": [delivery_id]}
        else:
            kwargs["data"] = {"ids": str(delivery_id), **({"csrf": csrf} if csrf else {})}
    resp = await client.request(method, concrete(path, delivery_id), **kwargs)
    assert resp.status == want, (
        f"{who}: {method} {path} -> {resp.status}: {(await resp.text())[:200]}"
    )


def test_every_expectation_names_a_route() -> None:
    registered = {("GET" if m == "HEAD" else m, p) for m, p in _routes()}
    assert set(EXPECTED) - registered == set(), "stale expectations: remove them"


async def test_the_api_ignores_session_cookies_and_pages_ignore_bearer_tokens(
    gateway_factory: Any,
) -> None:
    client = await gateway_factory(tokens=token_config())
    await sign_in(client, "admin")
    resp = await client.get("/api/v1/systems")
    assert resp.status == 401
    client.session.cookie_jar.clear()
    resp = await client.get("/", headers=bearer("admin"), allow_redirects=False)
    assert resp.status == 303
