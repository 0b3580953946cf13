"""Fixture builders: decision payloads with valid CCCDs, a Chợ Đồn-shaped roster, a national
generator. For tests and benchmarks (test-only: kept out of the plugin package); names are
generated, CCCDs valid but fictional.
"""

from __future__ import annotations

import random
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time
from itertools import accumulate

from lxml import etree

from gateway.model import VN_TZ
from plugins.social_assistance.amounts import Person, amount_for, coefficient
from plugins.social_assistance.decision import Decision
from plugins.social_assistance.history import PaidHistory, SentHistory
from plugins.social_assistance.month import Month
from plugins.social_assistance.payment_list import PaymentLine, PaymentList, build_payment_list
from plugins.social_assistance.reconcile import reconcile
from plugins.social_assistance.roster import Acceptance, DecisionKey, build_roster
from plugins.social_assistance.rules import AdminUnits, Rules
from plugins.vn_common.cccd import make_cccd

FAMILY = ("Nguyễn", "Hoàng", "Lò", "Ma", "Nông", "Triệu", "Hà", "Lục", "Đàm", "Bế", "Hứa", "Lý")
MIDDLE_MALE = ("Văn", "Đức", "Minh", "Quang")
MIDDLE_FEMALE = ("Thị", "Thu", "Ngọc", "Thanh")
GIVEN = ("An", "Bình", "Cường", "Dung", "Hoa", "Lan", "Mai", "Nam", "Pha", "Sơn", "Tâm", "Vân")

CHODON_COMMUNES = (
    "02020", "02023", "02026", "02029", "02032", "02035", "02038", "02041", "02044", "02047",
    "02050", "02053", "02059", "02062", "02065", "02068", "02071", "02077", "02080", "02083",
)  # fmt: skip

CHODON_AUGUST_2020 = {
    "beneficiaries": 1714,
    "total": 662_715_000,
    "groups": {
        "tre_em_khong_nguon_nuoi": 16,
        "nhiem_hiv": 8,
        "don_than": 84,
        "cao_tuoi": 553,
        "khuyet_tat": 785,
        "cham_soc": 268,
    },
}
"""DOMAIN.md §5: Chợ Đồn district, Bắc Kạn, August 2020 (level 270,000 × 2,454.5 units)."""


def full_name(rng: random.Random, female: bool) -> str:
    middle = MIDDLE_FEMALE if female else MIDDLE_MALE
    return f"{rng.choice(FAMILY)} {rng.choice(middle)} {rng.choice(GIVEN)}"


REGISTRY_NS = "urn:vn:btxh:registry:1"


def quyet_dinh(payload: Mapping[str, str]) -> bytes:
    """A decision as the district registry pushes it: one ``QuyetDinh`` element whose
    attributes are ``payload``."""
    el = etree.Element(f"{{{REGISTRY_NS}}}QuyetDinh", nsmap={None: REGISTRY_NS})
    for k, v in payload.items():
        el.set(k, v)
    return etree.tostring(el, xml_declaration=True, encoding="UTF-8")


def decision_payload(rules: Rules, **attrs: object) -> dict[str, str]:
    """A QuyetDinh attribute dict. For huong/dieu_chinh without an explicit amount, heSo,
    mucChuan and soTienThang are filled in from the rules for ``tuThang`` (so they agree)."""
    payload = {k: str(v) for k, v in attrs.items() if v is not None}
    payload.setdefault("loai", "huong")
    payload.setdefault("tuThang", payload["ngayKy"][:7])
    if payload["loai"] in ("huong", "dieu_chinh") and "soTienThang" not in payload:
        month = Month.parse(payload["tuThang"])
        cared = payload.get("ngaySinhNguoiDuocChamSoc")
        person = Person(
            date.fromisoformat(payload["ngaySinh"]),
            payload.get("mucDoKhuyetTat"),
            int(payload.get("soCon", "0")),
            date.fromisoformat(cared) if cared else None,
        )
        coef = coefficient(rules, person, payload["loaiDoiTuong"], month)
        level = rules.level(month)
        payload.setdefault("heSo", str(coef))
        payload.setdefault("mucChuan", str(level))
        payload["soTienThang"] = str(amount_for(level, coef))
    return payload


