"""The simulated registry's own rules: who it refuses and how much it grants.

This models the *external* system's software (DOMAIN.md §1-§2 as the registry implements
it), so a small table here is deliberate: the gateway's domain plugin recomputes every
amount from its own configuration and holds a decision whose amount disagrees.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

#: mức chuẩn trợ giúp xã hội by effective date (Decree 136/2013, 20/2021, 76/2024)
STANDARD_LEVELS: tuple[tuple[date, int], ...] = (
    (date(2024, 7, 1), 500_000),
    (date(2021, 7, 1), 360_000),
    (date(2014, 1, 1), 270_000),
)

#: categories that exist only from 2021-07-01 (Decree 20/2021)
NEW_IN_2021 = frozenset({"5.5b", "5.7"})
DECREE_20_START = date(2021, 7, 1)


@dataclass(slots=True)
class Person:
    """A beneficiary as the simulated registry knows them (one dossier, one benefit)."""

    ma_ho_so: str
    so_dinh_danh: str
    ho_ten: str
    ngay_sinh: date
    gioi_tinh: str | None
    ma_xa: str
    loai_doi_tuong: str
    muc_do_khuyet_tat: str
    nhan_tien: str | None
    so_con: int | None = None
    status: str = "new"  # new | granted | suspended | stopped
    last_signed: date | None = None


def standard_level(month: date) -> int:
    for start, level in STANDARD_LEVELS:
        if month >= start:
            return level
    return STANDARD_LEVELS[-1][1]


def _months(d: date) -> int:
    return d.year * 12 + d.month - 1


def reached_in_month(birth: date, years: int, month: date) -> bool:
    """Eligibility that begins at an age begins in the month of that birthday."""
    return _months(month) >= _months(birth) + years * 12


def passed_for_coefficient(birth: date, years: int, month: date) -> bool:
    """A coefficient that changes with age changes from the month after the birthday month."""
    return _months(month) > _months(birth) + years * 12


def coefficient(person: Person, month: date) -> Decimal:
    """hệ số for ``person`` in ``month`` (DOMAIN.md §2)."""
    birth = person.ngay_sinh
    code = person.loai_doi_tuong
    if code in ("5.1", "5.3"):
        if not passed_for_coefficient(birth, 4, month):
            return Decimal("2.5")
        return Decimal("1.5") if code == "5.1" else Decimal("2.0")
    if code == "5.4":
        return Decimal(person.so_con or 1)
    if code == "5.5a":
        return Decimal("2.0") if passed_for_coefficient(birth, 80, month) else Decimal("1.5")
    if code == "5.5d":
        return Decimal("3.0")
    if code == "5.6":
        child = not passed_for_coefficient(birth, 16, month)
        elderly = passed_for_coefficient(birth, 60, month)
        if person.muc_do_khuyet_tat == "dac_biet_nang":
            return Decimal("2.5") if child or elderly else Decimal("2.0")
        return Decimal("2.0") if child or elderly else Decimal("1.5")
    if code in ("5.5b", "5.5c", "cs"):
        return Decimal("1.0")
    return Decimal("1.5")  # 5.2, 5.7, 5.8


def monthly_amount(level: int, heso: Decimal) -> int:
    """level × coefficient, rounded half-up to whole VND."""
    return int((Decimal(level) * heso).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def refusal(person: Person, received: date) -> tuple[str, str] | None:
    """``(ma, reason)`` when the registry refuses the application on its merits."""
    birth, code = person.ngay_sinh, person.loai_doi_tuong
    if code in NEW_IN_2021 and received < DECREE_20_START:
        return (
            "chua_hieu_luc",
            f"Diện {code} chỉ có từ 01/7/2021 (category {code} exists only from 2021-07-01)",
        )
    age_rules: dict[str, tuple[int | None, int | None]] = {
        "5.1": (None, 16),
        "5.2": (16, 23),  # 16 to 22 inclusive
        "5.3": (None, 16),
        "5.5a": (60, None),
        "5.5b": (75, None),
        "5.5c": (80, None),
        "5.5d": (60, None),
        "5.7": (None, 3),
    }
    low, high = age_rules.get(code, (None, None))
    if low is not None and not reached_in_month(birth, low, received):
        return (
            "tuoi",
            f"Đối tượng chưa đủ {low} tuổi để hưởng diện {code} "
            f"(the applicant is under {low}, too young for category {code})",
        )
    if high is not None and reached_in_month(birth, high, received):
        return (
            "tuoi",
            f"Đối tượng đã đủ {high} tuổi, không thuộc diện {code} "
            f"(the applicant is {high} or older, outside category {code})",
        )
    if code == "5.6" and not person.muc_do_khuyet_tat:
        return (
            "thieu_muc_do",
            "Thiếu mức độ khuyết tật cho diện 5.6 (the disability level is missing for 5.6)",
        )
    return None


def signing_date(received: date, due: date | None, today: date) -> date:
    """When the chairman signs: a few days before the appointment date, never in the future."""
    signed = due - timedelta(days=4) if due else received + timedelta(days=14)
    return max(received, min(signed, today))


def first_of_month(d: date) -> date:
    return d.replace(day=1)


def next_month(d: date) -> date:
    return (d.replace(day=1) + timedelta(days=32)).replace(day=1)


def month_text(d: date) -> str:
    return f"{d.year:04d}-{d.month:02d}"


def grant_attributes(person: Person, number: str, signed: date) -> dict[str, str]:
    """The attributes of a ``huong`` (or recomputed ``dieu_chinh``) decision."""
    month = first_of_month(signed)
    heso = coefficient(person, month)
    level = standard_level(month)
    attributes = identity_attributes(person, number, signed)
    attributes.update(
        {
            "loaiDoiTuong": person.loai_doi_tuong,
            "heSo": f"{heso:.1f}",
            "mucChuan": str(level),
            "soTienThang": str(monthly_amount(level, heso)),
            "tuThang": month_text(month),
        }
    )
    if person.loai_doi_tuong == "5.6" and person.muc_do_khuyet_tat:
        attributes["mucDoKhuyetTat"] = person.muc_do_khuyet_tat
    if person.loai_doi_tuong == "5.4":
        attributes["soCon"] = str(person.so_con or 1)
    if person.nhan_tien:
        attributes["nhanTien"] = person.nhan_tien
    return attributes


def identity_attributes(person: Person, number: str, signed: date) -> dict[str, str]:
    attributes = {
        "so": number,
        "ngayKy": signed.isoformat(),
        "loai": "huong",
        "maHoSo": person.ma_ho_so,
        "soDinhDanh": person.so_dinh_danh,
        "hoTen": person.ho_ten,
        "ngaySinh": person.ngay_sinh.isoformat(),
        "maXa": person.ma_xa,
        "tuThang": month_text(signed),
    }
    if person.gioi_tinh:
        attributes["gioiTinh"] = person.gioi_tinh
    return attributes


def change_attributes(
    person: Person, number: str, rng: random.Random, today: date
) -> dict[str, str]:
    """A later decision for a granted or suspended person; updates ``person``."""
    base = person.last_signed or today
    # some months later, but a decision is never signed in the future
    signed = max(base, min(base + timedelta(days=rng.randint(30, 120)), today))
    person.last_signed = signed
    if person.status == "suspended":
        person.status = "granted"
        attributes = identity_attributes(person, number, signed)
        attributes.update({"loai": "tiep_tuc", "truyLinh": "true"})
        return attributes
    kind = rng.choices(("dieu_chinh", "tam_dung", "thoi_huong"), weights=(5, 3, 2))[0]
    if kind == "dieu_chinh":
        person.nhan_tien = "tai_nha"  # too frail to come to the service point any more
        attributes = grant_attributes(person, number, signed)
        attributes["loai"] = "dieu_chinh"
        return attributes
    attributes = identity_attributes(person, number, signed)
    if kind == "tam_dung":
        person.status = "suspended"
        attributes.update({"loai": "tam_dung", "lyDo": "Không nhận trợ cấp 3 tháng liên tục"})
    else:
        person.status = "stopped"
        attributes.update(
            {
                "loai": "thoi_huong",
                "lyDo": "Chuyển khỏi địa bàn",
                "tuThang": month_text(next_month(signed)),
            }
        )
    return attributes


def suspension_attributes(person: Person, number: str, ky: date, today: date) -> dict[str, str]:
    """A ``tam_dung`` from the month after ``ky``, decided on a suspension request."""
    signed = max(person.last_signed or ky, min(next_month(ky), today))
    person.last_signed = signed
    person.status = "suspended"
    attributes = identity_attributes(person, number, signed)
    attributes.update(
        {
            "loai": "tam_dung",
            "lyDo": "Không nhận trợ cấp 3 tháng liên tục",
            "tuThang": month_text(next_month(ky)),
        }
    )
    return attributes
