"""Attacks, each refused with the right status and nothing stored:

* hostile XML on both XML intakes (DTD, billion laughs, external and parameter entities,
  XInclude, deep nesting, huge attributes): 400 (or the item rejected), at once;
* oversize bodies, with and without Content-Length: 413;
* slow clients against a ``gateway run`` child (slow headers, slow body, idle connection):
  cut within :data:`SLOW_CLIENT_LIMIT`, while other clients are still served;
* HMAC missing, bad, for another body, with another secret, stale, from the future, malformed,
  replayed: 401, and a replay of a signed request is only ever a duplicate;
* the admin API under hostile credentials (missing, malformed, forged, another role's);
* SQL-injection strings in every filter of the admin API, the dashboard and the CLI: no 5xx,
  nothing matched that should not be, the database intact;
* path tricks in drop-in plugin names (symlinks out of the directory, non-identifiers,
  directories, hidden files): never imported.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from gateway.config import config_from_dict
from gateway.plugins import build_plugins
from gateway.signing import sign
from gateway.store import DeliveryFilter
from gateway.testing.admin import TOKENS, bearer, sign_in, token_config
from gateway.web.admin.api import ROUTES
from gateway.web.admin.auth import FailureThrottle
from gateway.web.admin.roles import allows
from gateway.web.app import create_app
from gateway.web.keys import AUTH, STORE

from .reliability_kit import (
    SECRET,
    GatewayProcess,
    Receiver,
    error_texts,
    free_port,
    gateway_config,
    log_dir,
    write_config,
)
from .wire_strategies import BILLION_LAUGHS

SECRETS = {
    "src": SECRET,
    "registry": "a-registry-7c2e9a41b8d3f6051e4d",
    "post_office": "a-post-7c2e9a41b8d3f6051e4d",
}
MAX_BODY = 300_000
SLOW_CLIENT_LIMIT = 30.0


def attack_config(tmp_path: Path, sink: str) -> Any:
    return config_from_dict(
        {
            "gateway": {"database": f"sqlite:///{tmp_path}/gw.db", "node_id": "attack"},
            "limits": {"max_body_bytes": MAX_BODY},
            "tokens": token_config(),
            "systems": {
                "src": {"plugin": "http_json", "inbound_secret": SECRET, "key_field": "key"},
                "dst": {"plugin": "http_json", "base_url": sink, "path": "/receive"},
                "registry": {
                    "plugin": "district_registry",
                    "base_url": sink,
                    "inbound_secret": SECRETS["registry"],
                },
                "post_office": {
                    "plugin": "post_office",
                    "base_url": sink,
                    "inbound_secret": SECRETS["post_office"],
                },
            },
            "routes": [{"from": "src", "event": "message.received", "to": ["dst"]}],
        },
        tmp_path / "gateway.toml",
    )


@pytest.fixture
async def client(tmp_path: Path, aiohttp_client: Any) -> TestClient[Any, Any]:
    receiver = Receiver()
    await receiver.start()
    try:
        app: web.Application = create_app(attack_config(tmp_path, receiver.url))
        yield await aiohttp_client(app)
    finally:
        await receiver.stop()


def record_answer(text: str) -> None:
    """Every error answer goes to the privacy scan (its messages, not the items' refs)."""
    with (log_dir() / f"attack-answers-{os.getpid()}.log").open("a", encoding="utf-8") as out:
        out.write(error_texts(text.encode()) + "\n")


async def stored(client: TestClient[Any, Any]) -> int:
    rows = await client.app[STORE].list_deliveries(DeliveryFilter(), limit=10_000)
    return len(rows)


async def post_signed(
    client: TestClient[Any, Any],
    system: str,
    body: bytes,
    ctype: str,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any], float]:
    t0 = time.monotonic()
    h = {"Content-Type": ctype, **sign(SECRETS[system], body), **(headers or {})}
    resp = await client.post(f"/inbound/{system}", data=body, headers=h)
    text = await resp.text()
    record_answer(text)
    return resp.status, json.loads(text), time.monotonic() - t0


# -- hostile XML ---------------------------------------------------------------------------------
def deep(depth: int) -> bytes:
    return (
        b'<QuyetDinh xmlns="urn:vn:btxh:registry:1">'
        + b"<a>" * depth
        + b"</a>" * depth
        + (b"</QuyetDinh>")
    )