@dataclass(frozen=True, slots=True)
class Profile:
    """A kind of beneficiary in the Chợ Đồn mix: category, how many, birth-year range."""

    category: str
    count: int
    born: tuple[int, int]
    disability: str | None = None
    children: int | None = None
    cared_born: tuple[int, int] | None = None


CHODON_MIX = (
    Profile("5.1", 4, (2017, 2018)),  # under 4: 2.5
    Profile("5.1", 10, (2006, 2013)),  # from 4: 1.5
    Profile("5.2", 2, (2001, 2003)),  # 1.5
    Profile("5.3", 2, (2010, 2012)),  # from 4 to under 16: 2.0
    Profile("5.8", 6, (1975, 1990)),  # 1.5
    Profile("5.4", 60, (1980, 1995), children=1),
    Profile("5.4", 20, (1980, 1995), children=2),
    Profile("5.4", 4, (1980, 1995), children=3),
    Profile("5.5c", 400, (1925, 1937)),  # 80+: 1.0
    Profile("5.5a", 100, (1945, 1955)),  # 60 to under 80: 1.5
    Profile("5.5a", 50, (1925, 1937)),  # 80+: 2.0
    Profile("5.5d", 3, (1930, 1940)),  # 3.0
    Profile("5.6", 509, (1965, 2000), disability="nang"),  # adult: 1.5
    Profile("5.6", 100, (2006, 2013), disability="nang"),  # child: 2.0
    Profile("5.6", 40, (1940, 1955), disability="nang"),  # elderly: 2.0
    Profile("5.6", 36, (1965, 2000), disability="dac_biet_nang"),  # adult: 2.0
    Profile("5.6", 50, (2006, 2013), disability="dac_biet_nang"),  # child: 2.5
    Profile("5.6", 50, (1940, 1955), disability="dac_biet_nang"),  # elderly: 2.5
    Profile("cs", 250, (1960, 1995), cared_born=(2000, 2013)),  # 1.0
    Profile("cs", 18, (1960, 1995), cared_born=(2017, 2018)),  # caring for a child under 4: 1.5
)
"""1,714 people, 2,454.5 coefficient units in 2020-08. Birth months avoid July/August so no
age bound falls near the report month; grants are signed 2019-01…2020-05."""


def chodon_august_2020(rules: Rules, seed: int = 2020) -> list[dict[str, str]]:
    """Grant payloads for a roster shaped like Chợ Đồn district in August 2020."""
    rng = random.Random(seed)
    profiles = [p for p in CHODON_MIX for _ in range(p.count)]
    return [
        _grant(rules, rng, profile, serial, CHODON_COMMUNES[serial % len(CHODON_COMMUNES)])
        for serial, profile in enumerate(profiles)
    ]


def _birth(rng: random.Random, years: tuple[int, int]) -> date:
    return date(rng.randint(*years), rng.choice(_BIRTH_MONTHS), rng.randint(1, 28))


def _grant(
    rules: Rules,
    rng: random.Random,
    profile: Profile,
    serial: int,
    commune: str,
    signed: date | None = None,
) -> dict[str, str]:
    female = rng.random() < 0.5
    born = _birth(rng, profile.born)
    signed = signed or date.fromordinal(_FIRST_SIGNING.toordinal() + rng.randint(0, 500))
    return decision_payload(
        rules,
        so=f"{serial + 1}/QĐ-UBND",
        ngayKy=signed.isoformat(),
        maHoSo=f"000.00.12.H06-{signed:%y%m%d}-{serial:05d}",
        soDinhDanh=make_cccd("006", born.year, female, serial),
        hoTen=full_name(rng, female),
        ngaySinh=born.isoformat(),
        gioiTinh="nu" if female else "nam",
        maXa=commune,
        loaiDoiTuong=profile.category,
        mucDoKhuyetTat=profile.disability,
        soCon=profile.children,
        ngaySinhNguoiDuocChamSoc=_birth(rng, profile.cared_born).isoformat()
        if profile.cared_born
        else None,
        nhanTien="tai_nha"
        if born.year < 1935 or profile.disability == "dac_biet_nang"
        else "tai_diem",
    )


