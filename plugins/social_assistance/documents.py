"""Payment lists and the monthly report as documents the office prints and signs.

* :func:`list_document` reads one commune's latest list of a month (through the list API:
  :func:`~plugins.social_assistance.storage.list_from_row`) with what the list itself does
  not carry: each payee's year of birth (from their decision) and village (thôn, from the
  one-stop-shop dossier).
* :func:`list_xlsx` writes it as an A4 workbook: header (commune name and code, month,
  totals), one row per payee with a signature column, the totals row, a footer with the
  preparer and the date; header rows repeat on every printed page, fitted to the width.
* :func:`report_rows` flattens the monthly report (the CLI table, CSV and
  :func:`report_xlsx` show the same rows).

Money is integer VND in every cell (number format with thousands grouping). The list names
people, as a signing list must: only roles allowed to see names get it (``web.py``); it
holds no CCCD.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Alignment, Border, Font, NamedStyle, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.properties import PageSetupProperties
from openpyxl.worksheet.worksheet import Worksheet
from sqlalchemy.engine import Connection

from gateway.api import first_payloads
from gateway.model import VN_TZ
from plugins.social_assistance.month import Month
from plugins.social_assistance.payment_list import PaymentList
from plugins.social_assistance.storage import (
    Domain,
    decision_rows,
    latest_rows,
    list_from_row,
    list_rows,
)

#: integer VND with thousands grouping; [$-42A] tags the cell Vietnamese (LCID 0x042A), so a
#: spreadsheet that honours it shows 1.234.567
VND_FORMAT = "[$-42A]#,##0"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

LIST_COLUMNS: tuple[tuple[str, int], ...] = (
    ("STT", 6),
    ("Họ và tên", 26),
    ("Năm sinh", 9),
    ("Thôn/xã", 24),
    ("Đối tượng", 30),
    ("Mức (đồng/tháng)", 14),
    ("Truy lĩnh", 13),
    ("Chưa nhận", 13),
    ("Tổng", 14),
    ("Ký nhận", 16),
)
#: the row of the column headings (repeated on every printed page)
HEADING_ROW = 7


@dataclass(frozen=True, slots=True)
class ListRow:
    stt: int
    full_name: str
    birth_year: int | None
    place: str
    category: str
    month_amount: int
    arrears: int
    carried: int
    total: int


@dataclass(frozen=True, slots=True)
class ListDocument:
    """One commune's list of one month, as printed."""

    ky: Month
    commune: str
    commune_name: str
    lan_gui: int
    built_at: datetime
    rows: tuple[ListRow, ...]
    total_people: int
    total_amount: int

    @property
    def month_total(self) -> int:
        return sum(r.month_amount for r in self.rows)

    @property
    def arrears_total(self) -> int:
        return sum(r.arrears for r in self.rows)

    @property
    def carried_total(self) -> int:
        return sum(r.carried for r in self.rows)

    @property
    def month_label(self) -> str:
        return f"Tháng {self.ky.month:02d}/{self.ky.year}"

    @property
    def file_name(self) -> str:
        return f"danh-sach-chi-tra-{self.ky}-{self.commune}.xlsx"


# -- reading ------------------------------------------------------------------------------------
def _birth_years(conn: Connection, people: set[str]) -> dict[tuple[str, str], int]:
    """(CCCD, maHoSo) -> year of birth, from the decisions received."""
    out: dict[tuple[str, str], int] = {}
    for row in decision_rows(conn):
        if row.so_dinh_danh not in people:
            continue
        born = str(json.loads(row.payload).get("ngaySinh") or "")
        if len(born) >= 4 and born[:4].isdigit():
            out[(row.so_dinh_danh, row.ma_ho_so)] = int(born[:4])
    return out


def _villages(conn: Connection, dossiers: set[str]) -> dict[str, str]:
    """maHoSo -> the address line (thôn) of the one-stop-shop dossier, where it is known."""
    found: dict[str, str] = {}
    for key, payload in first_payloads(conn, "dossier.received", dossiers).items():
        person = payload.get("ThongTinNguoiNop") if isinstance(payload, dict) else None
        address = person.get("DiaChiChiTiet") if isinstance(person, dict) else None
        if isinstance(address, str) and address.strip():
            found[key] = address.strip()
    return found


