"""Decisions (QuyetDinh) parsed, checked and applied in order into the roster."""

from __future__ import annotations

import random
from datetime import date
from decimal import Decimal

import pytest
from sa_fixtures import decision, decision_payload

from plugins.social_assistance.month import Month
from plugins.social_assistance.roster import (
    AmountMismatch,
    Decision,
    DecisionConflict,
    DecisionError,
    DecisionKind,
    EarlyStart,
    Status,
    _in_order,
    build_roster,
    check_decision_amount,
    check_grant_start,
    deciding_authority,
    decision_host,
)
from plugins.social_assistance.rules import load_rules

RULES = load_rules()
FORMATS_EXAMPLE = {
    "so": "215/QĐ-UBND",
    "ngayKy": "2020-08-20",
    "loai": "huong",
    "maHoSo": "000.00.12.H06-200803-0001",
    "soDinhDanh": "006135001234",
    "hoTen": "Hoàng Thị Lan",
    "ngaySinh": "1935-04-12",
    "maXa": "02053",
    "loaiDoiTuong": "5.5a",
    "heSo": "2.0",
    "mucChuan": "270000",
    "soTienThang": "540000",
    "tuThang": "2020-08",
    "nhanTien": "tai_nha",
}


def parse_error(**changes: str | None) -> str:
    payload = {k: v for k, v in (FORMATS_EXAMPLE | changes).items() if v is not None}
    with pytest.raises(DecisionError) as e:
        Decision.from_payload(payload, RULES)
    message = str(e.value)
    assert "006135001234" not in message and "Hoàng Thị Lan" not in message
    return message


# ---------------------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------------------


def test_formats_example_parses() -> None:
    d = Decision.from_payload(FORMATS_EXAMPLE, RULES)
    assert (d.kind, d.category, d.coefficient, d.level, d.monthly_amount) == (
        DecisionKind.HUONG,
        "5.5a",
        Decimal("2.0"),
        270000,
        540000,
    )
    assert (d.from_month, d.payout, d.signed_on) == (Month(2020, 8), "tai_nha", date(2020, 8, 20))
    assert check_decision_amount(RULES, d) is None


def test_nhan_tien_defaults_to_tai_diem() -> None:
    assert Decision.from_payload(FORMATS_EXAMPLE | {"nhanTien": ""}, RULES).payout == "tai_diem"


def test_a_grant_needs_its_amount_fields() -> None:
    message = parse_error(heSo=None, soTienThang=None)
    assert "thiếu heSo (heSo is required)" in message and "soTienThang" in message


def test_suspension_needs_only_who_which_dossier_and_when() -> None:
    payload = {
        k: FORMATS_EXAMPLE[k]
        for k in ("so", "ngayKy", "maHoSo", "soDinhDanh", "ngaySinh", "maXa", "tuThang")
    }
    d = Decision.from_payload(payload | {"loai": "tam_dung", "lyDo": "vắng mặt"}, RULES)
    assert d.kind is DecisionKind.TAM_DUNG and d.category is None


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"loaiDoiTuong": "5.6"}, "thiếu mucDoKhuyetTat cho loại 5.6"),
        ({"loaiDoiTuong": "5.4"}, "thiếu soCon cho loại 5.4"),
        ({"loaiDoiTuong": "5.9"}, "unknown category"),
        ({"soDinhDanh": "006135001235x"}, "********235x"),
        ({"soDinhDanh": "006036001234"}, "năm sinh 1935"),
        ({"gioiTinh": "nam"}, "giới tính"),
        ({"ngayKy": "20/08/2020"}, "ngayKy: ngày không hợp lệ"),
        ({"tuThang": "2020-8"}, "tuThang: tháng phải có dạng YYYY-MM"),
        ({"maXa": "2053"}, "5 chữ số"),
        ({"loai": "cap_moi"}, "loai: 'cap_moi' không thuộc"),
        ({"soTienThang": "540.000"}, "soTienThang: phải là số nguyên"),
        ({"heSo": "2,0"}, "heSo: phải là số thập phân"),
        ({"soCon": "0", "loaiDoiTuong": "5.4"}, "soCon: phải là số nguyên dương"),
        ({"mucDoKhuyetTat": "nhe"}, "mucDoKhuyetTat: 'nhe' không thuộc"),
        ({"truyLinh": "yes"}, "truyLinh"),
        ({"tuthang": "2020-08"}, "unknown attribute"),
        ({"ngaySinh": "2021-01-01", "soDinhDanh": "006321001234"}, "ngaySinh sau ngayKy"),
    ],
)
def test_readable_validation_errors(changes: dict[str, str], expected: str) -> None:
    message = parse_error(**changes)
    assert message.startswith("quyết định 215/QĐ-UBND (hồ sơ 000.00.12.H06-200803-0001): ")
    assert expected in message