HOSTILE_XML: dict[str, bytes] = {
    "DTD": b'<!DOCTYPE QuyetDinh><QuyetDinh xmlns="urn:vn:btxh:registry:1"/>',
    "billion laughs": BILLION_LAUGHS,
    "external entity (file)": b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM '
    b'"file:///etc/passwd">]><QuyetDinh xmlns="urn:vn:btxh:registry:1" so="&x;"/>',
    "external entity (http)": b'<!DOCTYPE d [<!ENTITY x SYSTEM "http://127.0.0.1:9/x">]>'
    b'<QuyetDinh xmlns="urn:vn:btxh:registry:1" so="&x;"/>',
    "parameter entity": b'<!DOCTYPE d [<!ENTITY % p SYSTEM "file:///etc/hosts"> %p;]><d/>',
    "external DTD": b'<!DOCTYPE QuyetDinh SYSTEM "file:///etc/passwd"><QuyetDinh/>',
    "DTD in UTF-16": '<!DOCTYPE d [<!ENTITY a "b">]><d>&a;</d>'.encode("utf-16"),
    "XInclude": b'<QuyetDinh xmlns="urn:vn:btxh:registry:1" '
    b'xmlns:xi="http://www.w3.org/2001/XInclude"><xi:include href="file:///etc/passwd" '
    b'parse="text"/></QuyetDinh>',
    "nesting 65 deep": deep(65),
    "nesting 300 deep": deep(300),
    "nesting 100,000 deep": deep(100_000),
    "huge attribute (in a document under the body limit)": (
        b'<QuyetDinh xmlns="urn:vn:btxh:registry:1" hoTen="' + b"A" * 250_000 + b'"/>'
    ),
}


@pytest.mark.parametrize("system", ["registry", "post_office"])
@pytest.mark.parametrize("attack", list(HOSTILE_XML))
async def test_hostile_xml_is_refused(
    client: TestClient[Any, Any], system: str, attack: str, tally: Any
) -> None:
    status, answer, took = await post_signed(client, system, HOSTILE_XML[attack], "application/xml")
    refused = status in (400, 413) or (
        status == 202 and not answer["accepted"] and answer["rejected"]
    )
    ok = refused and took < 2.0 and await stored(client) == 0
    tally.add(
        "Hostile input is refused: hostile XML",
        f"{attack} to /inbound/{system}",
        1,
        "request",
        f"HTTP {status} {answer.get('error', '')} in {took * 1000:.0f} ms",
        ok=ok,
    )
    assert refused, (status, answer)
    assert took < 2.0, f"{took:.1f}s: was something expanded?"
    assert await stored(client) == 0
    if status == 400:
        assert answer["error"] == "bad_request" and answer["message"]
    assert "root:" not in json.dumps(answer), "file contents in the answer"


# -- numbers too long to convert ---------------------------------------------------------------
LONG_NUMBER = "9" * 5000  # Python refuses int() of more than 4,300 digits (CVE-2020-10735)
#: and what Python's recursive json decoder cannot take (RecursionError) is the same kind of
#: input: well-formed, but beyond what the parser converts
LONG_NUMBERS: dict[str, tuple[str, bytes, str]] = {
    "a 5,000-digit JSON number in a dossier": (
        "src",
        b'{"data": [{"id": "N1", "key": "N1", "amount": ' + LONG_NUMBER.encode() + b"}]}",
        "application/json",
    ),
    "a 5,000-digit payment result soTien": (
        "post_office",
        b'<KetQuaChiTra xmlns="urn:vn:btxh:chitra:1" ky="2020-09" maXa="02053">'
        b'<Dong soDinhDanh="006135001234" trangThai="chua_chi" soTien="'
        + LONG_NUMBER.encode()
        + b'"/></KetQuaChiTra>',
        "application/xml",
    ),
    "array nested 100,000 deep": (
        "src",
        b'{"data": [{"id": "N2", "key": "N2", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}]}",
        "application/json",
    ),
    "object nested 2,000 deep": (
        "src",
        b'{"data": [{"id": "N3", "key": "N3", "x": '
        + b'{"a":' * 2000
        + b"1"
        + b"}" * 2000
        + b"}]}",
        "application/json",
    ),
    "a 5,000-digit decision soCon": (
        "registry",
        b'<QuyetDinh xmlns="urn:vn:btxh:registry:1" so="1/QD" ngayKy="2020-08-20" loai="tam_dung"'
        b' maHoSo="HS-1" soDinhDanh="006135001234" hoTen="X" ngaySinh="1935-04-12"'
        b' maXa="02053" tuThang="2020-09" soCon="' + LONG_NUMBER.encode() + b'"/>',
        "application/xml",
    ),
}


