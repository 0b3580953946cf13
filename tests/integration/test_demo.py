"""``gateway demo`` as a user runs it (a subprocess on the bundled configuration, its ports
moved to free ones): within 90 s of start the post office has received the month's payment
lists and paid them (some lines unpaid), the payments page shows them, and the terminal
summary names the post office. The demo keeps to its own database, fresh each run."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.cli.demo import demo_database

ROOT = Path(__file__).resolve().parents[2]
DEADLINE = 90.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def demo_checkout(tmp_path: Path) -> tuple[Path, str, str]:
    """The bundled config/ copied with free ports; the gateway's and the post office's URLs."""
    config = tmp_path / "config"
    config.mkdir()
    for name in ("admin_units.toml", "social_assistance.toml"):
        (config / name).write_bytes((ROOT / "config" / name).read_bytes())
    text = (ROOT / "config" / "gateway.toml").read_text(encoding="utf-8")
    ports = {old: str(free_port()) for old in ("8080", "8091", "8092", "8093")}
    for old, new in ports.items():
        text = text.replace(f"127.0.0.1:{old}", f"127.0.0.1:{new}")
    (config / "gateway.toml").write_text(text, encoding="utf-8")
    return (
        config / "gateway.toml",
        f"http://127.0.0.1:{ports['8080']}",
        (f"http://127.0.0.1:{ports['8093']}"),
    )


async def _json(http: aiohttp.ClientSession, url: str, **kw: Any) -> Any:
    async with http.get(url, **kw) as r:
        return await r.json() if r.status == 200 else None


async def _sign_in(http: aiohttp.ClientSession, gw: str, token: str) -> None:
    async with http.get(f"{gw}/signin") as page:
        nonce = re.search(r'name="csrf" value="([^"]+)"', await page.text())
    assert nonce is not None
    data = {"csrf": nonce.group(1), "token": token, "next": "/"}
    async with http.post(f"{gw}/signin", data=data, allow_redirects=False) as r:
        assert r.status == 303, await r.text()


@pytest.mark.slow
async def test_the_demo_pays_within_90_seconds(tmp_path: Path) -> None:
    cfg, gw, post_office = demo_checkout(tmp_path)
    var = tmp_path / "var"
    var.mkdir()
    (var / "demo.db").write_bytes(b"left over from an earlier run, not a database")
    (var / "gateway.db").write_bytes(b"the configured database: the demo must not touch it")
    out = (tmp_path / "demo.out").open("w", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "GATEWAY_CONFIG"}
    args = [sys.executable, "-m", "gateway.cli", "demo", "--every", "2", "--duration", "120"]
    proc = await asyncio.create_subprocess_exec(
        *args, "--config", str(cfg), cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT, env=env
    )
    started = time.monotonic()
    lists: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    try:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            while time.monotonic() - started < DEADLINE:
                assert proc.returncode is None, (tmp_path / "demo.out").read_text()
                await asyncio.sleep(1)
                token_file = var / "secrets" / "admin.token"
                state = await _poll(http, f"{post_office}/_sim/state")
                if (
                    not state
                    or not state["lists"]
                    or state["results"]["pushed"] < len(state["lists"])
                ):
                    continue
                token = token_file.read_text(encoding="utf-8").strip()
                auth = {"Authorization": f"Bearer {token}"}
                api = await _poll(http, f"{gw}/api/v1/payments", headers=auth)
                rows = api["lists"] if api else []
                if rows and sum(r["paid"] + r["unpaid"] for r in rows) == sum(
                    r["people"] for r in rows
                ):
                    lists = state["lists"]
                    break
            took = time.monotonic() - started
            assert lists, (
                f"nothing paid after {took:.0f} s:\n" + (tmp_path / "demo.out").read_text()
            )
            # what the post office received is what the gateway lists, commune by commune
            assert {(x["maXa"], x["tongSoTien"]) for x in lists} == {
                (r["maXa"], r["total"]) for r in rows
            }
            assert sum(r["unpaid"] for r in rows) > 0 and sum(r["paid"] for r in rows) > 0
            assert all(r["delivery"] == "delivered" for r in rows)
            # the page a clerk opens: the month's lists, paid and unpaid
            await _sign_in(http, gw, token)
            async with http.get(f"{gw}/payments") as page:
                html = await page.text()
            assert page.status == 200 and 'id="sa-payments"' in html
            for r in rows:  # each commune by its name, the code beside
                assert re.search(rf"<td>[^<]+ \({r['maXa']}\)</td>", html), r["maXa"]
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(proc.wait(), timeout=30)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            out.close()
    text = (tmp_path / "demo.out").read_text(encoding="utf-8")
    assert proc.returncode == 0, text
    assert re.search(r"delivered: .*post_office \d+", text)
    assert re.search(r"post office: \d+/\d+ lists delivered, [1-9]\d* paid, [1-9]\d* unpaid", text)
    assert f"database    sqlite:///{var / 'demo.db'}" in text
    assert (var / "gateway.db").read_bytes().startswith(b"the configured database")
    assert (var / "demo.db").read_bytes().startswith(b"SQLite format 3")
    print(f"demo: paid lists after {took:.1f} s")


async def _poll(http: aiohttp.ClientSession, url: str, **kw: Any) -> Any:
    try:
        return await _json(http, url, **kw)
    except (aiohttp.ClientError, OSError):
        return None  # not serving yet


def test_demo_database_is_fresh_unless_kept(tmp_path: Path) -> None:
    for name in ("demo.db", "demo.db-wal", "demo.db-shm"):
        (tmp_path / name).write_text("old", encoding="utf-8")
    assert demo_database(tmp_path, keep=True) == tmp_path / "demo.db"
    assert (tmp_path / "demo.db").exists() and (tmp_path / "demo.db-wal").exists()
    assert demo_database(tmp_path, keep=False) == tmp_path / "demo.db"
    assert not any((tmp_path / n).exists() for n in ("demo.db", "demo.db-wal", "demo.db-shm"))


async def test_gateway_demo_tick_says_where_the_payments_stand(
    tmp_path: Path, aiohttp_client: Any
) -> None:
    """The social-assistance plugin's ``gateway_demo_tick``: before SEND_AFTER it waits (and
    says so); after it, with nobody decided yet, nothing is sent and it still waits."""
    from gateway.config import config_from_dict
    from gateway.web.app import create_app
    from gateway.web.keys import PLUGINS
    from plugins.social_assistance.demo import SEND_AFTER

    config = config_from_dict(
        {
            "gateway": {"database": f"sqlite:///{tmp_path}/gw.db"},
            "systems": {"social_assistance": {"plugin": "social_assistance"}},
        },
        tmp_path / "gateway.toml",
    )
    client = await aiohttp_client(create_app(config))
    app = client.app
    [early] = await app[PLUGINS].demo_tick(app, 1.0)
    assert re.fullmatch(
        r"payments \d{4}-\d{2}: lists for the post office in \d+ s \(waiting.*", early
    )
    [late] = await app[PLUGINS].demo_tick(app, SEND_AFTER + 1)
    assert "lists for the post office now (waiting for decisions)" in late
    bare = config_from_dict(
        {"gateway": {"database": f"sqlite:///{tmp_path}/b.db"}}, tmp_path / "b.toml"
    )
    other = await aiohttp_client(create_app(bare))
    assert await other.app[PLUGINS].demo_tick(other.app, SEND_AFTER + 1) == []