def test_every_problem_is_reported_at_once() -> None:
    message = parse_error(maXa="x", tuThang="x", heSo="x")
    assert message.count(";") >= 2


# ---------------------------------------------------------------------------------------
# Amount check and held decisions
# ---------------------------------------------------------------------------------------


def test_amount_mismatch_is_held_with_both_figures() -> None:
    wrong = Decision.from_payload(FORMATS_EXAMPLE | {"soTienThang": "405000", "heSo": "1.5"}, RULES)
    mismatch = check_decision_amount(RULES, wrong)
    assert isinstance(mismatch, AmountMismatch)
    assert (mismatch.registry_amount, mismatch.computed_amount) == (405000, 540000)
    assert (mismatch.computed_coefficient, mismatch.computed_level) == (Decimal("2.0"), 270000)
    assert "405,000" in mismatch.message and "540,000" in mismatch.message
    roster = build_roster(RULES, [wrong])
    assert roster.held == (mismatch,) and roster.benefits == ()


def test_operator_accepts_the_gateway_figure() -> None:
    wrong = Decision.from_payload(FORMATS_EXAMPLE | {"soTienThang": "405000"}, RULES)
    roster = build_roster(RULES, [wrong], {wrong.key: "gateway"})
    assert roster.held == ()
    terms = roster.benefits[0].payable(Month(2020, 9))
    assert terms is not None and terms.pinned_amount is None


def test_operator_accepts_the_registry_figure() -> None:
    wrong = Decision.from_payload(FORMATS_EXAMPLE | {"soTienThang": "405000"}, RULES)
    roster = build_roster(RULES, [wrong], {wrong.key: "registry"})
    terms = roster.benefits[0].payable(Month(2020, 9))
    assert terms is not None and terms.pinned_amount == 405000


def test_suspension_and_stop_decisions_have_no_amount_to_check() -> None:
    stop = decision(RULES, so="1/QĐ", ngayKy="2020-09-01", loai="thoi_huong", tuThang="2020-10")
    assert check_decision_amount(RULES, stop) is None


# ---------------------------------------------------------------------------------------
# Order, re-sending, permutations
# ---------------------------------------------------------------------------------------


def grant(**attrs: object) -> Decision:
    base: dict[str, object] = {"so": "100/QĐ-UBND", "ngayKy": "2020-03-10", "loaiDoiTuong": "5.5a"}
    return decision(RULES, **(base | attrs))  # type: ignore[arg-type]


def test_decision_numbers_compare_numerically_9_before_10() -> None:
    g = grant()
    nine = decision(
        RULES,
        so="9/QĐ-UBND",
        ngayKy="2020-06-01",
        loai="dieu_chinh",
        loaiDoiTuong="5.8",
        tuThang="2020-06",
    )
    ten = decision(
        RULES,
        so="10/QĐ-UBND",
        ngayKy="2020-06-01",
        loai="dieu_chinh",
        loaiDoiTuong="5.5d",
        tuThang="2020-06",
    )
    roster = build_roster(RULES, [ten, g, nine])
    terms = roster.benefits[0].payable(Month(2020, 7))
    assert terms is not None and terms.category == "5.5d"  # 10/ signed after 9/: it governs