@pytest.mark.parametrize("case", list(LONG_NUMBERS))
async def test_values_too_big_to_convert_are_refused_not_500(
    client: TestClient[Any, Any], case: str, tally: Any
) -> None:
    system, body, ctype = LONG_NUMBERS[case]
    status, answer, _ = await post_signed(client, system, body, ctype)
    tally.add(
        "Hostile input is refused: values too big to convert (long numbers, deep nesting)",
        f"{case} to /inbound/{system}",
        1,
        "request",
        f"HTTP {status} {answer.get('error', '')}"
        + (f" ({len(answer['accepted'])} accepted)" if status == 202 else ""),
        ok=status < 500,
    )
    assert status < 500, (status, answer)


# -- oversize ----------------------------------------------------------------------------------
@pytest.mark.parametrize("system", ["src", "registry", "post_office"])
@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_oversize_body_is_413(
    client: TestClient[Any, Any], system: str, chunked: bool, tally: Any
) -> None:
    body = b"x" * (MAX_BODY + 1)
    ctype = "application/json" if system == "src" else "application/xml"
    headers = {"Content-Type": ctype, **sign(SECRETS[system], body)}

    async def chunks() -> Any:
        for i in range(0, len(body), 65536):
            yield body[i : i + 65536]

    resp = await client.post(
        f"/inbound/{system}", data=chunks() if chunked else body, headers=headers
    )
    text = await resp.text()
    record_answer(text)
    tally.add(
        "Hostile input is refused: oversize bodies",
        f"{MAX_BODY + 1} bytes to /inbound/{system} ({'chunked' if chunked else 'Content-Length'})",
        1,
        "request",
        f"HTTP {resp.status}",
        ok=resp.status == 413,
    )
    assert resp.status == 413, text
    assert json.loads(text)["error"] == "too_large"
    assert await stored(client) == 0


# -- HMAC ----------------------------------------------------------------------------------------
def hmac_cases(body: bytes) -> dict[str, dict[str, str]]:
    now = int(time.time())
    good = sign(SECRET, body)
    return {
        "missing": {},
        "timestamp only": {"X-Timestamp": good["X-Timestamp"]},
        "signature only": {"X-Signature": good["X-Signature"]},
        "bad signature": {**good, "X-Signature": "sha256=" + "0" * 64},
        "signature of another body": sign(SECRET, body + b" "),
        "another secret": sign("not-the-secret", body),
        "no sha256= prefix": {**good, "X-Signature": good["X-Signature"][7:]},
        "upper-case hex": {**good, "X-Signature": good["X-Signature"].upper()},
        "stale (301 s old)": sign(SECRET, body, now - 301),
        "from the future (301 s)": sign(SECRET, body, now + 301),
        "timestamp with unicode digits": {**good, "X-Timestamp": "١٧٠٠٠٠٠٠٠٠"},
        "negative timestamp": {**good, "X-Timestamp": "-1"},
        "timestamp of 5,000 digits": {**good, "X-Timestamp": "9" * 5000},
        "float timestamp": {**good, "X-Timestamp": f"{good['X-Timestamp']}.0"},
    }


@pytest.mark.parametrize("case", list(hmac_cases(b"{}")))
async def test_hmac_refusals_are_401_and_store_nothing(
    client: TestClient[Any, Any], case: str, tally: Any
) -> None:
    body = json.dumps({"id": "H1", "key": "H1"}).encode()
    headers = {"Content-Type": "application/json", **hmac_cases(body)[case]}
    resp = await client.post("/inbound/src", data=body, headers=headers)
    text = await resp.text()
    record_answer(text)
    tally.add(
        "Only the system's signed requests get in (HMAC, FORMATS.md §1.1)",
        f"HMAC {case}",
        1,
        "request",
        f"HTTP {resp.status}",
        ok=resp.status == 401,
    )
    assert resp.status == 401, text
    assert json.loads(text)["error"] == "bad_signature"
    assert await stored(client) == 0


