"""What the gateway writes back to the one-stop-shop: progress steps and results.

Pure functions (no I/O) so the connector's ``render`` and ``send`` stay short and the shapes
are testable on their own. Shapes: FORMATS.md §1.2.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import date, datetime, time
from typing import Any
from urllib.parse import quote

from gateway.model import VN_TZ, PermanentError, nfc
from plugins.one_stop_shop.options import OneStopShopOptions
from plugins.one_stop_shop.wire import (
    RESULT_STATUSES,
    STATUS_RESULT_RETURNED,
    add_working_days,
    format_timestamp,
    parse_timestamp,
)
from plugins.vn_common.cccd import mask_cccd
from plugins.vn_common.names import mask_name

RESULT_DOCUMENT_CODE = "KQ"
#: the time of day a decision signed on ``ngayKy`` counts as signed, for NgayKetThucXuLy
END_OF_WORKING_DAY = time(17, 0)


def progress_item(
    ma_ho_so: str,
    status: str,
    content: str,
    options: OneStopShopOptions,
    now: datetime,
    due: datetime | None = None,
) -> dict[str, str]:
    """One ``CapNhatTienDoHoSoMC`` data item: a processing step that starts now."""
    deadline = due or add_working_days(now, options.processing_days)
    return {
        "MaHoSo": ma_ho_so,
        "NguoiXuLy": options.nguoi_xu_ly,
        "ChucDanh": options.chuc_danh,
        "ThoiDiemXuLy": format_timestamp(now),
        "PhongBanXuLy": options.phong_ban_xu_ly,
        "NoiDungXuLy": content,
        "TrangThai": status,
        "NgayBatDau": format_timestamp(now),
        "NgayKetThucTheoQuyDinh": format_timestamp(deadline),
    }


def due_date(payload: Mapping[str, Any]) -> datetime | None:
    """The dossier's appointment date when the message carries it (``NgayHenTra``)."""
    value = payload.get("NgayHenTra") or payload.get("ngayHenTra")
    if not isinstance(value, str):
        return None
    try:
        return parse_timestamp(value)
    except ValueError:
        return None


def require_text(payload: Mapping[str, Any], key: str, event: str) -> str:
    value = payload.get(key)
    if not isinstance(value, str) or not value.strip():
        raise PermanentError(f"thông điệp {event} thiếu {key} (the {event} message has no {key})")
    return value.strip()


def result_document(decision: Mapping[str, Any], options: OneStopShopOptions) -> dict[str, str]:
    """The ``DanhSachGiayToKetQua`` entry for a decision."""
    so = str(decision["so"])
    url = options.result_url.replace("{so}", quote(so, safe="")) if options.result_url else ""
    return {
        "TenGiayTo": f"Quyết định {so}",
        "MaThanhPhanHoSo": RESULT_DOCUMENT_CODE,
        "GiayToId": so,
        "DuongDanTepTinKetQua": url,
    }


def signed_at(decision: Mapping[str, Any], now: datetime) -> datetime:
    """When processing ended: the signing date (``ngayKy``), never later than now."""
    value = decision.get("ngayKy")
    if not isinstance(value, str):
        return now
    try:
        day = date.fromisoformat(value[:10])
    except ValueError:
        return now
    return min(now, datetime.combine(day, END_OF_WORKING_DAY, tzinfo=VN_TZ))


def result_patch(
    decision: Mapping[str, Any], options: OneStopShopOptions, now: datetime
) -> dict[str, Any]:
    """The fields a decision sets on its dossier (merged into the full dossier at send)."""
    returned = options.result_status == STATUS_RESULT_RETURNED
    return {
        "MaHoSo": str(decision["maHoSo"]),
        "TrangThaiHoSo": options.result_status,
        "NgayKetThucXuLy": format_timestamp(signed_at(decision, now)),
        "NgayTra": format_timestamp(now) if returned else "",
        "DanhSachGiayToKetQua": [result_document(decision, options)],
    }


def _documents(dossier: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    docs = dossier.get("DanhSachGiayToKetQua")
    return [d for d in docs if isinstance(d, Mapping)] if isinstance(docs, list) else []


def has_result(dossier: Mapping[str, Any], decision_number: str) -> bool:
    """True when the dossier already shows this decision as its result."""
    status = str(dossier.get("TrangThaiHoSo", "")).strip()
    return status in RESULT_STATUSES and any(
        str(d.get("GiayToId", "")) == decision_number for d in _documents(dossier)
    )


def check_same_person(dossier: Mapping[str, Any], decision: Mapping[str, Any]) -> None:
    """Refuse to attach a decision about someone else to a dossier (masked in the reason)."""
    person = dossier.get("ThongTinNguoiNop")
    on_dossier = person.get("SoDinhDanh") if isinstance(person, Mapping) else None
    on_decision = decision.get("soDinhDanh")
    if not (isinstance(on_dossier, str) and isinstance(on_decision, str)):
        return
    if on_dossier and on_decision and on_dossier.strip() != on_decision.strip():
        named = _who(on_decision, decision.get("hoTen"))
        holder = _who(
            on_dossier, person.get("TenNguoiNop") if isinstance(person, Mapping) else None
        )
        raise PermanentError(
            f"quyết định {decision.get('so')} ghi {named}, khác người trong hồ sơ "
            f"{dossier.get('MaHoSo')} ({holder}) "
            "(the decision names another person than the dossier)"
        )


def _who(cccd: str, name: Any) -> str:
    """A person as an operator may see them in a log: masked CCCD and initials."""
    return mask_cccd(cccd) + (f" {mask_name(name)}" if isinstance(name, str) and name else "")


def merge_result(dossier: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """The full dossier with the result applied; earlier result documents are kept."""
    merged: dict[str, Any] = copy.deepcopy(nfc(dict(dossier)))
    new_docs = patch["DanhSachGiayToKetQua"]
    new_ids = {d["GiayToId"] for d in new_docs}
    kept = [d for d in _documents(merged) if str(d.get("GiayToId", "")) not in new_ids]
    merged.update({k: v for k, v in patch.items() if k != "DanhSachGiayToKetQua"})
    merged["DanhSachGiayToKetQua"] = [*kept, *new_docs]
    return merged
