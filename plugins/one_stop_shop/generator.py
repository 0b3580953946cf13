"""Realistic one-stop-shop dossiers for Chợ Đồn district (Bắc Kạn), deterministic by seed.

Used by the simulator and by tests. Every dossier is valid under the connector's own parse:
a CCCD that agrees with the birth date and sex, a birth date that fits the category applied
for (DOMAIN.md §2), a commune of Chợ Đồn (DOMAIN.md §6), an appointment date 15 working
days after reception. Dossiers are kept in NFC; :meth:`DossierGenerator.wire_form` gives the
form actually sent (half of the dossiers travel in NFD, as real one-stop-shops send them).
"""

from __future__ import annotations

import copy
import random
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from gateway.model import VN_TZ
from plugins.one_stop_shop.wire import (
    PROCEDURE_FUNERAL_SUPPORT,
    PROCEDURE_MONTHLY_ALLOWANCE,
    STATUS_RECEIVED,
    add_working_days,
    format_date,
    format_timestamp,
)
from plugins.vn_common.cccd import make_cccd
from plugins.vn_common.names import make_name

PROVINCE_CODE = "06"
DISTRICT_CODE = "064"
BIRTH_PROVINCE = "006"  # Bắc Kạn, the CCCD's province of birth registration
DEFAULT_MADONVI = "000.00.12.H06"
DEFAULT_START = datetime(2020, 8, 3, 7, 30, tzinfo=VN_TZ)

COMMUNES: dict[str, str] = {
    "02020": "Bằng Lũng",
    "02023": "Xuân Lạc",
    "02026": "Nam Cường",
    "02029": "Đồng Lạc",
    "02032": "Tân Lập",
    "02035": "Bản Thi",
    "02038": "Quảng Bạch",
    "02041": "Bằng Phúc",
    "02044": "Yên Thịnh",
    "02047": "Yên Thượng",
    "02050": "Phương Viên",
    "02053": "Ngọc Phái",
    "02059": "Đồng Thắng",
    "02062": "Lương Bằng",
    "02065": "Bằng Lãng",
    "02068": "Đại Sảo",
    "02071": "Nghĩa Tá",
    "02077": "Yên Mỹ",
    "02080": "Bình Trung",
    "02083": "Yên Phong",
}
TOWNS = frozenset({"02020"})  # thị trấn (town) rather than xã (commune)
VILLAGES = (
    "Bản Cuôn",
    "Nà Pài",
    "Khuổi Đeng",
    "Bản Mới",
    "Nà Bản",
    "Pác Nặm",
    "Phiêng Liềng",
    "Nà Làng",
    "Khau Ban",
    "Bản Lanh",
    "Cốc Pục",
    "Nà Tông",
    "Nặm Nhả",
    "Bản Tàn",
)

TTHC_NAMES = {
    PROCEDURE_MONTHLY_ALLOWANCE: (
        "Thực hiện, điều chỉnh, thôi hưởng trợ cấp xã hội hàng tháng, "
        "hỗ trợ kinh phí chăm sóc, nuôi dưỡng hàng tháng"
    ),
    PROCEDURE_FUNERAL_SUPPORT: "Hỗ trợ chi phí mai táng",
}

#: (category, weight, youngest age, oldest age, form) — weights follow the shape of
#: Chợ Đồn's August 2020 roster (DOMAIN.md §5)
CATEGORIES: tuple[tuple[str, int, int, int, str], ...] = (
    ("5.1", 10, 0, 15, "Mẫu số 1a"),
    ("5.2", 4, 16, 21, "Mẫu số 1a"),
    ("5.3", 2, 0, 15, "Mẫu số 1a"),
    ("5.4", 84, 20, 50, "Mẫu số 1c"),
    ("5.5a", 150, 60, 95, "Mẫu số 1d"),
    ("5.5b", 80, 75, 79, "Mẫu số 1d"),
    ("5.5c", 300, 80, 98, "Mẫu số 1d"),
    ("5.5d", 23, 60, 95, "Mẫu số 1d"),
    ("5.6", 785, 1, 90, "Mẫu số 1đ"),
    ("5.7", 5, 0, 2, "Mẫu số 1a"),
    ("5.8", 8, 18, 60, "Mẫu số 1b"),
    ("cs", 268, 18, 70, "Mẫu số 2a"),
)
#: categories created by Decree 20/2021, applied for only from 2021-07-01
NEW_IN_2021 = frozenset({"5.5b", "5.7"})
DECREE_20_START = date(2021, 7, 1)

OPENING = time(7, 30)
CLOSING = time(17, 0)


def years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February in a non-leap year
        return day.replace(year=day.year - years, day=28)


def birth_date_for_age(rng: random.Random, on: date, age: int) -> date:
    """A birth date of someone exactly ``age`` years old on ``on``."""
    latest = years_before(on, age)
    earliest = years_before(on, age + 1) + timedelta(days=1)
    return earliest + timedelta(days=rng.randint(0, (latest - earliest).days))