async def test_a_replayed_request_is_only_a_duplicate(
    client: TestClient[Any, Any], tally: Any
) -> None:
    body = json.dumps({"id": "R1", "key": "R1"}).encode()
    headers = {"Content-Type": "application/json", **sign(SECRET, body)}
    answers = []
    for _ in range(5):
        resp = await client.post("/inbound/src", data=body, headers=headers)
        answers.append((resp.status, await resp.json()))
    replay_other = await client.post(
        "/inbound/src", data=body.replace(b"R1", b"R2"), headers=headers
    )
    first = answers[0][1]["accepted"]
    dup_only = all(
        s == 202 and a["duplicates"] == first and not a["accepted"] for s, a in answers[1:]
    )
    ok = dup_only and await stored(client) == 1 and replay_other.status == 401
    tally.add(
        "Only the system's signed requests get in (HMAC, FORMATS.md §1.1)",
        "the same signed request replayed 4 times within the window, then its headers on "
        "another body",
        5,
        "requests",
        f"replays answered as duplicates: {dup_only}; deliveries stored "
        f"{await stored(client)}; other body: HTTP {replay_other.status}",
        ok=ok,
    )
    assert dup_only, answers
    assert await stored(client) == 1
    assert replay_other.status == 401


# -- credentials on the admin API --------------------------------------------------------------
HOSTILE_CREDENTIALS: dict[str, dict[str, str]] = {
    "no header": {},
    "empty bearer": {"Authorization": "Bearer "},
    "bearer without space": {"Authorization": "Bearer" + TOKENS["admin"][1]},
    "basic scheme": {"Authorization": "Basic " + TOKENS["admin"][1]},
    "lower-case scheme": {"Authorization": "bearer nonsense"},
    "wrong token": {"Authorization": "Bearer wrong-token-0123456789abcdef"},
    "the token's sha256 as the token": {
        "Authorization": "Bearer " + token_config()[2]["token_sha256"]
    },
    "admin token with a trailing byte": {"Authorization": f"Bearer {TOKENS['admin'][1]}x"},
    "admin token truncated": {"Authorization": f"Bearer {TOKENS['admin'][1][:-1]}"},
    "sql in the token": {"Authorization": "Bearer ' OR '1'='1"},
    "8 KB token": {"Authorization": "Bearer " + "A" * 7000},
    "token in the query, not the header": {},
    "forged session cookie": {"Cookie": "gw_session=eyJhZG1pbiI6dHJ1ZX0.AAAA"},
}


def concrete(path: str) -> str:
    return path.replace("{id}", "1").replace("{key}", "000.00.12.H06-200803-0001")


@pytest.mark.parametrize(
    "route", [(m, p, a) for m, p, _, a in ROUTES], ids=lambda r: f"{r[0]} {r[1]}"
)
async def test_admin_api_refuses_hostile_credentials(
    client: TestClient[Any, Any], route: tuple[str, str, str], tally: Any
) -> None:
    method, path, access = route
    url = "/api/v1" + concrete(path)
    results: dict[str, int] = {}
    for name, headers in HOSTILE_CREDENTIALS.items():
        target = url + (f"?token={TOKENS['admin'][1]}" if "query" in name else "")
        resp = await client.request(method, target, headers=headers, json={"ids": [1]})
        record_answer(await resp.text())
        results[name] = resp.status
    # Thirteen failures from one address is what the failed-authentication throttle is for
    # (tests/reliability/test_attacks_transport.py); the role matrix is checked afresh.
    client.app[AUTH].throttle = FailureThrottle()
    for role in ("viewer", "operator", "admin"):
        resp = await client.request(method, url, headers=bearer(role), json={"ids": [1]})
        results[role] = resp.status
    want_hostile = 200 if access == "public" else 401
    wrong = {n: s for n, s in results.items() if n in HOSTILE_CREDENTIALS and s != want_hostile}
    if access == "public":
        wrong = {}
    roles_wrong = {
        r: results[r]
        for r in ("viewer", "operator", "admin")
        if access != "public" and not allows(r, access) and results[r] != 403  # type: ignore[arg-type]
    }
    roles_wrong |= {
        r: results[r]
        for r in ("viewer", "operator", "admin")
        if (access == "public" or allows(r, access)) and results[r] in (401, 403)  # type: ignore[arg-type]
    }
    tally.add(
        "The role matrix holds under hostile credentials",
        f"{method} /api/v1{path} ({access}) with {len(HOSTILE_CREDENTIALS)} hostile "
        "credentials and each role's token",
        len(results),
        "requests",
        "all as expected" if not (wrong or roles_wrong) else f"unexpected: {wrong | roles_wrong}",
        ok=not (wrong or roles_wrong),
    )
    assert not wrong, wrong
    assert not roles_wrong, roles_wrong


