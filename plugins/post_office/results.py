"""Reading the payer's results, ``KetQuaChiTra`` (FORMATS.md §3.2), into messages.

One ``payment.results`` message per result line:

* ``external_id`` = ``"{ky}:{maXa}:{P}:{loaiDoiTuong or ''}"`` (a carer's ``cs``
  line and the carer's own line are different results);
* ``ref`` = ``P``; ``dossier_key`` = ``"{maXa}:{P}"``, where ``P`` is the soDinhDanh's
  keyed pseudonym (:func:`gateway.pseudonym.pseudonym`, ``********1234-<16 hex>``): no key,
  reference or label holds a full CCCD, and the same person always gets the same one;
* ``payload`` = ``{"ky", "maXa"}`` plus every attribute the line carries, as the wire
  strings, except ``soTien`` which is an ``int`` (whole VND). Absent optional attributes
  are absent from the payload (never ``None``).

A body that is not XML, is hostile (DOCTYPE, too deep, too large), is not a ``KetQuaChiTra``
or whose own attributes are invalid raises :class:`BadRequest`. Lines that fail the XSD or
the checks below are :class:`Rejection` items (``ref`` is ``dong-N``, the line's number,
followed by the masked soDinhDanh when it has the form of one: ``dong-3:********1234``); the
good lines beside them are accepted:

* ``soDinhDanh`` must be a valid CCCD (``validate_cccd``);
* ``da_chi`` (paid) needs ``soTien > 0`` and ``ngayChi``; ``chua_chi`` (unpaid) needs
  ``soTien = 0``;
* one result per person and ``loaiDoiTuong`` in a document; a repeated line is refused.
"""

from __future__ import annotations

import re

from lxml import etree

from gateway.api import mask_id, pseudonym
from gateway.model import BadRequest, Message, ParseResult, Rejection
from gateway.xmlsafe import XmlError, parse_xml
from plugins.post_office.wire import DONG, KET_QUA_CHI_TRA, NS, RESULT_ATTRS, locate_errors
from plugins.vn_common.cccd import CccdError, validate_cccd

EVENT = "payment.results"
_CCCD = re.compile(r"\d{12}")
_MAX_REPORTED = 10


def parse_results(body: bytes) -> ParseResult:
    """Messages for the good result lines, rejections for the bad ones."""
    try:
        root = parse_xml(body)
    except XmlError as exc:
        raise BadRequest(f"không đọc được XML (cannot read the XML): {exc}") from None
    if root.tag != KET_QUA_CHI_TRA:
        raise BadRequest(
            f"phần tử gốc phải là KetQuaChiTra ({NS}), không phải {_describe(root)} "
            f"(the root element must be KetQuaChiTra in {NS}, not {_describe(root)})"
        )
    doc_errors, line_errors = locate_errors(root)
    if doc_errors:
        raise BadRequest(
            "KetQuaChiTra không hợp lệ (invalid KetQuaChiTra): "
            + "; ".join(doc_errors[:_MAX_REPORTED])
        )
    ky, ma_xa = root.get("ky", ""), root.get("maXa", "")
    result = ParseResult()
    seen: set[tuple[str, str]] = set()
    lines = (child for child in root if child.tag == DONG)
    for index, line in enumerate(lines):
        cccd = line.get("soDinhDanh", "")
        key = (cccd, line.get("loaiDoiTuong", ""))
        errors = line_errors.get(index) or _check_line(line)
        if not errors and key in seen:
            errors = [
                "dòng trùng: người này (và loaiDoiTuong) đã có kết quả trong tài liệu "
                "(duplicate line: this person and loaiDoiTuong already have a result here)"
            ]
        if errors:
            ref = f"dong-{index + 1}" + (f":{mask_id(cccd)}" if _CCCD.fullmatch(cccd) else "")
            result.rejected.append(
                Rejection(ref=ref, errors=tuple(f"dòng {index + 1}: {e}" for e in errors))
            )
            continue
        seen.add(key)
        result.messages.append(_message(ky, ma_xa, line))
    return result


def _describe(root: etree._Element) -> str:
    name = etree.QName(root)
    local = name.localname[:40]
    return f"{{{name.namespace[:60]}}}{local}" if name.namespace else local


#: 15 digits: 999 trillion VND, far beyond any one person's payment
MAX_AMOUNT_DIGITS = 15


def _check_line(line: etree._Element) -> list[str]:
    """Checks the XSD cannot express (the line already passed the XSD)."""
    errors: list[str] = []
    try:
        validate_cccd(line.get("soDinhDanh", ""))
    except CccdError as exc:
        errors.append(f"thuộc tính soDinhDanh: {exc}")
    raw_amount = line.get("soTien", "0")
    if len(raw_amount) > MAX_AMOUNT_DIGITS:  # no payment is that large; int() would refuse it
        errors.append("soTien: số tiền quá lớn (the amount is implausibly large)")
        return errors
    amount = int(raw_amount)
    if line.get("trangThai") == "da_chi":
        if amount <= 0:
            errors.append(
                "trangThai da_chi cần soTien > 0 (a paid line needs soTien greater than 0)"
            )
        if line.get("ngayChi") is None:
            errors.append("trangThai da_chi cần ngayChi (a paid line needs ngayChi)")
    elif amount != 0:
        errors.append("trangThai chua_chi cần soTien = 0 (an unpaid line needs soTien 0)")
    return errors


def _message(ky: str, ma_xa: str, line: etree._Element) -> Message:
    cccd = line.get("soDinhDanh", "")
    payload: dict[str, str | int] = {"ky": ky, "maXa": ma_xa}
    for name in RESULT_ATTRS:
        value = line.get(name)
        if value is not None:
            payload[name] = int(value) if name == "soTien" else value
    person = pseudonym(cccd)
    return Message(
        event=EVENT,
        external_id=f"{ky}:{ma_xa}:{person}:{line.get('loaiDoiTuong', '')}",
        payload=payload,
        dossier_key=f"{ma_xa}:{person}",
        ref=person,
    )
