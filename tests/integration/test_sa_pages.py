"""The social-assistance dashboard pages and admin API: rendered for a viewer in Vietnamese
(English with ?lang=en) with masked personal data; a held decision accepted through the form
(operator, CSRF, audited); the JSON API; a bad month is a 400, never a 500."""

from __future__ import annotations

import re
from datetime import datetime, time
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from conftest import wait_for
from sa_fixtures import decision_payload, quyet_dinh

from gateway.config import Config, config_from_dict
from gateway.model import VN_TZ
from gateway.plugins import build_plugins
from gateway.signing import sign
from gateway.testing.admin import bearer, csrf_from, sign_in, token_config
from gateway.web.admin.queries import audit_entries
from gateway.web.app import create_app
from gateway.web.keys import CONNECTORS, PLUGINS, STORE
from plugins.social_assistance import service
from plugins.social_assistance.month import Month
from plugins.social_assistance.storage import load_domain
from plugins.vn_common.cccd import make_cccd

SECRET = "s-registry-7c2e9a41b8d3f6051e4d"
OK_CCCD = make_cccd("006", 1935, True, 1)
HELD_CCCD = make_cccd("006", 1936, False, 2)
OK_NAME, HELD_NAME = "Hoàng Thị Lan", "Lò Văn Pha"
PAGES = ["/payments?month=2020-09", "/payments/held", "/payments/candidates?month=2020-11"]
PAGES += ["/payments/timeliness?month=2020-09"]


def sa_config(tmp_path: Path) -> Config:
    fast = {"initial": 0.05, "multiplier": 2, "max": 0.2, "jitter": 0, "deadline": 30}
    return config_from_dict(
        {
            "gateway": {
                "database": f"sqlite:///{tmp_path}/gw.db",
                "node_id": "pages",
                "poll_interval": 0.05,
            },
            "tokens": token_config(),
            "systems": {
                "registry": {
                    "plugin": "district_registry",
                    "base_url": "http://127.0.0.1:9",
                    "inbound_secret": SECRET,
                    "retry": fast,
                },
                "social_assistance": {"plugin": "social_assistance", "retry": fast},
            },
            "routes": [
                {"from": "registry", "event": "decision.issued", "to": ["social_assistance"]},
            ],
            "social_assistance": {"payment_day": 24, "communes": []},
        },
        tmp_path / "gateway.toml",
    )


def build_now(month: Month) -> datetime:
    return datetime.combine((month - 1).day(24), time(10), VN_TZ)


@pytest.fixture
async def sa(tmp_path: Path, aiohttp_client: Any) -> TestClient[Any, Any]:
    config = sa_config(tmp_path)
    client: TestClient[Any, Any] = await aiohttp_client(create_app(config, plugins=build_plugins()))
    app = client.app
    domain = load_domain(config)
    rules = domain.rules
    common = {"ngayKy": "2020-08-10", "maXa": "02053", "loaiDoiTuong": "5.5a"}
    ok = decision_payload(
        rules,
        so="215/QĐ-UBND",
        maHoSo="HS-A",
        soDinhDanh=OK_CCCD,
        hoTen=OK_NAME,
        ngaySinh="1935-04-12",
        **common,
    )
    held = decision_payload(
        rules,
        so="216/QĐ-UBND",
        maHoSo="HS-B",
        soDinhDanh=HELD_CCCD,
        hoTen=HELD_NAME,
        ngaySinh="1936-03-02",
        heSo="2.0",
        mucChuan="270000",
        soTienThang="600000",
        **common,
    )
    for payload in (ok, held):
        body = quyet_dinh(payload)
        headers = {"Content-Type": "application/xml", **sign(SECRET, body)}
        resp = await client.post("/inbound/registry", data=body, headers=headers)
        assert resp.status == 202, await resp.text()
    store = app[STORE]

    async def known() -> bool:
        return len(await service.held(store)) == 1 and bool(
            await service.monthly(store, domain, Month.parse("2020-08")) is not None
        )

    await wait_for(known, timeout=10, what="the decisions applied / held")
    # three months sent, none paid: the first person becomes a suspension candidate
    connector = app[CONNECTORS]["social_assistance"]
    for ky in ("2020-09", "2020-10", "2020-11"):
        month = Month.parse(ky)
        [res] = await service.send_month(
            store, config, app[PLUGINS], domain, month, now=build_now(month)
        )
        assert res.status == "sent" and res.people == 1
        unpaid = {"ky": ky, "maXa": "02053", "soDinhDanh": OK_CCCD}
        await connector.apply("payment.results", {**unpaid, "trangThai": "chua_chi", "soTien": "0"})
    return client