# -- SQL injection -------------------------------------------------------------------------------
INJECTIONS = [
    "' OR '1'='1",
    "' OR 1=1 --",
    '" OR ""="',
    "1; DROP TABLE deliveries; --",
    "'; DELETE FROM delivery_log; --",
    "' UNION SELECT sql, 1, 1 FROM sqlite_master --",
    "1) OR (1=1",
    "'; ATTACH DATABASE '/tmp/pwned.db' AS p; --",
    "%",
    "%' --",
    "_",
    "*",
    "\\",
    "NULL",
    "-1",
    "99999999999999999999999999",
    "1e308",
    "0x7fffffff",
    "${jndi:ldap://127.0.0.1/x}",
    "../../../etc/passwd",
    "src' AND sqlite_version() > '0",
    "Nguyễn' OR 'a'='a",
]
API_FILTERS: dict[str, list[str]] = {
    "/api/v1/deliveries": ["status", "destination", "dossier", "limit", "before_id"],
    "/api/v1/log": ["system", "outcome", "dossier", "since", "until", "limit", "before_id"],
    "/api/v1/log.csv": ["system", "outcome", "dossier", "since", "until"],
    "/api/v1/audit": ["limit", "before_id"],
}
PAGE_FILTERS: dict[str, list[str]] = {
    "/log": ["system", "outcome", "dossier", "since", "until", "before_id"],
    "/dossiers": ["key", "q", "dossier"],
    "/dead": ["destination", "before_id"],
}


async def seed(client: TestClient[Any, Any]) -> None:
    for i in range(3):
        body = json.dumps({"id": f"S{i}", "key": f"K{i}"}).encode()
        h = {"Content-Type": "application/json", **sign(SECRET, body)}
        assert (await client.post("/inbound/src", data=body, headers=h)).status == 202


async def counts(client: TestClient[Any, Any]) -> tuple[int, int]:
    store = client.app[STORE]
    _, problems = await store.verify_log()
    return await stored(client), len(problems)


async def test_sql_injection_in_every_filter(client: TestClient[Any, Any], tally: Any) -> None:
    await seed(client)
    await asyncio.sleep(0.5)
    before = await counts(client)
    statuses: dict[int, int] = {}
    leaks: list[str] = []
    five: list[str] = []
    requests = 0
    for path, params in API_FILTERS.items():
        for param in params:
            for value in INJECTIONS:
                resp = await client.get(path, params={param: value}, headers=bearer("admin"))
                text = await resp.text()
                requests += 1
                statuses[resp.status] = statuses.get(resp.status, 0) + 1
                if resp.status >= 500:
                    five.append(f"{path}?{param}={value!r}: {resp.status}")
                if resp.status == 200 and path.endswith("csv"):
                    if text.count("\n") > 1:
                        leaks.append(f"{path}?{param}={value!r} returned rows")
                elif resp.status == 200:
                    data = json.loads(text)
                    if param not in ("limit", "before_id") and data.get("items"):
                        leaks.append(f"{path}?{param}={value!r} returned {len(data['items'])}")
                else:
                    record_answer(text)
        resp = await client.get(
            "/api/v1/dossiers/" + INJECTIONS[0].replace("/", "%2F"), headers=bearer("admin")
        )
        requests += 1
        if resp.status >= 500:
            five.append(f"dossiers/{INJECTIONS[0]}: {resp.status}")
    for value in INJECTIONS:
        resp = await client.get(
            "/api/v1/dossiers/" + quote(value, safe=""), headers=bearer("admin")
        )
        requests += 1
        statuses[resp.status] = statuses.get(resp.status, 0) + 1
        if resp.status >= 500:
            five.append(f"/api/v1/dossiers/{value!r}: {resp.status}")
        elif resp.status == 200:
            leaks.append(f"/api/v1/dossiers/{value!r} found a dossier")
    await sign_in(client, "admin")
    for path, params in PAGE_FILTERS.items():
        for param in params:
            for value in INJECTIONS:
                resp = await client.get(path, params={param: value}, allow_redirects=False)
                requests += 1
                statuses[resp.status] = statuses.get(resp.status, 0) + 1
                if resp.status >= 500:
                    five.append(f"{path}?{param}={value!r}: {resp.status}")
    after = await counts(client)
    ok = not five and not leaks and before == after
    tally.add(
        "The store answers only what was asked (no SQL injection)",
        f"{len(INJECTIONS)} injection strings in every filter of the admin API, the "
        "dashboard and the dossier key",
        requests,
        "requests",
        f"answers {dict(sorted(statuses.items()))}; {len(leaks)} returned rows; "
        f"deliveries and log before/after {before}/{after}",
        ok=ok,
    )
    assert not five, five[:10]
    assert not leaks, leaks[:10]
    assert before == after


