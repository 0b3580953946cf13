"""The social-assistance flow through real loopback servers: decisions pushed (signed) to the
gateway reach the roster; payment lists go to the post-office simulator, whose KetQuaChiTra
results come back and are reconciled; three unpaid months make a DeNghiTamDung at the
registry simulator; a held decision is paid only once an operator accepts a figure."""

from __future__ import annotations

import time as _time
from collections.abc import AsyncIterator
from datetime import datetime, time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from click.testing import CliRunner
from conftest import wait_for
from loopback import (
    FAST_SYSTEM,
    free_port,
    gateway_section,
    local_urls,
    push_decision,
    running_flow,
    simulated_systems,
)
from sa_fixtures import chodon_august_2020, decision_payload
from test_full_flow import sim_state

from gateway.config import Config, SystemConfig, config_from_dict
from gateway.model import VN_TZ
from gateway.plugins import build_plugins
from gateway.store import Store
from gateway.testing.admin import bearer, token_config
from gateway.web.keys import ENGINE, PLUGINS, STORE
from plugins.social_assistance import service
from plugins.social_assistance.connector import SocialAssistanceConnector
from plugins.social_assistance.month import Month
from plugins.social_assistance.storage import load_domain, read, result_payloads
from plugins.vn_common.cccd import make_cccd

SECRETS = {
    "registry": "s-registry-7c2e9a41b8d3f6051e4d",
    "post_office": "s-post-7c2e9a41b8d3f6051e4d",
}


def sa_config(tmp_path: Path, gw: int, ports: dict[str, int]) -> Config:
    return config_from_dict(
        {
            "gateway": gateway_section(tmp_path, gw, "sa"),
            "tokens": token_config(),
            "systems": {
                **simulated_systems(local_urls(ports), SECRETS, FAST_SYSTEM),
                "social_assistance": {"plugin": "social_assistance", **FAST_SYSTEM},
            },
            "routes": [
                {"from": "registry", "event": "decision.issued", "to": ["social_assistance"]},
                {"from": "social_assistance", "event": "payment.list", "to": ["post_office"]},
                {"from": "post_office", "event": "payment.results", "to": ["social_assistance"]},
                {
                    "from": "social_assistance",
                    "event": "payment.suspension_candidates",
                    "to": ["registry"],
                },
            ],
            "social_assistance": {"payment_day": 24, "communes": []},
        },
        tmp_path / "gateway.toml",
    )