def no_personal_data(html: str) -> None:
    for secret in (OK_CCCD, HELD_CCCD, OK_NAME, HELD_NAME):
        assert secret not in html


async def get(client: TestClient[Any, Any], path: str, status: int = 200) -> str:
    resp = await client.get(path, allow_redirects=False)
    text = await resp.text()
    assert resp.status == status, (path, text[:500])
    return text


async def test_pages_render_for_a_viewer_in_vietnamese_and_english(
    sa: TestClient[Any, Any],
) -> None:
    assert (await sa.get("/payments", allow_redirects=False)).status == 303  # signed out
    await sign_in(sa, "viewer")
    vi = {p: await get(sa, p) for p in PAGES}
    for html in vi.values():
        assert '<html lang="vi">' in html
        no_personal_data(html)
    pay = vi[PAGES[0]]
    assert "Chi trả — Tháng 09/2020" in pay and "Ngọc Phái (02053)" in pay  # the commune's name
    assert "Chưa có tuyến gửi" in pay and "not routed" not in pay  # a state in words
    assert (
        "5.5a" in pay and "Người cao tuổi thuộc hộ nghèo không có người phụng dưỡng (5.5a)" in pay
    )
    # the month picker is a localised select, not the browser's unstyled month input
    assert 'type="month"' not in pay
    assert '<option value="2020-09" selected>Tháng 09/2020</option>' in pay
    # three charts, server-rendered SVG with a title and a description, and a table beside
    charts = re.split(r'<figure class="card chart" id="chart-', pay)
    assert len(charts) == 4 and pay.count('role="img"') == 3
    assert pay.count("<desc id=") == 3 and pay.count('class="chart-table"') == 3
    months = charts[3]
    assert months.count("<g><title>") == 12  # 2019-10 … 2020-09; only 2020-09 has lists
    assert months.count('<rect class="bar"') == 1 and "Tháng 08/2020: 0\xa0₫" in months
    assert re.search(r"Tháng 09/2020: [1-9][\d.]*\xa0₫", months)
    money = re.findall(r"\d{1,3}(?:\.\d{3})+\xa0₫", pay)
    assert money and not re.search(r"\d,\d{3}", pay)  # 1.234.567 ₫, never 1,234,567 on vi pages
    assert "Quyết định chờ duyệt" in vi[PAGES[1]] and "216/QĐ-UBND" in vi[PAGES[1]]
    assert "600.000\xa0₫" in vi[PAGES[1]] and "540.000\xa0₫" in vi[PAGES[1]]
    assert "10/08/2020" in vi[PAGES[1]] and "Chờ duyệt" in vi[PAGES[1]]
    assert "<form" not in vi[PAGES[1]].split('id="sa-held"')[1]  # a viewer gets no buttons
    # the candidate is shown masked
    assert "********" + OK_CCCD[-4:] in vi[PAGES[2]] and "H. T. L." in vi[PAGES[2]]
    assert "Tháng 09/2020, Tháng 10/2020, Tháng 11/2020" in vi[PAGES[2]]
    assert "Ngọc Phái (02053)" in vi[PAGES[2]]
    assert "Thời hạn giải quyết" in vi[PAGES[3]] and "Quá hạn" in vi[PAGES[3]]
    en = {p: await get(sa, p + ("&" if "?" in p else "?") + "lang=en") for p in PAGES}
    for html in en.values():
        assert '<html lang="en">' in html
        no_personal_data(html)
    assert "Payments — September 2020" in en[PAGES[0]]
    assert "(5.5a)" in en[PAGES[0]] and "Not routed" in en[PAGES[0]]
    assert "₫600,000" in en[PAGES[1]]
    assert "Held decisions" in en[PAGES[1]]
    assert "Suspension candidates" in en[PAGES[2]] and "H. T. L." in en[PAGES[2]]
    assert "Timeliness" in en[PAGES[3]]


