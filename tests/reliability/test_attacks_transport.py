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
import io
import os
import secrets
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from conftest import make_config, signed, wait_for

from gateway import hookimpl
from gateway.config import config_from_dict
from gateway.model import Message, OutboundRequest, PermanentError, RetryableError
from gateway.store import DeliveryFilter
from gateway.web.app import RedirectRefused, _no_redirects, create_app
from gateway.web.keys import STORE

from .reliability_kit import (
    GatewayProcess,
    Receiver,
    free_port,
    gateway_config,
    write_config,
)

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


# -- finding 2: unsigned bodies cannot exhaust memory ------------------------------------------
FLOOD_CONNECTIONS = 30
FLOOD_BODY = 10_000_000  # under the default limits.max_body_bytes (10 MiB)


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


async def raw_request(port: int, head: str, body: bytes = b"", read_timeout: float = 10) -> bytes:
    """One request written byte for byte (headers no client library would send); the answer's
    status line and headers (and what of the body arrived)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head.encode("utf-8", "surrogateescape") + b"\r\n\r\n" + body)
        await writer.drain()
        return await asyncio.wait_for(reader.read(65536), read_timeout)
    finally:
        writer.close()


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0


@pytest.fixture
async def child(tmp_path: Path) -> Any:
    receiver = Receiver()
    await receiver.start()
    port = free_port()
    cfg = write_config(tmp_path, gateway_config(tmp_path, port, {"dst": receiver.url}))
    gw = GatewayProcess(cfg, port, "flood")
    await gw.start()
    try:
        yield gw
    finally:
        await gw.stop()
        await receiver.stop()


FLOODS = {
    "no signature headers": lambda: {},
    "a fresh timestamp and a random signature": lambda: {
        "X-Timestamp": str(int(time.time())),
        "X-Signature": "sha256=" + secrets.token_hex(32),
    },
    "chunked (no Content-Length), a fresh timestamp and a random signature": lambda: {
        "X-Timestamp": str(int(time.time())),
        "X-Signature": "sha256=" + secrets.token_hex(32),
    },
}


async def _chunks(body: bytes, size: int = 65536) -> Any:
    for i in range(0, len(body), size):
        yield body[i : i + size]


@pytest.mark.slow
@pytest.mark.parametrize("flood", list(FLOODS))
async def test_an_unsigned_flood_of_10mb_bodies_does_not_grow_memory(
    child: GatewayProcess, flood: str, tally: Any
) -> None:
    assert child.proc is not None
    pid = child.proc.pid
    body = os.urandom(FLOOD_BODY)
    before = rss_kb(pid)
    peak = before
    done = asyncio.Event()

    async def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, rss_kb(pid))
            await asyncio.sleep(0.01)

    answers: dict[Any, int] = {}
    retry_after: set[str] = set()
    sampler = asyncio.create_task(sample())
    t0 = time.monotonic()
    timeout = aiohttp.ClientTimeout(total=90)
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=FLOOD_CONNECTIONS, force_close=True), timeout=timeout
    ) as session:

        async def one() -> None:
            headers = {"Content-Type": "application/json", **FLOODS[flood]()}
            try:
                data: Any = _chunks(body) if "chunked" in flood else io.BytesIO(body)
                async with session.post(
                    f"{child.url}/inbound/src", data=data, headers=headers
                ) as resp:
                    await resp.read()
                    answers[resp.status] = answers.get(resp.status, 0) + 1
                    if resp.status == 503:
                        retry_after.add(resp.headers.get("Retry-After", ""))
            except (aiohttp.ClientError, OSError) as exc:
                answers[type(exc).__name__] = answers.get(type(exc).__name__, 0) + 1

        await asyncio.gather(*(one() for _ in range(FLOOD_CONNECTIONS)))
    took = time.monotonic() - t0
    done.set()
    await sampler
    peak = max(peak, rss_kb(pid))
    growth_mb = (peak - before) / 1024
    async with aiohttp.ClientSession() as session, session.get(f"{child.url}/healthz") as resp:
        healthy = resp.status == 200  # still serving
    ok = growth_mb < 50 and healthy and set(answers) <= {401, 503} and "" not in retry_after
    tally.add(
        "Unsigned bodies cannot exhaust memory (issue 14 #2)",
        f"{FLOOD_CONNECTIONS} connections at once, each a 10 MB unsigned body ({flood}), "
        "against a gateway run child",
        FLOOD_CONNECTIONS,
        "requests",
        f"answers {answers}; RSS {before / 1024:.0f} MB → peak {peak / 1024:.0f} MB "
        f"(+{growth_mb:.1f} MB, bound 50); {took:.1f} s",
        ok=ok,
        growth_mb=round(growth_mb, 1),
    )
    assert set(answers) <= {401, 503}, answers
    assert "" not in retry_after, "a 503 without Retry-After"
    assert growth_mb < 50, f"RSS grew {growth_mb:.1f} MB under an unsigned flood"
    assert healthy


async def test_refusals_come_before_the_body_is_read(child: GatewayProcess, tally: Any) -> None:
    """Answers arrive while the client has sent only the headers: nothing waits for a body."""
    now = str(int(time.time()))
    sig = "sha256=" + "0" * 64
    cases = {
        "no signature, 1 GB announced": (
            "Content-Length: 1000000000\r\nContent-Type: application/json",
            401,
        ),
        "stale timestamp, 5 MB announced": (
            "Content-Length: 5000000\r\nContent-Type: application/json\r\n"
            f"X-Timestamp: {int(time.time()) - 3600}\r\nX-Signature: {sig}",
            401,
        ),
        "signed headers, 1 GB Content-Length": (
            "Content-Length: 1000000000\r\nContent-Type: application/json\r\n"
            f"X-Timestamp: {now}\r\nX-Signature: {sig}",
            413,
        ),
    }
    got: dict[str, int] = {}
    for name, (headers, _) in cases.items():
        t0 = time.monotonic()
        answer = await raw_request(
            child.port, f"POST /inbound/src HTTP/1.1\r\nHost: x\r\n{headers}", read_timeout=5
        )
        got[name] = status_of(answer)
        assert time.monotonic() - t0 < 5
    ok = all(got[n] == want for n, (_, want) in cases.items())
    tally.add(
        "Unsigned bodies cannot exhaust memory (issue 14 #2)",
        "headers only (no body sent): " + "; ".join(cases),
        len(cases),
        "requests",
        f"answered before any body byte: {got}",
        ok=ok,
    )
    assert ok, got


# -- finding 3: metric labels do not come from the URL -----------------------------------------
async def test_unknown_systems_share_one_metric_label(gateway_factory: Any, tally: Any) -> None:
    client = await gateway_factory()
    before = len(await (await client.get("/metrics")).read())
    n = 500
    statuses: set[int] = set()
    for i in range(n):
        name = f"nobody-{i}-" + "x" * 200
        resp = await client.post(f"/inbound/{name}", data=b"{}")
        statuses.add(resp.status)
    text = (await (await client.get("/metrics")).read()).decode()
    growth = len(text) - before
    ok = statuses == {404} and "nobody-" not in text and growth < 2000
    tally.add(
        "Metric labels never come from the URL (issue 14 #3)",
        f"POST /inbound/<name> with {n} different unknown names (200+ characters each)",
        n,
        "requests",
        f"/metrics grew {growth} bytes; unknown names in it: {'nobody-' in text}",
        ok=ok,
    )
    assert statuses == {404}
    assert "nobody-" not in text
    assert f'gateway_intake_requests_total{{status="404",system="_unknown"}} {n}.0' in text
    assert growth < 2000, growth


# -- finding 10: non-ASCII credentials are refusals, never 500 ---------------------------------
NON_ASCII = ("é" * 43, "\udcff\udcfe" * 10, "ｓｈａ２５６", "\u0000x")


def _cookie_case(name: str, value: str) -> str:
    return f"GET /dead HTTP/1.1\r\nHost: x\r\nCookie: {name}={value}"


async def test_non_ascii_credentials_are_refused_not_500(gateway_factory: Any, tally: Any) -> None:
    from gateway.testing.admin import sign_in, token_config

    client = await gateway_factory(tokens=token_config())
    port = client.port
    now = str(int(time.time()))
    cases: dict[str, tuple[str, bytes, set[int]]] = {}
    for i, junk in enumerate(NON_ASCII):
        if "\u0000" in junk:
            continue  # not a header character at all: the HTTP parser's business
        cases[f"X-Signature sha256=<non-ASCII #{i}>"] = (
            "POST /inbound/src HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: 2\r\nX-Timestamp: {now}\r\nX-Signature: sha256={junk}",
            b"{}",
            {401},
        )
        cases[f"session cookie <non-ASCII #{i}>.<non-ASCII>"] = (
            _cookie_case("gw_session", f"{junk}.{junk}"),
            b"",
            {303},
        )
        cases[f"session cookie <base64>.<non-ASCII #{i}>"] = (
            _cookie_case("gw_session", f"eyJuIjoiY2hpZWYifQ.{junk}"),
            b"",
            {303},
        )
        cases[f"Bearer <non-ASCII #{i}>"] = (
            f"GET /api/v1/deliveries HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {junk}",
            b"",
            {401},
        )
        form = f"csrf={junk}&token=abc".encode("utf-8", "surrogateescape")
        cases[f"sign-in cookie and csrf <non-ASCII #{i}>"] = (
            "POST /signin HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded"
            f"\r\nCookie: gw_signin={junk}.{junk}\r\nContent-Length: {len(form)}",
            form,
            {403},
        )
    got: dict[str, int] = {}
    for name, (head, body, _) in cases.items():
        got[name] = status_of(await raw_request(port, head, body))
    # csrf of a signed-in session, non-ASCII (through the client: the session cookie is real)
    await sign_in(client, "operator")
    for i, junk in enumerate(NON_ASCII):
        resp = await client.post(
            "/dead/retry",
            data=b"csrf=" + junk.encode("utf-8", "surrogateescape"),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            allow_redirects=False,
        )
        got[f"signed-in form with csrf <non-ASCII #{i}>"] = resp.status
        cases[f"signed-in form with csrf <non-ASCII #{i}>"] = ("", b"", {403})
    bad = {n: s for n, s in got.items() if s not in cases[n][2]}
    tally.add(
        "Non-ASCII credentials are refusals, never a 500 (issue 14 #10)",
        "non-ASCII and undecodable bytes in X-Signature, the session and sign-in cookies, "
        "csrf fields and bearer tokens",
        len(got),
        "requests",
        f"statuses {sorted(set(got.values()))}; unexpected: {bad or 'none'}",
        ok=not bad,
    )
    assert not bad, bad


# -- finding 6: no stored denial of service by nesting -----------------------------------------
def deep_json(depth: int, kind: str) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = [value] if kind == "list" else {"k": value}
    return value


def refusing_app() -> web.Application:
    app = web.Application()

    async def refuse(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"error": "no"}, status=422)

    app.router.add_route("*", "/{tail:.*}", refuse)
    return app


@pytest.mark.parametrize(
    ("depth", "kind"),
    [(31, "object"), (33, "object"), (600, "object"), (600, "list"), (900, "list")],
)
async def test_intake_refuses_items_nested_beyond_the_bound(
    depth: int, kind: str, gateway_factory: Any, tally: Any
) -> None:
    client = await gateway_factory()
    item = {"id": f"D{depth}", "key": f"D{depth}", "extra": deep_json(depth, kind)}
    body, headers = signed({"data": [item]})
    resp = await client.post("/inbound/src", data=body, headers=headers)
    answer = await resp.json()
    stored_rows = await client.app[STORE].list_deliveries(DeliveryFilter(), limit=10)
    # the item is its own level, "extra" is one more: 31 levels under it make 32
    want = 202 if depth + 1 <= 32 else 400
    ok = resp.status == want and (want == 202 or not stored_rows)
    tally.add(
        "No stored denial of service by nesting (issue 14 #6)",
        f"a signed dossier whose extra field is {depth} {kind}s deep",
        1,
        "request",
        f"HTTP {resp.status} {answer.get('error', '')}: {answer.get('message', '')[:70]}",
        ok=ok,
    )
    assert resp.status == want, answer
    if want == 400:
        assert "nested deeper than 32 levels" in answer["message"]
        assert not stored_rows


class DeepPoller:
    """A polled system whose page holds one good item and one nested 600 deep."""

    @hookimpl
    def gateway_register_connectors(self, register: Any) -> None:
        from gateway.connector import Connector
        from gateway.model import ParseResult

        class Poller(Connector):
            async def poll(
                self, session: aiohttp.ClientSession, cursor: str | None
            ) -> tuple[ParseResult, str | None]:
                if cursor:
                    return ParseResult(), cursor
                return ParseResult(
                    messages=[
                        Message(event="message.received", external_id="P-good", payload={"a": 1}),
                        Message(
                            event="message.received",
                            external_id="P-deep",
                            payload={"extra": deep_json(600, "object")},
                        ),
                    ]
                ), "page-1"

        register("deep_poller", Poller)


async def test_a_polled_item_nested_beyond_the_bound_is_refused_alone(
    tmp_path: Path, aiohttp_client: Any, tally: Any
) -> None:
    from gateway.plugins import build_plugins

    config = make_config(
        tmp_path,
        "http://127.0.0.1:9",
        systems={"desk": {"plugin": "deep_poller", "poll_interval": 0.05}},
        routes=[{"from": "desk", "event": "message.received", "to": ["dst"]}],
    )
    plugins = build_plugins(extra=[("deep_poller", DeepPoller())])
    client = await aiohttp_client(create_app(config, plugins=plugins))
    store = client.app[STORE]

    async def polled() -> bool:
        return bool(await store.list_deliveries(DeliveryFilter(), limit=10))

    await wait_for(polled, timeout=10, what="the polled page to be stored")
    await asyncio.sleep(0.3)  # a later poll of the same cursor adds nothing
    refs = sorted(r["ref"] for r in await store.list_deliveries(DeliveryFilter(), limit=10))
    tally.add(
        "No stored denial of service by nesting (issue 14 #6)",
        "a polled page with one good item and one 600 objects deep",
        1,
        "poll",
        f"stored {refs}",
        ok=refs == ["P-good"],
    )
    assert refs == ["P-good"], refs


@pytest.mark.parametrize("depth", [600, 3000])
async def test_a_deep_payload_already_stored_still_renders_everywhere(
    depth: int, tmp_path: Path, aiohttp_server: Any, aiohttp_client: Any, tally: Any
) -> None:
    """A payload stored before the bound existed (written into the database directly)."""
    import sqlite3

    from gateway.testing.admin import bearer, sign_in, token_config

    dest = await aiohttp_server(refusing_app())
    config = make_config(tmp_path, str(dest.make_url("")).rstrip("/"), tokens=token_config())
    client = await aiohttp_client(create_app(config))
    body, headers = signed({"id": "DEEP", "key": "DEEP", "CCCD": "006203615592"})
    assert (await client.post("/inbound/src", data=body, headers=headers)).status == 202
    store = client.app[STORE]

    async def dead() -> bool:
        rows = await store.list_deliveries(DeliveryFilter(), limit=10)
        return bool(rows) and rows[0]["status"] == "dead"

    await wait_for(dead, timeout=10, what="the delivery to be dead")
    extra = '{"k":' * depth + '"x"' + "}" * depth  # deeper than json.dumps writes
    deep = '{"id": "DEEP", "CCCD": "006203615592", "extra": ' + extra + "}"
    with sqlite3.connect(tmp_path / "gw.db") as db:
        db.execute("UPDATE messages SET payload = ?", (deep,))
    did = (await store.list_deliveries(DeliveryFilter(), limit=10))[0]["id"]
    await sign_in(client, "viewer")
    got: dict[str, int] = {}
    texts: dict[str, str] = {}
    for path in (f"/deliveries/{did}", "/dead"):
        resp = await client.get(path)
        got[path], texts[path] = resp.status, await resp.text()
    resp = await client.get(f"/api/v1/deliveries/{did}", headers=bearer("viewer"))
    got["/api/v1/deliveries/{id}"] = resp.status
    texts["api"] = await resp.text()
    ok = set(got.values()) == {200} and not any("006203615592" in t for t in texts.values())
    tally.add(
        "No stored denial of service by nesting (issue 14 #6)",
        f"a payload {depth} levels deep already in the store: its delivery page, API entry "
        "and the dead-letter page",
        len(got),
        "requests",
        f"statuses {got}",
        ok=ok,
    )
    assert set(got.values()) == {200}, got
    assert "nested too deeply to show" in texts["api"]
    assert not any("006203615592" in t for t in texts.values())


# -- finding 9: Secure cookies behind a TLS-terminating proxy ----------------------------------
async def _signin_cookies(client: Any, headers: dict[str, str]) -> dict[str, str]:
    """Sign in as the admin with ``headers`` on both requests; the Set-Cookie lines by name.
    (Cookies are echoed by hand: a client keeps a Secure cookie off plain HTTP.)"""
    from gateway.testing.admin import TOKENS, csrf_from

    form = await client.get("/signin", headers=headers)
    lines = {c.split("=", 1)[0]: c for c in form.headers.getall("Set-Cookie", [])}
    signin = lines["gw_signin"].split(";", 1)[0]
    resp = await client.post(
        "/signin",
        data={"csrf": csrf_from(await form.text()), "token": TOKENS["admin"][1], "next": "/"},
        headers={**headers, "Cookie": signin},
        allow_redirects=False,
    )
    assert resp.status == 303, await resp.text()
    for line in resp.headers.getall("Set-Cookie", []):
        if line.startswith("gw_session="):
            lines["gw_session"] = line
    return lines


COOKIE_CASES: dict[str, tuple[dict[str, Any], dict[str, str], bool]] = {
    "plain HTTP, nothing configured": ({}, {}, False),
    "secure_cookies = true": ({"secure_cookies": True}, {}, True),
    "trusted proxy (127.0.0.1) forwarding X-Forwarded-Proto: https": (
        {"trusted_proxies": ["127.0.0.1"]},
        {"X-Forwarded-Proto": "https"},
        True,
    ),
    "trusted proxy network (127.0.0.0/8), X-Forwarded-Proto: https, http": (
        {"trusted_proxies": ["127.0.0.0/8"]},
        {"X-Forwarded-Proto": "https, http"},
        True,
    ),
    "trusted proxy forwarding plain HTTP": (
        {"trusted_proxies": ["127.0.0.1"]},
        {"X-Forwarded-Proto": "http"},
        False,
    ),
    "X-Forwarded-Proto: https from an untrusted address": (
        {"trusted_proxies": ["10.0.0.0/8"]},
        {"X-Forwarded-Proto": "https"},
        False,
    ),
}


@pytest.mark.parametrize("case", list(COOKIE_CASES))
async def test_cookies_are_secure_behind_a_tls_proxy(
    case: str, gateway_factory: Any, tally: Any
) -> None:
    from gateway.testing.admin import token_config

    settings, headers, want = COOKIE_CASES[case]
    client = await gateway_factory(gateway=settings, tokens=token_config())
    lines = await _signin_cookies(client, headers)
    flags = {
        name: "secure" in [p.strip().lower() for p in line.split(";")]
        for name, line in lines.items()
        if name in ("gw_session", "gw_signin")
    }
    ok = flags == {"gw_session": want, "gw_signin": want}
    tally.add(
        "Cookies are Secure behind a TLS proxy (issue 14 #9)",
        case,
        1,
        "sign-in",
        f"Secure on {flags}",
        ok=ok,
    )
    assert ok, (flags, lines)


def test_trusted_proxies_must_be_addresses() -> None:
    from gateway.config import ConfigError

    with pytest.raises(ConfigError) as caught:
        config_from_dict({"gateway": {"trusted_proxies": ["the-balancer"]}})
    assert caught.value.key == "gateway.trusted_proxies"


# -- finding 11: weak secrets stop start-up --------------------------------------------------------
WEAK: dict[str, tuple[dict[str, Any], str]] = {
    "inbound secret of 18 characters (reliability-secret)": (
        {"systems": {"src": {"plugin": "http_json", "inbound_secret": "reliability-secret"}}},
        "systems.src.inbound_secret",
    ),
    "inbound secret of 31 hex digits (124 bits)": (
        {
            "systems": {
                "src": {"plugin": "http_json", "inbound_secret": "f74fde9fffdb281cf0b0707e9389927"}
            }
        },
        "systems.src.inbound_secret",
    ),
    "inbound secret of one character repeated 64 times": (
        {"systems": {"src": {"plugin": "http_json", "inbound_secret": "s" * 64}}},
        "systems.src.inbound_secret",
    ),
    "admin token of a repeated word": (
        {"tokens": [{"name": "a", "role": "admin", "token": "admin-admin-admin-admin"}]},
        "tokens[0].token",
    ),
    "session_secret of 64 zeros": (
        {"gateway": {"session_secret": "0" * 64}},
        "gateway.session_secret",
    ),
}


@pytest.mark.parametrize("case", list(WEAK))
def test_weak_secrets_stop_start_up_naming_the_key(case: str, tally: Any) -> None:
    from gateway.config import ConfigError

    data, key = WEAK[case]
    with pytest.raises(ConfigError) as caught:
        config_from_dict(data, "gw.toml")
    secret_shown = any(
        str(v) in str(caught.value)
        for table in data.values()
        for v in (table.values() if isinstance(table, dict) else table)
        if isinstance(v, str)
    )
    ok = caught.value.key == key and "too weak" in caught.value.problem
    tally.add(
        "Weak secrets stop start-up (issue 14 #11)",
        case,
        1,
        "config",
        str(caught.value)[:120],
        ok=ok and not secret_shown,
    )
    assert caught.value.key == key
    assert "too weak" in caught.value.problem and "128" in caught.value.problem


def test_strong_secrets_pass_and_the_demo_makes_strong_ones(tmp_path: Path) -> None:
    from gateway.cli.demo import ensure_demo_secrets
    from gateway.config import MIN_SECRET_BITS, secret_bits

    for value in (secrets.token_hex(16), secrets.token_hex(32), secrets.token_urlsafe(32)):
        assert secret_bits(value) >= MIN_SECRET_BITS, value
    for i in range(40):
        for path in ensure_demo_secrets(tmp_path / str(i)):
            assert secret_bits(path.read_text().strip()) >= MIN_SECRET_BITS, path.name


async def test_gateway_run_refuses_a_weak_secret_with_one_line(tmp_path: Path) -> None:
    port = free_port()
    data = gateway_config(tmp_path, port, {"dst": "http://127.0.0.1:9"})
    data["systems"]["src"]["inbound_secret"] = "change-me"
    cfg = write_config(tmp_path, data)
    gw = GatewayProcess(cfg, port, "weak")
    gw.spawn()
    assert gw.proc is not None
    code = await asyncio.to_thread(gw.proc.wait, 60)
    out = gw.log_text()
    assert code != 0
    assert "systems.src.inbound_secret: too weak" in out, out
    assert "change-me" not in out


# -- finding 11: failed authentication is throttled, a sign-in nonce works once -----------------
async def test_wrong_bearer_tokens_are_throttled_per_address(
    gateway_factory: Any, tally: Any
) -> None:
    from gateway.testing.admin import bearer, token_config

    client = await gateway_factory(
        tokens=token_config(), gateway={"trusted_proxies": ["127.0.0.1"]}
    )
    attacker = {"X-Forwarded-For": "203.0.113.7"}
    n = 1000
    statuses: dict[int, int] = {}
    retry_after: set[str] = set()
    t0 = time.monotonic()
    for i in range(n):
        headers = {**attacker, "Authorization": f"Bearer wrong-{i:04d}-0123456789abcdef"}
        resp = await client.get("/api/v1/deliveries", headers=headers)
        statuses[resp.status] = statuses.get(resp.status, 0) + 1
        if resp.status == 429:
            retry_after.add(resp.headers.get("Retry-After", ""))
    took = time.monotonic() - t0
    # the attacker's address waits even with a good token; another address does not
    blocked = await client.get("/api/v1/deliveries", headers={**attacker, **bearer("viewer")})
    other = await client.get(
        "/api/v1/deliveries", headers={"X-Forwarded-For": "198.51.100.9", **bearer("viewer")}
    )
    allowed = 10 + int(took / 6.0)  # one more attempt every 6 s
    ok = (
        10 <= statuses.get(401, 0) <= allowed
        and statuses.get(401, 0) + statuses.get(429, 0) == n
        and "" not in retry_after
        and blocked.status == 429
        and other.status == 200
    )
    tally.add(
        "Failed authentication is throttled per address (issue 14 #11)",
        f"{n} wrong bearer tokens from one address (through a trusted proxy), then a good "
        "token from it and from another address",
        n + 2,
        "requests",
        f"answers {statuses} in {took:.1f} s, Retry-After {sorted(retry_after)}; good token "
        f"from the address: {blocked.status}, from another: {other.status}",
        ok=ok,
    )
    assert set(statuses) == {401, 429} and 10 <= statuses[401] <= allowed, statuses
    assert "" not in retry_after and all(int(v) >= 1 for v in retry_after)
    assert blocked.status == 429 and other.status == 200


async def test_a_signin_nonce_works_once_and_failed_signins_are_throttled(
    gateway_factory: Any, tally: Any
) -> None:
    from gateway.testing.admin import TOKENS, csrf_from, token_config

    client = await gateway_factory(tokens=token_config())
    form = await client.get("/signin")
    nonce = csrf_from(await form.text())
    reuse: dict[int, int] = {}
    for i in range(500):
        resp = await client.post(
            "/signin",
            data={"csrf": nonce, "token": f"guess-{i}-0123456789abcdef", "next": "/"},
            allow_redirects=False,
        )
        reuse[resp.status] = reuse.get(resp.status, 0) + 1
        if i == 0:  # the answer sets a fresh form cookie; the attacker keeps the old one
            client.session.cookie_jar.update_cookies({"gw_signin": form.cookies["gw_signin"].value})
    # the right token with a used nonce does not sign in either
    late = await client.post(
        "/signin",
        data={"csrf": nonce, "token": TOKENS["admin"][1], "next": "/"},
        allow_redirects=False,
    )
    # failed sign-ins, each with a fresh form: throttled after 10
    fresh: list[int] = []
    retry_after = ""
    for i in range(12):
        page = await client.get("/signin")
        resp = await client.post(
            "/signin",
            data={"csrf": csrf_from(await page.text()), "token": f"guess-{i}-0123456789abcd"},
            allow_redirects=False,
        )
        fresh.append(resp.status)
        retry_after = resp.headers.get("Retry-After", retry_after)
    # (10 free attempts, the first spent above, then one every 6 s: the 0.5 s delay of each
    # failure lets at most one more through)
    ok = (
        reuse == {401: 1, 403: 499}
        and late.status == 403
        and fresh[:9] == [401] * 9
        and fresh[-1] == 429
    )
    tally.add(
        "Failed authentication is throttled per address (issue 14 #11)",
        "500 sign-ins with one form's nonce, then the right token with it; 12 wrong sign-ins "
        "each with a fresh form",
        500 + 1 + 12,
        "sign-ins",
        f"one nonce: {reuse}, right token with the used nonce: {late.status}; fresh forms: "
        f"{fresh} (Retry-After {retry_after})",
        ok=ok,
    )
    assert reuse == {401: 1, 403: 499}, reuse
    assert late.status == 403
    # the wrong token sent with the reused nonce was the address's first failure
    assert fresh[:9] == [401] * 9 and fresh[-1] == 429, fresh
    assert int(retry_after) >= 1
