"""Documents the gateway sends to the registry (FORMATS.md §2.1, §2.3).

* ``dossier.received`` (a DongBoHoSoMC item from the one-stop-shop, FORMATS.md §1.1)
  -> ``HoSoTroCap``, ``POST {base_url}/ho-so``;
* ``payment.suspension_candidates`` -> ``DeNghiTamDung``, ``POST {base_url}/de-nghi-tam-dung``.

Every document is validated against the XSD before it leaves; a message that cannot be
expressed is a :class:`PermanentError` whose reason names the field (never a person).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from lxml import etree

from gateway.model import VN_TZ, Message, OutboundRequest, PermanentError
from gateway.xmlsafe import to_bytes

from .wire import CONTENT_TYPE, element, readable_schema_errors

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


def build_ho_so(dossier: Mapping[str, Any], revision: int) -> etree._Element:
    """The ``HoSoTroCap`` for one DongBoHoSoMC item at revision ``revision``."""
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

    root = element(
        "HoSoTroCap",
        {
            "maHoSo": _field(dossier, "MaHoSo"),
            "lanCapNhat": str(revision),
            "maTTHC": _field(dossier, "MaTTHC"),
            "ngayTiepNhan": _timestamp(_field(dossier, "NgayTiepNhan"), "NgayTiepNhan").isoformat(
                timespec="seconds"
            ),
            "ngayHenTra": _date(hen_tra, "NgayHenTra").isoformat() if hen_tra else None,
        },
    )
    where = "ThongTinNguoiNop"
    doi_tuong = element(
        "DoiTuong",
        {
            "soDinhDanh": _field(nguoi_nop, "SoDinhDanh", where=where),
            "hoTen": _field(nguoi_nop, "TenNguoiNop", where=where),
            "ngaySinh": _date(
                _field(nguoi_nop, "NgaySinh", where=where), f"{where}.NgaySinh"
            ).isoformat(),
            "gioiTinh": gioi_tinh,
        },
        parent=root,
    )
    element(
        "DiaChi",
        {
            "maTinh": _field(nguoi_nop, "MaTinh", where=where),
            "maHuyen": _field(nguoi_nop, "MaHuyen", where=where),
            "maXa": _field(nguoi_nop, "MaXa", where=where),
        },
        text=str(nguoi_nop.get("DiaChiChiTiet") or ""),
        parent=doi_tuong,
    )
    element(
        "DeNghi",
        {
            "loaiDoiTuong": _field(de_nghi, "LoaiDoiTuong", where="DeNghiTroCap"),
            "mucDoKhuyetTat": str(de_nghi.get("MucDoKhuyetTat") or "").strip(),
            "nhanTien": _optional(de_nghi, "DiaChiNhanTien"),
        },
        parent=root,
    )
    for index, item in enumerate(tai_lieu):
        tep = _mapping(item, f"TaiLieuNop[{index}]")
        if str(tep.get("IsDeleted", "")).strip().lower() == "true":
            continue
        element(
            "TaiLieu",
            {
                "ten": _field(tep, "TenTepDinhKem", where=f"TaiLieuNop[{index}]"),
                "duongDan": _field(tep, "DuongDanTaiTepTin", where=f"TaiLieuNop[{index}]"),
            },
            parent=root,
        )
    return root


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
            root = build_ho_so(dossier, message.revision)
            return OutboundRequest(
                method="POST",
                url=f"{base}/ho-so",
                body=_checked_bytes(root),
                headers={"Content-Type": CONTENT_TYPE},
                context={
                    "kind": KIND_DOSSIER,
                    "maHoSo": root.get("maHoSo"),
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
