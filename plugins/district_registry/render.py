"""Documents the gateway sends to the registry (FORMATS.md §2.1, §2.3).

* ``dossier.received`` (a DongBoHoSoMC item from the one-stop-shop, FORMATS.md §1.1)
  -> ``HoSoTroCap``, ``POST {base_url}/ho-so``;
* ``payment.suspension_candidates`` -> ``DeNghiTamDung``, ``POST {base_url}/de-nghi-tam-dung``.

Every document is validated against the XSD before it leaves; a message that cannot be
expressed is a :class:`PermanentError` whose reason names the field (never a person).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from lxml import etree

from gateway.model import VN_TZ, Message, OutboundRequest, PermanentError
from gateway.xmlsafe import to_bytes

from .wire import CONTENT_TYPE, NS, element, nfc, readable_schema_errors, schema

EVENT_DOSSIER = "dossier.received"
EVENT_SUSPENSION = "payment.suspension_candidates"
KIND_DOSSIER = "ho-so"
KIND_SUSPENSION = "de-nghi-tam-dung"

_GIOI_TINH = {"1": "nam", "2": "nu"}


def _field(data: Mapping[str, Any], name: str, *, where: str = "") -> str:
    """A required text field of the one-stop-shop's dossier."""
    value = data.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        path = f"{where}.{name}" if where else name
        raise PermanentError(f"{path}: thiếu trường bắt buộc (required field is missing)")
    return str(value).strip()


def _optional(data: Mapping[str, Any], name: str) -> str | None:
    value = data.get(name)
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _digits(value: str, n: int) -> bool:
    return len(value) == n and value.isascii() and value.isdigit()


def _moment(value: str) -> datetime:
    """Fourteen ASCII digits as a naive datetime (ValueError when a field is out of range).

    They leave ``strptime`` one reading (every field two digits): the same result or the same
    ValueError, at a tenth of the cost."""
    return datetime(
        int(value[:4]),
        int(value[4:6]),
        int(value[6:8]),
        int(value[8:10]),
        int(value[10:12]),
        int(value[12:14]),
    )


def _timestamp(value: str, name: str) -> datetime:
    """``yyyyMMddHHmmss`` in Asia/Ho_Chi_Minh -> an aware datetime."""
    try:
        if _digits(value, 14):
            return _moment(value).replace(tzinfo=VN_TZ)
        return datetime.strptime(value, "%Y%m%d%H%M%S").replace(tzinfo=VN_TZ)
    except ValueError:
        raise PermanentError(f"{name}: thời điểm không hợp lệ (expected yyyyMMddHHmmss)") from None


def _date(value: str, name: str) -> date:
    """``yyyyMMdd`` (or a full ``yyyyMMddHHmmss`` timestamp) -> a date."""
    try:
        if _digits(value, 14):
            return _moment(value).date()
        if _digits(value, 8):
            return date(int(value[:4]), int(value[4:6]), int(value[6:8]))
        pattern = "%Y%m%d%H%M%S" if len(value) == 14 else "%Y%m%d"
        return datetime.strptime(value, pattern).date()
    except ValueError:
        raise PermanentError(f"{name}: ngày không hợp lệ (expected yyyyMMdd)") from None


