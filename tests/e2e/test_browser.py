"""The dashboard in a real browser against a real gateway and a loopback sink: sign in, read
the overview, filter the log, open a timeline, retry a dead letter, switch language.
Every page visited is saved as a screenshot in test-artifacts/."""

from __future__ import annotations

import re
from typing import Any

import aiohttp
from conftest import signed, wait_for

from gateway.store import DeliveryFilter
from gateway.testing.admin import TOKENS
from gateway.web.keys import STORE

from .conftest import LiveGateway, screenshot

CCCD = "001203004567"


async def seed(gw: LiveGateway, keys: list[str]) -> None:
    """Dossiers pushed by the one-stop-shop (signed, over real HTTP)."""
    items = [
        {"id": k, "key": k, "hoTen": "Nguyễn Văn An", "soDinhDanh": CCCD, "MaTTHC": "1.001776"}
        for k in keys
    ]
    body, headers = signed({"data": items})
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{gw.url}/inbound/src", data=body, headers=headers) as resp,
    ):
        assert resp.status == 202, await resp.text()


async def count(gw: LiveGateway, status: str) -> int:
    rows = await gw.app[STORE].list_deliveries(DeliveryFilter(status=status), limit=1000)
    return len(rows)


async def settled(gw: LiveGateway, status: str, n: int) -> None:
    async def ready() -> bool:
        return await count(gw, status) == n

    await wait_for(ready, what=f"{n} {status} deliveries")


async def sign_in(page: Any, gw: LiveGateway, role: str) -> None:
    await page.goto(f"{gw.url}/")
    await page.fill("#token", TOKENS[role][1])
    await page.click("form.stack button[type=submit]")
    await page.wait_for_selector("nav.tabs")


def refuse(sink: Any, marker: str) -> Any:
    return lambda req, n: 400 if marker.encode() in sink.received[-1].body else None


async def test_sign_in_and_read_the_overview(
    live_gateway: LiveGateway, browser_page: Any, sink: Any
) -> None:
    page, gw = browser_page, live_gateway
    sink[0].behaviour = refuse(sink[0], "250805")
    await seed(gw, [f"000.00.12.H06-2508{n:02d}" for n in range(1, 8)])
    await settled(gw, "delivered", 6)
    await settled(gw, "dead", 1)
    await page.goto(f"{gw.url}/")
    assert page.url.startswith(f"{gw.url}/signin?next=")
    assert await page.text_content("h1") == "Đăng nhập"
    await screenshot(page, "01-signin")
    await page.fill("#token", "not-a-token-at-all-000")
    await page.click("form.stack button[type=submit]")
    assert "Mã truy cập không đúng" in await page.text_content(".alert")
    await screenshot(page, "02-signin-refused")
    await page.fill("#token", TOKENS["operator"][1])
    await page.click("form.stack button[type=submit]")
    await page.wait_for_selector("#systems")
    assert "Tổng quan hệ thống" in await page.text_content("h1")
    dst = page.locator('tr[data-system="dst"] td')
    assert await dst.nth(4).text_content() == "6"  # delivered in the last hour
    assert await dst.nth(5).text_content() == "1"  # failed
    assert await page.locator("figure.chart svg").count() == 2
    assert await page.locator("figure.chart rect.delivered").count() >= 1
    await screenshot(page, "03-overview")


async def test_filter_the_log_and_open_a_timeline(
    live_gateway: LiveGateway, browser_page: Any, sink: Any
) -> None:
    page, gw = browser_page, live_gateway
    sink[0].behaviour = refuse(sink[0], "250803")
    await seed(gw, [f"000.00.12.H06-2508{n:02d}" for n in range(1, 7)])
    await settled(gw, "delivered", 5)
    await settled(gw, "dead", 1)
    await sign_in(page, gw, "viewer")
    await page.click("nav.tabs >> text=Nhật ký gửi")
    assert await page.locator("#log-table tbody tr").count() == 6
    await screenshot(page, "04-log")
    await page.select_option("select[name=outcome]", "dead")
    await page.click("#log-filter button[type=submit]")
    await page.wait_for_url(re.compile(r".*outcome=dead.*"))
    rows = page.locator("#log-table tbody tr")
    assert await rows.count() == 1
    assert "000.00.12.H06-250803" in await rows.first.text_content()
    assert CCCD not in await page.content()
    await screenshot(page, "05-log-filtered")
    await rows.first.locator("a.mono").click()
    await page.wait_for_selector("#timeline")
    assert "Dòng thời gian hồ sơ 000.00.12.H06-250803" in await page.text_content("h1")
    events = page.locator("#timeline li")
    assert await events.count() == 2
    assert "Nhận «Thông điệp» từ Hệ thống HTTP/JSON (src)" in await events.nth(0).text_content()
    assert "Gửi lỗi" in await events.nth(1).text_content()
    await screenshot(page, "06-timeline")
    await events.nth(1).locator("a").click()
    await page.wait_for_selector("#attempts")
    assert "N. V. A." in await page.text_content("pre.payload")
    assert "Nguyễn Văn An" not in await page.content()
    await screenshot(page, "07-delivery")


