"""Privacy: no unmasked CCCD and no full name in anything the gateway writes or answers.

The session-wide scan (``tests/privacy_scan.py``) reads every log and captured output of the
run; this test makes sure there is personal data to leak and looks everywhere it could go:

* a ``gateway run`` child takes dossiers full of names and CCCDs (in the fields the wire
  formats name, in wrong fields, in malformed bodies), delivers some, retries some and
  dead-letters some against a destination whose error answers echo the personal fields
  back (as many real systems do);
* the post office pushes payment results of the same people, whose keys were once built
  from the CCCD (``maXa:CCCD``): keys and references are scanned like any text;
* then everything is collected: every HTTP answer of intake, the gateway's log, the CLI
  (``deliveries list`` as a table and ``--json``, ``deliveries show`` both ways,
  ``dossiers show``, ``deliveries export`` to stdout and to a file), the admin API
  (deliveries, log, log.csv, dossiers), ``/metrics`` and the dashboard's pages;
* and scanned. The texts also go to the scan's directory, so the session scan sees them.

A self-test first shows the scanner finds what it must (NFC, NFD, JSON-escaped) and not
what is masked.
"""

from __future__ import annotations

import asyncio
import json
import os
import unicodedata
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from privacy_scan import Scanner, literal_names, name_pattern

from gateway.signing import sign
from gateway.testing.admin import TOKENS, bearer, token_config

from .reliability_kit import (
    ROOT,
    SECRET,
    GatewayProcess,
    cli,
    free_port,
    gateway_config,
    log_dir,
    write_config,
)

NAME, CCCD = "Hoàng Thị Lan", "006135001234"
PEOPLE = [("Lò Văn Pha", "006080004321"), ("Nông Thị Hương", "006185002468"), (NAME, CCCD)]
MOTCUA_SECRET = "p-motcua-7c2e9a41b8d3f6051e4d"
POST_SECRET = "p-post-office-5e1d8c3a9b7f2046e8a1"
RESULTS = (
    '<KetQuaChiTra xmlns="urn:vn:btxh:chitra:1" ky="2020-09" maXa="02053">'
    + "".join(
        f'<Dong soDinhDanh="{cccd}" trangThai="da_chi" soTien="540000" ngayChi="2020-09-05"/>'
        for _, cccd in PEOPLE
    )
    + "</KetQuaChiTra>"
).encode()


def scanner() -> Scanner:
    return Scanner(name_pattern(literal_names(ROOT / "tests", ROOT / "plugins")))


def test_the_scanner_finds_what_it_must_and_not_what_is_masked() -> None:
    s = scanner()
    leaks = [
        f"name {NAME} here",
        f"id {CCCD}.",
        "id 006 135 001 234 grouped",
        f"key 02053:{CCCD}",
        unicodedata.normalize("NFD", f"ChuHoSo={NAME}"),
        json.dumps({"hoTen": NAME}),  # JSON-escaped: \\u00e0...
        "Lò Văn Pha",
    ]
    for text in leaks:
        s.scan(text, "leak")
    assert len(s.findings) == len(leaks), [f.excerpt for f in s.findings]
    clean = Scanner(s.names)
    for text in (
        "name H. T. L. here",
        "id ********1234",
        "uid 5f3a006135001234ab",  # inside a hex token: not a CCCD
        "20200803081500",
        "Hà Nội, Lạng Sơn",
    ):
        clean.scan(text, "clean")
    assert not clean.findings, [f.excerpt for f in clean.findings]


def echo_app(calls: dict[str, int]) -> web.Application:
    """A destination that refuses some dossiers, echoing their personal fields back."""

    async def handle(request: web.Request) -> web.Response:
        env = await request.json()
        payload = env.get("payload", {})
        echo = {k: payload.get(k) for k in ("ChuHoSo", "SoDinhDanh", "hoTen")}
        ident = str(env.get("id", ""))
        calls[ident] = calls.get(ident, 0) + 1
        if ident.startswith("dead"):
            return web.json_response({"error": "refused", **echo}, status=422)
        if ident.startswith("retry") and calls[ident] < 3:
            return web.json_response({"error": "busy", **echo}, status=503)
        return web.json_response({"ok": True, **echo})

    app = web.Application()
    app.router.add_post("/receive", handle)
    return app


