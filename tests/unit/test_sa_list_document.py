"""The signing list of a merged commune (2025-07 on) read back from its .xlsx: the new
commune's name in the header, each line's old commune in "thôn/xã", the village from the
desk's dossier, the category's Vietnamese name; and the monthly report's rows keep counts
and VND in their own columns."""

from __future__ import annotations

import io
from datetime import datetime

from openpyxl import load_workbook

from gateway.model import VN_TZ
from plugins.social_assistance import documents
from plugins.social_assistance.admin_units import load_admin_units
from plugins.social_assistance.month import Month
from plugins.social_assistance.payment_list import BienDong, PaymentLine, PaymentList
from plugins.social_assistance.rules import load_rules
from plugins.social_assistance.storage import Domain, Settings
from plugins.vn_common.cccd import make_cccd

KY = Month(2025, 9)
A, B = make_cccd("006", 1940, True, 1), make_cccd("006", 1930, False, 2)


def line(cccd: str, name: str, old: str, dossier: str, *, carried: int = 0) -> PaymentLine:
    return PaymentLine(
        ky=KY,
        key=(cccd, "own"),
        full_name=name,
        category="5.5a",
        disability=None,
        month_amount=750_000,
        arrears=((KY - 2, 750_000),) if carried == 0 else (),
        carried=carried,
        carried_from=(KY - 1,) if carried else (),
        payout="tai_nha",
        change=BienDong.KHONG_DOI,
        old_commune=old,
        dossiers=(dossier,),
    )


def test_a_merged_communes_list_names_each_old_commune() -> None:
    domain = Domain(Settings(), load_rules(), load_admin_units())
    built = datetime(2025, 8, 24, 10, tzinfo=VN_TZ)
    lines = [
        line(A, "Hoàng Thị Lan", "02053", "HS-1"),
        line(B, "Lò Văn Pha", "02020", "HS-2", carried=750_000),
    ]
    payment_list = PaymentList.of(KY, "02020", 1, built, lines)
    doc = documents.make_document(
        domain, payment_list, {(A, "HS-1"): 1940, (B, "HS-2"): 1930}, {"HS-2": "Thôn Nà Pài"}
    )
    body = documents.list_xlsx(doc, preparer="Nguyễn Thị Hoa", when=built)
    ws = load_workbook(io.BytesIO(body)).active
    assert ws is not None
    assert ws["A1"].value == "UBND xã Chợ Đồn (mã 02020)"
    first = documents.HEADING_ROW + 1
    rows = list(ws.iter_rows(min_row=first, max_row=first + 1, values_only=True))
    assert [r[:4] for r in rows] == [
        (1, "Hoàng Thị Lan", 1940, "Ngọc Phái"),
        (2, "Lò Văn Pha", 1930, "Thôn Nà Pài, Bằng Lũng"),  # 02020 was Bằng Lũng until 2025-07
    ]
    assert rows[0][4] == "Người cao tuổi thuộc hộ nghèo không có người phụng dưỡng (5.5a)"
    assert [r[5:9] for r in rows] == [
        (750_000, 750_000, 0, 1_500_000),
        (750_000, 0, 750_000, 1_500_000),
    ]
    totals = [c.value for c in ws[first + 2]][5:9]
    assert totals == [1_500_000, 750_000, 750_000, 3_000_000] and doc.total_amount == 3_000_000
    assert (ws["C5"].value, ws["F5"].value) == (2, 3_000_000)
    assert "Tháng 09/2025" in str(ws["A4"].value)


def test_report_rows_put_counts_and_amounts_in_their_columns() -> None:
    data = {
        "beneficiaries": 3,
        "total_amount": 2_250_000,
        "increases": 1,
        "paid_amount": None,
        "by_category": {"5.5a": {"lines": 3, "receiving": 3, "amount": 2_250_000}},
        "by_commune": {},
        "timeliness": {
            "overdue": 2,
            "arrears_from_lateness_months": 4,
            "arrears_from_lateness_vnd": 1_440_000,
        },
    }
    rows = {(r["section"], r["key"]): r for r in documents.report_rows(data)}
    assert rows[("total", "beneficiaries")] == {
        "section": "total",
        "key": "beneficiaries",
        "receiving": 3,
    }
    assert rows[("total", "total_amount")]["amount"] == 2_250_000
    assert "amount" not in rows[("total", "increases")]
    assert ("total", "paid_amount") not in rows  # not reconciled yet: no row, not a zero
    assert rows[("timeliness", "arrears_from_lateness")]["lines"] == 4
    assert rows[("timeliness", "arrears_from_lateness")]["amount"] == 1_440_000
