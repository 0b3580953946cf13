"""A registry decision (QuyetDinh, FORMATS.md §2.2) parsed from its attribute dict.

Attributes keep English names; the wire name of each is given once below. Errors are one
readable line (Vietnamese first, English in parentheses) that never shows a full CCCD or
a name.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Literal

from plugins.social_assistance.month import Month
from plugins.social_assistance.rules import Rules
from plugins.vn_common.cccd import CccdError, mask_cccd, validate_cccd

_COMMUNE = re.compile(r"^\d{5}$")
_LEADING_NUMBER = re.compile(r"^\s*(\d+)")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DECIMAL = re.compile(r"^\d+(\.\d+)?$")
Payout = Literal["tai_diem", "tai_nha"]
_PAYOUTS = ("tai_diem", "tai_nha")


class DecisionKind(StrEnum):
    """``loai``: grant, adjust, suspend, resume, stop."""

    HUONG = "huong"
    DIEU_CHINH = "dieu_chinh"
    TAM_DUNG = "tam_dung"
    TIEP_TUC = "tiep_tuc"
    THOI_HUONG = "thoi_huong"


SETS_TERMS = (DecisionKind.HUONG, DecisionKind.DIEU_CHINH)

WIRE_NAMES = (
    "so", "ngayKy", "loai", "maHoSo", "soDinhDanh", "hoTen", "ngaySinh", "maXa",
    "loaiDoiTuong", "heSo", "mucChuan", "soTienThang", "tuThang", "nhanTien", "gioiTinh",
    "mucDoKhuyetTat", "soCon", "ngaySinhNguoiDuocChamSoc", "truyLinh", "lyDo",
)  # fmt: skip


class DecisionError(ValueError):
    """A decision payload that cannot be used; ``problems`` lists every problem found."""

    def __init__(self, label: str, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(f"{label}: " + "; ".join(problems))


@dataclass(frozen=True, slots=True)
class Decision:
    """One decision of the deciding authority about one benefit (its ``maHoSo``).

    number (so), signed_on (ngayKy), kind (loai), dossier (maHoSo), citizen_id (soDinhDanh),
    full_name (hoTen), birth_date (ngaySinh), commune (maXa), category (loaiDoiTuong),
    coefficient (heSo), level (mucChuan), monthly_amount (soTienThang), from_month (tuThang),
    payout (nhanTien), sex (gioiTinh), disability (mucDoKhuyetTat), children (soCon),
    cared_birth_date (ngaySinhNguoiDuocChamSoc), arrears (truyLinh), reason (lyDo).
    """

    number: str
    signed_on: date
    kind: DecisionKind
    dossier: str
    citizen_id: str
    full_name: str | None
    birth_date: date
    commune: str
    from_month: Month
    category: str | None = None
    coefficient: Decimal | None = None
    level: int | None = None
    monthly_amount: int | None = None
    payout: Payout = "tai_diem"
    sex: Literal["nam", "nu"] | None = None
    disability: str | None = None
    children: int | None = None
    cared_birth_date: date | None = None
    arrears: bool = False
    reason: str | None = None

    @property
    def key(self) -> tuple[str, str, date]:
        """Identity: the same dossier, number and signing date is the same decision."""
        return (self.dossier, self.number, self.signed_on)

    @property
    def order_key(self) -> tuple[date, int, str, str]:
        """Signing date, then the decision number compared numerically (9/ before 10/)."""
        m = _LEADING_NUMBER.match(self.number)
        return (self.signed_on, int(m.group(1)) if m else -1, self.number, self.dossier)

    @property
    def label(self) -> str:
        """How errors name the decision (no personal data)."""
        return f"quyết định {self.number} (hồ sơ {self.dossier})"

    @classmethod
    def from_payload(cls, payload: Mapping[str, str], rules: Rules) -> Decision:
        """Parse and check a QuyetDinh attribute dict; :class:`DecisionError` lists problems."""
        return _parse_valid(payload, rules) or _Parser(payload, rules).decision()


def _clean(value: str) -> str:
    """Trimmed and NFC-normalised (Vietnamese arrives as NFC and NFD)."""
    value = value.strip()
    return value if value.isascii() else unicodedata.normalize("NFC", value)


_WIRE_SET = frozenset(WIRE_NAMES)
_KINDS = {k.value: k for k in DecisionKind}
_TERMS_KINDS = frozenset(SETS_TERMS)


def _parse_valid(payload: Mapping[str, str], rules: Rules) -> Decision | None:
    """The decision of a payload that passes every check of :class:`_Parser`, else None.

    The same checks and the same result as ``_Parser(payload, rules).decision()`` for a valid
    payload, without collecting messages: most payloads are valid, and the parser (which
    reports every problem at once) is then run only for the others.
    """
    if not payload.keys() <= _WIRE_SET:
        return None
    p: dict[str, str] = {}
    for k, v in payload.items():
        if not isinstance(v, str):
            return None
        v = v.strip()
        if v:
            p[k] = v if v.isascii() else unicodedata.normalize("NFC", v)
    get = p.get
    kind = _KINDS.get(get("loai", ""))
    number, dossier, citizen = get("so"), get("maHoSo"), get("soDinhDanh")
    commune, from_text = get("maXa"), get("tuThang")
    if kind is None or not (number and dossier and citizen and commune and from_text):
        return None
    birth, signed = _valid_day(get("ngaySinh")), _valid_day(get("ngayKy"))
    if birth is None or signed is None or birth > signed or not _COMMUNE.match(commune):
        return None
    try:
        from_month = Month.parse(from_text)
    except ValueError:
        return None
    sex = get("gioiTinh")
    if sex is not None and sex != "nam" and sex != "nu":
        return None
    try:
        validate_cccd(citizen, birth_date=birth, female=None if sex is None else sex == "nu")
    except CccdError:
        return None
    sets_terms = kind in _TERMS_KINDS
    category = get("loaiDoiTuong")
    full_name = get("hoTen")
    if kind is DecisionKind.HUONG and full_name is None:
        return None
    coefficient = level = amount = None
    if category is not None:
        known = rules.categories.get(category)
        if known is None:
            return None
        if sets_terms and not known.requires <= p.keys():
            return None
    heso, muc, amount_text = get("heSo"), get("mucChuan"), get("soTienThang")
    if sets_terms and (category is None or heso is None or muc is None or amount_text is None):
        return None
    if heso is not None:
        if not _DECIMAL.match(heso):
            return None
        coefficient = Decimal(heso)
    if muc is not None:
        if not _plain_digits(muc):
            return None
        level = int(muc)
    if amount_text is not None:
        if not _plain_digits(amount_text):
            return None
        amount = int(amount_text)
    payout = get("nhanTien", "tai_diem")
    disability = get("mucDoKhuyetTat")
    children_text = get("soCon")
    children = None
    if children_text is not None:
        if not _plain_digits(children_text) or int(children_text) == 0:
            return None
        children = int(children_text)
    cared_text = get("ngaySinhNguoiDuocChamSoc")
    cared = None if cared_text is None else _valid_day(cared_text)
    arrears = get("truyLinh", "false")
    if (
        (payout != "tai_diem" and payout != "tai_nha")
        or (disability is not None and disability not in rules.disability_levels)
        or (cared_text is not None and cared is None)
        or (arrears != "true" and arrears != "false")
    ):
        return None
    return Decision(
        number,
        signed,
        kind,
        dossier,
        citizen,
        full_name,
        birth,
        commune,
        from_month,
        category,
        coefficient,
        level,
        amount,
        "tai_nha" if payout == "tai_nha" else "tai_diem",
        "nu" if sex == "nu" else "nam" if sex == "nam" else None,
        disability,
        children,
        cared,
        arrears == "true",
        get("lyDo"),
    )


def _valid_day(value: str | None) -> date | None:
    """A YYYY-MM-DD date, or None (absent or not a date)."""
    if value is None or not _DATE.match(value):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def _plain_digits(value: str) -> bool:
    """What :meth:`_Parser.integer` accepts (ASCII digits only: others go to the parser)."""
    return value.isascii() and value.isdigit()


class _Parser:
    """Collects every problem of a payload instead of stopping at the first."""

    def __init__(self, payload: Mapping[str, str], rules: Rules) -> None:
        self.p = {k: _clean(v) for k, v in payload.items() if isinstance(v, str) and v.strip()}
        self.rules = rules
        self.problems: list[str] = []
        for k in sorted(set(payload) - set(WIRE_NAMES)):
            self.problems.append(f"thuộc tính không xác định {k!r} (unknown attribute)")
        for k in sorted(k for k, v in payload.items() if not isinstance(v, str)):
            self.problems.append(f"{k}: phải là chuỗi (must be a string)")

    def text(self, name: str, *, required: bool) -> str | None:
        value = self.p.get(name)
        if value is None and required:
            self.problems.append(f"thiếu {name} ({name} is required)")
        return value

    def day(self, name: str, *, required: bool) -> date | None:
        value = self.text(name, required=required)
        if value is None:
            return None
        try:
            if not _DATE.match(value):
                raise ValueError(value)
            return date.fromisoformat(value)
        except ValueError:
            self.problems.append(
                f"{name}: ngày không hợp lệ, cần YYYY-MM-DD ({name} is not a date)"
            )
            return None

    def integer(self, name: str, *, required: bool, positive: bool = False) -> int | None:
        value = self.text(name, required=required)
        if value is None:
            return None
        if not value.isdigit() or (positive and int(value) == 0):
            kind = (
                "số nguyên dương (a positive integer)"
                if positive
                else "số nguyên không âm (a whole number)"
            )
            self.problems.append(f"{name}: phải là {kind}: {value!r}")
            return None
        return int(value)

    def choice(self, name: str, allowed: tuple[str, ...], default: str | None) -> str | None:
        value = self.p.get(name, default)
        if value is not None and value not in allowed:
            self.problems.append(f"{name}: {value!r} không thuộc {'/'.join(allowed)} (not allowed)")
            return None
        return value

    def decision(self) -> Decision:
        kind_text = self.choice("loai", tuple(DecisionKind), None)
        self.text("loai", required=True)
        kind = DecisionKind(kind_text) if kind_text else None
        sets_terms = kind in SETS_TERMS
        number = self.text("so", required=True) or "?"
        dossier = self.text("maHoSo", required=True) or "?"
        birth = self.day("ngaySinh", required=True)
        signed = self.day("ngayKy", required=True)
        commune, month = self._commune(), self._month()
        sex = self.choice("gioiTinh", ("nam", "nu"), None)
        citizen = self._citizen(birth, sex)
        category = self._category(sets_terms)
        self._requirements(category, sets_terms)
        if birth and signed and birth > signed:
            self.problems.append("ngaySinh sau ngayKy (birth date after signing date)")
        decision = Decision(
            number=number,
            signed_on=signed or date.min,
            kind=kind or DecisionKind.HUONG,
            dossier=dossier,
            citizen_id=citizen,
            full_name=self.text("hoTen", required=kind is DecisionKind.HUONG),
            birth_date=birth or date.min,
            commune=commune or "",
            from_month=month or Month(1, 1),
            category=category,
            coefficient=self._decimal("heSo", sets_terms),
            level=self.integer("mucChuan", required=sets_terms),
            monthly_amount=self.integer("soTienThang", required=sets_terms),
            payout="tai_nha"
            if self.choice("nhanTien", _PAYOUTS, "tai_diem") == "tai_nha"
            else "tai_diem",
            sex="nu" if sex == "nu" else "nam" if sex == "nam" else None,
            disability=self.choice("mucDoKhuyetTat", tuple(self.rules.disability_levels), None),
            children=self.integer("soCon", required=False, positive=True),
            cared_birth_date=self.day("ngaySinhNguoiDuocChamSoc", required=False),
            arrears=self.choice("truyLinh", ("true", "false"), "false") == "true",
            reason=self.text("lyDo", required=False),
        )
        if self.problems:  # the placeholders above never escape: any missing field is a problem
            raise DecisionError(f"quyết định {number} (hồ sơ {dossier})", self.problems)
        return decision

    def _commune(self) -> str | None:
        value = self.text("maXa", required=True)
        if value is not None and not _COMMUNE.match(value):
            self.problems.append(
                f"maXa: mã xã phải có 5 chữ số: {value!r} (a commune code has 5 digits)"
            )
        return value

    def _month(self) -> Month | None:
        value = self.text("tuThang", required=True)
        try:
            return Month.parse(value) if value else None
        except ValueError:
            self.problems.append(
                f"tuThang: tháng phải có dạng YYYY-MM: {value!r} (a month is YYYY-MM)"
            )
            return None

    def _category(self, required: bool) -> str | None:
        value = self.text("loaiDoiTuong", required=required)
        if value is not None and value not in self.rules.categories:
            self.problems.append(
                f"loaiDoiTuong: loại đối tượng không xác định {value!r} (unknown category)"
            )
            return None
        return value

    def _decimal(self, name: str, required: bool) -> Decimal | None:
        value = self.text(name, required=required)
        if value is None:
            return None
        if not _DECIMAL.match(value):
            self.problems.append(
                f"{name}: phải là số thập phân như 1.5: {value!r} (must be a decimal)"
            )
            return None
        return Decimal(value)

    def _citizen(self, birth: date | None, sex: str | None) -> str:
        value = self.text("soDinhDanh", required=True) or ""
        try:
            validate_cccd(value, birth_date=birth, female=None if sex is None else sex == "nu")
        except CccdError as e:
            self.problems.append(f"soDinhDanh {mask_cccd(value)}: {e}")
        return value

    def _requirements(self, category: str | None, sets_terms: bool) -> None:
        """A category may need more attributes (5.6 mucDoKhuyetTat, 5.4 soCon)."""
        if category is None or not sets_terms:
            return
        for attr in sorted(self.rules.categories[category].requires):
            if attr not in self.p:
                self.problems.append(
                    f"thiếu {attr} cho loại {category} ({attr} is required for {category})"
                )
