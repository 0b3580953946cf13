"""The dashboard: sign-in, sessions, CSRF, pages, language, dead-letter retry, extensibility."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from conftest import make_config, signed, wait_for
from yarl import URL

from gateway import hookimpl
from gateway.config import ConfigError, config_from_dict
from gateway.plugins import build_plugins
from gateway.store import DeliveryFilter
from gateway.testing.admin import TOKENS, csrf_from, sign_in, token_config
from gateway.web.admin import NAV, NavEntry, protect, render_page
from gateway.web.admin.auth import SESSION_COOKIE, Auth
from gateway.web.admin.pages import SECURITY_HEADERS
from gateway.web.admin.queries import audit_entries
from gateway.web.app import create_app
from gateway.web.keys import STORE

CCCD = "001203004567"


@pytest.fixture
def sink_url(sink: Any) -> str:
    return str(sink[1].make_url("")).rstrip("/")


@pytest.fixture
async def dash(tmp_path: Path, aiohttp_client: Any, sink_url: str) -> TestClient[Any, Any]:
    return await aiohttp_client(create_app(make_config(tmp_path, sink_url, tokens=token_config())))


async def send(client: TestClient[Any, Any], *keys: str) -> None:
    items = [{"id": k, "key": k, "hoTen": "Hoàng Thị Lan", "soDinhDanh": CCCD} for k in keys]
    body, headers = signed({"data": items})
    assert (await client.post("/inbound/src", data=body, headers=headers)).status == 202


async def settled(client: TestClient[Any, Any], status: str, count: int) -> list[dict[str, Any]]:
    store = client.app[STORE]

    async def ready() -> bool:
        return len(await store.list_deliveries(DeliveryFilter(status=status), limit=1000)) == count

    await wait_for(ready, what=f"{count} {status}")
    rows: list[dict[str, Any]] = await store.list_deliveries(
        DeliveryFilter(status=status), limit=1000
    )
    return rows


async def page(client: TestClient[Any, Any], path: str, status: int = 200) -> str:
    resp = await client.get(path, allow_redirects=False)
    text = await resp.text()
    assert resp.status == status, text[:500]
    return text


# -- signing in -----------------------------------------------------------------------------------
async def test_pages_need_a_session_and_the_signin_page_is_vietnamese(
    dash: TestClient[Any, Any],
) -> None:
    resp = await dash.get("/log?outcome=dead", allow_redirects=False)
    location = URL(resp.headers["Location"])
    assert resp.status == 303 and location.path == "/signin"
    assert location.query["next"] == "/log?outcome=dead"
    resp = await dash.get("/signin")
    html = await resp.text()
    assert resp.status == 200 and '<html lang="vi">' in html and "Đăng nhập" in html
    assert "Mã truy cập" in html
    assert "default-src 'none'" in resp.headers["Content-Security-Policy"]
    assert resp.headers["X-Frame-Options"] == "DENY"
    cookie = resp.cookies["gw_signin"]
    assert cookie["httponly"] and cookie["samesite"] == "Strict"


async def test_sign_in_with_a_token_then_sign_out(dash: TestClient[Any, Any]) -> None:
    form = csrf_from(await page(dash, "/signin?next=/dead"))
    resp = await dash.post(
        "/signin",
        data={"csrf": form, "token": "wrong-token-xxxxxxxxxxxx", "next": "/dead"},
        allow_redirects=False,
    )
    assert resp.status == 401 and "Mã truy cập không đúng" in await resp.text()
    form = csrf_from(await resp.text())
    resp = await dash.post(
        "/signin",
        data={"csrf": form, "token": TOKENS["operator"][1], "next": "/dead"},
        allow_redirects=False,
    )
    assert resp.status == 303 and resp.headers["Location"] == "/dead"
    session = resp.cookies[SESSION_COOKIE]
    assert session["httponly"] and session["samesite"] == "Strict" and session["path"] == "/"
    html = await page(dash, "/")
    assert "ops" in html and "Vận hành" in html and "Tổng quan hệ thống" in html
    old_cookie = session.value
    csrf = csrf_from(html)
    resp = await dash.post("/signout", data={"csrf": csrf}, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/signin"
    # the signed-out cookie is refused even if a copy of it is replayed
    dash.session.cookie_jar.update_cookies({SESSION_COOKIE: old_cookie})
    assert (await dash.get("/", allow_redirects=False)).status == 303
    entries = await audit_entries(dash.app[STORE], limit=10)
    assert [(e["actor"], e["action"]) for e in entries] == [
        ("web:ops", "signout"),
        ("web:ops", "signin"),
    ]


@pytest.mark.parametrize(
    "target", ["//evil.example/", "https://evil.example/", "/\\evil", "/signin"]
)
async def test_next_never_leaves_the_site(dash: TestClient[Any, Any], target: str) -> None:
    form = csrf_from(await page(dash, "/signin"))
    resp = await dash.post(
        "/signin",
        data={"csrf": form, "token": TOKENS["viewer"][1], "next": target},
        allow_redirects=False,
    )
    assert resp.status == 303 and resp.headers["Location"] == "/"


async def test_tampered_or_foreign_session_cookies_are_refused(dash: TestClient[Any, Any]) -> None:
    await sign_in(dash, "viewer")
    cookie = next(c for c in dash.session.cookie_jar if c.key == SESSION_COOKIE).value
    data, sig = cookie.split(".")
    for forged in (f"{data}x.{sig}", f"{data}.{sig[:-2]}AA", "garbage", f"{data}"):
        dash.session.cookie_jar.clear()
        dash.session.cookie_jar.update_cookies({SESSION_COOKIE: forged})
        assert (await dash.get("/", allow_redirects=False)).status == 303


def test_sessions_end_when_the_token_is_rotated_and_survive_a_shared_secret(tmp_path: Path) -> None:
    def config(token: str) -> Any:
        return config_from_dict(
            {
                "gateway": {"session_secret": "5f0e3a9c7b21d4e8a6c3f1b09d7e2a4c"},
                "tokens": [{"name": "ops", "role": "operator", "token": token}],
            },
            tmp_path / "g.toml",
        )

    first, other_node = (
        Auth(config("a-long-token-0123456789")),
        Auth(config("a-long-token-0123456789")),
    )
    cookie = first.issue(first.tokens.entries[0])
    assert other_node.read(cookie) is not None  # same secret: any node accepts it
    rotated = Auth(config("a-new-long-token-9876543210"))
    assert rotated.read(cookie) is None
    assert Auth(config_from_dict({"tokens": []}, tmp_path / "g.toml")).read(cookie) is None
    assert first.read(cookie, now=10**10) is None  # expired


@pytest.mark.parametrize(
    "tokens, key",
    [
        ([{"name": "a", "role": "viewer", "token_sha256": "ab" * 32}] * 2, "tokens[1].name"),
        ([{"name": "a", "role": "viewer"}], "tokens[0]"),
        (
            [
                {
                    "name": "a",
                    "role": "viewer",
                    "token_sha256": "ab" * 32,
                    "token": "5f0e3a9c7b21d4e8a6c3f1b09d7e2a4c",
                }
            ],
            "tokens[0]",
        ),
        ([{"name": "a", "role": "viewer", "token_sha256": "xyz"}], "tokens[0].token_sha256"),
        ([{"name": "a", "role": "viewer", "token": "short"}], "tokens[0].token"),
    ],
)
def test_bad_token_config_stops_start_up_naming_the_key(
    tmp_path: Path, tokens: list[dict[str, Any]], key: str
) -> None:
    with pytest.raises(ConfigError) as err:
        create_app(make_config(tmp_path, "http://127.0.0.1:9", tokens=tokens))
    assert err.value.key == key


# -- CSRF ---------------------------------------------------------------------------------------
async def test_every_form_post_checks_the_csrf_token(dash: TestClient[Any, Any], sink: Any) -> None:
    sink[0].behaviour = lambda req, n: 400
    await send(dash, "HS-1")
    [dead] = await settled(dash, "dead", 1)
    # sign-in form: the token is bound to a signed cookie
    await page(dash, "/signin")
    for data in ({"token": TOKENS["admin"][1]}, {"token": TOKENS["admin"][1], "csrf": "forged"}):
        assert (await dash.post("/signin", data=data, allow_redirects=False)).status == 403
    csrf = await sign_in(dash, "operator")
    forged = csrf[:-1] + ("y" if csrf.endswith("x") else "x")  # never the real token
    for path in ("/dead/retry", "/dead/retry/confirm", "/signout"):
        for data in ({"ids": str(dead["id"])}, {"ids": str(dead["id"]), "csrf": forged}):
            resp = await dash.post(path, data=data, allow_redirects=False)
            assert resp.status == 403, path
            assert "Biểu mẫu" in await resp.text()
    assert (await settled(dash, "dead", 1))[0]["id"] == dead["id"]  # nothing was retried
    resp = await dash.post("/dead/retry", data={"ids": str(dead["id"]), "csrf": csrf})
    assert resp.status == 200 and "Xác nhận gửi lại" in await resp.text()


# -- pages ----------------------------------------------------------------------------------------
async def test_overview_table_and_24_hour_charts(dash: TestClient[Any, Any]) -> None:
    await send(dash, "HS-1", "HS-2")
    await settled(dash, "delivered", 2)
    await sign_in(dash, "viewer")
    html = await page(dash, "/")
    assert 'data-system="dst"' in html and 'data-system="src"' in html
    assert html.count("<svg") == 2 and html.count("<g><title>") == 48
    assert 'class="delivered"' in html and "Bình thường" in html
    assert re.search(r'<td class="num good">2</td>', html)
    # live in place (fetch, with a pause control), never a whole-page meta refresh
    assert 'http-equiv="refresh"' not in html and 'data-live="overview"' in html
    assert (
        "Tạm dừng cập nhật" in html
        and "connect-src 'self'" in SECURITY_HEADERS["Content-Security-Policy"]
    )
    assert "Hệ thống HTTP/JSON" in html and '<span class="code">dst</span>' in html


async def test_language_switch_is_remembered(dash: TestClient[Any, Any]) -> None:
    await sign_in(dash, "admin")
    resp = await dash.get("/?lang=en")
    html = await resp.text()
    assert '<html lang="en">' in html and "System overview" in html and "Tiếng Việt" in html
    assert resp.cookies["lang"].value == "en"
    html = await page(dash, "/log")
    assert "Delivery log" in html and "Outcome" in html
    html = await page(dash, "/dead?lang=vi")
    assert "Gửi lỗi cần xử lý" in html and '<html lang="vi">' in html
    assert "thư chết" not in html


async def test_log_filters_paging_and_csv(dash: TestClient[Any, Any], sink: Any) -> None:
    sink[0].behaviour = lambda req, n: 400 if b"HS-9" in sink[0].received[-1].body else None
    await send(dash, *(f"HS-{n}" for n in range(1, 10)))
    await settled(dash, "delivered", 8)
    await settled(dash, "dead", 1)
    await sign_in(dash, "viewer")
    html = await page(dash, "/log?outcome=dead")
    assert html.count('href="/deliveries/') == 1 and "HS-9" in html and "HTTP 400" in html
    html = await page(dash, "/log?system=dst&since=yesterday")
    assert "Thời gian không hợp lệ: yesterday" in html and html.count('href="/deliveries/') == 9
    html = await page(dash, "/log?dossier=HS-3")
    assert html.count('href="/deliveries/') == 1
    html = await page(dash, "/log?outcome=delivered&since=2000-01-01T00:00&until=2999-01-01T00:00")
    assert html.count('href="/deliveries/') == 8
    assert (
        'href="/log.csv?outcome=delivered&amp;since=2000-01-01T00:00&amp;until=2999-01-01T00:00"'
        in html
    )
    resp = await dash.get("/log.csv?outcome=dead")
    text = (await resp.read()).decode("utf-8-sig")
    assert resp.status == 200 and text.splitlines()[0].startswith("id,at,delivery_id")
    assert len(text.splitlines()) == 2


async def test_log_pages_with_a_cursor(dash: TestClient[Any, Any]) -> None:
    await send(dash, *(f"HS-{n:02d}" for n in range(1, 56)))
    await settled(dash, "delivered", 55)
    await sign_in(dash, "viewer")
    first = await page(dash, "/log")
    assert first.count('href="/deliveries/') == 50
    older = re.search(r'href="(/log\?before_id=\d+)" rel="next"', first)
    assert older is not None
    second = await page(dash, older.group(1))
    assert (
        second.count('href="/deliveries/') == 5
        and 'rel="next"' not in second
        and 'rel="first"' in second
    )


async def test_delivery_page_masks_personal_data(dash: TestClient[Any, Any]) -> None:
    await send(dash, "HS-1")
    [row] = await settled(dash, "delivered", 1)
    await sign_in(dash, "admin")
    html = await page(dash, f"/deliveries/{row['id']}")
    assert "H. T. L." in html and "********4567" in html
    assert CCCD not in html and "Hoàng Thị Lan" not in html
    for bad in ("424242", "99999999999999999999999", "x"):
        assert "Không có lượt gửi" in await page(dash, f"/deliveries/{bad}", status=404)


async def test_dossier_timeline_page(dash: TestClient[Any, Any]) -> None:
    await send(dash, "000.00.12.H06-250801")
    await settled(dash, "delivered", 1)
    await sign_in(dash, "viewer")
    html = await page(dash, "/dossiers?key=000.00.12.H06-250801")
    assert "Dòng thời gian hồ sơ 000.00.12.H06-250801" in html
    assert "Nhận «Thông điệp» từ Hệ thống HTTP/JSON (src)" in html
    assert "Gửi tới Hệ thống HTTP/JSON (dst), lần 1" in html
    assert "Không" not in html.split('id="timeline"')[1].split("</ol>")[0]
    assert "Cổng chưa nhận hồ sơ" in await page(dash, "/dossiers?key=NOPE", status=404)
    assert 'name="key"' in await page(dash, "/dossiers")


async def test_dead_letter_retry_from_the_dashboard(dash: TestClient[Any, Any], sink: Any) -> None:
    received, _ = sink
    received.behaviour = lambda req, n: 400
    await send(dash, "HS-1", "HS-2", "HS-3")
    dead = await settled(dash, "dead", 3)
    received.behaviour = None
    await sign_in(dash, "viewer")
    html = await page(dash, "/dead")
    assert 'name="ids"' not in html and "cần quyền vận hành" in html
    assert html.count("<details>") == 3 and CCCD not in html and "********4567" in html
    dash.session.cookie_jar.clear()
    csrf = await sign_in(dash, "operator")
    ids = sorted(d["id"] for d in dead)[:2]
    resp = await dash.post("/dead/retry", data=[("csrf", csrf), *(("ids", str(i)) for i in ids)])
    html = await resp.text()
    assert resp.status == 200 and all(f"#{i}" in html for i in ids) and "(2)" in html
    assert len(await settled(dash, "dead", 3)) == 3  # a confirmation page retries nothing
    confirm = csrf_from(html)
    resp = await dash.post(
        "/dead/retry/confirm",
        data=[("csrf", confirm), *(("ids", str(i)) for i in ids)],
        allow_redirects=False,
    )
    assert resp.status == 303 and resp.headers["Location"] == "/dead?retried=2&skipped=0"
    assert "Đã đưa 2 lượt gửi trở lại hàng đợi." in await page(dash, resp.headers["Location"])
    await settled(dash, "delivered", 2)
    await wait_for(lambda: len(received.accepted) == 2, what="two deliveries")
    # one row's own button retries that row only, even with other rows ticked
    last = max(d["id"] for d in dead)
    resp = await dash.post("/dead/retry", data={"csrf": csrf, "ids": str(ids[0]), "one": str(last)})
    assert f"#{last}" in await resp.text() and f"#{ids[0]}</td>" not in await resp.text()
    entries = await audit_entries(dash.app[STORE], limit=10)
    assert {(e["actor"], e["action"], e["target"]) for e in entries if e["action"] == "retry"} == {
        ("web:ops", "retry", f"delivery:{i}") for i in ids
    }
    assert "Chưa chọn lượt gửi nào." in await page(
        dash,
        (await dash.post("/dead/retry", data={"csrf": csrf}, allow_redirects=False)).headers[
            "Location"
        ],
    )


async def test_audit_page_is_for_admins(dash: TestClient[Any, Any]) -> None:
    await sign_in(dash, "operator")
    resp = await dash.get("/audit")
    assert resp.status == 403 and "Không có quyền" in await resp.text()
    assert 'href="/audit"' not in await page(dash, "/")
    dash.session.cookie_jar.clear()
    await sign_in(dash, "admin")
    html = await page(dash, "/audit")
    assert "web:chief" in html and '<span class="badge neutral">Đăng nhập</span>' in html
    assert 'href="/audit"' in html


async def test_static_files_are_served_from_the_package(dash: TestClient[Any, Any]) -> None:
    css = await dash.get("/static/admin/admin.css")
    assert css.status == 200 and "--blue" in await css.text()
    js = await dash.get("/static/admin/admin.js")
    assert js.status == 200 and "data-select-all" in await js.text()
    assert (await dash.get("/static/admin/../../app.py")).status in (403, 404)


# -- extensibility --------------------------------------------------------------------------------
class PaymentsPages:
    """A plugin adding a page, a nav entry, and a route it forgot to protect."""

    @hookimpl
    def gateway_web_routes(self, app: web.Application) -> None:
        async def payments(request: web.Request) -> web.Response:
            return await render_page(
                request, "message.html", {"title": "Chi trả", "text": "tháng 8"}
            )

        async def forgotten(request: web.Request) -> web.Response:
            return web.Response(text="secret")

        app.router.add_get("/payments", payments)
        protect(app, "/payments", "viewer")
        app[NAV].append(NavEntry("/payments", {"vi": "Chi trả", "en": "Payments"}))
        app.router.add_get("/forgotten", forgotten)


async def test_plugins_add_pages_to_the_navigation(
    tmp_path: Path, aiohttp_client: Any, sink_url: str
) -> None:
    config = make_config(tmp_path, sink_url, tokens=token_config())
    plugins = build_plugins(extra=[("payments_pages", PaymentsPages())])
    client = await aiohttp_client(create_app(config, plugins=plugins))
    assert (await client.get("/payments", allow_redirects=False)).status == 303
    await sign_in(client, "viewer")
    html = await page(client, "/payments")
    assert '<a href="/payments" class="active" aria-current="page">Chi trả</a>' in html
    assert "tháng 8" in html
    assert 'href="/payments">Payments</a>' in await page(client, "/?lang=en")
    # a route nobody protected is admin-only (fail closed)
    assert (await client.get("/forgotten")).status == 403
    client.session.cookie_jar.clear()
    await sign_in(client, "admin")
    assert await page(client, "/forgotten") == "secret"


def test_every_string_exists_in_both_languages() -> None:
    from gateway.web.admin.i18n import MESSAGES

    assert set(MESSAGES["vi"]) == set(MESSAGES["en"])
    assert all(MESSAGES["vi"][k].strip() and MESSAGES["en"][k].strip() for k in MESSAGES["vi"])