def to_nfd(value: Any) -> Any:
    """Every string of a JSON value in NFD (decomposed), as some one-stop-shops send it."""
    if isinstance(value, str):
        return unicodedata.normalize("NFD", value)
    if isinstance(value, dict):
        return {k: to_nfd(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_nfd(v) for v in value]
    return value


@dataclass(slots=True)
class Batch:
    """One push: ``updating`` is the batch's isUpdating; ``items`` are NFC dossiers."""

    updating: bool
    items: list[dict[str, Any]]


@dataclass(slots=True)
class DossierGenerator:
    """Creates dossiers in reception order; the same seed gives the same dossiers."""

    seed: int = 0
    start: datetime = DEFAULT_START
    madonvi: str = DEFAULT_MADONVI
    update_rate: float = 0.05
    other_procedure_rate: float = 0.04
    rng: random.Random = field(init=False)
    clock: datetime = field(init=False)
    sequence: dict[date, int] = field(default_factory=dict, init=False)
    dossiers: dict[str, dict[str, Any]] = field(default_factory=dict, init=False)
    allowance_ids: list[str] = field(default_factory=list, init=False)
    nfd: dict[str, bool] = field(default_factory=dict, init=False)
    used_cccd: set[str] = field(default_factory=set, init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.clock = self.start.astimezone(VN_TZ)

    # -- batches ---------------------------------------------------------------------------
    def next_batch(self, max_new: int | None = None) -> Batch:
        """The next push: 1-5 new dossiers (at most ``max_new``), or now and then 1-2
        re-sends of earlier dossiers with a changed field (``isUpdating`` true)."""
        if self.allowance_ids and self.rng.random() < self.update_rate:
            return Batch(True, [self.update() for _ in range(self.rng.randint(1, 2))])
        size = self.rng.randint(1, 5)
        if max_new is not None:
            size = max(0, min(size, max_new))
        return Batch(False, [self.new_dossier() for _ in range(size)])

    def wire_form(self, item: dict[str, Any]) -> dict[str, Any]:
        """The dossier as sent: NFD for the half of the dossiers that travel decomposed."""
        return to_nfd(item) if self.nfd.get(item["MaHoSo"], False) else item

    # -- new dossiers ----------------------------------------------------------------------
    def new_dossier(self) -> dict[str, Any]:
        received = self._advance_clock()
        if self.rng.random() < self.other_procedure_rate:
            item = self._funeral_support(received)
        else:
            item = self._monthly_allowance(received)
            self.allowance_ids.append(item["MaHoSo"])
        self.dossiers[item["MaHoSo"]] = item
        self.nfd[item["MaHoSo"]] = self.rng.random() < 0.5
        return copy.deepcopy(item)

    def _monthly_allowance(self, received: datetime) -> dict[str, Any]:
        category, lo, hi, form = self._category(received.date())
        female = self.rng.random() < (0.85 if category == "5.4" else 0.5)
        age = self.rng.randint(lo, hi)
        birth = birth_date_for_age(self.rng, received.date(), age)
        level = ""
        if category == "5.6":
            level = self.rng.choices(("nang", "dac_biet_nang"), weights=(6, 4))[0]
        home = (age >= 80 or level == "dac_biet_nang") and self.rng.random() < 0.7
        home = home or self.rng.random() < 0.05
        person = self._person(received, birth, female)
        summary = (
            "Đề nghị hỗ trợ kinh phí chăm sóc, nuôi dưỡng hàng tháng"
            if category == "cs"
            else "Đề nghị trợ cấp xã hội hàng tháng"
        )
        item = self._basic(received, PROCEDURE_MONTHLY_ALLOWANCE, person, summary, days=15)
        item["DeNghiTroCap"] = {
            "LoaiDoiTuong": category,
            "MucDoKhuyetTat": level,
            "DiaChiNhanTien": "tai_nha" if home else "tai_diem",
        }
        documents = [f"{form}.pdf"]
        if category == "5.6":
            documents.append("Giấy xác nhận khuyết tật.pdf")
        item["TaiLieuNop"] = [self._document(item["MaHoSo"], i, n) for i, n in enumerate(documents)]
        return item

    def _funeral_support(self, received: datetime) -> dict[str, Any]:
        female = self.rng.random() < 0.5
        birth = birth_date_for_age(self.rng, received.date(), self.rng.randint(25, 70))
        person = self._person(received, birth, female)
        item = self._basic(
            received, PROCEDURE_FUNERAL_SUPPORT, person, "Đề nghị hỗ trợ chi phí mai táng", days=3
        )
        item["TaiLieuNop"] = [
            self._document(item["MaHoSo"], 0, "Tờ khai đề nghị hỗ trợ chi phí mai táng.pdf"),
            self._document(item["MaHoSo"], 1, "Giấy chứng tử.pdf"),
        ]
        return item

    def _basic(
        self,
        received: datetime,
        procedure: str,
        person: dict[str, str],
        summary: str,
        *,
        days: int,
    ) -> dict[str, Any]:
        day = received.date()
        seq = self.sequence.get(day, 0) + 1
        self.sequence[day] = seq
        due = datetime.combine(add_working_days(received, days).date(), CLOSING, tzinfo=VN_TZ)
        commune = person["MaXa"]
        unit = "thị trấn" if commune in TOWNS else "xã"
        phone = "" if self.rng.random() < 0.5 else self._phone()
        return {
            "MaHoSo": f"{self.madonvi}-{day:%y%m%d}-{seq:04d}",
            "MaTTHC": procedure,
            "TenTTHC": TTHC_NAMES[procedure],
            "SoBienNhan": f"{seq:04d}/BN",
            "ChuHoSo": person["TenNguoiNop"],
            "LoaiDoiTuong": "1",
            "MaDoiTuong": person["SoDinhDanh"],
            "SoDienThoai": phone,
            "Email": "",
            "TrichYeuHoSo": summary,
            "NgayTiepNhan": format_timestamp(received),
            "NgayHenTra": format_timestamp(due),
            "TrangThaiHoSo": STATUS_RECEIVED,
            "HinhThuc": "0" if self.rng.random() < 0.8 else "1",
            "DonViXuLy": f"UBND {unit} {COMMUNES[commune]}",
            "ThongTinNguoiNop": person,
        }

    def _person(self, received: datetime, birth: date, female: bool) -> dict[str, str]:
        commune = self.rng.choice(sorted(COMMUNES))
        return {
            "SoDinhDanh": self._cccd(birth.year, female),
            "TenNguoiNop": make_name(self.rng, female=female),
            "NgaySinh": format_date(birth),
            "GioiTinh": "2" if female else "1",
            "MaTinh": PROVINCE_CODE,
            "MaHuyen": DISTRICT_CODE,
            "MaXa": commune,
            "DiaChiChiTiet": self._address(commune),
        }

    def _category(self, on: date) -> tuple[str, int, int, str]:
        rows = [r for r in CATEGORIES if on >= DECREE_20_START or r[0] not in NEW_IN_2021]
        row = self.rng.choices(rows, weights=[r[1] for r in rows])[0]
        return row[0], row[2], row[3], row[4]

    def _cccd(self, birth_year: int, female: bool) -> str:
        while True:
            cccd = make_cccd(BIRTH_PROVINCE, birth_year, female, self.rng.randrange(1_000_000))
            if cccd not in self.used_cccd:
                self.used_cccd.add(cccd)
                return cccd

    def _address(self, commune: str) -> str:
        if commune in TOWNS:
            return f"Tổ {self.rng.randint(1, 12)}"
        return f"Thôn {self.rng.choice(VILLAGES)}"

    def _phone(self) -> str:
        return self.rng.choice(("09", "03", "08")) + f"{self.rng.randrange(100_000_000):08d}"

    def _document(self, ma_ho_so: str, index: int, name: str) -> dict[str, str]:
        file_id = f"{ma_ho_so}-f{index + 1}"
        return {
            "TepDinhKemId": file_id,
            "TenTepDinhKem": name,
            "IsDeleted": "False",
            "MaThanhPhanHoSo": f"TP{index + 1}",
            "DuongDanTaiTepTin": f"https://motcua.backan.gov.vn/tep/{file_id}",
        }

    def _advance_clock(self) -> datetime:
        """Reception times move forward through working hours, Monday to Friday."""
        moment = self.clock + timedelta(minutes=self.rng.randint(3, 50))
        while moment.weekday() >= 5 or moment.time() >= CLOSING or moment.time() < OPENING:
            next_day = moment.date() + timedelta(days=1)
            moment = datetime.combine(next_day, OPENING, tzinfo=VN_TZ) + timedelta(
                minutes=self.rng.randint(0, 40)
            )
        self.clock = moment
        return moment

    # -- re-sends --------------------------------------------------------------------------
    def update(self) -> dict[str, Any]:
        """An earlier monthly-allowance dossier again, with one field changed."""
        ma = self.rng.choice(self.allowance_ids)
        item = self.dossiers[ma]
        change = self.rng.randrange(3)
        if change == 0:
            request = item["DeNghiTroCap"]
            flip = {"tai_diem": "tai_nha", "tai_nha": "tai_diem"}
            request["DiaChiNhanTien"] = flip[request["DiaChiNhanTien"]]
        elif change == 1:
            old = item["SoDienThoai"]
            while item["SoDienThoai"] == old:
                item["SoDienThoai"] = self._phone()
        else:
            docs = item.setdefault("TaiLieuNop", [])
            docs.append(self._document(ma, len(docs), "Giấy tờ bổ sung.pdf"))
        return copy.deepcopy(item)