def read_list_document(
    conn: Connection, domain: Domain, ky: str, commune: str
) -> ListDocument | None:
    """The latest sending of ``commune``'s list of month ``ky``; None when none was built."""
    rows = latest_rows(list_rows(conn, ky=ky, commune=commune))
    row = rows.get((ky, commune))
    if row is None:
        return None
    payment_list = list_from_row(row)
    people = {line.citizen_id for line in payment_list.lines}
    dossiers = {d for line in payment_list.lines for d in line.dossiers}
    return make_document(
        domain, payment_list, _birth_years(conn, people), _villages(conn, dossiers)
    )


def commune_name(domain: Domain, code: str, month: Month) -> str:
    """The name of the commune with ``code`` in ``month``; else the latest that had it (an old
    commune named on a merged list, maXaCu); else the code itself."""
    units = domain.admin_units
    unit = units.commune(code, month) or next(
        (c for c in reversed(units.communes) if c.code == code), None
    )
    return unit.name if unit is not None else code


def old_commune_name(domain: Domain, code: str, month: Month) -> str:
    """The name of a line's old commune (maXaCu) on a merged list of ``month``: the commune
    that had ``code`` until the merger (a code kept by the new commune names the old one)."""
    ended = [
        c
        for c in domain.admin_units.communes
        if c.code == code and c.until is not None and c.until <= month.first_day
    ]
    if ended:
        return max(ended, key=lambda c: c.until or month.first_day).name
    return commune_name(domain, code, month)


def vi_name(name: str) -> str:
    """A rules name written "Vietnamese (English)": the Vietnamese part, for the documents."""
    if name.endswith(")") and " (" in name:
        return name[: name.rindex(" (")]
    return name


def make_document(
    domain: Domain,
    payment_list: PaymentList,
    birth_years: Mapping[tuple[str, str], int],
    villages: Mapping[str, str],
) -> ListDocument:
    """The printed form of ``payment_list`` (its order and totals)."""
    ky = payment_list.ky
    name = commune_name(domain, payment_list.commune, ky)
    rows = []
    for i, line in enumerate(payment_list.lines, start=1):
        year = next(
            (
                birth_years[(line.citizen_id, d)]
                for d in line.dossiers
                if (line.citizen_id, d) in birth_years
            ),
            None,
        )
        village = next((villages[d] for d in line.dossiers if d in villages), "")
        place_commune = old_commune_name(domain, line.old_commune, ky) if line.old_commune else name
        place = f"{village}, {place_commune}" if village else place_commune
        try:
            category = f"{vi_name(domain.rules.category(line.category).name)} ({line.category})"
        except (KeyError, ValueError):
            category = line.category
        rows.append(
            ListRow(
                stt=i,
                full_name=line.full_name,
                birth_year=year,
                place=place,
                category=category,
                month_amount=line.month_amount,
                arrears=line.arrears_amount,
                carried=line.carried,
                total=line.total,
            )
        )
    return ListDocument(
        ky=ky,
        commune=payment_list.commune,
        commune_name=name,
        lan_gui=payment_list.lan_gui,
        built_at=payment_list.built_at,
        rows=tuple(rows),
        total_people=payment_list.total_people,
        total_amount=payment_list.total_amount,
    )


# -- writing ------------------------------------------------------------------------------------
_THIN = Side(style="thin")
_BOX = Border(left=_THIN, right=_THIN, top=_THIN, bottom=_THIN)
_BOLD = Font(bold=True)
_WRAP = Alignment(wrap_text=True, vertical="top")
_CENTER = Alignment(horizontal="center", vertical="center", wrap_text=True)


def vn_date(when: datetime) -> str:
    day = when.astimezone(VN_TZ)
    return f"ngày {day.day:02d} tháng {day.month:02d} năm {day.year}"


def _print_setup(ws: Worksheet, title_rows: str, *, landscape: bool) -> None:
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.orientation = "landscape" if landscape else "portrait"
    ws.sheet_properties.pageSetUpPr = PageSetupProperties(fitToPage=True)
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0  # as many pages tall as needed
    ws.print_title_rows = title_rows
    ws.page_margins.left = ws.page_margins.right = 0.4
    ws.page_margins.top = ws.page_margins.bottom = 0.6
    ws.print_options.horizontalCentered = True
    footer = ws.HeaderFooter.oddFooter
    if footer is not None:  # a new sheet has one
        footer.center.text = "Trang &P / &N"


