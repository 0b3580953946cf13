"""Paying everyone across the 2025 merger, as an office configured with its 20 old Chợ Đồn
codes would (DOMAIN.md §6): the lists of 2025-06 → 2025-09 checked line by line (amount,
arrears, carried, ``bienDong``, ``maXaCu``, totals), a person unpaid three months across the
merger proposed for suspension under the new commune's code (and counted the same by the
monthly report), and one commune made impossible: ``payments send`` exits non-zero naming
it, the people and the money, and the dashboard shows the alert until it is resolved.

Decisions and payment results go through the social-assistance connector as the engine
would apply them; lists are built and sent by the real ``send_month`` / CLI on a real SQLite
store."""

from __future__ import annotations

import json
import shutil
import sqlite3
from datetime import datetime, time
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from click.testing import CliRunner, Result
from sa_fixtures import decision_payload, payer_result

from gateway.cli import build_cli
from gateway.cli.common import run, with_store
from gateway.config import Config, SystemConfig, load_config
from gateway.model import VN_TZ
from gateway.plugins import build_plugins, plugins_for
from gateway.store import Store
from gateway.testing.admin import sign_in, token_config
from gateway.web.app import create_app
from plugins.social_assistance import service
from plugins.social_assistance.admin_units import DEFAULT_ADMIN_UNITS_PATH
from plugins.social_assistance.connector import SocialAssistanceConnector
from plugins.social_assistance.month import Month
from plugins.social_assistance.storage import list_from_row, list_rows, load_domain, read
from plugins.vn_common.cccd import make_cccd

OLD_CODES = [
    "02020", "02023", "02026", "02029", "02032", "02035", "02038", "02041", "02044", "02047",
    "02050", "02053", "02059", "02062", "02065", "02068", "02071", "02077", "02080", "02083",
]  # fmt: skip
NEW_LISTS = {  # new commune -> the old codes merged into it (DOMAIN.md §6)
    "02020": ["02020", "02050", "02053", "02065"],
    "02044": ["02035", "02044", "02047"],
    "02083": ["02068", "02077", "02083"],
    "02071": ["02062", "02071", "02080"],
    "02026": ["02023", "02026", "02029"],
    "02038": ["02032", "02038"],
    "02014": ["02059"],
    "01933": ["02041"],
}
MONTH_AMOUNT = 750_000  # 5.8 (1.5) × 500,000 from 2024-07
X_SERIAL = 9059  # the person of Đồng Thắng unpaid 2025-06, 07 and 08
Y_SERIAL = 9041  # the person of Bằng Phúc granted late (signed 2025-07-30)
Z_SERIAL = 9060  # a person of Đồng Thắng granted late from 2025-05: arrears across the merger
BIRTH_YEAR = 1980
BLOCK_02014 = """[[commune]]
code = "02014"
name = "Bạch Thông"
province = "19"
from = 2025-07-01
merged_from = ["02059"]
note = "Also communes of the former Bạch Thông district, not listed in this file."
"""


def cccd(serial: int) -> str:
    return make_cccd("006", BIRTH_YEAR, False, serial)


def serial_of(code: str) -> int:
    return int(code)  # one person per old commune, numbered by its code


def write_config(
    tmp_path: Path, *, units: str = "admin_units.toml", database: str | None = None
) -> Path:
    codes = ", ".join(f'"{c}"' for c in OLD_CODES)
    path = tmp_path / "gateway.toml"
    database = database or f"sqlite:///{tmp_path / 'gw.db'}"
    path.write_text(
        f"""\
[gateway]
database = "{database}"
node_id = "merger"

[systems.social_assistance]
plugin = "social_assistance"

[systems.post_office]
plugin = "post_office"
base_url = "http://127.0.0.1:9"

[[routes]]
from = "social_assistance"
event = "payment.list"
to = ["post_office"]

[social_assistance]
payment_day = 24
admin_units = "{units}"
communes = [{codes}]
""",
        encoding="utf-8",
    )
    return path