def test_signing_date_comes_before_number() -> None:
    g = grant()
    early = decision(
        RULES,
        so="50/QĐ",
        ngayKy="2020-05-01",
        loai="dieu_chinh",
        loaiDoiTuong="5.5d",
        tuThang="2020-06",
    )
    late = decision(
        RULES,
        so="3/QĐ",
        ngayKy="2020-05-02",
        loai="dieu_chinh",
        loaiDoiTuong="5.8",
        tuThang="2020-06",
    )
    terms = build_roster(RULES, [late, early, g]).benefits[0].payable(Month(2020, 6))
    assert terms is not None and terms.category == "5.8"


def test_the_later_decision_governs_from_its_own_month_on() -> None:
    g = grant()
    adjust = decision(
        RULES,
        so="7/QĐ",
        ngayKy="2020-06-01",
        loai="dieu_chinh",
        loaiDoiTuong="5.5d",
        tuThang="2020-07",
    )
    benefit = build_roster(RULES, [g, adjust]).benefits[0]
    assert benefit.payable(Month(2020, 6)).category == "5.5a"  # type: ignore[union-attr]
    assert benefit.payable(Month(2020, 7)).category == "5.5d"  # type: ignore[union-attr]


def test_a_re_sent_decision_changes_nothing() -> None:
    g = grant()
    again = Decision.from_payload(
        decision_payload(RULES, **{k: v for k, v in _payload(g).items()}), RULES
    )
    assert build_roster(RULES, [g, again, g]) == build_roster(RULES, [g])


def _payload(d: Decision) -> dict[str, str]:
    return {
        "so": d.number,
        "ngayKy": d.signed_on.isoformat(),
        "loai": d.kind,
        "maHoSo": d.dossier,
        "soDinhDanh": d.citizen_id,
        "hoTen": d.full_name or "",
        "ngaySinh": d.birth_date.isoformat(),
        "maXa": d.commune,
        "loaiDoiTuong": d.category or "",
        "tuThang": str(d.from_month),
    }


def test_same_decision_with_different_content_is_held_as_a_conflict() -> None:
    g = grant()
    changed = grant(maXa="02020")
    roster = build_roster(RULES, [g, changed])
    assert roster.benefits == ()
    assert {type(h) for h in roster.held} == {DecisionConflict}
    assert "re-sent with different content" in roster.held[0].message


def test_a_decision_naming_another_person_is_held() -> None:
    g = grant()
    other = decision(
        RULES, so="101/QĐ", ngayKy="2020-04-01", loai="tam_dung", tuThang="2020-05", serial=2
    )
    roster = build_roster(RULES, [g, other])
    assert len(roster.held) == 1 and "another person" in roster.held[0].message
    assert other.citizen_id not in roster.held[0].message  # masked
    assert roster.benefits[0].span_at(Month(2020, 6)).status is Status.ACTIVE


def test_any_order_of_input_gives_the_same_roster() -> None:
    decisions = [
        grant(),
        decision(RULES, so="9/QĐ", ngayKy="2020-06-01", loai="tam_dung", tuThang="2020-07"),
        decision(
            RULES,
            so="10/QĐ",
            ngayKy="2020-06-01",
            loai="dieu_chinh",
            loaiDoiTuong="5.5d",
            tuThang="2020-06",
        ),
        decision(
            RULES,
            so="4/QĐ",
            ngayKy="2020-10-01",
            loai="tiep_tuc",
            tuThang="2020-10",
            truyLinh="true",
        ),
        grant(dossier="HS-0002", serial=2, so="5/QĐ"),
    ]
    expected = build_roster(RULES, decisions)
    rng = random.Random(7)
    for _ in range(20):
        rng.shuffle(decisions)
        assert build_roster(RULES, decisions) == expected


# ---------------------------------------------------------------------------------------
# When payment starts, stops, is suspended and resumed
# ---------------------------------------------------------------------------------------


def first_month(*decisions: Decision) -> Month | None:
    return build_roster(RULES, decisions).benefits[0].first_month