async def test_an_operator_accepts_a_held_decision_through_the_form(
    sa: TestClient[Any, Any],
) -> None:
    store = sa.app[STORE]
    [held] = await service.held(store)
    csrf = await sign_in(sa, "viewer")
    form = {"csrf": csrf, "id": str(held["id"]), "figure": "registry"}
    resp = await sa.post("/payments/held/accept", data=form, allow_redirects=False)
    assert resp.status == 403
    await sa.post("/signout", data={"csrf": csrf}, allow_redirects=False)

    await sign_in(sa, "operator")
    html = await get(sa, "/payments/held")
    assert 'action="/payments/held/accept"' in html
    csrf = csrf_from(html)
    no_csrf = {"id": str(held["id"]), "figure": "registry"}
    resp = await sa.post("/payments/held/accept", data=no_csrf, allow_redirects=False)
    assert resp.status == 403
    assert [h["state"] for h in await service.held(store)] == ["held"]
    bad = {"csrf": csrf, "id": str(held["id"]), "figure": "mine"}
    resp = await sa.post("/payments/held/accept", data=bad, allow_redirects=False)
    assert resp.status == 400 and "Cần chọn quyết định và số liệu" in await resp.text()
    resp = await sa.post(
        "/payments/held/accept", data={**no_csrf, "csrf": csrf}, allow_redirects=False
    )
    assert resp.status == 303 and resp.headers["Location"] == "/payments/held"
    assert await service.held(store) == []
    entries = await audit_entries(store, limit=10)
    [entry] = [e for e in entries if e["action"] == "sa_accept_figure"]
    assert entry["actor"] == "web:ops" and "figure=registry" in str(entry)
    # the accepted figure is paid from the next list on
    config, domain = sa_config_of(sa), load_domain(sa_config_of(sa))
    month = Month.parse("2020-12")
    [res] = await service.send_month(
        store, config, sa.app[PLUGINS], domain, month, now=build_now(month)
    )
    assert res.people == 2


def sa_config_of(client: TestClient[Any, Any]) -> Config:
    from gateway.web.keys import CONFIG

    config: Config = client.app[CONFIG]
    return config


async def test_api_answers_json_for_a_viewer_token(sa: TestClient[Any, Any]) -> None:
    viewer = bearer("viewer")
    resp = await sa.get("/api/v1/payments?month=2020-09", headers=viewer)
    body = await resp.json()
    assert resp.status == 200 and body["month"] == "2020-09"
    [row] = body["lists"]
    assert (row["maXa"], row["people"], row["lanGui"]) == ("02053", 1, 1)
    resp = await sa.get("/api/v1/reports/monthly?month=2020-09", headers=viewer)
    report = (await resp.json())["report"]
    assert resp.status == 200 and report["beneficiaries"] == 1
    assert report["total_amount"] == row["total"] > 0
    resp = await sa.get("/api/v1/payments/held", headers=viewer)
    [held] = (await resp.json())["held"]
    assert resp.status == 200 and held["so"] == "216/QĐ-UBND" and held["state"] == "held"
    no_personal_data(await resp.text())
    assert (await sa.get("/api/v1/payments/held")).status == 401


@pytest.mark.parametrize("month", ["2020-13", "20-09", "x"])
async def test_a_bad_month_is_a_400_not_a_500(sa: TestClient[Any, Any], month: str) -> None:
    for path in ("/api/v1/payments", "/api/v1/reports/monthly"):
        resp = await sa.get(f"{path}?month={month}", headers=bearer("viewer"))
        assert resp.status == 400
        body = await resp.json()
        assert "YYYY-MM" in str(body)
    await sign_in(sa, "viewer")
    for path in ("/payments", "/payments/candidates", "/payments/timeliness"):
        html = await get(sa, f"{path}?month={month}", status=400)
        assert "YYYY-MM" in html and "Yêu cầu không hợp lệ" in html
