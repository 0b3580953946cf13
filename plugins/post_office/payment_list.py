"""Building the monthly payment list, ``DanhSachChiTra`` (FORMATS.md §3.1).

Input is the ``payment.list`` payload the social-assistance plugin builds::

    {"ky": "2020-09", "maXa": "02053", "lanGui": 1, "lapLuc": "2020-08-24T10:00:00+07:00",
     "lines": [{"soDinhDanh", "hoTen", "loaiDoiTuong", "mucDoKhuyetTat"?, "soTienThang",
                "soTienTruyLinh", "truyLinhTu"?, "truyLinhDen"?, "soTienChuaNhan",
                "nhanTien", "bienDong", "maXaCu"?}],
     "tongSoNguoi"?: int, "tongSoTien"?: int}

Rules: money (and ``lanGui``, the totals) is a non-negative whole number of VND, given as a
JSON integer or a string of ASCII digits; floats, decimals, signs and booleans are refused.
Optional attributes that are absent, ``null`` or ``""`` are left out (an empty
``mucDoKhuyetTat`` means none). Keys of a line not in the format are ignored. Totals are
computed when absent and must agree when present. The document is validated against the XSD
before it leaves; anything wrong is a :class:`PermanentError` naming the line (position and
masked CCCD) and the attribute.

The list is built in one pass with lxml (linear in the number of lines; a few thousand lines
take milliseconds).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from lxml import etree

from gateway.model import PermanentError
from gateway.xmlsafe import to_bytes
from plugins.post_office.wire import (
    DANH_SACH_CHI_TRA,
    DONG,
    LINE_ATTRS,
    LINE_MONEY,
    LINE_OPTIONAL,
    NSMAP,
    line_label,
    locate_errors,
    mask_digits,
)

_MAX_REPORTED = 5


@dataclass(frozen=True, slots=True)
class PaymentList:
    """A rendered, validated list and the facts needed to classify the payer's answer."""

    body: bytes
    ky: str
    ma_xa: str
    lan_gui: int
    so_dong: int
    tong_so_tien: int


def render_payment_list(payload: Any) -> PaymentList:
    """Build and validate ``DanhSachChiTra``; raise :class:`PermanentError` if it cannot be."""
    if not isinstance(payload, Mapping):
        raise PermanentError(
            "payload của payment.list phải là đối tượng JSON "
            "(the payment.list payload must be a JSON object)"
        )
    ky = _text(payload, "ky")
    ma_xa = _text(payload, "maXa")
    lan_gui = _whole(payload.get("lanGui"), "lanGui")
    lap_luc = _timestamp(payload.get("lapLuc"))
    lines = payload.get("lines")
    if not isinstance(lines, Sequence) or isinstance(lines, str | bytes):
        raise PermanentError("thiếu danh sách lines (lines must be a list)")

    root = etree.Element(DANH_SACH_CHI_TRA, nsmap=NSMAP)
    # totals are filled in after the lines; setting an existing attribute keeps its place
    head = {"ky": ky, "maXa": ma_xa, "lanGui": str(lan_gui), "tongSoNguoi": "0"}
    head |= {"tongSoTien": "0", "lapLuc": lap_luc}
    _set_attributes(root, head, "DanhSachChiTra")
    total = 0
    for index, line in enumerate(lines):
        attrs, amount = _line_attributes(index, line)
        total += amount
        try:
            etree.SubElement(root, DONG, attrs)
        except ValueError:  # lxml refuses control characters and the like
            raise PermanentError(
                f"{line_label(index, attrs.get('soDinhDanh'))}: có ký tự XML không cho phép "
                "(a value holds characters XML cannot carry)"
            ) from None
    _check_totals(payload, len(lines), total)
    root.set("tongSoNguoi", str(len(lines)))
    root.set("tongSoTien", str(total))
    _validate(root, lines)
    return PaymentList(to_bytes(root), ky, ma_xa, lan_gui, len(lines), total)


def _text(payload: Mapping[str, Any], name: str) -> str:
    value = payload.get(name)
    if not isinstance(value, str) or not value:
        raise PermanentError(f"thiếu {name} ({name} is missing or not a string)")
    return unicodedata.normalize("NFC", value)


