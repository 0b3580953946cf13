"""The post-office XML profile (FORMATS.md §3): names, the XSD, and readable, masked errors.

Shared by the connector and the simulator. Error texts are Vietnamese first with the English
in parentheses, name the attribute at fault, and never carry a full citizen ID (CCCD) or a
full name: values are masked before they reach an exception, a log or an answer.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from lxml import etree

from gateway.xmlsafe import load_schema, schema_errors, to_bytes
from plugins.vn_common.cccd import mask_cccd
from plugins.vn_common.names import mask_name

NS = "urn:vn:btxh:chitra:1"
SCHEMA_PATH = Path(__file__).parent / "schemas" / "chitra.xsd"
#: the profile's namespace as the default one (lxml-stubs do not allow the ``None`` key)
NSMAP: Any = {None: NS}


def qname(local: str) -> str:
    """``Dong`` -> ``{urn:vn:btxh:chitra:1}Dong`` (lxml's Clark notation)."""
    return f"{{{NS}}}{local}"


DANH_SACH_CHI_TRA = qname("DanhSachChiTra")
KET_QUA_CHI_TRA = qname("KetQuaChiTra")
DONG = qname("Dong")
TIEP_NHAN = qname("TiepNhan")
LOI = qname("Loi")

#: attribute order of the payment list and its lines, as FORMATS.md §3.1 writes them
LIST_ATTRS = ("ky", "maXa", "lanGui", "tongSoNguoi", "tongSoTien", "lapLuc")
LINE_ATTRS = (
    "soDinhDanh",
    "hoTen",
    "loaiDoiTuong",
    "mucDoKhuyetTat",
    "soTienThang",
    "soTienTruyLinh",
    "truyLinhTu",
    "truyLinhDen",
    "soTienChuaNhan",
    "nhanTien",
    "bienDong",
    "maXaCu",
)
LINE_MONEY = ("soTienThang", "soTienTruyLinh", "soTienChuaNhan")
LINE_OPTIONAL = frozenset({"mucDoKhuyetTat", "truyLinhTu", "truyLinhDen", "maXaCu"})
#: attribute order of a result line (FORMATS.md §3.2)
RESULT_ATTRS = ("soDinhDanh", "trangThai", "soTien", "ngayChi", "nhanTien", "lyDo", "loaiDoiTuong")

_NS_PREFIX = re.compile(r"\{" + re.escape(NS) + r"\}")
_ATTR_ERROR = re.compile(
    r"^Element '(?P<el>[^']*)', attribute '(?P<attr>[^']*)': (?P<rest>.*)$", re.S
)
_MISSING = re.compile(r"^Element '(?P<el>[^']*)': The attribute '(?P<attr>[^']*)' is required")
_THE_VALUE = re.compile(r"The value '(?P<v>.*?)'(?= (?:is|has) )", re.S)
_LEADING_VALUE = re.compile(r"^'(?P<v>.*?)'(?= is not a valid value)", re.S)
_LONG_DIGITS = re.compile(r"\d{9,}")
_LINE_PREFIX = re.compile(r"^line [^:]*: ")
_MAX_VALUE_CHARS = 40


def schema() -> etree.XMLSchema:
    """The profile's XSD (loaded once, through the hardened loader)."""
    return load_schema(SCHEMA_PATH)


def mask_value(attr: str, value: str) -> str:
    """A value as it may appear in an error: CCCDs masked, names as initials, long text cut."""
    if attr == "soDinhDanh":
        return mask_cccd(value)
    if attr == "hoTen":
        return mask_name(value)
    if len(value) > _MAX_VALUE_CHARS:
        value = value[:_MAX_VALUE_CHARS] + "…"
    return mask_digits(value)


def mask_digits(text: str) -> str:
    """Mask every run of 9+ digits (anything that could be a CCCD) in free text."""
    return _LONG_DIGITS.sub(lambda m: mask_cccd(m.group()), text)


def explain_xsd_error(message: str) -> str:
    """Turn one libxml2 schema message into a readable, masked, bilingual error."""
    message = _NS_PREFIX.sub("", " ".join(message.split()))
    missing = _MISSING.match(message)
    if missing:
        attr = missing["attr"]
        return f"thiếu thuộc tính {attr} (attribute {attr} is required but missing)"
    found = _ATTR_ERROR.match(message)
    if not found:
        return f"không đúng lược đồ XSD (does not match the XSD: {mask_digits(message)})"
    attr, rest = found["attr"], found["rest"]
    if rest.startswith("The attribute") and "is not allowed" in rest:
        return f"thuộc tính {attr} không được phép (attribute {attr} is not allowed)"

    def masked(m: re.Match[str]) -> str:
        return m.group().replace(f"'{m['v']}'", f"'{mask_value(attr, m['v'])}'", 1)

    rest = _LEADING_VALUE.sub(masked, _THE_VALUE.sub(masked, rest))
    return f"thuộc tính {attr} không hợp lệ (attribute {attr} is invalid: {mask_digits(rest)})"


def xsd_errors(element: etree._Element) -> list[str]:
    """Validate ``element`` against the profile; readable, masked errors (empty when valid)."""
    errors = schema_errors(schema(), element)
    return _dedupe(explain_xsd_error(_LINE_PREFIX.sub("", error)) for error in errors)


def _dedupe(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def locate_errors(root: etree._Element) -> tuple[list[str], dict[int, list[str]]]:
    """Validate a whole document; say what is wrong with the document and with which lines.

    :returns: ``(document_errors, {index of the Dong among the Dong lines: errors})``.
        Both empty when the document is valid. When the document-level part (the root's
        attributes, stray elements or text) is wrong, the line map is left empty: the
        document cannot be read as a batch at all.

    The whole document is validated first (one pass, the usual case); only when it fails
    is each ``Dong`` validated alone inside a copy of the root with no other lines, so a
    bad line is found even when the document is written on a single line.
    """
    if not xsd_errors(root):
        return [], {}
    attrs = {str(name): str(value) for name, value in root.attrib.items()}
    shell = etree.Element(root.tag, attrib=attrs, nsmap=NSMAP)
    doc_errors = xsd_errors(shell)
    if (root.text or "").strip():
        doc_errors.append("văn bản không được phép ở đây (text is not allowed here)")
    lines: list[etree._Element] = []
    for child in root:
        if not isinstance(child.tag, str):  # comments
            pass
        elif child.tag == DONG:
            lines.append(child)
        else:
            local = etree.QName(child).localname
            doc_errors.append(
                f"phần tử {local} không được phép ở đây (element {local} is not allowed here)"
            )
        if (child.tail or "").strip():
            doc_errors.append("văn bản không được phép ở đây (text is not allowed here)")
    if doc_errors:
        return _dedupe(doc_errors), {}
    per_line: dict[int, list[str]] = {}
    for index, line in enumerate(lines):
        alone = copy.deepcopy(line)
        alone.tail = None
        shell.append(alone)
        errors = xsd_errors(shell)
        shell.remove(alone)
        if errors:
            per_line[index] = errors
    if not per_line:  # cannot happen with this XSD; never let an invalid document through
        return xsd_errors(root), {}
    return [], per_line


def line_label(index: int, cccd: object) -> str:
    """How an error names a line: its position (1-based) and masked CCCD."""
    shown = mask_cccd(cccd) if isinstance(cccd, str) and cccd else "?"
    return f"dòng {index + 1} ({shown})"


def loi_body(code: str, reason: str) -> bytes:
    """An error answer ``<Loi ma="...">reason</Loi>`` (used by the simulator)."""
    loi = etree.Element(LOI, ma=code, nsmap=NSMAP)
    loi.text = reason
    return to_bytes(loi)
