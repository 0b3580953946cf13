"""A second domain plugin (funeral support, 1.001731; ``tests/domain_plugin``) built on
:mod:`gateway.api` alone, end to end: its config section, its own table and migration, a
message it emits through the one intake (validate hooks included), a page, an API route, a
nav entry, a job and commands."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import click
import pytest
from aiohttp.test_utils import TestClient, TestServer
from click.testing import CliRunner
from conftest import SECRET, make_config, signed, wait_for

from gateway import hookimpl
from gateway.api import ConfigError, Gateway, plugin_settings, plugins_for
from gateway.config import Config
from gateway.hookspecs import JobContext
from gateway.model import Message
from gateway.plugins import build_plugins
from gateway.store import DeliveryFilter
from gateway.testing.admin import bearer, sign_in, token_config
from gateway.testing.sink import Sink
from gateway.web.app import create_app
from gateway.web.keys import PLUGINS, STORE

HERE = Path(__file__).resolve().parents[1] / "domain_plugin"
CCCD = "001089012345"
Client = TestClient[Any, Any]


def fs_config(tmp_path: Path, sink_url: str, **section: Any) -> Config:
    return make_config(
        tmp_path,
        sink_url,
        gateway={"plugins_dir": str(HERE)},
        tokens=token_config(),
        systems={
            "desk": {
                "plugin": "http_json",
                "inbound_secret": SECRET,
                "event": "funeral.claim",
                "id_field": "MaHoSo",
                "key_field": "MaHoSo",
            },
            "funeral_support": {
                "plugin": "funeral_support",
                "retry": {"initial": 0.05, "max": 0.2, "jitter": 0, "deadline": 30},
            },
            "payer": {
                "plugin": "http_json",
                "base_url": sink_url,
                "path": "/receive",
                "retry": {"initial": 0.05, "max": 0.2, "jitter": 0, "deadline": 30},
            },
        },
        routes=[
            {"from": "desk", "event": "funeral.claim", "to": ["funeral_support"]},
            {"from": "funeral_support", "event": "funeral.payment", "to": ["payer"]},
        ],
        funeral_support=section,
    )


def claim(ma_ho_so: str = "000.00.12.H06-201001-0001") -> dict[str, str]:
    return {"MaHoSo": ma_ho_so, "soDinhDanh": CCCD}


async def push(client: Client, body: Any) -> dict[str, Any]:
    raw, headers = signed(body)
    resp = await client.post("/inbound/desk", data=raw, headers=headers)
    assert resp.status == 202, await resp.text()
    answer: dict[str, Any] = await resp.json()
    return answer


@pytest.mark.both_databases
async def test_a_claim_is_kept_and_its_payment_emitted_through_the_one_intake(
    tmp_path: Path, aiohttp_client: Any, sink: tuple[Sink, TestServer]
) -> None:
    received, server = sink
    config = fs_config(tmp_path, str(server.make_url("")).rstrip("/"), multiplier=20)
    client: Client = await aiohttp_client(create_app(config))
    answer = await push(client, claim())
    assert [a["ref"] for a in answer["accepted"]] == ["000.00.12.H06-201001-0001"]

    await wait_for(lambda: len(received.accepted) == 1, what="the payment at the payer")
    [paid] = received.accepted
    assert paid.json()["payload"] == {
        "MaHoSo": "000.00.12.H06-201001-0001",
        "soDinhDanh": CCCD,
        "soTien": 7_200_000,  # 20 × 360,000 VND
    }
    assert paid.idempotency_key
    # the same claim again: the intake's dedupe answers a duplicate, nothing is paid twice
    again = await push(client, claim())
    assert [d["ref"] for d in again["duplicates"]] == ["000.00.12.H06-201001-0001"]

    # the page, its nav entry, the API route (masked CCCD), the API's clear error
    await sign_in(client, "viewer")
    page = await client.get("/funeral")
    html = await page.text()
    assert page.status == 200 and "Mai táng" in html and "7,200,000" in html
    assert "********2345" in html and CCCD not in html
    api = await client.get("/api/v1/funeral/claims", headers=bearer("viewer"))
    body = await api.json()
    assert body == {
        "claims": [
            {
                "maHoSo": "000.00.12.H06-201001-0001",
                "soDinhDanh": "********2345",
                "soTien": 7_200_000,
            }
        ]
    }
    bad = await client.get("/api/v1/funeral/claims?limit=abc", headers=bearer("viewer"))
    assert bad.status == 400 and "limit must be 1..1000" in await bad.text()
    client.session.cookie_jar.clear()
    assert (await client.get("/api/v1/funeral/claims")).status == 401

    # the job, registered through the hook, publishes its gauge on /metrics
    jobs = client.app[PLUGINS].jobs(config)
    _interval, job = jobs["funeral_support:publish"]
    await job(JobContext("funeral_support:publish", client.app))
    metrics = await (await client.get("/metrics")).text()
    assert "gateway_funeral_claims 1.0" in metrics


class PaymentCeiling:
    """A validator: no funeral payment above 10,000,000 VND."""

    @hookimpl
    def gateway_validate_message(self, message: Message, system: str) -> list[str]:
        if message.event == "funeral.payment" and message.payload["soTien"] > 10_000_000:
            return [f"soTien {message.payload['soTien']:,} above the ceiling"]
        return []


@pytest.mark.both_databases
async def test_a_plugins_message_is_validated_like_a_push_and_refused_whole(
    tmp_path: Path, aiohttp_client: Any, sink: tuple[Sink, TestServer]
) -> None:
    received, server = sink
    config = fs_config(tmp_path, str(server.make_url("")).rstrip("/"), multiplier=30)
    plugins = build_plugins(plugins_dir=HERE, extra=[("ceiling", PaymentCeiling())])
    client: Client = await aiohttp_client(create_app(config, plugins=plugins))
    await push(client, claim("HS-CEILING"))
    store = client.app[STORE]

    async def dead() -> bool:
        rows = await store.list_deliveries(DeliveryFilter(status="dead"))
        return len(rows) == 1

    await wait_for(dead, what="the claim's delivery dead-lettered")
    [row] = await store.list_deliveries(DeliveryFilter(status="dead"))
    assert "above the ceiling" in str(row["last_error"])
    assert received.accepted == []

    def claims(conn: Any) -> int:
        from sqlalchemy import text

        return int(conn.execute(text("SELECT count(*) FROM fs_claims")).scalar_one())

    assert await store.read(claims) == 0  # the claim row went with the refused payment


def test_the_section_is_validated_by_the_plugins_model(tmp_path: Path) -> None:
    from domain_plugin.funeral_support import Settings

    config = fs_config(tmp_path, "http://127.0.0.1:9", multiplier=0)
    with pytest.raises(ConfigError) as err:
        plugin_settings(config, "funeral_support", Settings)
    assert "funeral_support.multiplier" in str(err.value) and "gateway.toml" in str(err.value)
    config = fs_config(tmp_path, "http://127.0.0.1:9", amount=1)
    with pytest.raises(ConfigError, match=r"funeral_support\.amount: unknown key"):
        plugin_settings(config, "funeral_support", Settings)


def test_its_commands_read_and_emit_through_the_api(tmp_path: Path) -> None:
    from domain_plugin.funeral_support import keep_claim, payment_message

    config = fs_config(tmp_path, "http://127.0.0.1:9")
    cfg_file = tmp_path / "gateway.toml"
    cfg_file.write_text(
        f'[gateway]\ndatabase = "{config.gateway.database}"\nplugins_dir = "{HERE}"\n'
        '[systems.funeral_support]\nplugin = "funeral_support"\n'
        '[systems.payer]\nplugin = "http_json"\nbase_url = "http://127.0.0.1:9"\n'
        '[[routes]]\nfrom = "funeral_support"\nevent = "funeral.payment"\nto = ["payer"]\n'
        "[funeral_support]\nmultiplier = 20\n",
        encoding="utf-8",
    )

    async def seed() -> None:
        async with Gateway.open(config) as gw:
            prepared = await gw.prepare("funeral_support", payment_message("HS-9", CCCD, 7_200_000))
            assert prepared.routes == [("funeral_support:funeral.payment", "payer")]
            detail = await gw.store.write(keep_claim, prepared, CCCD, 7_200_000)
            assert detail.startswith("kept")

    asyncio.run(seed())
    group = click.Group("gateway")
    plugins_for(config).add_commands(group)
    runner = CliRunner()
    listed = runner.invoke(group, ["funeral", "claims", "--config", str(cfg_file)])
    assert listed.exit_code == 0, listed.output
    assert "HS-9" in listed.output and "********2345" in listed.output
    assert "7200000" in listed.output and CCCD not in listed.output
    resent = runner.invoke(group, ["funeral", "resend", "HS-9", "--config", str(cfg_file)])
    assert (resent.exit_code, resent.output.strip()) == (0, "duplicate")
    missing = runner.invoke(group, ["funeral", "resend", "HS-0", "--config", str(cfg_file)])
    assert missing.exit_code == 1 and "no claim 'HS-0'" in missing.output