def _mapping(value: Any, name: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise PermanentError(f"{name}: phải là một đối tượng (must be an object)")
    return value


#: one element of a document as plain data: tag, attributes (None: left out), text
Node = tuple[str, dict[str, str | None], str | None]


def _ho_so_nodes(dossier: Mapping[str, Any], revision: int) -> list[Node]:
    """The ``HoSoTroCap`` for one DongBoHoSoMC item as plain data, every field checked:
    the root, ``DoiTuong``, its ``DiaChi``, ``DeNghi``, then one ``TaiLieu`` per document."""
    nguoi_nop = _mapping(dossier.get("ThongTinNguoiNop"), "ThongTinNguoiNop")
    de_nghi = _mapping(dossier.get("DeNghiTroCap"), "DeNghiTroCap")
    gioi_tinh_code = _optional(nguoi_nop, "GioiTinh")
    gioi_tinh = None
    if gioi_tinh_code is not None:
        if gioi_tinh_code not in _GIOI_TINH:
            raise PermanentError(
                "ThongTinNguoiNop.GioiTinh: phải là 1 (nam) hoặc 2 (nữ) (must be 1 or 2)"
            )
        gioi_tinh = _GIOI_TINH[gioi_tinh_code]
    hen_tra = _optional(dossier, "NgayHenTra")
    tai_lieu = dossier.get("TaiLieuNop") or []
    if not isinstance(tai_lieu, list):
        raise PermanentError("TaiLieuNop: phải là một danh sách (must be a list)")

    nodes: list[Node] = [
        (
            "HoSoTroCap",
            {
                "maHoSo": _field(dossier, "MaHoSo"),
                "lanCapNhat": str(revision),
                "maTTHC": _field(dossier, "MaTTHC"),
                "ngayTiepNhan": _timestamp(
                    _field(dossier, "NgayTiepNhan"), "NgayTiepNhan"
                ).isoformat(timespec="seconds"),
                "ngayHenTra": _date(hen_tra, "NgayHenTra").isoformat() if hen_tra else None,
            },
            None,
        )
    ]
    where = "ThongTinNguoiNop"
    nodes.append(
        (
            "DoiTuong",
            {
                "soDinhDanh": _field(nguoi_nop, "SoDinhDanh", where=where),
                "hoTen": _field(nguoi_nop, "TenNguoiNop", where=where),
                "ngaySinh": _date(
                    _field(nguoi_nop, "NgaySinh", where=where), f"{where}.NgaySinh"
                ).isoformat(),
                "gioiTinh": gioi_tinh,
            },
            None,
        )
    )
    nodes.append(
        (
            "DiaChi",
            {
                "maTinh": _field(nguoi_nop, "MaTinh", where=where),
                "maHuyen": _field(nguoi_nop, "MaHuyen", where=where),
                "maXa": _field(nguoi_nop, "MaXa", where=where),
            },
            str(nguoi_nop.get("DiaChiChiTiet") or ""),
        )
    )
    nodes.append(
        (
            "DeNghi",
            {
                "loaiDoiTuong": _field(de_nghi, "LoaiDoiTuong", where="DeNghiTroCap"),
                "mucDoKhuyetTat": str(de_nghi.get("MucDoKhuyetTat") or "").strip(),
                "nhanTien": _optional(de_nghi, "DiaChiNhanTien"),
            },
            None,
        )
    )
    for index, item in enumerate(tai_lieu):
        tep = _mapping(item, f"TaiLieuNop[{index}]")
        if str(tep.get("IsDeleted", "")).strip().lower() == "true":
            continue
        nodes.append(
            (
                "TaiLieu",
                {
                    "ten": _field(tep, "TenTepDinhKem", where=f"TaiLieuNop[{index}]"),
                    "duongDan": _field(tep, "DuongDanTaiTepTin", where=f"TaiLieuNop[{index}]"),
                },
                None,
            )
        )
    return nodes


def _ho_so_tree(nodes: list[Node]) -> etree._Element:
    (tag, attributes, text), *rest = nodes
    root = element(tag, attributes, text=text)
    doi_tuong = root
    for tag, attributes, text in rest:
        parent = doi_tuong if tag == "DiaChi" else root
        node = element(tag, attributes, text=text, parent=parent)
        if tag == "DoiTuong":
            doi_tuong = node
    return root


def build_ho_so(dossier: Mapping[str, Any], revision: int) -> etree._Element:
    """The ``HoSoTroCap`` for one DongBoHoSoMC item at revision ``revision``."""
    return _ho_so_tree(_ho_so_nodes(dossier, revision))


#: what lxml writes for these characters (attribute values; text escapes only ``&<>`` and CR)
_ATTRIBUTE_ESCAPES = str.maketrans(
    {
        "&": "&amp;",
        "<": "&lt;",
        ">": "&gt;",
        '"': "&quot;",
        "\n": "&#10;",
        "\r": "&#13;",
        "\t": "&#9;",
    }
)
_TEXT_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"})
#: a value without these is written as it is
_SPECIAL = re.compile(r'[&<>"\x00-\x1f\ud800-\udfff\ufffe\uffff]')
#: what XML 1.0 cannot carry (lxml refuses to set it: the tree builder says why)
_NOT_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_HO_SO_OPEN = f"<?xml version='1.0' encoding='UTF-8'?>\n<HoSoTroCap xmlns=\"{NS}\""


def _attributes(attributes: dict[str, str | None]) -> str | None:
    out = []
    for name, value in attributes.items():
        if value is None:
            continue
        value = nfc(value)
        if _SPECIAL.search(value):
            if _NOT_XML.search(value):
                return None
            value = value.translate(_ATTRIBUTE_ESCAPES)
        out.append(f' {name}="{value}"')
    return "".join(out)


def _ho_so_text(nodes: list[Node]) -> bytes | None:
    """The document as lxml serialises :func:`_ho_so_tree` (byte for byte, property-tested),
    written directly: a third of the cost of building the tree. None when a value holds
    what XML cannot carry (the tree builder then says which)."""
    parts = []
    for tag, attributes, text in nodes:
        written = _attributes(attributes)
        if written is None:
            return None
        if tag == "HoSoTroCap":
            parts.append(f"{_HO_SO_OPEN}{written}>")
        elif tag == "DoiTuong":
            parts.append(f"<DoiTuong{written}>")
        elif tag == "DiaChi":
            body = nfc(text or "")
            if _NOT_XML.search(body):
                return None
            parts.append(f"<DiaChi{written}>{body.translate(_TEXT_ESCAPES)}</DiaChi></DoiTuong>")
        else:
            parts.append(f"<{tag}{written}/>")
    parts.append("</HoSoTroCap>")
    return "".join(parts).encode()


#: parses only what :func:`_ho_so_text` wrote (no DOCTYPE can be in it: every value escaped)
_OWN_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


def ho_so_bytes(dossier: Mapping[str, Any], revision: int) -> bytes:
    """The XSD-checked ``HoSoTroCap`` bytes for one DongBoHoSoMC item, or PermanentError.

    Written as text and parsed back for the XSD check (one C parse is cheaper than building
    the tree from Python); when the XSD refuses it, or a value holds what XML cannot carry,
    the tree is built as before so that the errors read exactly as they always did."""
    nodes = _ho_so_nodes(dossier, revision)
    text = _ho_so_text(nodes)
    if text is not None and schema().validate(etree.fromstring(text, _OWN_PARSER)):
        return text
    return _checked_bytes(_ho_so_tree(nodes))


def build_de_nghi_tam_dung(payload: Mapping[str, Any]) -> etree._Element:
    """The ``DeNghiTamDung`` for one commune's suspension candidates of a month."""
    people = payload.get("doiTuong")
    if not isinstance(people, list) or not people:
        raise PermanentError("doiTuong: cần ít nhất một người (at least one person is needed)")
    root = element("DeNghiTamDung", {"ky": _field(payload, "ky"), "maXa": _field(payload, "maXa")})
    for index, item in enumerate(people):
        person = _mapping(item, f"doiTuong[{index}]")
        months = person.get("cacThangChuaNhan")
        if isinstance(months, list | tuple):
            months_text = " ".join(str(month).strip() for month in months)
        else:
            months_text = str(months or "").strip()
        element(
            "DoiTuong",
            {
                "soDinhDanh": _field(person, "soDinhDanh", where=f"doiTuong[{index}]"),
                "hoTen": _field(person, "hoTen", where=f"doiTuong[{index}]"),
                "cacThangChuaNhan": months_text,
            },
            parent=root,
        )
    return root


def _checked_bytes(root: etree._Element) -> bytes:
    errors = readable_schema_errors(root)
    if errors:
        raise PermanentError("XSD: " + "; ".join(errors))
    return to_bytes(root)


def render_message(message: Message, base_url: str) -> OutboundRequest:
    """Render a message for the registry at ``base_url``, or raise :class:`PermanentError`."""
    base = base_url.rstrip("/")
    payload = _mapping(message.payload, "payload")
    try:
        if message.event == EVENT_DOSSIER:
            dossier = _mapping(payload.get("dossier"), "dossier")
            body = ho_so_bytes(dossier, message.revision)
            return OutboundRequest(
                method="POST",
                url=f"{base}/ho-so",
                body=body,
                headers={"Content-Type": CONTENT_TYPE},
                context={
                    "kind": KIND_DOSSIER,
                    "maHoSo": nfc(_field(dossier, "MaHoSo")),
                    "lanCapNhat": message.revision,
                },
            )
        if message.event == EVENT_SUSPENSION:
            root = build_de_nghi_tam_dung(payload)
            return OutboundRequest(
                method="POST",
                url=f"{base}/de-nghi-tam-dung",
                body=_checked_bytes(root),
                headers={"Content-Type": CONTENT_TYPE},
                context={
                    "kind": KIND_SUSPENSION,
                    "ky": root.get("ky"),
                    "maXa": root.get("maXa"),
                    "soDong": len(root),
                },
            )
    except ValueError as exc:  # lxml refuses characters XML cannot carry (control chars)
        raise PermanentError(
            f"ký tự không hợp lệ trong XML (a field holds characters XML cannot carry: {exc})"
        ) from None
    raise PermanentError(
        f"hệ thống registry không nhận sự kiện {message.event!r} "
        f"(the registry takes only {EVENT_DOSSIER} and {EVENT_SUSPENSION})"
    )
