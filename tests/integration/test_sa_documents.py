"""Payment lists as documents: the signing list as .xlsx and as an A4 print page, and the
monthly report as .xlsx, from the dashboard (named lists for operators only, audited) and the
CLI (``payments export``, ``report monthly --format xlsx``); every file is read back."""

from __future__ import annotations

import asyncio
import getpass
import io
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient
from click.testing import CliRunner, Result
from openpyxl import Workbook, load_workbook
from test_sa_pages import HELD_CCCD, OK_CCCD, OK_NAME, get
from test_sa_pages import sa as sa

from gateway.testing.admin import bearer, sign_in
from gateway.web.admin.queries import audit_entries
from gateway.web.keys import STORE
from plugins.social_assistance import documents, service
from plugins.social_assistance.month import Month
from plugins.social_assistance.storage import load_domain

LIST = "/payments/lists/2020-11/02053"
HEADINGS = [
    "STT",
    "Họ và tên",
    "Năm sinh",
    "Thôn/xã",
    "Đối tượng",
    "Mức (đồng/tháng)",
    "Truy lĩnh",
    "Chưa nhận",
    "Tổng",
    "Ký nhận",
]


def workbook(body: bytes) -> Workbook:
    return load_workbook(io.BytesIO(body))


def all_text(wb: Workbook) -> str:
    return " ".join(
        str(c.value) for ws in wb.worksheets for row in ws.iter_rows() for c in row if c.value
    )


def check_list(body: bytes, expected: dict[str, Any], preparer: str) -> None:
    """The signing list read back: header, the one payee, totals, footer, print setup."""
    wb = workbook(body)
    ws = wb.active
    assert ws is not None
    assert ws["A1"].value == "UBND xã Ngọc Phái (mã 02053)"
    assert ws["A3"].value == "DANH SÁCH CHI TRẢ TRỢ CẤP XÃ HỘI HÀNG THÁNG"
    assert "Tháng 11/2020" in str(ws["A4"].value) and "lần gửi 1" in str(ws["A4"].value)
    assert (ws["C5"].value, ws["F5"].value) == (expected["people"], expected["total"])
    assert [c.value for c in ws[documents.HEADING_ROW]] == HEADINGS
    row = [c.value for c in ws[documents.HEADING_ROW + 1]]
    assert row[:3] == [1, OK_NAME, 1935]
    assert row[3] == "Ngọc Phái" and str(row[4]).endswith("(5.5a)")
    month, arrears, carried, total = row[5:9]
    assert all(isinstance(v, int) for v in (month, arrears, carried, total))
    assert month > 0 and carried > 0  # two unpaid months carried forward
    assert month + arrears + carried == total == expected["total"]
    assert row[9] is None  # the signature
    totals = [c.value for c in ws[documents.HEADING_ROW + 2]]
    assert totals[0] == "Tổng cộng" and totals[5:9] == [month, arrears, carried, total]
    assert ws.cell(documents.HEADING_ROW + 1, 9).number_format == documents.VND_FORMAT
    footer = all_text(wb)
    assert "Người lập biểu" in footer and preparer in footer and "Ngọc Phái, ngày" in footer
    # print: A4 landscape, the heading row on every page, one page wide
    assert int(ws.page_setup.paperSize) == 9  # A4
    assert ws.page_setup.orientation == "landscape"
    assert ws.print_title_rows == f"${documents.HEADING_ROW}:${documents.HEADING_ROW}"
    assert ws.sheet_properties.pageSetUpPr.fitToPage is True
    assert (ws.page_setup.fitToWidth, ws.page_setup.fitToHeight) == (1, 0)
    for cccd in (OK_CCCD, HELD_CCCD):  # a signing list carries names, never a CCCD
        assert cccd not in footer and cccd[-4:] not in footer


def check_report(body: bytes, report: dict[str, Any]) -> None:
    wb = workbook(body)
    ws = wb.active
    assert ws is not None
    assert "Tháng 11/2020" in str(ws["A1"].value)
    rows = {(r[0], r[1]): r[2:] for r in ws.iter_rows(min_row=4, max_col=6, values_only=True)}
    assert rows[("Tổng hợp", "beneficiaries")] == (None, None, 1, None)
    assert rows[("Tổng hợp", "total_amount")] == (None, None, None, report["total_amount"])
    name, lines, receiving, amount = rows[("Theo đối tượng", "5.5a")]
    assert name and (lines, receiving, amount) == (1, 1, report["total_amount"])
    assert rows[("Theo xã", "02053")] == ("Ngọc Phái", 1, 1, report["total_amount"])


async def expected_list(sa: TestClient[Any, Any]) -> dict[str, Any]:
    [row] = await service.overview(sa.app[STORE], load_domain(sa_config_of(sa)), Month(2020, 11))
    return row


def sa_config_of(sa: TestClient[Any, Any]) -> Any:
    from gateway.web.keys import CONFIG

    return sa.app[CONFIG]