def dossiers() -> list[tuple[str, bytes, str]]:
    """(system, body, what) pushes full of personal data, some of them bad."""
    out: list[tuple[str, bytes, str]] = []
    for prefix in ("ok", "dead", "retry"):
        for i, (name, cccd) in enumerate(PEOPLE):
            item = {
                "id": f"{prefix}-{i}",
                "key": f"000.00.12.H06-200803-{i:04d}",
                "ChuHoSo": name,
                "SoDinhDanh": cccd,
                "hoTen": unicodedata.normalize("NFD", name),
                "note": f"CCCD {cccd} xin trợ cấp",  # a CCCD in free text is masked too
            }
            out.append(("src", json.dumps({"data": [item]}, ensure_ascii=False).encode(), prefix))
    out.append(
        (
            "src",
            json.dumps({"data": [{"ChuHoSo": NAME, "SoDinhDanh": CCCD}]}).encode(),
            "item without id",
        )
    )
    out.append(("src", f'{{"data": [{{"id": "{NAME}", "x": {CCCD}'.encode(), "truncated JSON"))
    motcua_bad = {
        "MaHoSo": "000.00.12.H06-200803-0099",
        "MaTTHC": "1.001776",
        "NgayTiepNhan": NAME,
        "ChuHoSo": NAME,
        "MaDoiTuong": CCCD[:-1],
        "TrangThaiHoSo": NAME,
        "ThongTinNguoiNop": {
            "SoDinhDanh": CCCD + "9",
            "TenNguoiNop": NAME,
            "NgaySinh": CCCD,
            "GioiTinh": NAME,
            "MaTinh": NAME,
            "MaHuyen": CCCD,
            "MaXa": NAME,
        },
        "DeNghiTroCap": {"LoaiDoiTuong": NAME, "DiaChiNhanTien": CCCD},
    }
    out.append(
        (
            "motcua",
            json.dumps({"isUpdating": NAME, "data": [motcua_bad]}, ensure_ascii=False).encode(),
            "bad isUpdating",
        )
    )
    out.append(
        (
            "motcua",
            json.dumps({"isUpdating": "False", "data": [motcua_bad]}, ensure_ascii=False).encode(),
            "invalid dossier",
        )
    )
    return out