def national_communes(count: int) -> list[str]:
    """``count`` synthetic 5-digit commune codes (for the national benchmark)."""
    return [f"{10000 + i:05d}" for i in range(count)]


def national_payloads(
    rules: Rules,
    commune: str,
    people: int,
    seed: int,
    month: Month,
    *,
    late: float = 0.02,
    suspended: float = 0.01,
) -> Iterator[dict[str, str]]:
    """Decision payloads for one synthetic commune, drawn from the Chợ Đồn mix, for the list
    of ``month``: a share of grants signed late (after the previous list was built: arrears)
    and a share suspended (tam_dung lines), so a run exercises more than ``khong_doi``.

    The same payloads as :func:`_grant` + :func:`decision_payload` would give for each person
    (same random draws, in the same order, same attributes in the same order), built directly:
    this runs once per beneficiary of the country in the national benchmark.
    """
    rng = random.Random(seed)
    rand, randint, choice = rng.random, rng.randint, rng.choice
    # rng.choices(CHODON_MIX, weights) draws bisect(cumulative weights, random() * total)
    cumulative = list(accumulate(p.count for p in CHODON_MIX))
    total, last = cumulative[-1] + 0.0, len(CHODON_MIX) - 1
    late_day = (month - 1).day(rules.calendar.list_build_day - 10)
    late_signed, restated = late_day.isoformat(), str(month - 2)
    first_signing = _FIRST_SIGNING.toordinal()
    for i in range(people):
        profile = CHODON_MIX[bisect_right(cumulative, rand() * total, 0, last)]
        serial = seed * 1000 + i
        draw = rand()
        # _grant: sex, birth date, signing date, name, cared-for birth date
        female = rand() < 0.5
        born = date(randint(*profile.born), choice(_BIRTH_MONTHS), randint(1, 28))
        if draw < late:
            signed, from_month = late_signed, restated
        else:
            day = date.fromordinal(first_signing + randint(0, 500))
            signed = day.isoformat()
            from_month = signed[:7]
        middle = MIDDLE_FEMALE if female else MIDDLE_MALE
        name = f"{choice(FAMILY)} {choice(middle)} {choice(GIVEN)}"
        payload = {
            "so": f"{serial + 1}/QĐ-UBND",
            "ngayKy": signed,
            "maHoSo": f"NAT-{commune}-{i:06d}",
            "soDinhDanh": make_cccd("001", born.year, female, serial),
            "hoTen": name,
            "ngaySinh": born.isoformat(),
            "gioiTinh": "nu" if female else "nam",
            "maXa": commune,
            "loaiDoiTuong": profile.category,
        }
        if profile.disability is not None:
            payload["mucDoKhuyetTat"] = profile.disability
        if profile.children is not None:
            payload["soCon"] = str(profile.children)
        cared = None
        if profile.cared_born:
            cared = _birth(rng, profile.cared_born)
            payload["ngaySinhNguoiDuocChamSoc"] = cared.isoformat()
        payload["nhanTien"] = (
            "tai_nha" if born.year < 1935 or profile.disability == "dac_biet_nang" else "tai_diem"
        )
        payload["loai"] = "huong"
        payload["tuThang"] = from_month
        # decision_payload: heSo, mucChuan, soTienThang from the rules for tuThang
        person = Person(born, profile.disability, profile.children or 0, cared)
        stated = _stated_amount(rules, person, profile.category, Month.parse(from_month))
        payload["heSo"], payload["mucChuan"], payload["soTienThang"] = stated
        yield payload
        if late <= draw < late + suspended:
            yield _suspension(payload, month)


_FIRST_SIGNING = date(2019, 1, 2)
_BIRTH_MONTHS = (1, 2, 3, 4, 5, 6, 9, 10, 11, 12)