def payloads(config: Config) -> list[dict[str, str]]:
    rules = load_domain(config).rules
    out = []
    for code in OLD_CODES:
        n = serial_of(code)
        out.append(
            decision_payload(
                rules, so=f"{n}/QĐ-UBND", ngayKy="2024-01-10", maHoSo=f"HS-{code}",
                soDinhDanh=cccd(n), hoTen="Nông Văn Một", ngaySinh="1980-05-01", maXa=code,
                loaiDoiTuong="5.8",
            )
        )  # fmt: skip
    out.append(
        decision_payload(
            rules, so="1/QĐ-UBND", ngayKy="2024-01-10", maHoSo="HS-X", soDinhDanh=cccd(X_SERIAL),
            hoTen="Lò Văn Pha", ngaySinh="1980-06-01", maXa="02059", loaiDoiTuong="5.8",
        )
    )  # fmt: skip
    out.append(  # signed by the new commune's chairman, filed under the old code
        decision_payload(
            rules, so="7/QĐ-UBND", ngayKy="2025-07-30", maHoSo="HS-Y", soDinhDanh=cccd(Y_SERIAL),
            hoTen="Hà Thị Mai", ngaySinh="1980-07-01", maXa="02041", loaiDoiTuong="5.8",
        )
    )  # fmt: skip
    out.append(  # 5.6 from the certificate's month, 2025-05, decided after the merger
        decision_payload(
            rules, so="8/QĐ-UBND", ngayKy="2025-07-30", maHoSo="HS-Z", soDinhDanh=cccd(Z_SERIAL),
            hoTen="Nông Văn Ba", ngaySinh="1980-08-01", maXa="02059", loaiDoiTuong="5.6",
            mucDoKhuyetTat="nang", tuThang="2025-05",
        )
    )  # fmt: skip
    return out


def connector(store: Store, config: Config) -> SocialAssistanceConnector:
    conn = SocialAssistanceConnector(SystemConfig(name="sa", plugin="social_assistance"))
    conn.attach(store, load_domain(config))
    return conn


def build_now(month: Month) -> datetime:
    return datetime.combine((month - 1).day(24), time(10), VN_TZ)


UNPAID = {"2025-06": {X_SERIAL}, "2025-07": {X_SERIAL}, "2025-08": {X_SERIAL}}


@pytest.fixture
def office(tmp_path: Path) -> Path:
    shutil.copy(DEFAULT_ADMIN_UNITS_PATH, tmp_path / "admin_units.toml")
    return write_config(tmp_path)


def run_months(cfg: Path, months: list[str]) -> dict[str, Any]:
    """Send each month on its build day, then push the payer's results back; returns the
    lists (by month and commune), the send results and the connector's receipts."""
    config = load_config(cfg)
    domain = load_domain(config)

    async def go(store: Store) -> dict[str, Any]:
        sa = connector(store, config)
        for p in payloads(config):
            assert (await sa.apply("decision.issued", p)).detail == "applied"
        out: dict[str, Any] = {"lists": {}, "sent": {}, "receipts": {}}
        for ky in months:
            month = Month.parse(ky)
            results = await service.send_month(
                store, config, plugins_for(config), domain, month, now=build_now(month)
            )
            out["sent"][ky] = {r.commune: r.status for r in results}
            rows = await read(store, list_rows, ky)
            lists = {row.ma_xa: list_from_row(row) for row in rows}
            out["lists"][ky] = lists
            skip = {cccd(s) for s in UNPAID.get(ky, set())}
            for pl in lists.values():
                for line in pl.lines:
                    result = payer_result(line, pl, paid=line.citizen_id not in skip)
                    receipt = await sa.apply("payment.results", result)
                    out["receipts"][(ky, line.citizen_id)] = receipt
        out["report"] = await service.monthly(store, domain, Month.parse("2025-08"))
        return out

    result: dict[str, Any] = run(with_store(config, go))
    return result


def line_view(pl: Any, cid: str) -> tuple[Any, ...]:
    [line] = [ln.to_payload() for ln in pl.lines if ln.citizen_id == cid]
    return (
        line.get("maXaCu"),
        line["bienDong"],
        line["soTienThang"],
        line["soTienTruyLinh"],
        line.get("truyLinhTu"),
        line.get("truyLinhDen"),
        line["soTienChuaNhan"],
    )