async def test_personal_data_never_reaches_logs_errors_or_exports(
    tmp_path: Path, tally: Any
) -> None:
    calls: dict[str, int] = {}
    runner = web.AppRunner(echo_app(calls), access_log=None)
    await runner.setup()
    dest_port = free_port()
    await web.TCPSite(runner, "127.0.0.1", dest_port).start()
    port = free_port()
    data = gateway_config(
        tmp_path,
        port,
        {"dst": f"http://127.0.0.1:{dest_port}"},
        system={"retry": {"initial": 0.1, "max": 0.2, "jitter": 0, "deadline": 60}},
        extra={"tokens": token_config()},
    )
    data["systems"]["motcua"] = {
        "plugin": "one_stop_shop",
        "base_url": "http://127.0.0.1:9",
        "inbound_secret": MOTCUA_SECRET,
        "username": "gateway",
        "password": "secret",
        "madonvi": "000.00.12.H06",
        "timeout": {"connect": 1, "read": 3},
    }
    data["systems"]["post_office"] = {
        "plugin": "post_office",
        "base_url": "http://127.0.0.1:9",
        "inbound_secret": POST_SECRET,
        "timeout": {"connect": 1, "read": 3},
    }
    data["routes"].append({"from": "post_office", "event": "payment.results", "to": ["dst"]})
    config = write_config(tmp_path, data)
    gw = GatewayProcess(config, port, "privacy")
    texts: dict[str, str] = {}
    try:
        await gw.start()
        async with aiohttp.ClientSession() as s:
            for system, body, what in dossiers():
                secret = MOTCUA_SECRET if system == "motcua" else SECRET
                h = {"Content-Type": "application/json", **sign(secret, body)}
                async with s.post(f"{gw.url}/inbound/{system}", data=body, headers=h) as r:
                    texts[f"intake {what}"] = f"{r.status} {await r.text()}"
            h = {"Content-Type": "application/xml", **sign(POST_SECRET, RESULTS)}
            async with s.post(f"{gw.url}/inbound/post_office", data=RESULTS, headers=h) as r:
                texts["intake payment results"] = f"{r.status} {await r.text()}"
            for _ in range(100):
                async with s.get(f"{gw.url}/api/v1/deliveries", headers=bearer("viewer")) as r:
                    items = (await r.json())["items"]
                if len(items) == 12 and all(i["status"] in ("delivered", "dead") for i in items):
                    break
                await asyncio.sleep(0.1)
            texts["keys"] = "\n".join(f"{i['dossier_key']} {i['ref']}" for i in items)
            texts["api deliveries"] = json.dumps(items, ensure_ascii=False)
            paths = ["/api/v1/log", "/api/v1/log.csv", "/api/v1/systems", "/metrics"]
            paths += [f"/api/v1/deliveries/{i['id']}" for i in items]
            paths += [f"/api/v1/dossiers/000.00.12.H06-200803-{i:04d}" for i in range(3)]
            for path in paths:
                async with s.get(gw.url + path, headers=bearer("admin")) as r:
                    texts[f"api {path}"] = await r.text()
            page = await s.get(f"{gw.url}/signin")
            csrf = (await page.text()).split('name="csrf" value="')[1].split('"')[0]
            await s.post(
                f"{gw.url}/signin",
                data={"csrf": csrf, "token": TOKENS["admin"][1], "next": "/"},
                allow_redirects=False,
            )
            for path in ["/", "/log", "/dead", "/dossiers?key=000.00.12.H06-200803-0000"] + [
                f"/deliveries/{i['id']}" for i in items
            ]:
                async with s.get(gw.url + path) as r:
                    texts[f"page {path}"] = await r.text()
        await gw.stop()
    finally:
        gw.kill()
        await runner.cleanup()
    texts["gateway log"] = gw.log_text()
    export = log_dir() / f"privacy-export-{os.getpid()}.csv"  # the session scan reads it too
    # one delivery of each kind (event x outcome) is shown; the API and pages showed them all
    sample = sorted({(i["event"], i["status"]): i["id"] for i in items}.values())
    for args in (
        ["deliveries", "list"],
        ["deliveries", "list", "--json"],
        ["deliveries", "export"],
        ["deliveries", "export", "--out", str(export)],
        *[["deliveries", "show", str(i)] for i in sample],
        *[["deliveries", "show", "--json", str(i)] for i in sample],
        ["dossiers", "show", "--json", "000.00.12.H06-200803-0000"],
    ):
        done = await asyncio.to_thread(cli, config, *args)
        texts[f"cli {' '.join(args)}"] = done.stdout + done.stderr
    texts["export file"] = export.read_text(encoding="utf-8")
    with (log_dir() / f"privacy-e2e-{os.getpid()}.txt").open("w", encoding="utf-8") as out:
        for where, text in texts.items():
            out.write(f"== {where}\n{text}\n")
    s = scanner()
    for where, text in texts.items():
        s.scan(text, where)
    states = sorted(i["status"] for i in items)
    places = sorted({f.source for f in s.findings})
    tally.add(
        "Privacy: no unmasked CCCD or full name in logs, errors, exports",
        "dossiers full of names and CCCDs (right fields, wrong fields, malformed bodies), "
        "a destination echoing them in its error answers, payment results keyed by person; "
        "then intake answers, keys, the log, CLI tables and JSON, exports (stdout and file), "
        "admin API, CSV, /metrics and dashboard pages scanned",
        s.lines,
        "lines",
        f"{len(s.findings)} unmasked ({', '.join(places[:6]) or 'none'}); deliveries {states}",
        ok=not s.findings,
    )
    assert states == ["dead"] * 3 + ["delivered"] * 9, states
    assert not s.findings, [(f.source, f.kind, f.excerpt) for f in s.findings[:15]]