def _stated_amount(
    rules: Rules, person: Person, category: str, month: Month
) -> tuple[str, str, str]:
    """heSo, mucChuan and soTienThang as :func:`decision_payload` states them."""
    coef = coefficient(rules, person, category, month)
    level = rules.level(month)
    return str(coef), str(level), str(amount_for(level, coef))


def national_decisions(
    rules: Rules, commune: str, people: int, seed: int, month: Month
) -> Iterator[Decision]:
    """:func:`national_payloads`, parsed."""
    for payload in national_payloads(rules, commune, people, seed, month):
        yield Decision.from_payload(payload, rules)


def _suspension(grant: dict[str, str], month: Month) -> dict[str, str]:
    keep = ("maHoSo", "soDinhDanh", "hoTen", "ngaySinh", "maXa", "gioiTinh")
    signed = (month - 2).day(5)
    return {k: grant[k] for k in keep} | {
        "so": f"9{grant['so']}", "ngayKy": signed.isoformat(), "loai": "tam_dung",
        "tuThang": str(month - 2), "lyDo": "không nhận trợ cấp 3 tháng liên tiếp",
    }  # fmt: skip


# ---------------------------------------------------------------------------------------
# Small worlds for tests: one decision at a time, and months simulated end to end
# ---------------------------------------------------------------------------------------


def decision(
    rules: Rules,
    *,
    so: str,
    ngayKy: str,  # the wire name, as callers write it
    birth: str = "1950-03-10",
    female: bool = False,
    serial: int = 1,
    dossier: str = "HS-0001",
    **attrs: object,
) -> Decision:
    """One parsed decision about person ``serial`` (a valid CCCD from birth year and sex)."""
    defaults: dict[str, object] = {
        "maHoSo": dossier,
        "soDinhDanh": make_cccd("006", int(birth[:4]), female, serial),
        "hoTen": f"Nông {'Thị' if female else 'Văn'} {GIVEN[serial % len(GIVEN)]}",
        "ngaySinh": birth,
        "maXa": "02053",
    }
    return Decision.from_payload(
        decision_payload(rules, so=so, ngayKy=ngayKy, **(defaults | attrs)), rules
    )


def simulate(
    rules: Rules,
    admin_units: AdminUnits,
    decisions: Iterable[Decision],
    commune: str,
    months: Iterable[Month],
    *,
    unpaid: Mapping[Month, set[str]] | None = None,
    accepted: Mapping[DecisionKey, Acceptance] | None = None,
    sent: SentHistory | None = None,
    paid: PaidHistory | None = None,
) -> list[PaymentList]:
    """Build each month's list on its build day, send it, and have the payer pay every line
    except those of the CCCDs in ``unpaid[month]``; returns the lists in order."""
    roster = build_roster(rules, decisions, accepted)
    sent = sent if sent is not None else SentHistory()
    paid = paid if paid is not None else PaidHistory()
    lists = []
    for month in months:
        now = datetime.combine(rules.calendar.build_date(month), time(10), VN_TZ)
        code = admin_units.list_commune(commune, month).code or ""
        built = build_payment_list(
            rules, admin_units, roster, code, month, paid_history=paid, sent_history=sent, now=now
        )
        sent.record(built)
        skip = (unpaid or {}).get(month, set())
        results = [
            payer_result(line, built, paid=line.citizen_id not in skip) for line in built.lines
        ]
        paid.record_all(reconcile(rules, built, results).outcomes)
        lists.append(built)
    return lists


def payer_result(line: PaymentLine, sent: PaymentList, *, paid: bool) -> dict[str, str]:
    """The payer's KetQuaChiTra line for a list line: paid in full, or not at all."""
    result = {
        "ky": str(sent.ky),
        "maXa": sent.commune,
        "soDinhDanh": line.citizen_id,
        "trangThai": "da_chi" if paid else "chua_chi",
        "soTien": str(line.total if paid else 0),
    }
    if paid:
        result["ngayChi"] = sent.ky.day(5).isoformat()
    if line.key[1] == "cs":
        result["loaiDoiTuong"] = line.category
    return result