async def test_retry_dead_letters_and_see_them_delivered(
    live_gateway: LiveGateway, browser_page: Any, sink: Any
) -> None:
    page, gw = browser_page, live_gateway
    sink[0].behaviour = lambda req, n: 400
    await seed(gw, ["000.00.12.H06-250811", "000.00.12.H06-250812", "000.00.12.H06-250813"])
    await settled(gw, "dead", 3)
    sink[0].behaviour = None
    await sign_in(page, gw, "operator")
    await page.click("nav.tabs >> text=Gửi lỗi")
    assert await page.locator("#dead-table tbody tr").count() == 3
    await page.locator("#dead-table details").first.locator("summary").click()
    await screenshot(page, "08-dead-letters")
    await page.check("input[data-select-all]")  # the page's few lines of JS tick every row
    assert await page.locator("input[name=ids]:checked").count() == 3
    await page.click("#retry-selected")
    await page.wait_for_selector("#confirm-table")
    assert await page.locator("#confirm-table tbody tr").count() == 3
    assert await count(gw, "dead") == 3  # confirmation first: nothing retried yet
    await screenshot(page, "09-confirm-retry")
    await page.click("#confirm-retry")
    await page.wait_for_selector("#flash")
    assert "Đã đưa 3 lượt gửi trở lại hàng đợi." in await page.text_content("#flash")
    await wait_for(lambda: len(sink[0].accepted) == 3, what="three deliveries at the sink")
    await settled(gw, "delivered", 3)
    await page.reload()
    assert await page.locator("#dead-empty").count() == 1
    await screenshot(page, "10-dead-letters-empty")
    await page.goto(f"{gw.url}/log?outcome=replayed")
    assert await page.locator("#log-table tbody tr").count() == 3
    assert "web:ops" in await page.text_content("#log-table")
    await page.goto(f"{gw.url}/log?dossier=000.00.12.H06-250812")
    outcomes = [await c.text_content() for c in await page.locator("#log-table .badge").all()]
    assert outcomes == ["Gửi được", "Gửi lại thủ công", "Gửi lỗi"]
    await screenshot(page, "11-log-after-retry")


async def test_switch_language(live_gateway: LiveGateway, browser_page: Any, sink: Any) -> None:
    page, gw = browser_page, live_gateway
    await seed(gw, ["000.00.12.H06-250821"])
    await settled(gw, "delivered", 1)
    await sign_in(page, gw, "admin")
    await page.click("#lang-switch")
    await page.wait_for_selector("html[lang=en]")
    assert await page.text_content(
        "h1"
    ) is not None and "System overview" in await page.text_content("h1")
    await screenshot(page, "12-overview-en")
    await page.click("nav.tabs >> text=Audit log")
    assert "Audit log" in await page.text_content("h1")
    assert "web:chief" in await page.text_content("#audit-table")
    await screenshot(page, "13-audit-en")
    await page.click("nav.tabs >> text=Dossiers")
    await page.fill("input[name=key]", "000.00.12.H06-250821")
    await page.click("#dossier-search button[type=submit]")
    await page.wait_for_selector("#timeline")
    assert "Timeline of dossier" in await page.text_content("h1")
    await screenshot(page, "14-timeline-en")
    await page.click("#lang-switch")
    await page.wait_for_selector("html[lang=vi]")
    assert "Dòng thời gian hồ sơ" in await page.text_content("h1")