def _whole(value: Any, name: str, where: str = "") -> int:
    """A non-negative whole number: a JSON integer or a string of ASCII digits."""
    prefix = f"{where}: " if where else ""
    if value is None:
        raise PermanentError(f"{prefix}thiếu {name} ({name} is missing)")
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    shown = mask_digits(repr(value)[:40])
    raise PermanentError(
        f"{prefix}{name} phải là số nguyên không âm, không có phần thập phân "
        f"({name} must be a non-negative whole number, got {type(value).__name__} {shown})"
    )


def _timestamp(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise PermanentError("thiếu lapLuc (lapLuc is missing)")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise PermanentError(
            f"lapLuc không phải thời điểm ISO 8601 (lapLuc is not an ISO 8601 timestamp: "
            f"{value[:40]!r})"
        ) from None
    if moment.tzinfo is None:
        raise PermanentError("lapLuc phải có múi giờ (lapLuc must carry its UTC offset)")
    return moment.isoformat()


def _line_attributes(index: int, line: Any) -> tuple[dict[str, str], int]:
    """The attributes of one ``Dong`` in wire order, and the line's amount due."""
    if not isinstance(line, Mapping):
        raise PermanentError(
            f"dòng {index + 1}: phải là đối tượng JSON (line {index + 1} must be a JSON object)"
        )
    label = line_label(index, line.get("soDinhDanh"))
    attrs: dict[str, str] = {}
    amount = 0
    for name in LINE_ATTRS:
        value = line.get(name)
        if name in LINE_MONEY:
            money = _whole(value, name, label)
            attrs[name] = str(money)
            amount += money
        elif value is None or value == "":
            if name not in LINE_OPTIONAL:
                raise PermanentError(f"{label}: thiếu {name} ({name} is missing)")
        elif isinstance(value, str):
            attrs[name] = unicodedata.normalize("NFC", value)
        else:
            raise PermanentError(
                f"{label}: {name} phải là chuỗi ({name} must be a string, "
                f"got {type(value).__name__})"
            )
    since, until = attrs.get("truyLinhTu"), attrs.get("truyLinhDen")
    if since and until and since > until:
        raise PermanentError(
            f"{label}: truyLinhTu {since} sau truyLinhDen {until} "
            f"(arrears start {since} is after their end {until})"
        )
    return attrs, amount


def _check_totals(payload: Mapping[str, Any], count: int, total: int) -> None:
    problems_vi: list[str] = []
    problems_en: list[str] = []
    if payload.get("tongSoNguoi") is not None:
        given = _whole(payload["tongSoNguoi"], "tongSoNguoi")
        if given != count:
            problems_vi.append(f"tongSoNguoi {given} ≠ {count} dòng")
            problems_en.append(f"tongSoNguoi is {given} but the list has {count} lines")
    if payload.get("tongSoTien") is not None:
        given = _whole(payload["tongSoTien"], "tongSoTien")
        if given != total:
            problems_vi.append(f"tongSoTien {given} ≠ tổng các dòng {total}")
            problems_en.append(f"tongSoTien is {given} but the lines add up to {total}")
    if problems_vi:
        raise PermanentError(
            f"tổng không khớp: {'; '.join(problems_vi)} "
            f"(totals do not add up: {'; '.join(problems_en)})"
        )


def _set_attributes(element: etree._Element, attrs: Mapping[str, str], where: str) -> None:
    try:
        for name, value in attrs.items():
            element.set(name, value)
    except ValueError:
        raise PermanentError(
            f"{where}: có ký tự XML không cho phép (a value holds characters XML cannot carry)"
        ) from None


def _validate(root: etree._Element, lines: Sequence[Any]) -> None:
    doc_errors, line_errors = locate_errors(root)
    if doc_errors:
        raise PermanentError(
            "danh sách chi trả không đúng XSD (the payment list does not match the XSD): "
            + "; ".join(doc_errors[:_MAX_REPORTED])
        )
    if not line_errors:
        return
    parts = [
        f"{line_label(index, lines[index].get('soDinhDanh'))}: {'; '.join(errors)}"
        for index, errors in list(line_errors.items())[:_MAX_REPORTED]
    ]
    more = len(line_errors) - len(parts)
    if more > 0:
        parts.append(f"… và {more} dòng khác (and {more} more lines)")
    raise PermanentError(
        "danh sách chi trả không đúng XSD (the payment list does not match the XSD): "
        + " | ".join(parts)
    )