@pytest.fixture
async def flow(tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    gw = free_port()
    ports = {name: free_port() for name in SECRETS}
    extra = {
        "registry": {"appraisal_delay": 0.3, "refuse_rate": 0.0},
        "post_office": {"payout_delay": 0.2, "unpaid_rate": 1.0},
    }
    config = sa_config(tmp_path, gw, ports)
    async with running_flow(config, gw, ports, SECRETS, extra) as app:
        yield {"app": app, "ports": ports, "gw": gw, "config": config}


def build_now(month: str) -> datetime:
    m = Month.parse(month)
    return datetime.combine((m - 1).day(24), time(10), VN_TZ)


async def test_decisions_lists_results_suspension_and_held(flow: dict[str, Any]) -> None:
    app, gw, ports, config = flow["app"], flow["gw"], flow["ports"], flow["config"]
    domain = load_domain(config)
    rules = domain.rules
    store: Store = app[STORE]
    ok = decision_payload(
        rules,
        so="215/QĐ-UBND",
        ngayKy="2020-08-10",
        maHoSo="HS-A",
        soDinhDanh=make_cccd("006", 1935, True, 1),
        hoTen="Hoàng Thị Lan",
        ngaySinh="1935-04-12",
        maXa="02053",
        loaiDoiTuong="5.5a",
    )
    held = decision_payload(
        rules,
        so="216/QĐ-UBND",
        ngayKy="2020-08-10",
        maHoSo="HS-B",
        soDinhDanh=make_cccd("006", 1936, False, 2),
        hoTen="Lò Văn Pha",
        ngaySinh="1936-03-02",
        maXa="02053",
        loaiDoiTuong="5.5a",
        heSo="2.0",
        mucChuan="270000",
        soTienThang="600000",
    )
    gateway_url = f"http://127.0.0.1:{gw}"
    await push_decision(gateway_url, SECRETS["registry"], ok)
    await push_decision(gateway_url, SECRETS["registry"], held)
    await push_decision(gateway_url, SECRETS["registry"], ok)  # re-sent: nothing new

    async def both_known() -> bool:
        return len(await service.held(store)) == 1

    await wait_for(both_known, timeout=10, what="the decisions applied / held")
    [h] = await service.held(store)
    assert (h["registry_amount"], h["rules_amount"]) == (600_000, 540_000)

    async def send(month: str, **kw: Any) -> list[service.CommuneResult]:
        out = await service.send_month(
            store, config, app[PLUGINS], domain, Month.parse(month), now=build_now(month), **kw
        )
        app[ENGINE].wake(None)
        return out

    async def results_for(month: str, n: int) -> None:
        async def arrived() -> bool:
            return len(await read(store, result_payloads, month)) >= n

        await wait_for(arrived, timeout=15, what=f"results of {month}")

    [r9] = await send("2020-09")
    assert (r9.status, r9.people, r9.lan_gui) == ("sent", 1, 1)  # the held one is not paid
    await results_for("2020-09", 1)
    # the operator accepts the registry's figure through the API
    async with aiohttp.ClientSession() as s:
        url = f"http://127.0.0.1:{gw}/api/v1/payments/held/{h['id']}/accept"
        async with s.post(url, json={"figure": "registry"}, headers=bearer("viewer")) as r:
            assert r.status == 403
        async with s.post(url, json={"figure": "registry"}, headers=bearer("operator")) as r:
            assert r.status == 200, await r.text()
    [r10] = await send("2020-10")
    assert r10.people == 2
    await results_for("2020-10", 2)
    [r11] = await send("2020-11")
    assert r11.status == "sent"
    await results_for("2020-11", 2)

    async def registry_asked() -> bool:
        return (await sim_state(ports["registry"]))["suspension_requests"] >= 1

    await wait_for(registry_asked, timeout=15, what="DeNghiTamDung at the registry")
    again = await send("2020-11")
    assert [r.status for r in again] == ["unchanged"]
    [re] = await send("2020-11", resend=True)
    assert (re.status, re.lan_gui) == ("sent", 2)

    async def payer_has_lan2() -> bool:
        lists = (await sim_state(ports["post_office"]))["lists"]
        return any(x["ky"] == "2020-11" and x["lanGui"] == 2 for x in lists)

    await wait_for(payer_has_lan2, timeout=10, what="lanGui 2 at the payer")
    po = await sim_state(ports["post_office"])
    assert po["rejected_400"] == po["rejected_422"] == 0
    overview = await service.overview(store, domain, Month.parse("2020-10"))
    assert overview[0]["unpaid"] == 2 and overview[0]["delivery"] == "delivered"


async def test_chodon_august_2020_report_through_the_connector(tmp_path: Path) -> None:
    config = config_from_dict(
        {
            "gateway": {"database": f"sqlite:///{tmp_path}/gw.db"},
            "systems": {"social_assistance": {"plugin": "social_assistance"}},
        },
        tmp_path / "gateway.toml",
    )
    plugins = build_plugins()
    domain = load_domain(config)
    store = Store(config.gateway.database, node_id="t")
    await store.open()
    try:
        await store.upgrade(plugins.migration_dirs())
        conn = SocialAssistanceConnector(SystemConfig(name="sa", plugin="social_assistance"))
        conn.attach(store, domain)
        t0 = _time.monotonic()
        for payload in chodon_august_2020(domain.rules):
            receipt = await conn.apply("decision.issued", payload)
            assert receipt.detail == "applied"
        sent = await service.send_month(
            store, config, plugins, domain, Month.parse("2020-08"), now=build_now("2020-08")
        )
        assert {r.status for r in sent} == {"sent"}
        report = await service.monthly(store, domain, Month.parse("2020-08"))
        assert report["beneficiaries"] == 1714
        assert report["total_amount"] == 662_715_000
        assert _time.monotonic() - t0 < 40
    finally:
        await store.close()


def test_payments_send_cli_dry_run(tmp_path: Path) -> None:
    from gateway.cli import build_cli

    main = build_cli()

    cfg = tmp_path / "gateway.toml"
    cfg.write_text(
        f'[gateway]\ndatabase = "sqlite:///{tmp_path}/cli.db"\n'
        '[systems.social_assistance]\nplugin = "social_assistance"\n'
        "[social_assistance]\npayment_day = 24\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(
        main, ["payments", "send", "--month", "2020-09", "--dry-run", "--config", str(cfg)]
    )
    assert result.exit_code == 0, result.output
    assert "0 sent" in result.output
    bad = tmp_path / "bad.toml"
    bad.write_text(cfg.read_text() + "colour = 1\n", encoding="utf-8")
    result = CliRunner().invoke(
        main, ["payments", "send", "--month", "2020-09", "--config", str(bad)]
    )
    assert result.exit_code != 0 and "social_assistance.colour" in result.output