def test_grant_starts_in_the_month_of_signing() -> None:
    assert first_month(grant(ngayKy="2020-08-20", tuThang="2020-08")) == Month(2020, 8)


def test_a_grant_that_starts_before_signing_is_held_with_both_months_not_moved() -> None:
    early = grant(ngayKy="2020-08-20", tuThang="2020-06")
    roster = build_roster(RULES, [early])
    assert roster.benefits == ()
    assert roster.held == (EarlyStart(early.key, Month(2020, 6), Month(2020, 8)),)
    assert "2020-06" in roster.held[0].message and "2020-08" in roster.held[0].message
    assert check_grant_start(RULES, early) == roster.held[0]
    # an operator accepts one month: ours (the signing month) or the registry's tuThang
    ours = build_roster(RULES, [early], {early.key: "gateway"})
    theirs = build_roster(RULES, [early], {early.key: "registry"})
    assert ours.held == theirs.held == ()
    assert ours.benefits[0].first_month == Month(2020, 8)
    assert theirs.benefits[0].first_month == Month(2020, 6)


def test_a_5_5c_grant_before_the_80th_birthday_month_is_held() -> None:
    d = grant(loaiDoiTuong="5.5c", birth="1940-10-15", ngayKy="2020-12-20", tuThang="2020-08")
    [held] = build_roster(RULES, [d]).held
    assert isinstance(held, EarlyStart)
    assert (held.registry_month, held.rules_month) == (Month(2020, 8), Month(2020, 10))


def test_a_5_6_grant_takes_tu_thang_as_given() -> None:
    d = grant(loaiDoiTuong="5.6", mucDoKhuyetTat="nang", ngayKy="2020-08-20", tuThang="2019-01")
    assert check_grant_start(RULES, d) is None and first_month(d) == Month(2019, 1)


def test_grant_starts_at_tu_thang_when_that_is_later() -> None:
    assert first_month(grant(ngayKy="2020-08-20", tuThang="2020-10")) == Month(2020, 10)


def test_5_5c_starts_in_the_month_of_the_80th_birthday() -> None:
    d = grant(loaiDoiTuong="5.5c", birth="1940-06-15", ngayKy="2020-08-20", tuThang="2020-06")
    assert first_month(d) == Month(2020, 6)  # before signing: paid as arrears


def test_5_5c_never_starts_before_the_birthday_month() -> None:
    d = grant(loaiDoiTuong="5.5c", birth="1940-10-15", ngayKy="2020-08-20", tuThang="2020-10")
    assert first_month(d) == Month(2020, 10)


def test_5_5b_starts_at_75_and_never_before_2021_07() -> None:
    d = grant(loaiDoiTuong="5.5b", birth="1944-05-05", ngayKy="2021-09-10", tuThang="2021-07")
    assert first_month(d) == Month(2021, 7)
    young = grant(loaiDoiTuong="5.5b", birth="1946-11-05", ngayKy="2021-09-10", tuThang="2021-11")
    assert first_month(young) == Month(2021, 11)


def test_5_6_starts_in_the_stated_month() -> None:
    d = grant(loaiDoiTuong="5.6", mucDoKhuyetTat="nang", ngayKy="2020-08-20", tuThang="2020-05")
    assert first_month(d) == Month(2020, 5)


def statuses(months: list[Month], *decisions: Decision) -> list[Status | None]:
    benefit = build_roster(RULES, decisions).benefits[0]
    return [benefit.span_at(m).status for m in months]


def test_stop_suspend_resume_edges() -> None:
    g = grant(ngayKy="2020-03-10")
    suspend = decision(RULES, so="2/QĐ", ngayKy="2020-05-05", loai="tam_dung", tuThang="2020-06")
    resume = decision(RULES, so="3/QĐ", ngayKy="2020-08-05", loai="tiep_tuc", tuThang="2020-09")
    stop = decision(RULES, so="4/QĐ", ngayKy="2020-10-05", loai="thoi_huong", tuThang="2020-11")
    months = [Month(2020, m) for m in (2, 3, 5, 6, 8, 9, 10, 11, 12)]
    assert statuses(months, g, suspend, resume, stop) == [
        None, Status.ACTIVE, Status.ACTIVE, Status.SUSPENDED, Status.SUSPENDED,
        Status.ACTIVE, Status.ACTIVE, Status.STOPPED, Status.STOPPED,
    ]  # fmt: skip