TEXT, MONEY = "sa_text", "sa_money"


def _workbook() -> Workbook:
    """A workbook with the two cell styles of the tables (:data:`TEXT`, :data:`MONEY`)."""
    wb = Workbook()
    wb.add_named_style(NamedStyle(name=TEXT, border=_BOX, alignment=_WRAP))
    wb.add_named_style(
        NamedStyle(name=MONEY, border=_BOX, alignment=_WRAP, number_format=VND_FORMAT)
    )
    return wb


def list_xlsx(doc: ListDocument, *, preparer: str, when: datetime) -> bytes:
    """The signing list as an .xlsx (A4 landscape, header rows repeated, fit to width)."""
    wb = _workbook()
    ws = wb.worksheets[0]  # a new workbook has one sheet
    ws.title = f"{doc.ky} {doc.commune}"
    last = get_column_letter(len(LIST_COLUMNS))
    ws["A1"] = f"UBND xã {doc.commune_name} (mã {doc.commune})"
    ws["A1"].font = _BOLD
    ws["F1"] = "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM"
    ws["F1"].font = _BOLD
    ws["F2"] = "Độc lập - Tự do - Hạnh phúc"
    ws.merge_cells(f"A3:{last}3")
    ws["A3"] = "DANH SÁCH CHI TRẢ TRỢ CẤP XÃ HỘI HÀNG THÁNG"
    ws["A3"].font = Font(bold=True, size=14)
    ws["A3"].alignment = _CENTER
    ws.merge_cells(f"A4:{last}4")
    ws["A4"] = (
        f"{doc.month_label} — xã {doc.commune_name} (mã {doc.commune}) — lần gửi {doc.lan_gui}"
    )
    ws["A4"].alignment = _CENTER
    ws["A5"], ws["C5"] = "Tổng số người:", doc.total_people
    ws["E5"], ws["F5"] = "Tổng số tiền (đồng):", doc.total_amount
    ws["F5"].number_format = VND_FORMAT
    for ref in ("A5", "E5"):
        ws[ref].font = _BOLD
    for col, (title, width) in enumerate(LIST_COLUMNS, start=1):
        cell = ws.cell(HEADING_ROW, col, title)
        cell.font, cell.alignment, cell.border = _BOLD, _CENTER, _BOX
        ws.column_dimensions[get_column_letter(col)].width = width
    r = HEADING_ROW
    for row in doc.rows:
        r += 1
        values: Sequence[Any] = (
            row.stt,
            row.full_name,
            row.birth_year,
            row.place,
            row.category,
            row.month_amount,
            row.arrears,
            row.carried,
            row.total,
            None,
        )
        for col, value in enumerate(values, start=1):
            # a named style per cell: setting border, alignment and format one by one hashes
            # each style object again (seconds for a commune of 2,000 lines)
            ws.cell(r, col, value).style = MONEY if 6 <= col <= 9 else TEXT
        ws.row_dimensions[r].height = 30  # room to sign
    r += 1
    ws.cell(r, 1, "Tổng cộng").font = _BOLD
    ws.merge_cells(start_row=r, start_column=1, end_row=r, end_column=5)
    totals = (doc.month_total, doc.arrears_total, doc.carried_total, doc.total_amount)
    for col, value in enumerate(totals, start=6):
        cell = ws.cell(r, col, value)
        cell.number_format, cell.font = VND_FORMAT, _BOLD
    for col in range(1, len(LIST_COLUMNS) + 1):
        ws.cell(r, col).border = _BOX
    r += 2
    ws.cell(r, 7, f"{doc.commune_name}, {vn_date(when)}").font = Font(italic=True)
    r += 1
    ws.cell(r, 2, "Xác nhận của UBND xã").font = _BOLD
    ws.cell(r, 7, "Người lập biểu").font = _BOLD
    r += 4
    ws.cell(r, 7, preparer)
    _print_setup(ws, f"{HEADING_ROW}:{HEADING_ROW}", landscape=True)
    ws.print_area = f"A1:{last}{r}"
    return _save(wb)


def _save(wb: Workbook) -> bytes:
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