async def test_sql_injection_in_cli_filters(
    client: TestClient[Any, Any], tmp_path: Path, tally: Any
) -> None:
    from click.testing import CliRunner

    from gateway.cli import build_cli

    await seed(client)
    await asyncio.sleep(0.5)
    config = write_config(tmp_path, gateway_config(tmp_path, free_port(), {"dst": "http://x"}))
    command = build_cli()

    def invoke(*args: str) -> Any:
        return CliRunner().invoke(command, [*args, "--config", str(config)])

    failures: list[str] = []
    runs = 0
    for value in INJECTIONS:
        for args in (
            ["deliveries", "list", "--json", "--destination", value],
            ["deliveries", "list", "--json", "--dossier", value],
            ["dossiers", "show", "--json", value],
        ):
            done = await asyncio.to_thread(invoke, *args)
            runs += 1
            record_answer(done.output)
            if done.exception is not None and not isinstance(done.exception, SystemExit):
                failures.append(f"{args}: {done.exception!r}")
            elif args[1] == "list" and json.loads(done.output or "[]"):
                failures.append(f"{args}: matched rows")
    verify = await asyncio.to_thread(invoke, "log", "verify")
    listed = await asyncio.to_thread(invoke, "deliveries", "list", "--json")
    intact = verify.exit_code == 0 and len(json.loads(listed.output)) == 3
    tally.add(
        "The store answers only what was asked (no SQL injection)",
        "injection strings in `gateway deliveries list --destination/--dossier` and "
        "`gateway dossiers show`",
        runs,
        "commands",
        f"{len(failures)} crashed or matched; store intact: {intact}",
        ok=not failures and intact,
    )
    assert not failures, failures[:5]
    assert intact, (verify.output, listed.output)


# -- drop-in plugin names ------------------------------------------------------------------------
PLUGIN_SOURCE = """
from pathlib import Path
Path({marker!r}).joinpath({name!r}).write_text("imported")
"""