def test_resume_with_arrears_marks_the_suspended_months_payable() -> None:
    g = grant(ngayKy="2020-03-10")
    suspend = decision(RULES, so="2/QĐ", ngayKy="2020-05-05", loai="tam_dung", tuThang="2020-06")
    resume = decision(
        RULES, so="3/QĐ", ngayKy="2020-08-05", loai="tiep_tuc", tuThang="2020-09", truyLinh="true"
    )
    benefit = build_roster(RULES, [g, suspend, resume]).benefits[0]
    assert [benefit.payable(Month(2020, m)) is not None for m in (5, 6, 7, 8, 9)] == [True] * 5
    without = build_roster(
        RULES, [g, suspend, resume.__class__(**{**_fields(resume), "arrears": False})]
    )
    assert [without.benefits[0].payable(Month(2020, m)) is not None for m in (5, 6, 8, 9)] == [
        True,
        False,
        False,
        True,
    ]


def _fields(d: Decision) -> dict[str, object]:
    return {name: getattr(d, name) for name in d.__dataclass_fields__}


def test_roster_as_of_a_day_knows_only_decisions_signed_by_then() -> None:
    g = grant(ngayKy="2020-03-10")
    stop = decision(RULES, so="4/QĐ", ngayKy="2020-10-05", loai="thoi_huong", tuThang="2020-11")
    roster = build_roster(RULES, [g, stop])
    assert (
        roster.as_of(date(2020, 10, 4)).benefits[0].span_at(Month(2020, 12)).status is Status.ACTIVE
    )
    assert roster.as_of(date(2020, 10, 5)) is roster
    assert roster.as_of(date(2020, 1, 1)).benefits == ()


def test_deciding_authority_by_signing_date() -> None:
    before = grant(ngayKy="2025-06-30")
    after = grant(ngayKy="2025-07-01", so="1/QĐ-UBND")
    assert deciding_authority(RULES, before).code == "chu_tich_ubnd_huyen"
    assert deciding_authority(RULES, after).code == "chu_tich_ubnd_xa"


def test_conflicting_decisions_give_the_same_roster_in_any_order() -> None:
    g = grant()
    a = decision(RULES, so="9/QĐ-UBND", ngayKy="2020-05-04", loai="tam_dung", tuThang="2020-06")
    b = decision(RULES, so="9/QĐ-UBND", ngayKy="2020-05-04", loai="tam_dung", tuThang="2020-05")
    expected = build_roster(RULES, [g, a, b])
    assert build_roster(RULES, [b, g, a, b, a]) == expected
    assert len(expected.held) == 1 and isinstance(expected.held[0], DecisionConflict)
    # The roster goes through a set, whose order varies with the hash seed, so the tie
    # between a and b (same dossier, number and date) is pinned on the ordering helper.
    assert _in_order([a, b, g]) == _in_order([b, g, a]) == [g, *sorted([a, b], key=repr)]


# ---------------------------------------------------------------------------------------
# 5.4 on a host (FORMATS.md §2.2): the host is kept, 1.0 per child added, the whole checked
# ---------------------------------------------------------------------------------------


def host_grant(**attrs: object) -> Decision:
    base: dict[str, object] = {
        "so": "10/QĐ-UBND", "ngayKy": "2025-08-05", "loaiDoiTuong": "5.6",
        "mucDoKhuyetTat": "nang", "birth": "1980-05-05", "dossier": "HS-H", "maXa": "02020",
    }  # fmt: skip
    return decision(RULES, **(base | attrs))  # type: ignore[arg-type]