async def test_an_operator_downloads_and_prints_the_signing_list(
    sa: TestClient[Any, Any],
) -> None:
    expected = await expected_list(sa)
    await sign_in(sa, "operator")
    html = await get(sa, "/payments?month=2020-11")
    assert f'href="{LIST}.xlsx"' in html and f'href="{LIST}"' in html
    resp = await sa.get(f"{LIST}.xlsx")
    assert resp.status == 200
    assert resp.content_type == documents.XLSX_TYPE
    cd = resp.headers["Content-Disposition"]
    assert cd == 'attachment; filename="danh-sach-chi-tra-2020-11-02053.xlsx"'
    check_list(await resp.read(), expected, preparer="ops")
    page = await get(sa, LIST)
    assert OK_NAME in page and "1935" in page and OK_CCCD not in page
    assert f"{expected['total']:,}".replace(",", ".") in page  # 1.234.567
    assert '<link rel="stylesheet" href="/payments/print.css">' in page
    css = await sa.get("/payments/print.css")
    assert css.status == 200 and "size: A4" in await css.text()
    assert "thead { display: table-header-group; }" in await css.text()
    entries = await audit_entries(sa.app[STORE], limit=10)
    downloads = [
        (e["actor"], e["target"], e["detail"]) for e in entries if e["action"] == "download"
    ]
    assert ("web:ops", "payment list 2020-11:02053", "xlsx") in downloads
    assert ("web:ops", "payment list 2020-11:02053", "print") in downloads
    # no list of that commune or month: a 404 page; a month that is not one: 400
    assert (await sa.get("/payments/lists/2020-12/02053.xlsx")).status == 404
    assert (await sa.get("/payments/lists/2020-11/02050")).status == 404
    assert (await sa.get("/payments/lists/2020-13/02053.xlsx")).status == 400
    # a page path takes the dashboard session, not an API token
    sa.session.cookie_jar.clear()
    resp = await sa.get(f"{LIST}.xlsx", headers=bearer("admin"), allow_redirects=False)
    assert resp.status == 303


async def test_a_viewer_gets_the_report_but_no_named_list(sa: TestClient[Any, Any]) -> None:
    await sign_in(sa, "viewer")
    html = await get(sa, "/payments?month=2020-11")
    assert 'href="/payments/report.xlsx?month=2020-11"' in html
    assert f'href="{LIST}.xlsx"' not in html and "cần quyền vận hành" in html
    for path in (f"{LIST}.xlsx", LIST):
        assert (await sa.get(path, allow_redirects=False)).status == 403
    resp = await sa.get("/payments/report.xlsx?month=2020-11")
    assert resp.status == 200
    assert (
        resp.headers["Content-Disposition"] == 'attachment; filename="bao-cao-thang-2020-11.xlsx"'
    )
    report = await service.monthly(sa.app[STORE], load_domain(sa_config_of(sa)), Month(2020, 11))
    body = await resp.read()
    check_report(body, report)
    text = all_text(workbook(body))
    assert OK_NAME not in text and OK_CCCD not in text  # the report names nobody
    assert (await sa.get("/payments/report.xlsx?month=nope")).status == 400


def write_config(sa: TestClient[Any, Any], tmp_path: Path) -> Path:
    database = sa_config_of(sa).gateway.database
    path = tmp_path / "cli.toml"
    path.write_text(
        f'[gateway]\ndatabase = "{database}"\n'
        '[systems.social_assistance]\nplugin = "social_assistance"\n'
        "[social_assistance]\npayment_day = 24\n",
        encoding="utf-8",
    )
    return path


async def cli(*args: str) -> Result:
    from gateway.cli import build_cli

    return await asyncio.to_thread(CliRunner().invoke, build_cli(), list(args))


async def test_the_cli_writes_the_lists_and_the_report_as_xlsx(
    sa: TestClient[Any, Any], tmp_path: Path
) -> None:
    expected = await expected_list(sa)
    cfg = str(write_config(sa, tmp_path))
    out = tmp_path / "lists"
    got = await cli(
        "payments",
        "export",
        "--month",
        "2020-11",
        "--out",
        str(out),
        "--preparer",
        "Nguyễn Thị Hoa",
        "--config",
        cfg,
    )
    assert got.exit_code == 0, got.output
    path = out / "danh-sach-chi-tra-2020-11-02053.xlsx"
    check_list(path.read_bytes(), expected, preparer="Nguyễn Thị Hoa")
    assert f"{expected['total']:,}" in got.output and str(path) in got.output
    one = tmp_path / "one.xlsx"
    got = await cli(
        "payments",
        "export",
        "--month",
        "2020-11",
        "--commune",
        "02053",
        "--out",
        str(one),
        "--config",
        cfg,
    )
    assert got.exit_code == 0, got.output
    check_list(one.read_bytes(), expected, preparer=getpass.getuser())  # the OS user
    got = await cli(
        "payments", "export", "--month", "2020-11", "--commune", "02050", "--config", cfg
    )
    assert got.exit_code == 1 and "no list of commune 02050 for 2020-11" in got.output
    got = await cli("payments", "export", "--month", "2021-05", "--out", str(out), "--config", cfg)
    assert got.exit_code == 1 and "no payment list was built for 2021-05" in got.output

    report_path = tmp_path / "r.xlsx"
    got = await cli(
        "report",
        "monthly",
        "--month",
        "2020-11",
        "--format",
        "xlsx",
        "--out",
        str(report_path),
        "--config",
        cfg,
    )
    assert got.exit_code == 0, got.output
    report = await service.monthly(sa.app[STORE], load_domain(sa_config_of(sa)), Month(2020, 11))
    check_report(report_path.read_bytes(), report)