def test_path_tricks_in_drop_in_plugin_names(tmp_path: Path, tally: Any) -> None:
    dropins, outside, markers = tmp_path / "plugins", tmp_path / "outside", tmp_path / "markers"
    for d in (dropins, outside, markers):
        d.mkdir()

    def plugin(path: Path, name: str) -> None:
        path.write_text(PLUGIN_SOURCE.format(marker=str(markers), name=name), encoding="utf-8")

    plugin(dropins / "legit.py", "legit")
    plugin(outside / "evil.py", "symlink-out")
    (dropins / "evil.py").symlink_to(outside / "evil.py")
    (dropins / "linkdir.py").symlink_to(outside, target_is_directory=True)
    plugin(outside / "escape.py", "dotdot")
    (dropins / "sub").mkdir()
    plugin(dropins / "sub" / "nested.py", "nested")
    for name, tag in (
        ("my-plugin.py", "dash"),
        ("1digit.py", "digit"),
        (".hidden.py", "hidden"),
        ("two.dots.py", "dots"),
        ("space name.py", "space"),
        ("new\nline.py", "newline"),
        ("trail.py ", "trailing-space"),
        ("upper.PY", "upper-suffix"),
        ("..py", "dotdotpy"),
    ):
        plugin(dropins / name, tag)
    (dropins / "dir.py").mkdir()
    plugins = build_plugins(plugins_dir=dropins / ".." / "plugins", load_entry_points=False)
    imported = sorted(p.name for p in markers.iterdir())
    names = sorted(plugins.origins)
    tried = 16
    ok = imported == ["legit"]
    tally.add(
        "Only plain files inside plugins_dir are loaded (drop-in plugin names)",
        "symlinked file and directory out of plugins_dir, nested file, names with dashes, "
        "leading digit, hidden, dots, spaces, newline, trailing space, upper-case suffix, "
        "'..py', a directory named like a plugin",
        tried,
        "files",
        f"imported: {imported}; registered: {names}",
        ok=ok,
    )
    assert imported == ["legit"], imported


# -- slow clients ------------------------------------------------------------------------------
def slow_connection(port: int, kind: str) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port))
    s.setblocking(False)
    if kind == "slow body":
        s.send(
            b"POST /inbound/src HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100000\r\n\r\n{"
        )
    elif kind == "slow headers":
        s.send(b"POST /inbound/src HTTP/1.1\r\nHost: x\r\n")
    return s


def closed_or_answered(s: socket.socket) -> bytes | None:
    try:
        data = s.recv(4096)
    except BlockingIOError:
        return None
    except OSError:
        return b"<reset>"
    return data or b"<closed>"


@pytest.mark.slow
async def test_slow_clients_are_cut_and_others_still_served(tmp_path: Path, tally: Any) -> None:
    receiver = Receiver()
    await receiver.start()
    port = free_port()
    config = write_config(tmp_path, gateway_config(tmp_path, port, {"dst": receiver.url}))
    gw = GatewayProcess(config, port, "slow")
    kinds = ["slow headers", "slow body", "idle"]
    outcome: dict[str, str] = {}
    served: list[float] = []
    try:
        await gw.start()
        conns = {k: [slow_connection(port, k) for _ in range(20)] for k in kinds}
        started = time.monotonic()
        async with aiohttp.ClientSession() as session:
            while time.monotonic() - started < SLOW_CLIENT_LIMIT and len(outcome) < len(kinds):
                for kind, socks in conns.items():
                    for s in socks:
                        with contextlib.suppress(OSError):
                            if kind == "slow body":
                                s.send(b" ")
                            elif kind == "slow headers":
                                s.send(b"X")
                    answers = [closed_or_answered(s) for s in socks]
                    if kind not in outcome and all(a is not None for a in answers):
                        first = next(a for a in answers if a)
                        outcome[kind] = (
                            f"cut after {time.monotonic() - started:.0f} s ({first[:40]!r})"
                        )
                body = json.dumps({"id": f"N{len(served)}", "key": "N"}).encode()
                t0 = time.monotonic()
                h = {"Content-Type": "application/json", **sign(SECRET, body)}
                async with session.post(f"{gw.url}/inbound/src", data=body, headers=h) as r:
                    assert r.status == 202
                served.append(time.monotonic() - t0)
                await asyncio.sleep(1.0)
        for socks in conns.values():
            for s in socks:
                s.close()
        await gw.stop()
    finally:
        gw.kill()
        await receiver.stop()
    for kind in kinds:
        outcome.setdefault(kind, f"still open after {SLOW_CLIENT_LIMIT:.0f} s")
    ok = all(v.startswith("cut") for v in outcome.values()) and max(served) < 2.0
    tally.add(
        "Slow clients cannot hold the gateway (time limits)",
        "20 connections each: headers 1 byte/s, body 1 byte/s, idle; a normal client "
        "pushes once a second meanwhile",
        60,
        "connections",
        "; ".join(f"{k}: {v}" for k, v in outcome.items())
        + f"; normal pushes {len(served)}, slowest {max(served):.2f} s",
        ok=ok,
    )
    assert max(served) < 2.0, served
    assert all(v.startswith("cut") for v in outcome.values()), outcome