def single_parent(**attrs: object) -> Decision:
    base: dict[str, object] = {
        "so": "20/QĐ-UBND", "ngayKy": "2025-09-05", "loai": "dieu_chinh", "loaiDoiTuong": "5.4",
        "soCon": "2", "heSo": "3.5", "mucChuan": "500000", "soTienThang": "1750000",
        "birth": "1980-05-05", "dossier": "HS-H", "maXa": "02020", "tuThang": "2025-09",
    }  # fmt: skip
    return decision(RULES, **(base | attrs))  # type: ignore[arg-type]


def test_5_4_on_a_5_6_host_keeps_the_host_and_adds_one_per_child() -> None:
    host, parent = host_grant(), single_parent()
    # 5.6 severe, adult: 1.5; + 2 children: 3.5 × 500,000 — the registry's whole is right
    assert check_decision_amount(RULES, parent, ("5.6", "nang")) is None
    assert decision_host(RULES, [host], parent) == ("5.6", "nang")
    roster = build_roster(RULES, [host, parent])
    assert roster.held == ()
    [benefit] = roster.benefits
    terms = benefit.payable(Month(2025, 9))
    assert terms is not None and (terms.category, terms.host, terms.disability) == (
        "5.4", "5.6", "nang"
    )  # fmt: skip
    from plugins.social_assistance.amounts import line_amount

    amount, shown = line_amount(RULES, terms.entitlements(), Month(2025, 9))
    assert (amount, shown.category, shown.disability) == (1_750_000, "5.4", "nang")
    before = benefit.payable(Month(2025, 8))
    assert before is not None and line_amount(RULES, before.entitlements(), Month(2025, 8))[0] == (
        750_000
    )


def test_5_4_priced_alone_is_held_against_the_whole_benefit() -> None:
    alone = single_parent(heSo="2.0", soTienThang="1000000")  # 2 children only
    roster = build_roster(RULES, [host_grant(), alone])
    [held] = roster.held
    assert isinstance(held, AmountMismatch)
    assert (held.registry_amount, held.computed_amount) == (1_000_000, 1_750_000)
    # the host goes on being paid meanwhile, not the 5.4 alone
    terms = roster.benefits[0].payable(Month(2025, 9))
    assert terms is not None and (terms.category, terms.host) == ("5.6", None)


def test_5_4_naming_its_disability_level_is_on_a_5_6_host() -> None:
    grant54 = single_parent(
        loai="huong", mucDoKhuyetTat="dac_biet_nang", soCon="1", heSo="3.0",
        soTienThang="1500000", dossier="HS-N", ngayKy="2025-09-05",
    )  # fmt: skip
    assert decision_host(RULES, [], grant54) == ("5.6", "dac_biet_nang")
    roster = build_roster(RULES, [grant54])
    assert roster.held == ()
    terms = roster.benefits[0].payable(Month(2025, 9))
    assert terms is not None and (terms.category, terms.host) == ("5.4", "5.6")


def test_5_4_on_a_category_it_does_not_add_to_is_5_4_alone() -> None:
    child = decision(
        RULES, so="1/QĐ", ngayKy="2025-08-05", loaiDoiTuong="5.2", birth="2005-05-05",
        dossier="HS-C",
    )  # fmt: skip
    parent = single_parent(dossier="HS-C", birth="2005-05-05", heSo="2.0", soTienThang="1000000")
    assert decision_host(RULES, [child], parent) is None
    assert build_roster(RULES, [child, parent]).held == ()


def test_a_new_number_of_children_keeps_the_host() -> None:
    three = single_parent(
        so="30/QĐ-UBND", ngayKy="2025-10-05", tuThang="2025-10", soCon="3", heSo="4.5",
        soTienThang="2250000",
    )  # fmt: skip
    roster = build_roster(RULES, [host_grant(), single_parent(), three])
    assert roster.held == ()
    terms = roster.benefits[0].payable(Month(2025, 10))
    assert terms is not None and (terms.host, terms.children) == ("5.6", 3)
    from plugins.social_assistance.amounts import monthly_amount

    assert monthly_amount(RULES, terms.entitlements(), Month(2025, 10)) == 2_250_000
