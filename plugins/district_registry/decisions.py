"""Decisions pushed by the registry (FORMATS.md §2.2): ``QuyetDinh`` / ``DanhSachQuyetDinh``.

Each decision is checked on its own — the XSD, then what XSD 1.0 cannot say — so one bad
decision in a batch is rejected while the good ones beside it go on.
"""

from __future__ import annotations

from datetime import date

from lxml import etree

from gateway.model import BadRequest, Message, ParseResult, Rejection
from plugins.vn_common.cccd import CccdError, validate_cccd

from .wire import NS, nfc, q, readable_schema_errors

EVENT_DECISION = "decision.issued"
DEFAULT_NHAN_TIEN = "tai_diem"

#: attributes each kind of decision needs beyond the always-required ones (XSD 1.0 cannot
#: make an attribute's use depend on another attribute's value)
REQUIRED_BY_LOAI: dict[str, tuple[str, ...]] = {
    "huong": ("loaiDoiTuong", "heSo", "mucChuan", "soTienThang"),
    "dieu_chinh": ("loaiDoiTuong", "heSo", "mucChuan", "soTienThang"),
    "tam_dung": (),
    "tiep_tuc": (),
    "thoi_huong": (),
}

_LOAI_VI = {
    "huong": "quyết định hưởng",
    "dieu_chinh": "quyết định điều chỉnh",
}


def read_decisions(root: etree._Element) -> ParseResult:
    """Messages for the valid decisions under ``root``, rejections for the others.

    Raises :class:`BadRequest` when ``root`` is neither ``QuyetDinh`` nor a non-empty
    ``DanhSachQuyetDinh`` of the registry namespace.
    """
    if root.tag == q("QuyetDinh"):
        decisions = [root]
    elif root.tag == q("DanhSachQuyetDinh"):
        decisions = [child for child in root if isinstance(child.tag, str)]
        if not decisions:
            raise BadRequest(
                "DanhSachQuyetDinh không có quyết định nào (the batch holds no QuyetDinh)"
            )
    else:
        raise BadRequest(
            "phần tử gốc phải là QuyetDinh hoặc DanhSachQuyetDinh "
            f"(the root element must be QuyetDinh or DanhSachQuyetDinh in namespace {NS}, "
            f"not {_describe(root)})"
        )
    result = ParseResult()
    for node in decisions:
        ref = node.get("so") or "?"
        if node.tag != q("QuyetDinh"):
            result.rejected.append(
                Rejection(
                    ref=ref,
                    errors=(
                        "phần tử không mong đợi trong DanhSachQuyetDinh "
                        f"(unexpected element {_describe(node)}; expected QuyetDinh)",
                    ),
                )
            )
            continue
        errors = decision_errors(node)
        if errors:
            result.rejected.append(Rejection(ref=nfc(ref), errors=tuple(errors)))
        else:
            result.messages.append(decision_message(node))
    return result


def _describe(node: etree._Element) -> str:
    qname = etree.QName(node)
    return f"{qname.localname} in {qname.namespace}" if qname.namespace else qname.localname


def decision_errors(node: etree._Element) -> list[str]:
    """Everything wrong with one ``QuyetDinh`` (empty when it is valid)."""
    errors = readable_schema_errors(node)
    loai = node.get("loai", "")
    for attribute in REQUIRED_BY_LOAI.get(loai, ()):
        if node.get(attribute) is None:
            errors.append(
                f"{attribute}: bắt buộc với {_LOAI_VI.get(loai, loai)} "
                f"(required when loai is {loai})"
            )
    cccd_error = _cccd_mismatch(node)
    if cccd_error and not any(e.startswith("soDinhDanh:") for e in errors):
        errors.append(f"soDinhDanh: {cccd_error}")
    return errors


def _cccd_mismatch(node: etree._Element) -> str | None:
    """Does the CCCD agree with the birth date (and sex, when given)?"""
    cccd = node.get("soDinhDanh", "")
    try:
        birth = date.fromisoformat(node.get("ngaySinh", ""))
    except ValueError:
        birth = None  # the XSD has already said what is wrong with ngaySinh
    sex = node.get("gioiTinh")
    female = {"nu": True, "nam": False}.get(sex) if sex else None
    try:
        validate_cccd(cccd, birth_date=birth, female=female)
    except CccdError as exc:
        return str(exc)
    return None


def decision_message(node: etree._Element) -> Message:
    """A valid ``QuyetDinh`` as a message: every attribute as a string, named as in XML."""
    payload = {str(name): nfc(str(value)) for name, value in node.attrib.items()}
    payload.setdefault("nhanTien", DEFAULT_NHAN_TIEN)
    number = payload["so"]
    return Message(
        event=EVENT_DECISION,
        external_id=number,
        ref=number,
        dossier_key=payload["maHoSo"],
        payload=payload,
    )


__all__ = [
    "DEFAULT_NHAN_TIEN",
    "EVENT_DECISION",
    "REQUIRED_BY_LOAI",
    "decision_errors",
    "decision_message",
    "read_decisions",
]
