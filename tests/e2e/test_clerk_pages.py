"""Every dashboard page in a real browser, against the gateway and the three simulators on
loopback (desk, registry, post office) with a month of payments built and paid:

- axe-core (shipped in the axe-playwright-python wheel, injected from disk: no CDN) finds
  zero violations on every page, in Vietnamese and English, signed in as each role;
- at 375 × 812 and 1366 × 900: nothing scrolls sideways, the phone menu collapses, tables
  become stacked cards;
- what a clerk reads: names instead of codes, a registry refusal as a refusal, Vietnamese
  formats; live regions update in place and pause;
- a screenshot of every page (vi, desktop and phone) is written to docs/screenshots/.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import AsyncIterator
from datetime import datetime, time
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
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
from sa_fixtures import decision_payload

from gateway.config import Config, config_from_dict
from gateway.model import VN_TZ
from gateway.store import DeliveryFilter, LogFilter
from gateway.testing.admin import TOKENS, token_config
from gateway.web.keys import ENGINE, PLUGINS, STORE
from plugins.social_assistance import service
from plugins.social_assistance.month import Month
from plugins.social_assistance.storage import load_domain, read, result_payloads
from plugins.vn_common.cccd import make_cccd

from .conftest import CHROMIUM, CHROMIUM_ARGS

ROOT = Path(__file__).resolve().parents[2]
ROLES = tuple(os.environ.get("E2E_ROLES", "viewer,operator,admin").split(","))  # a quicker run
SCREENSHOTS = ROOT / "docs" / "screenshots"
DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 375, "height": 812}
SECRETS = {  # strong enough for the configuration's check (128 bits)
    "motcua": "s-motcua-7c2e9a41b8d3f6051e4d",
    "registry": "s-registry-7c2e9a41b8d3f6051e4d",
    "post_office": "s-post-7c2e9a41b8d3f6051e4d",
}
OK_CCCD, HELD_CCCD = make_cccd("006", 1935, True, 1), make_cccd("006", 1936, False, 2)
OK_NAME, HELD_NAME = "Hoàng Thị Lan", "Lò Văn Pha"


def clerk_config(tmp_path: Path, gw: int, ports: dict[str, int], archive: str) -> Config:
    return config_from_dict(
        {
            "gateway": gateway_section(tmp_path, gw, "e2e"),
            "tokens": token_config(),
            "systems": {
                **simulated_systems(local_urls(ports), SECRETS, FAST_SYSTEM),
                "social_assistance": {"plugin": "social_assistance", **FAST_SYSTEM},
                # a copy of every dossier to an archive that refuses them all: dead letters
                "archive": {"plugin": "http_json", "base_url": archive, **FAST_SYSTEM},
            },
            "routes": [
                {
                    "from": "motcua",
                    "event": "dossier.received",
                    "procedure": "1.001776",
                    "to": ["registry", "archive"],
                },
                {"from": "registry", "event": "dossier.accepted", "to": ["motcua"]},
                {"from": "registry", "event": "dossier.refused", "to": ["motcua"]},
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


@contextlib.asynccontextmanager
async def office(tmp_path: Path, archive: str) -> AsyncIterator[dict[str, Any]]:
    """The gateway and the simulators on loopback, with refused dossiers, dead letters, a
    held decision and three months of payment lists sent and answered."""
    gw = free_port()
    ports = {name: free_port() for name in SECRETS}
    extra = {
        "motcua": {"rate": 20.0, "count": 6},
        "registry": {"appraisal_delay": 0.2, "refuse_rate": 0.5},
        "post_office": {"payout_delay": 0.1, "unpaid_rate": 0.5},
    }
    config = clerk_config(tmp_path, gw, ports, archive)
    async with running_flow(config, gw, ports, SECRETS, extra) as app:
        url = f"http://127.0.0.1:{gw}"
        await seed_payments(app, config, url)
        yield {"app": app, "url": url}


async def seed_payments(app: web.Application, config: Config, url: str) -> None:
    store, domain = app[STORE], load_domain(config)
    common = {"ngayKy": "2020-08-10", "maXa": "02053", "loaiDoiTuong": "5.5a"}
    ok = decision_payload(
        domain.rules, so="215/QĐ-UBND", maHoSo="HS-A", soDinhDanh=OK_CCCD, hoTen=OK_NAME,
        ngaySinh="1935-04-12", **common,
    )  # fmt: skip
    held = decision_payload(
        domain.rules, so="216/QĐ-UBND", maHoSo="HS-B", soDinhDanh=HELD_CCCD, hoTen=HELD_NAME,
        ngaySinh="1936-03-02", heSo="2.0", mucChuan="270000", soTienThang="600000", **common,
    )  # fmt: skip
    await push_decision(url, SECRETS["registry"], ok)
    await push_decision(url, SECRETS["registry"], held)

    async def held_known() -> bool:
        return len(await service.held(store)) == 1

    await wait_for(held_known, timeout=15, what="the held decision")
    for ky in ("2020-09", "2020-10", "2020-11"):
        month = Month.parse(ky)
        now = datetime.combine((month - 1).day(24), time(10), VN_TZ)
        # the registry simulator's own decisions may add communes: one list each
        sent = await service.send_month(store, config, app[PLUGINS], domain, month, now=now)
        assert "02053" in {r.commune for r in sent if r.status == "sent"}, sent
        app[ENGINE].wake(None)

        async def answered(ky: str = ky) -> bool:
            return len(await read(store, result_payloads, ky)) >= 1

        await wait_for(answered, timeout=20, what=f"the post office's results for {ky}")


async def refused_delivery(app: web.Application) -> dict[str, Any]:
    """A dossier the registry refused (HTTP 422, routed back to the desk)."""

    async def found() -> bool:
        rows = await app[STORE].list_log(LogFilter(system="registry"), limit=1000)
        return any(r["http_status"] == 422 and r["destination"] == "registry" for r in rows)

    await wait_for(found, timeout=30, what="a refusal from the registry")
    rows = await app[STORE].list_log(LogFilter(system="registry"), limit=1000)
    return next(r for r in rows if r["http_status"] == 422 and r["destination"] == "registry")


def pages(refused: dict[str, Any], role: str) -> list[tuple[str, str]]:
    """(name, path) of every page a role can open."""
    out = [
        ("overview", "/"),
        ("log", "/log"),
        ("delivery", f"/deliveries/{refused['delivery_id']}"),
        ("dossier", f"/dossiers?key={refused['dossier_key']}"),
        ("dossier-search", "/dossiers"),
        ("dead", "/dead"),
        ("payments", "/payments?month=2020-10"),
        ("held", "/payments/held"),
        ("candidates", "/payments/candidates?month=2020-12"),
        ("timeliness", "/payments/timeliness?month=2020-10"),
    ]
    if role == "admin":
        out.append(("audit", "/audit"))
    return out


async def axe_violations(page: Any, axe: Any) -> list[str]:
    results = await axe.run(page)
    return [
        f"{v['id']} ({v['impact']}): {v['help']} — "
        + "; ".join(n["target"][0] for n in v["nodes"][:3])
        for v in results.response["violations"]
    ]


async def sideways(page: Any) -> str:
    """Whether the page scrolls sideways: "" when not, else by how much and what sticks out."""
    return str(
        await page.evaluate(
            """() => {
              const root = document.documentElement, width = root.clientWidth;
              const over = Math.max(root.scrollWidth, document.body.scrollWidth) - width;
              if (over <= 0) return "";
              const out = [...document.querySelectorAll("body *")]
                .filter(e => e.getBoundingClientRect().right > width + 0.5)
                .slice(-3).map(e => e.tagName + "." + e.className);
              return over + " px: " + out.join(", ");
            }"""
        )
    )


async def sign_in(page: Any, url: str, role: str) -> None:
    await page.goto(f"{url}/signin")
    await page.fill("#token", TOKENS[role][1])
    await page.click("form.stack button[type=submit]")
    await page.wait_for_selector("header nav.tabs", state="attached")


def with_lang(path: str, lang: str) -> str:
    return path + ("&" if "?" in path else "?") + f"lang={lang}"


@pytest.fixture
async def clerk_office(tmp_path: Path, sink: Any, require_browser: None) -> AsyncIterator[Any]:
    sink[0].behaviour = lambda req, n: 400  # the archive refuses: dead letters
    archive = str(sink[1].make_url("")).rstrip("/")
    async with office(tmp_path, archive) as running:
        yield running


async def test_every_page_every_role_both_languages_both_sizes(clerk_office: Any) -> None:
    from axe_playwright_python.async_playwright import Axe
    from playwright.async_api import async_playwright

    app, url = clerk_office["app"], clerk_office["url"]
    refused = await refused_delivery(app)

    async def dead_known() -> bool:
        return bool(await app[STORE].list_deliveries(DeliveryFilter(status="dead"), limit=1))

    await wait_for(dead_known, timeout=30, what="a dead letter at the archive")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    axe = Axe()
    problems: list[str] = []
    visited = 0
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            # signed out: the sign-in page
            for size_name, size in (("desktop", DESKTOP), ("phone", PHONE)):
                context = await browser.new_context(viewport=size, locale="vi-VN")
                page = await context.new_page()
                for lang in ("vi", "en"):
                    await page.goto(f"{url}/signin?lang={lang}")
                    problems += [f"signin {lang} {size_name}: {v}" for v in
                                 await axe_violations(page, axe)]  # fmt: skip
                    if over := await sideways(page):
                        problems.append(f"signin {lang} {size_name}: scrolls sideways {over}")
                    if lang == "vi":
                        await page.screenshot(
                            path=str(SCREENSHOTS / f"signin-{size_name}.png"), full_page=True
                        )
                await context.close()
            # signed in as each role: every page, both languages, both sizes
            for role in ROLES:
                for size_name, size in (("desktop", DESKTOP), ("phone", PHONE)):
                    context = await browser.new_context(viewport=size, locale="vi-VN")
                    page = await context.new_page()
                    page.set_default_timeout(15_000)
                    await sign_in(page, url, role)
                    for lang in ("vi", "en"):
                        for name, path in pages(refused, role):
                            where = f"{name} {lang} {role} {size_name}"
                            resp = await page.goto(url + with_lang(path, lang))
                            assert resp is not None and resp.status == 200, where
                            assert await page.get_attribute("html", "lang") == lang, where
                            visited += 1
                            problems += [f"{where}: {v}" for v in await axe_violations(page, axe)]
                            if over := await sideways(page):
                                problems.append(f"{where}: scrolls sideways {over}")
                            if size_name == "phone":
                                problems += await phone_layout(page, where)
                            if lang == "vi" and role == "admin":
                                await page.screenshot(
                                    path=str(SCREENSHOTS / f"{name}-{size_name}.png"),
                                    full_page=True,
                                )
                    if role == "operator":
                        problems += await confirm_page(page, url, axe, size_name)
                    await context.close()
        finally:
            await browser.close()
    assert visited == sum(len(pages(refused, role)) for role in ROLES) * 2 * 2
    assert not problems, "\n".join(problems)


async def phone_layout(page: Any, where: str) -> list[str]:
    """At 375 px: the menu is collapsed behind its button, tables are stacked cards."""
    out = []
    if await page.is_visible("#main-nav") or not await page.is_visible("[data-menu-toggle]"):
        out.append(f"{where}: the menu is not collapsed")
    for table in await page.locator("main table.data").all():
        if await table.is_visible():
            shown = await table.evaluate("t => getComputedStyle(t.querySelector('thead')).clip")
            display = await table.evaluate(
                "t => { const c = t.querySelector('tbody td'); "
                "return c ? getComputedStyle(c).display : 'grid'; }"
            )
            if display not in ("grid", "block") or "rect" not in shown:
                out.append(f"{where}: a table is not stacked ({display}, thead {shown})")
    return out


async def confirm_page(page: Any, url: str, axe: Any, size_name: str) -> list[str]:
    """The retry confirmation (an operator's POST): accessible, nothing retried yet."""
    out = []
    await page.goto(f"{url}/dead?lang=vi")
    await page.locator("input[name=ids]").first.check()
    await page.click("#retry-selected")
    await page.wait_for_selector("#confirm-table")
    out += [f"confirm vi operator {size_name}: {v}" for v in await axe_violations(page, axe)]
    if over := await sideways(page):
        out.append(f"confirm vi operator {size_name}: scrolls sideways {over}")
    await page.screenshot(path=str(SCREENSHOTS / f"confirm-{size_name}.png"), full_page=True)
    return out


async def test_what_a_clerk_reads_and_live_updates(clerk_office: Any, sink: Any) -> None:
    from playwright.async_api import async_playwright

    app, url = clerk_office["app"], clerk_office["url"]
    refused = await refused_delivery(app)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context(viewport=PHONE, locale="vi-VN")
            page = await context.new_page()
            page.set_default_timeout(15_000)
            await sign_in(page, url, "operator")
            # the phone menu opens and closes with its button
            assert not await page.is_visible("#main-nav")
            await page.click("[data-menu-toggle]")
            assert await page.is_visible("#main-nav")
            assert await page.get_attribute("[data-menu-toggle]", "aria-expanded") == "true"
            await page.click("#main-nav >> text=Nhật ký gửi")
            await page.wait_for_selector("#log-table")
            # a registry refusal is a refusal, under "Kết quả / phản hồi", not a green success
            row = page.locator(
                f'#log-table tbody tr:has(a[href="/deliveries/{refused["delivery_id"]}"])'
            )
            text = await row.first.text_content() or ""
            assert "Bị từ chối" in text and "Gửi được" not in text
            assert await row.first.locator(".badge.outcome-refused").count() == 1
            assert "Kết quả / phản hồi" in await page.content()
            assert "Phần mềm quản lý đối tượng BTXH" in text  # the registry by name
            # the dossier's timeline: the refusal comes after the send that caused it
            await page.goto(f"{url}/dossiers?key={refused['dossier_key']}")
            events = [
                await li.text_content() or "" for li in await page.locator("#timeline li").all()
            ]
            sent = next(i for i, e in enumerate(events) if "Gửi tới Phần mềm quản lý" in e)
            answer = next(i for i, e in enumerate(events) if "dossier.refused" in e)
            assert sent < answer, events
            assert "Hồ sơ bị từ chối" in events[answer]
            # payments: names, Vietnamese money and months, charts with a text alternative
            await page.set_viewport_size(DESKTOP)
            await page.goto(f"{url}/payments?month=2020-10")
            body = await page.text_content("main") or ""
            assert "Chi trả — Tháng 10/2020" in body and "Ngọc Phái (02053)" in body
            assert re.search(r"\d{1,3}(\.\d{3})+\xa0₫", body) and not re.search(r"\d,\d{3}", body)
            assert await page.locator("figure.chart svg[role=img] > title").count() == 3
            await page.select_option("#month-select", "2020-11")
            await page.click("#month-picker button[type=submit]")
            await page.wait_for_url(re.compile(r".*month=2020-11"))
            assert "Tháng 11/2020" in (await page.text_content("h1") or "")
            # live: a new attempt appears in the log without reloading; paused, nothing moves
            await page.goto(f"{url}/log")
            await page.wait_for_selector("[data-live-control]:not([hidden])")
            await page.evaluate("document.body.dataset.marker = 'same page'")
            rows_before = await page.locator("#log-table tbody tr").count()
            newest = await page.locator("#log-table tbody tr").first.inner_html()
            await page.click("[data-live-toggle]")  # pause
            assert await page.get_attribute("[data-live-toggle]", "aria-pressed") == "true"
            assert "Đã tạm dừng cập nhật" in (await page.text_content("[data-live-state]") or "")
            paused_at = await page.get_attribute("html", "data-live-updated")
            await page.evaluate("window.gatewayLive.setPeriod(200)")
            sink[0].behaviour = None
            await retry_one_dead(app)
            await page.wait_for_timeout(800)
            assert await page.get_attribute("html", "data-live-updated") == paused_at
            assert await page.locator("#log-table tbody tr").count() == rows_before
            assert await page.locator("#log-table tbody tr").first.inner_html() == newest
            await page.click("[data-live-toggle]")  # resume
            rows = page.locator("#log-table tbody tr")

            async def more_rows() -> bool:  # a page holds 50 rows: the newest one changes
                return await rows.first.inner_html() != newest

            await wait_for(more_rows, timeout=10, what="the retried attempt shown in place")
            assert await page.evaluate("document.body.dataset.marker") == "same page"  # no reload
            await context.close()
        finally:
            await browser.close()


async def retry_one_dead(app: web.Application) -> None:
    from gateway.web.admin import actions
    from gateway.web.admin.auth import Principal

    store = app[STORE]

    async def dead() -> list[dict[str, Any]]:
        return await store.list_deliveries(DeliveryFilter(status="dead"), limit=10)

    await wait_for(dead, timeout=30, what="a dead letter")
    first = (await dead())[0]
    who = Principal(name="e2e", role="operator", via="web")
    await actions.retry_dead(app, [first["id"]], who)