# -- the monthly report -----------------------------------------------------------------------
REPORT_COLUMNS = ("section", "key", "lines", "receiving", "amount")
#: which column each total goes in: a count of lines, of people receiving, or VND
_TOTALS: tuple[tuple[str, str], ...] = (
    ("beneficiaries", "receiving"),
    ("total_amount", "amount"),
    ("month_amount", "amount"),
    ("increases", "lines"),
    ("decreases", "lines"),
    ("arrears_amount", "amount"),
    ("arrears_lines", "lines"),
    ("carried_amount", "amount"),
    ("carried_lines", "lines"),
    ("suspension_candidates", "lines"),
    ("paid_amount", "amount"),
    ("unpaid_amount", "amount"),
    ("unpaid_lines", "lines"),
    ("needs_age_decision", "lines"),
)


def report_rows(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The monthly report (``service.monthly``) as rows of :data:`REPORT_COLUMNS`: counts in
    ``lines``/``receiving``, VND in ``amount``; an empty cell where nothing applies."""
    out: list[dict[str, Any]] = []
    for name, column in _TOTALS:
        if data.get(name) is not None:
            out.append({"section": "total", "key": name, column: data[name]})
    for section in ("by_category", "by_commune"):
        for key, t in data.get(section, {}).items():
            out.append(
                {
                    "section": section,
                    "key": key,
                    "lines": t["lines"],
                    "receiving": t["receiving"],
                    "amount": t["amount"],
                }
            )
    tl = data["timeliness"]
    out.append({"section": "timeliness", "key": "overdue", "lines": tl["overdue"]})
    out.append(
        {
            "section": "timeliness",
            "key": "arrears_from_lateness",
            "lines": tl["arrears_from_lateness_months"],
            "amount": tl["arrears_from_lateness_vnd"],
        }
    )
    return out


_SECTION_VI = {
    "total": "Tổng hợp",
    "by_category": "Theo đối tượng",
    "by_commune": "Theo xã",
    "timeliness": "Thời hạn giải quyết",
}


def report_xlsx(
    data: Mapping[str, Any],
    month: Month,
    *,
    names: Mapping[str, Mapping[str, str]],
    preparer: str,
    when: datetime,
) -> bytes:
    """The monthly report as an .xlsx: the rows of :func:`report_rows`, with the category
    and commune names beside their codes (``names[section][key]``)."""
    wb = _workbook()
    ws = wb.worksheets[0]
    ws.title = f"Báo cáo {month}"
    ws.merge_cells("A1:F1")
    ws["A1"] = f"BÁO CÁO CHI TRẢ TRỢ CẤP XÃ HỘI — Tháng {month.month:02d}/{month.year}"
    ws["A1"].font = Font(bold=True, size=13)
    ws["A1"].alignment = _CENTER
    heading = (
        "Mục (section)",
        "Mã (key)",
        "Tên",
        "Số dòng (lines)",
        "Số người nhận (receiving)",
        "Số tiền, đồng (amount)",
    )
    for col, (title, width) in enumerate(zip(heading, (20, 24, 40, 14, 18, 18), strict=True), 1):
        cell = ws.cell(3, col, title)
        cell.font, cell.alignment, cell.border = _BOLD, _CENTER, _BOX
        ws.column_dimensions[get_column_letter(col)].width = width
    r = 3
    for row in report_rows(data):
        r += 1
        section = str(row["section"])
        values = (
            _SECTION_VI.get(section, section),
            row["key"],
            names.get(section, {}).get(str(row["key"])) or None,
            row.get("lines"),
            row.get("receiving"),
            row.get("amount"),
        )
        for col, value in enumerate(values, start=1):
            ws.cell(r, col, value).style = MONEY if col >= 4 else TEXT
    r += 2
    ws.cell(r, 4, vn_date(when)).font = Font(italic=True)
    r += 1
    ws.cell(r, 4, "Người lập biểu").font = _BOLD
    r += 3
    ws.cell(r, 4, preparer)
    _print_setup(ws, "3:3", landscape=False)
    return _save(wb)


def report_names(
    domain: Domain, data: Mapping[str, Any], month: Month
) -> dict[str, dict[str, str]]:
    """Names for the report's codes: categories from the rules, communes from admin units."""
    categories = {}
    for code in data.get("by_category", {}):
        try:
            categories[code] = vi_name(domain.rules.category(code).name)
        except (KeyError, ValueError):
            categories[code] = ""
    communes = {code: commune_name(domain, code, month) for code in data.get("by_commune", {})}
    return {"by_category": categories, "by_commune": communes}
