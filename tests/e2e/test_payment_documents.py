"""The signing list downloaded from the payments page in a real browser: its totals equal the
list the post-office simulator received (read from the simulator's side), and the print page
shows the same totals. Screenshots in test-artifacts/."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import datetime, time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from conftest import wait_for
from loopback import (
    FAST_SYSTEM,
    free_port,
    gateway_section,
    local_urls,
    running_flow,
    simulated_systems,
)
from openpyxl import load_workbook
from sa_fixtures import decision_payload

from gateway.config import Config, config_from_dict
from gateway.model import VN_TZ
from gateway.testing.admin import TOKENS, token_config
from gateway.web.keys import CONNECTORS, ENGINE, PLUGINS, STORE
from plugins.social_assistance import documents, service
from plugins.social_assistance.month import Month
from plugins.social_assistance.storage import load_domain
from plugins.vn_common.cccd import make_cccd

from .conftest import screenshot

SECRET = "s-post-4f1c9a7e2b6d8035c1e9f2a7b4d6c803"  # 128+ bits: weaker secrets are refused
MONTH = Month(2020, 10)
PEOPLE = [
    ("Hoàng Thị Lan", "1935-04-12", True, "5.5a"),
    ("Lò Văn Pha", "1936-03-02", False, "5.5a"),
    ("Nông Thị Mai", "1940-07-01", True, "5.5a"),
]


def config(tmp_path: Path, gw: int, post_office: int) -> Config:
    return config_from_dict(
        {
            "gateway": gateway_section(tmp_path, gw, "e2e-pay"),
            "tokens": token_config(),
            "systems": {
                **simulated_systems(
                    local_urls({"post_office": post_office}), {"post_office": SECRET}, FAST_SYSTEM
                ),
                "social_assistance": {"plugin": "social_assistance", **FAST_SYSTEM},
            },
            "routes": [
                {"from": "social_assistance", "event": "payment.list", "to": ["post_office"]},
                {"from": "post_office", "event": "payment.results", "to": ["social_assistance"]},
            ],
            "social_assistance": {"payment_day": 24, "communes": []},
        },
        tmp_path / "gateway.toml",
    )


@contextlib.asynccontextmanager
async def paying(tmp_path: Path) -> AsyncIterator[tuple[str, str, web.Application]]:
    """The post-office simulator and the gateway on loopback; decisions applied, the month's
    list sent. Yields the gateway's and the simulator's URLs and the app."""
    gw, po = free_port(), free_port()
    cfg = config(tmp_path, gw, po)
    secrets = {"post_office": SECRET}
    extra = {"post_office": {"payout_delay": 0.2, "unpaid_rate": 0.3}}
    async with running_flow(cfg, gw, {"post_office": po}, secrets, extra, seed=3) as app:
        domain = load_domain(cfg)
        connector = app[CONNECTORS]["social_assistance"]
        for i, (name, born, female, category) in enumerate(PEOPLE, start=1):
            payload = decision_payload(
                domain.rules,
                so=f"{200 + i}/QĐ-UBND",
                ngayKy="2020-08-10",
                maHoSo=f"HS-{i}",
                soDinhDanh=make_cccd("006", int(born[:4]), female, i),
                hoTen=name,
                ngaySinh=born,
                maXa="02053",
                loaiDoiTuong=category,
            )
            assert (await connector.apply("decision.issued", payload)).detail == "applied"
        now = datetime.combine((MONTH - 1).day(24), time(10), VN_TZ)
        [sent] = await service.send_month(app[STORE], cfg, app[PLUGINS], domain, MONTH, now=now)
        assert sent.status == "sent" and sent.people == len(PEOPLE)
        app[ENGINE].wake(None)
        yield f"http://127.0.0.1:{gw}", f"http://127.0.0.1:{po}", app


async def post_office_lists(url: str) -> list[dict[str, Any]]:
    async with aiohttp.ClientSession() as s, s.get(f"{url}/_sim/state") as r:
        state: dict[str, Any] = await r.json()
        return list(state["lists"])


@pytest.mark.usefixtures("require_browser")
async def test_the_downloaded_list_adds_up_to_what_the_post_office_received(
    tmp_path: Path, browser_page: Any
) -> None:
    page = browser_page
    async with paying(tmp_path) as (gw, po, _app):

        async def received() -> bool:
            return any(x["ky"] == str(MONTH) for x in await post_office_lists(po))

        await wait_for(received, timeout=15, what="the list at the post office")
        [held] = [x for x in await post_office_lists(po) if x["ky"] == str(MONTH)]
        assert held["maXa"] == "02053" and held["soDong"] == len(PEOPLE)

        await page.goto(f"{gw}/")
        await page.fill("#token", TOKENS["operator"][1])
        await page.click("form.stack button[type=submit]")
        await page.wait_for_selector("nav.tabs")
        await page.goto(f"{gw}/payments?month={MONTH}")
        await page.wait_for_selector("#sa-downloads")
        await screenshot(page, "payments-downloads")
        link = page.locator('a.sa-list-xlsx[data-commune="02053"]')
        async with page.expect_download() as info:
            await link.click()
        download = await info.value
        assert download.suggested_filename == f"danh-sach-chi-tra-{MONTH}-02053.xlsx"
        path = tmp_path / download.suggested_filename
        await download.save_as(str(path))

        ws = load_workbook(path).active
        assert ws is not None
        people, total = ws["C5"].value, ws["F5"].value
        assert (people, total) == (held["soDong"], held["tongSoTien"])
        first = documents.HEADING_ROW + 1
        rows = list(ws.iter_rows(min_row=first, max_row=first + people - 1, values_only=True))
        assert sum(r[8] for r in rows) == held["tongSoTien"]
        assert sorted(r[1] for r in rows) == sorted(p[0] for p in PEOPLE)
        totals_row = [c.value for c in ws[first + people]]
        assert totals_row[0] == "Tổng cộng" and totals_row[8] == held["tongSoTien"]

        await page.goto(f"{gw}/payments?month={MONTH}")
        await page.click('a.sa-list-print[data-commune="02053"]')
        await page.wait_for_selector("#sa-list")
        shown = await page.text_content("#doc-total")
        assert shown == f"{held['tongSoTien']:,}".replace(",", ".")
        assert await page.locator("#sa-list tbody tr").count() == len(PEOPLE)
        await page.emulate_media(media="print")
        assert not await page.locator("nav.screen-only").is_visible()  # not on paper
        await screenshot(page, "payment-list-print")
        pdf = await page.pdf(format="A4", landscape=True)
        assert pdf.startswith(b"%PDF")