@pytest.mark.parametrize("db", ["sqlite", "postgresql"])
def test_old_codes_only_every_new_communes_list_line_by_line(
    db: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    shutil.copy(DEFAULT_ADMIN_UNITS_PATH, tmp_path / "admin_units.toml")
    url = request.getfixturevalue("postgres_url") if db == "postgresql" else None
    office = write_config(tmp_path, database=url)
    out = run_months(office, ["2025-06", "2025-07", "2025-08", "2025-09"])
    lists = out["lists"]
    x, y, z = cccd(X_SERIAL), cccd(Y_SERIAL), cccd(Z_SERIAL)
    # 2025-06: one list per old commune, no maXaCu; X is on Đồng Thắng's
    assert sorted(lists["2025-06"]) == OLD_CODES
    for code, pl in lists["2025-06"].items():
        people = [serial_of(code)] + ([X_SERIAL] if code == "02059" else [])
        assert sorted(ln.citizen_id for ln in pl.lines) == sorted(cccd(s) for s in people)
        for line in pl.lines:
            assert line_view(pl, line.citizen_id) == (
                None, "khong_doi", MONTH_AMOUNT, 0, None, None, 0
            )  # fmt: skip
        assert (pl.total_people, pl.total_amount) == (len(people), MONTH_AMOUNT * len(people))
    # 2025-07 on: one list per NEW commune, Bạch Thông's and Đồng Phúc's included
    for ky in ("2025-07", "2025-08", "2025-09"):
        assert sorted(lists[ky]) == sorted(NEW_LISTS), ky
        assert set(out["sent"][ky].values()) == {"sent"}, out["sent"][ky]
        for new, olds in NEW_LISTS.items():
            pl = lists[ky][new]
            ordinary = [ln for ln in pl.lines if ln.citizen_id not in (x, y, z)]
            assert sorted(ln.old_commune for ln in ordinary) == olds
            for line in ordinary:
                assert line_view(pl, line.citizen_id) == (
                    line.old_commune, "khong_doi", MONTH_AMOUNT, 0, None, None, 0
                )  # fmt: skip
    # X: unpaid 06, 07, 08 — each unpaid total carried once into the next list, across codes
    assert line_view(lists["2025-06"]["02059"], x) == (None, "khong_doi", 750_000, 0, None, None, 0)
    assert line_view(lists["2025-07"]["02014"], x) == (
        "02059", "khong_doi", 750_000, 0, None, None, 750_000
    )  # fmt: skip
    assert line_view(lists["2025-08"]["02014"], x) == (
        "02059", "khong_doi", 750_000, 0, None, None, 1_500_000
    )  # fmt: skip
    assert line_view(lists["2025-09"]["02014"], x) == (
        "02059", "khong_doi", 750_000, 0, None, None, 2_250_000
    )  # fmt: skip
    # Z: 5.6 from 2025-05, decided 2025-07-30 under the old code: first listed in 2025-09 on
    # Bạch Thông's list, with the months 05 (before the merger) to 08 as arrears, each 750,000
    assert z not in {
        ln.citizen_id for k in ("2025-07", "2025-08") for ln in lists[k]["02014"].lines
    }
    assert line_view(lists["2025-09"]["02014"], z) == (
        "02059", "tang", 750_000, 3_000_000, "2025-05", "2025-08", 0
    )  # fmt: skip
    # Bạch Thông's totals: Đồng Thắng's own person (750,000) + X (+ carried) [+ Z in 09]
    assert [
        (lists[k]["02014"].total_people, lists[k]["02014"].total_amount)
        for k in ("2025-07", "2025-08", "2025-09")
    ] == [
        (2, 750_000 + 750_000 + 750_000),
        (2, 750_000 + 750_000 + 1_500_000),
        (3, 750_000 + 750_000 + 2_250_000 + 750_000 + 3_000_000),
    ]
    # Y: granted from 2025-07 (signed 07-30, after the 07 and 08 build days): first listed in
    # 2025-09 as new, with 07 and 08 as arrears at their own amounts, under Đồng Phúc 01933
    assert y not in {
        ln.citizen_id for k in ("2025-07", "2025-08") for ln in lists[k]["01933"].lines
    }
    assert line_view(lists["2025-09"]["01933"], y) == (
        "02041", "tang", 750_000, 1_500_000, "2025-07", "2025-08", 0
    )  # fmt: skip
    assert lists["2025-09"]["01933"].total_amount == 750_000 + 750_000 + 1_500_000
    # the run 06-07-08 crosses the merger: proposed once, under Bạch Thông's new code
    proposals = [
        m.payload for (ky, cid), r in out["receipts"].items() if cid == x for m in r.follow_ups
    ]
    assert proposals == [
        {
            "ky": "2025-08",
            "maXa": "02014",
            "doiTuong": [
                {
                    "soDinhDanh": x,
                    "hoTen": "Lò Văn Pha",
                    "cacThangChuaNhan": ["2025-06", "2025-07", "2025-08"],
                }
            ],
        }
    ]
    # ... and the monthly report counts the same one
    assert out["report"]["suspension_candidates"] == 1


def gw(cfg: Path, *args: str) -> Result:
    return CliRunner().invoke(build_cli(), [*args, "--config", str(cfg)])


def seed(cfg: Path) -> None:
    config = load_config(cfg)

    async def go(store: Store) -> None:
        sa = connector(store, config)
        for p in payloads(config):
            await sa.apply("decision.issued", p)

    run(with_store(config, go))


def lists_of(cfg: Path, ky: str) -> dict[str, tuple[int, int]]:
    with sqlite3.connect(cfg.parent / "gw.db") as db:
        rows = db.execute(
            "SELECT ma_xa, total_people, total_amount FROM sa_lists WHERE ky = ?", (ky,)
        ).fetchall()
    return {r[0]: (r[1], r[2]) for r in rows}


def test_done_when_every_new_commune_then_one_made_impossible(office: Path, tmp_path: Path) -> None:
    seed(office)
    for ky in ("2025-07", "2025-08"):
        ok = gw(office, "payments", "send", "--month", ky)
        assert ok.exit_code == 0, ok.output
        assert sorted(lists_of(office, ky)) == sorted(NEW_LISTS)
        assert "8 sent, 0 unchanged, 0 refused" in ok.output
    # a new commune's list can be asked for by an old code or by its new code alike
    by_old = gw(office, "payments", "send", "--month", "2025-09", "--commune", "02059")
    assert by_old.exit_code == 0, by_old.output
    assert sorted(lists_of(office, "2025-09")) == ["02014"]
    by_new = gw(office, "payments", "send", "--month", "2025-09", "--commune", "01933")
    assert by_new.exit_code == 0, by_new.output
    assert sorted(lists_of(office, "2025-09")) == ["01933", "02014"]

    # Bạch Thông taken out of admin_units.toml: its people (Đồng Thắng's) cannot be placed
    units = tmp_path / "admin_units.toml"
    text = units.read_text(encoding="utf-8")
    units.write_text(text.replace(BLOCK_02014, ""), encoding="utf-8")
    bad = gw(office, "payments", "send", "--month", "2025-10")
    assert bad.exit_code == 3, bad.output
    [line] = [ln for ln in bad.stderr.splitlines() if ln.startswith("KHÔNG CHI TRẢ")]
    # three people of Đồng Thắng (its own, X and Z), 750,000 each, left unpaid
    assert line.startswith(
        "KHÔNG CHI TRẢ / UNPAID 2025-10: xã 02059 Đồng Thắng — 3 người, 2,250,000 VND "
        "chưa được chi trả (3 people, 2,250,000 VND left unpaid): mã xã 02059 không có trong"
    ), line
    assert "what to do: thêm xã này" in line and "admin_units.toml" in line
    assert cccd(X_SERIAL) not in bad.output
    assert sorted(lists_of(office, "2025-10")) == sorted(set(NEW_LISTS) - {"02014"})
    # the dashboard shows the alert (checked in the page test below); the audit has the run
    with sqlite3.connect(office.parent / "gw.db") as db:
        [(actor, detail)] = db.execute(
            "SELECT actor, detail FROM audit_log WHERE action = 'sa_payments_send' "
            "AND target = 'ky=2025-10'"
        ).fetchall()
    assert actor.startswith("cli") and "refused=02059 (1 lists, 3 lines, 2,250,000 VND)" in detail
    assert "sent=" in detail and "7 lists" in detail

    # asked for by the new code alone, which the file no longer knows: its old commune's
    # people are still named (the file cannot say they are its, nor that they are not)
    by_new = gw(office, "payments", "send", "--month", "2025-10", "--commune", "02014")
    assert by_new.exit_code == 3, by_new.output
    lines = sorted(ln for ln in by_new.stderr.splitlines() if ln.startswith("KHÔNG CHI TRẢ"))
    assert [ln.split(" — ")[0] for ln in lines] == [
        "KHÔNG CHI TRẢ / UNPAID 2025-10: xã 02014",
        "KHÔNG CHI TRẢ / UNPAID 2025-10: xã 02059 Đồng Thắng",
    ]
    assert "3 người, 2,250,000 VND" in lines[1] and "0 người, 0 VND" in lines[0]

    # put it back: the same command builds it and the alert is resolved
    units.write_text(text, encoding="utf-8")
    fixed = gw(office, "payments", "send", "--month", "2025-10")
    assert fixed.exit_code == 0, fixed.output
    assert sorted(lists_of(office, "2025-10")) == sorted(NEW_LISTS)
    with sqlite3.connect(office.parent / "gw.db") as db:
        rows = db.execute("SELECT ma_xa, resolved_by FROM sa_alerts ORDER BY ma_xa").fetchall()
    assert [r[0] for r in rows] == ["02014", "02059"]
    assert all(str(r[1]).startswith("cli") for r in rows)


def test_an_unknown_configured_code_is_refused_even_with_no_one_in_it(office: Path) -> None:
    seed(office)
    bad = gw(office, "payments", "send", "--month", "2025-07", "--commune", "02099")
    assert bad.exit_code == 3, bad.output
    assert "xã 02099 — 0 người, 0 VND" in bad.stderr and "unknown commune code" in bad.stderr


async def test_the_dashboard_alert_until_resolved(tmp_path: Path, aiohttp_client: Any) -> None:
    units = tmp_path / "admin_units.toml"
    text = DEFAULT_ADMIN_UNITS_PATH.read_text(encoding="utf-8")
    units.write_text(text.replace(BLOCK_02014, ""), encoding="utf-8")
    cfg = write_config(tmp_path)
    with cfg.open("a", encoding="utf-8") as f:
        f.write("\n" + _tokens_toml())
    config = load_config(cfg)
    client: TestClient[Any, Any] = await aiohttp_client(create_app(config, plugins=build_plugins()))
    from gateway.web.keys import PLUGINS, STORE

    store = client.app[STORE]
    domain = load_domain(config)
    sa = connector(store, config)
    for p in payloads(config):
        await sa.apply("decision.issued", p)
    month = Month.parse("2025-07")
    results = await service.send_month(
        store, config, client.app[PLUGINS], domain, month, now=build_now(month), actor="test"
    )
    assert [(r.commune, r.status, r.people, r.total) for r in results if r.unpaid] == [
        ("02059", "refused", 2, 1_500_000)
    ]
    viewer_csrf = await sign_in(client, "viewer")
    html = await (await client.get("/payments?month=2025-07")).text()
    assert 'id="sa-alerts"' in html
    # amounts and days in the page's formats (CLDR via Babel)
    assert "Kỳ 2025-07: xã 02059 Đồng Thắng — 2 người, 1.500.000\xa0₫ chưa được chi trả." in html
    assert "Hệ thống tự thử lại mỗi ngày đến hết ngày 30/06/2025" in html
    assert 'action="/payments/send"' not in html  # a viewer gets no button
    assert cccd(X_SERIAL) not in html and "Lò Văn Pha" not in html
    en = await (await client.get("/payments?month=2025-08&lang=en")).text()
    assert "Month 2025-07: commune 02059 Đồng Thắng — 2 people, ₫1,500,000 unpaid." in en

    # fixed in the file, then sent again by an operator from the dashboard (audited)
    units.write_text(text, encoding="utf-8")
    await client.post("/signout", data={"csrf": viewer_csrf}, allow_redirects=False)
    csrf = await sign_in(client, "operator")
    page = await (await client.get("/payments?month=2025-07")).text()
    assert 'action="/payments/send"' in page
    resp = await client.post(
        "/payments/send", data={"csrf": csrf, "month": "2025-07"}, allow_redirects=False
    )
    assert resp.status == 303, await resp.text()
    after = await (await client.get(resp.headers["Location"])).text()
    assert 'id="sa-alerts"' not in after
    assert "Month 2025-07: 1 lists sent; 0 communes still not sent." in after  # lang kept
    assert await service.open_alerts(store) == []
    async with store.reader.connect() as conn:
        from sqlalchemy import text as sql

        rows = (
            await conn.execute(
                sql("SELECT actor, detail FROM audit_log WHERE action = 'sa_payments_send'")
            )
        ).all()
    assert [r[0] for r in rows] == ["test", "web:ops"]
    # sent today, when Z's decision (signed 2025-07-30) is known: Z is on it with 05 and 06 as
    # arrears; Y's makes Đồng Phúc's list differ from the one sent (not resent: next list)
    assert "sent=02014 (1 lists, 3 lines, 3,750,000 VND)" in rows[1][1]
    assert "changed=01933 (1 lists, 2 lines, 1,500,000 VND)" in rows[1][1]


def _tokens_toml() -> str:
    lines = []
    for t in token_config():
        lines.append("[[tokens]]")
        for k, v in t.items():
            lines.append(f"{k} = {json.dumps(v, ensure_ascii=False)}")
    return "\n".join(lines) + "\n"
