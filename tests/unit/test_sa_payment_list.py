"""Payment lists month by month: changes, arrears, carried unpaid amounts, the 2025 merger."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sa_fixtures import decision, simulate

from gateway.model import VN_TZ
from plugins.social_assistance.admin_units import DEFAULT_ADMIN_UNITS_PATH
from plugins.social_assistance.history import PaidHistory, SentHistory
from plugins.social_assistance.month import Month, month_range
from plugins.social_assistance.payment_list import (
    ListRefused,
    PaymentLine,
    PaymentList,
    PaymentListError,
    build_payment_list,
    iter_payment_lists,
)
from plugins.social_assistance.roster import Decision, build_roster
from plugins.social_assistance.rules import (
    AdminUnitError,
    AdminUnits,
    load_admin_units,
    load_rules,
)

RULES = load_rules()
UNITS = load_admin_units()


def units_edited(tmp_path: Path, old: str, new: str) -> AdminUnits:
    """The shipped admin-units file with one edit, as a deployment would make it."""
    text = DEFAULT_ADMIN_UNITS_PATH.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "admin_units.toml"
    path.write_text(text.replace(old, new), encoding="utf-8")
    return load_admin_units(path)


def unconfirmed_dong_phuc(tmp_path: Path) -> AdminUnits:
    return units_edited(
        tmp_path, 'code = "01933"\nname = "Đồng Phúc"', 'name = "Đồng Phúc"\ncode_confirmed = false'
    )


LAN = {"birth": "1935-04-12", "female": True, "serial": 1234, "hoTen": "Hoàng Thị Lan"}
PHA = {"birth": "1980-04-12", "serial": 4321, "dossier": "HS-PHA", "hoTen": "Lò Văn Pha"}


def lan(**attrs: object) -> Decision:
    return decision(RULES, **(LAN | attrs))  # type: ignore[arg-type]


def pha(**attrs: object) -> Decision:
    return decision(RULES, **(PHA | attrs))  # type: ignore[arg-type]


def lan_grant(**attrs: object) -> Decision:
    base: dict[str, object] = {
        "so": "215/QĐ-UBND",
        "ngayKy": "2020-08-20",
        "loaiDoiTuong": "5.5a",
        "nhanTien": "tai_nha",
    }
    return lan(**(base | attrs))


def pha_grant(**attrs: object) -> Decision:
    base: dict[str, object] = {
        "so": "100/QĐ-UBND",
        "ngayKy": "2019-03-20",
        "loaiDoiTuong": "5.6",
        "mucDoKhuyetTat": "nang",
    }
    return pha(**(base | attrs))


def months(first: str, last: str) -> list[Month]:
    return month_range(Month.parse(first), Month.parse(last))


def only(payment_list: PaymentList) -> PaymentLine:
    assert len(payment_list.lines) == 1, payment_list.lines
    return payment_list.lines[0]


def summary(lists: list[PaymentList]) -> list[tuple[str, str, int, int, int]]:
    """(month, bienDong, month amount, arrears, carried) of a one-person run."""
    out = []
    for pl in lists:
        for line in pl.lines:
            out.append(
                (str(pl.ky), str(line.change), line.month_amount, line.arrears_amount, line.carried)
            )
    return out


def test_formats_example_list_exactly() -> None:
    roster = build_roster(RULES, [lan_grant(), pha_grant()])
    now = datetime(2020, 8, 24, 10, tzinfo=VN_TZ)
    built = build_payment_list(
        RULES,
        UNITS,
        roster,
        "02053",
        Month(2020, 9),
        paid_history=PaidHistory(),
        sent_history=SentHistory(),
        now=now,
    )
    lan_cccd, pha_cccd = lan_grant().citizen_id, pha_grant().citizen_id
    assert built.to_payload() == {
        "ky": "2020-09",
        "maXa": "02053",
        "lanGui": 1,
        "lapLuc": "2020-08-24T10:00:00+07:00",
        "tongSoNguoi": 2,
        "tongSoTien": 1485000,
        "lines": sorted(
            [
                {
                    "soDinhDanh": lan_cccd,
                    "hoTen": "Hoàng Thị Lan",
                    "loaiDoiTuong": "5.5a",
                    "soTienThang": 540000,
                    "soTienTruyLinh": 540000,
                    "truyLinhTu": "2020-08",
                    "truyLinhDen": "2020-08",
                    "soTienChuaNhan": 0,
                    "nhanTien": "tai_nha",
                    "bienDong": "tang",
                },
                {
                    "soDinhDanh": pha_cccd,
                    "hoTen": "Lò Văn Pha",
                    "loaiDoiTuong": "5.6",
                    "mucDoKhuyetTat": "nang",
                    "soTienThang": 405000,
                    "soTienTruyLinh": 0,
                    "soTienChuaNhan": 0,
                    "nhanTien": "tai_diem",
                    "bienDong": "khong_doi",
                },
            ],
            key=lambda line: line["soDinhDanh"],
        ),
    }


def test_new_then_unchanged() -> None:
    lists = simulate(RULES, UNITS, [lan_grant()], "02053", months("2020-09", "2020-11"))
    assert summary(lists) == [
        ("2020-09", "tang", 540000, 540000, 0),
        ("2020-10", "khong_doi", 540000, 0, 0),
        ("2020-11", "khong_doi", 540000, 0, 0),
    ]


def test_a_decision_signed_after_the_build_day_waits_for_the_next_list() -> None:
    late = lan_grant(ngayKy="2020-08-25")  # the September list was built on 08-24
    lists = simulate(RULES, UNITS, [late], "02053", months("2020-09", "2020-10"))
    assert lists[0].lines == ()
    assert summary(lists[1:]) == [("2020-10", "tang", 540000, 1080000, 0)]
    assert lists[1].lines[0].arrears == ((Month(2020, 8), 540000), (Month(2020, 9), 540000))


def test_age_bound_adjusts_without_a_decision_from_the_month_after_the_birthday() -> None:
    child = decision(
        RULES, so="1/QĐ", ngayKy="2020-03-05", loaiDoiTuong="5.1", birth="2016-08-15", serial=7
    )
    lists = simulate(RULES, UNITS, [child], "02053", months("2020-07", "2020-10"))
    assert [(c, a) for _, c, a, _, _ in summary(lists)] == [
        ("khong_doi", 675000),
        ("khong_doi", 675000),  # birthday month: still under 4
        ("dieu_chinh", 405000),
        ("khong_doi", 405000),
    ]


@pytest.mark.parametrize(
    ("first", "before", "after"), [("2021-06", 405000, 540000), ("2024-06", 540000, 750000)]
)
def test_level_change_months_adjust_every_line(first: str, before: int, after: int) -> None:
    lists = simulate(
        RULES, UNITS, [pha_grant()], "02053", months(first, str(Month.parse(first) + 2))
    )
    assert [(c, a) for _, c, a, _, _ in summary(lists)] == [
        ("khong_doi", before),
        ("dieu_chinh", after),
        ("khong_doi", after),
    ]


def test_adjustment_by_decision() -> None:
    adjust = pha(
        so="5/QĐ",
        ngayKy="2020-09-10",
        loai="dieu_chinh",
        loaiDoiTuong="5.6",
        mucDoKhuyetTat="dac_biet_nang",
        tuThang="2020-10",
    )
    lists = simulate(RULES, UNITS, [pha_grant(), adjust], "02053", months("2020-09", "2020-11"))
    assert summary(lists) == [
        ("2020-09", "khong_doi", 405000, 0, 0),
        ("2020-10", "dieu_chinh", 540000, 0, 0),
        ("2020-11", "khong_doi", 540000, 0, 0),
    ]
    assert lists[1].lines[0].disability == "dac_biet_nang"


def test_suspended_every_month_then_resumed_with_arrears() -> None:
    suspend = pha(
        so="5/QĐ", ngayKy="2020-09-05", loai="tam_dung", tuThang="2020-10", lyDo="vắng mặt"
    )
    resume = pha(
        so="9/QĐ", ngayKy="2020-11-05", loai="tiep_tuc", tuThang="2020-12", truyLinh="true"
    )
    lists = simulate(
        RULES, UNITS, [pha_grant(), suspend, resume], "02053", months("2020-09", "2021-01")
    )
    assert summary(lists) == [
        ("2020-09", "khong_doi", 405000, 0, 0),
        ("2020-10", "tam_dung", 0, 0, 0),
        ("2020-11", "tam_dung", 0, 0, 0),
        ("2020-12", "tiep_tuc", 405000, 810000, 0),
        ("2021-01", "khong_doi", 405000, 0, 0),
    ]
    assert (
        lists[3].lines[0].to_payload()["truyLinhTu"],
        lists[3].lines[0].to_payload()["truyLinhDen"],
    ) == ("2020-10", "2020-11")


def test_resumed_without_arrears() -> None:
    suspend = pha(so="5/QĐ", ngayKy="2020-09-05", loai="tam_dung", tuThang="2020-10")
    resume = pha(so="9/QĐ", ngayKy="2020-11-05", loai="tiep_tuc", tuThang="2020-12")
    lists = simulate(
        RULES, UNITS, [pha_grant(), suspend, resume], "02053", months("2020-11", "2020-12")
    )
    assert summary(lists) == [
        ("2020-11", "tam_dung", 0, 0, 0),
        ("2020-12", "tiep_tuc", 405000, 0, 0),
    ]


def test_stopped_is_listed_once_carrying_the_last_unpaid_amount() -> None:
    stop = pha(so="5/QĐ", ngayKy="2020-10-05", loai="thoi_huong", tuThang="2020-11", lyDo="chết")
    unpaid = {Month(2020, 10): {pha_grant().citizen_id}}
    lists = simulate(
        RULES, UNITS, [pha_grant(), stop], "02053", months("2020-09", "2020-12"), unpaid=unpaid
    )
    assert summary(lists) == [
        ("2020-09", "khong_doi", 405000, 0, 0),
        ("2020-10", "khong_doi", 405000, 0, 0),
        ("2020-11", "giam", 0, 0, 405000),
        # December: nothing — the line was closed
    ]


def test_suspended_before_ever_listed_first_appears_when_resumed_as_new() -> None:
    grant = lan_grant()  # signed 2020-08-20 from 2020-08
    suspend = lan(so="216/QĐ", ngayKy="2020-08-22", loai="tam_dung", tuThang="2020-09")
    resume = lan(so="300/QĐ", ngayKy="2020-10-10", loai="tiep_tuc", tuThang="2020-11")
    lists = simulate(RULES, UNITS, [grant, suspend, resume], "02053", months("2020-09", "2020-11"))
    assert [pl.lines for pl in lists[:2]] == [(), ()]
    assert summary(lists[2:]) == [("2020-11", "tang", 540000, 540000, 0)]  # August, never listed


def test_unpaid_amounts_carry_forward_without_double_counting() -> None:
    cccd = pha_grant().citizen_id
    unpaid = {Month(2020, 9): {cccd}, Month(2020, 10): {cccd}}
    lists = simulate(
        RULES, UNITS, [pha_grant()], "02053", months("2020-09", "2020-12"), unpaid=unpaid
    )
    assert summary(lists) == [
        ("2020-09", "khong_doi", 405000, 0, 0),
        ("2020-10", "khong_doi", 405000, 0, 405000),
        ("2020-11", "khong_doi", 405000, 0, 810000),  # October's whole line, September inside it
        ("2020-12", "khong_doi", 405000, 0, 0),
    ]
    assert lists[2].lines[0].carried_from == (Month(2020, 10),)


@pytest.mark.parametrize(
    ("signed", "stated", "first_list", "expected"),
    [
        # 5.6 stated from May, decided in August: May/June at 270,000, July/August at 360,000
        ("2021-08-10", "2021-05", "2021-09", [405000, 405000, 540000, 540000]),
        ("2024-08-10", "2024-05", "2024-09", [540000, 540000, 750000, 750000]),
    ],
)
def test_arrears_across_level_changes_at_each_months_own_level(
    signed: str, stated: str, first_list: str, expected: list[int]
) -> None:
    late = pha_grant(ngayKy=signed, tuThang=stated, so="7/QĐ")
    line = only(simulate(RULES, UNITS, [late], "02053", [Month.parse(first_list)])[0])
    assert [a for _, a in line.arrears] == expected
    assert line.change == "tang" and line.arrears[0][0] == Month.parse(stated)


def test_a_lower_amount_decided_late_is_not_clawed_back() -> None:
    grant = pha_grant(mucDoKhuyetTat="dac_biet_nang")  # 540,000
    lower = pha(
        so="8/QĐ",
        ngayKy="2020-10-05",
        loai="dieu_chinh",
        loaiDoiTuong="5.6",
        mucDoKhuyetTat="nang",
        tuThang="2020-08",
    )
    lists = simulate(RULES, UNITS, [grant, lower], "02053", months("2020-09", "2020-11"))
    assert summary(lists) == [
        ("2020-09", "khong_doi", 540000, 0, 0),
        ("2020-10", "khong_doi", 540000, 0, 0),
        ("2020-11", "dieu_chinh", 405000, 0, 0),
    ]


def test_a_higher_amount_decided_late_pays_the_difference_per_month() -> None:
    higher = pha(
        so="8/QĐ",
        ngayKy="2020-10-05",
        loai="dieu_chinh",
        loaiDoiTuong="5.6",
        mucDoKhuyetTat="dac_biet_nang",
        tuThang="2020-08",
    )
    lists = simulate(RULES, UNITS, [pha_grant(), higher], "02053", months("2020-09", "2020-11"))
    assert lists[2].lines[0].arrears == (
        (Month(2020, 8), 135000),
        (Month(2020, 9), 135000),
        (Month(2020, 10), 135000),
    )


def test_held_mismatch_is_not_paid_until_accepted_then_paid_with_arrears() -> None:
    wrong = replace(lan_grant(), monthly_amount=405000)
    held = simulate(RULES, UNITS, [wrong], "02053", months("2020-09", "2020-09"))
    assert held[0].lines == ()
    accepted = simulate(
        RULES,
        UNITS,
        [wrong],
        "02053",
        months("2020-09", "2020-09"),
        accepted={wrong.key: "gateway"},
    )
    assert summary(accepted) == [("2020-09", "tang", 540000, 540000, 0)]


def test_care_support_is_its_own_line_beside_the_carers_own() -> None:
    own = pha_grant()
    care = pha(
        so="101/QĐ",
        ngayKy="2019-04-02",
        dossier="HS-PHA-CS",
        loaiDoiTuong="cs",
        ngaySinhNguoiDuocChamSoc="2018-01-01",
    )
    built = simulate(RULES, UNITS, [own, care], "02053", months("2020-08", "2020-08"))[0]
    assert [(line.key[1], line.category, line.month_amount) for line in built.lines] == [
        ("cs", "cs", 405000),
        ("own", "5.6", 405000),
    ]
    assert built.total_amount == 810000


def test_a_corrected_list_is_the_next_sending() -> None:
    sent = SentHistory()
    simulate(RULES, UNITS, [pha_grant()], "02053", months("2020-09", "2020-09"), sent=sent)
    again = simulate(RULES, UNITS, [pha_grant()], "02053", months("2020-09", "2020-09"), sent=sent)
    assert again[0].lan_gui == 2 and again[0].lines[0].change == "khong_doi"


def test_totals_that_do_not_add_up_are_refused() -> None:
    built = simulate(RULES, UNITS, [pha_grant()], "02053", months("2020-09", "2020-09"))[0]
    with pytest.raises(PaymentListError, match="tongSoTien"):
        replace(built, total_amount=built.total_amount + 1).to_payload()
    with pytest.raises(PaymentListError, match="tongSoNguoi"):
        replace(built, total_people=2).check()
    bad_line = replace(built.lines[0], change="giam")
    with pytest.raises(PaymentListError, match="soTienThang = 0"):
        PaymentList.of(built.ky, built.commune, 1, built.built_at, [bad_line])


# ---------------------------------------------------------------------------------------
# The 2025 reorganisation
# ---------------------------------------------------------------------------------------


def merger_decisions() -> list[Decision]:
    return [
        pha_grant(maXa="02053"),
        decision(
            RULES,
            so="1/QĐ",
            ngayKy="2024-01-10",
            loaiDoiTuong="5.8",
            serial=11,
            dossier="HS-11",
            maXa="02050",
        ),
        decision(
            RULES,
            so="2/QĐ",
            ngayKy="2024-01-10",
            loaiDoiTuong="5.8",
            serial=12,
            dossier="HS-12",
            maXa="02020",
        ),
        decision(
            RULES,
            so="3/QĐ",
            ngayKy="2024-01-10",
            loaiDoiTuong="5.8",
            serial=13,
            dossier="HS-13",
            maXa="02041",
        ),
        decision(
            RULES,
            so="4/QĐ",
            ngayKy="2024-01-10",
            loaiDoiTuong="5.8",
            serial=14,
            dossier="HS-14",
            maXa="02062",
        ),
    ]


def test_from_2025_07_one_list_per_new_commune_with_old_codes() -> None:
    decisions = merger_decisions()
    before = simulate(RULES, UNITS, decisions, "02053", months("2025-06", "2025-06"))[0]
    assert "maXaCu" not in before.lines[0].to_payload()
    roster = build_roster(RULES, decisions)
    now = datetime(2025, 6, 24, 10, tzinfo=VN_TZ)
    built = build_payment_list(
        RULES,
        UNITS,
        roster,
        "02020",
        Month(2025, 7),
        paid_history=PaidHistory(),
        sent_history=SentHistory(),
        now=now,
    )
    assert built.commune == "02020"
    assert sorted(line.to_payload()["maXaCu"] for line in built.lines) == [
        "02020",
        "02050",
        "02053",
    ]
    assert {line.change for line in built.lines} == {"khong_doi"}


def test_an_old_code_has_no_list_of_its_own_after_the_merger(tmp_path: Path) -> None:
    roster = build_roster(RULES, merger_decisions())
    now = datetime(2025, 6, 24, 10, tzinfo=VN_TZ)
    with pytest.raises(AdminUnitError, match=r"02053.*Chợ Đồn"):
        build_payment_list(
            RULES,
            UNITS,
            roster,
            "02053",
            Month(2025, 7),
            paid_history=PaidHistory(),
            sent_history=SentHistory(),
            now=now,
        )
    with pytest.raises(AdminUnitError, match=r"02041.*Đồng Phúc \(01933\)"):
        build_payment_list(
            RULES,
            UNITS,
            roster,
            "02041",
            Month(2025, 7),
            paid_history=PaidHistory(),
            sent_history=SentHistory(),
            now=now,
        )
    with pytest.raises(AdminUnitError, match="not confirmed"):
        build_payment_list(
            RULES,
            unconfirmed_dong_phuc(tmp_path),
            roster,
            "02041",
            Month(2025, 7),
            paid_history=PaidHistory(),
            sent_history=SentHistory(),
            now=now,
        )


def test_lines_continue_across_the_merger_without_a_new_tang() -> None:
    lists = simulate(RULES, UNITS, [pha_grant()], "02053", months("2025-05", "2025-08"))
    assert [(pl.commune, pl.lines[0].change, pl.lines[0].old_commune) for pl in lists] == [
        ("02053", "khong_doi", None),
        ("02053", "khong_doi", None),
        ("02020", "khong_doi", "02053"),
        ("02020", "khong_doi", "02053"),
    ]


def test_streaming_lists_refuse_an_unconfirmed_commune_and_build_the_others(
    tmp_path: Path,
) -> None:
    roster = build_roster(RULES, merger_decisions())
    out = list(
        iter_payment_lists(
            RULES,
            unconfirmed_dong_phuc(tmp_path),
            [roster],
            Month(2025, 7),
            paid_history=PaidHistory(),
            sent_history=SentHistory(),
            now=datetime(2025, 6, 24, 10, tzinfo=VN_TZ),
        )
    )
    refused = [x for x in out if isinstance(x, ListRefused)]
    built = {x.commune: len(x.lines) for x in out if isinstance(x, PaymentList)}
    # the refusal is priced as the list would have been: one 5.8 line of 2025-07 (1.5 × 500,000)
    assert [(r.registry_commune, r.name, r.lines, r.amount) for r in refused] == [
        ("02041", "Bằng Phúc", 1, 750_000)
    ]
    assert "not confirmed" in refused[0].reason
    assert built == {"02020": 3, "02071": 1}


def test_dong_phuc_is_01933_and_its_list_is_built() -> None:
    roster = build_roster(RULES, merger_decisions())
    out = list(
        iter_payment_lists(
            RULES,
            UNITS,
            [roster],
            Month(2025, 7),
            paid_history=PaidHistory(),
            sent_history=SentHistory(),
            now=datetime(2025, 6, 24, 10, tzinfo=VN_TZ),
        )
    )
    assert not [x for x in out if isinstance(x, ListRefused)]
    built = {x.commune: x for x in out if isinstance(x, PaymentList)}
    assert sorted(built) == ["01933", "02020", "02071"]
    [line] = built["01933"].lines
    assert (line.old_commune, line.month_amount, str(line.change)) == (
        "02041",
        750_000,
        "khong_doi",
    )


def test_a_commune_split_across_roster_chunks_is_an_error() -> None:
    decisions = merger_decisions()
    chunks = [build_roster(RULES, decisions[:1]), build_roster(RULES, decisions[1:2])]
    with pytest.raises(ValueError, match="split across roster chunks"):
        list(
            iter_payment_lists(
                RULES,
                UNITS,
                chunks,
                Month(2025, 7),
                paid_history=PaidHistory(),
                sent_history=SentHistory(),
                now=datetime(2025, 6, 24, 10, tzinfo=VN_TZ),
            )
        )


def test_known_decisions_are_counted_by_the_vietnamese_day() -> None:
    roster = build_roster(RULES, [lan_grant(ngayKy="2020-08-24")])
    # 2020-08-23 20:00 UTC is already the 24th in Hà Nội: the decision signed that day is known
    utc_evening = datetime(2020, 8, 23, 20, tzinfo=UTC)
    built = build_payment_list(
        RULES,
        UNITS,
        roster,
        "02053",
        Month(2020, 9),
        paid_history=PaidHistory(),
        sent_history=SentHistory(),
        now=utc_evening,
    )
    assert len(built.lines) == 1 and built.to_payload()["lapLuc"] == "2020-08-24T03:00:00+07:00"
    with pytest.raises(ValueError, match="timezone-aware"):
        build_payment_list(
            RULES,
            UNITS,
            roster,
            "02053",
            Month(2020, 9),
            paid_history=PaidHistory(),
            sent_history=SentHistory(),
            now=datetime(2020, 8, 24, 10),
        )


def test_stopped_before_ever_listed_pays_what_was_owed_once() -> None:
    grant = lan_grant()  # signed 2020-08-20 from 2020-08; the August list was built on 07-24
    stop = lan(so="217/QĐ", ngayKy="2020-08-22", loai="thoi_huong", tuThang="2020-09", lyDo="chết")
    lists = simulate(RULES, UNITS, [grant, stop], "02053", months("2020-09", "2020-10"))
    assert summary(lists) == [("2020-09", "giam", 0, 540000, 0)]
    nothing_owed = simulate(
        RULES,
        UNITS,
        [
            pha_grant(ngayKy="2020-06-01", tuThang="2020-06"),
            pha(so="2/QĐ", ngayKy="2020-06-05", loai="thoi_huong", tuThang="2020-06"),
        ],
        "02053",
        months("2020-09", "2020-09"),
    )
    assert nothing_owed[0].lines == ()


def test_5_4_on_a_host_is_paid_as_the_whole_benefit_from_its_month() -> None:
    host = pha(
        so="10/QĐ-UBND", ngayKy="2025-08-05", loaiDoiTuong="5.6", mucDoKhuyetTat="nang",
        maXa="02020",
    )  # fmt: skip
    parent = pha(
        so="20/QĐ-UBND", ngayKy="2025-09-05", loai="dieu_chinh", loaiDoiTuong="5.4", soCon="2",
        heSo="3.5", mucChuan="500000", soTienThang="1750000", tuThang="2025-09", maXa="02020",
    )  # fmt: skip
    lists = simulate(RULES, UNITS, [host, parent], "02020", months("2025-09", "2025-11"))
    rows = [
        (
            str(pl.ky), p["loaiDoiTuong"], p.get("mucDoKhuyetTat"), p["bienDong"],
            p["soTienThang"], p["soTienTruyLinh"], p.get("truyLinhTu"), p["maXaCu"],
        )
        for pl in lists
        for p in [only(pl).to_payload()]
    ]  # fmt: skip
    assert rows == [
        # built 2025-08-24: the host alone (5.6 severe, adult: 1.5 × 500,000), from 2025-08
        ("2025-09", "5.6", "nang", "tang", 750_000, 750_000, "2025-08", "02020"),
        # built 2025-09-24: 5.4 on the host from 2025-09 (3.5), the September difference owed
        ("2025-10", "5.4", "nang", "dieu_chinh", 1_750_000, 1_000_000, "2025-09", "02020"),
        ("2025-11", "5.4", "nang", "khong_doi", 1_750_000, 0, None, "02020"),
    ]


def test_a_person_refiled_under_the_new_code_keeps_their_old_code_as_ma_xa_cu() -> None:
    grant = pha_grant(maXa="02059")
    move = pha(
        so="300/QĐ-UBND", ngayKy="2025-07-10", loai="dieu_chinh", loaiDoiTuong="5.6",
        mucDoKhuyetTat="nang", maXa="02014", tuThang="2025-08",
    )  # fmt: skip
    lists = simulate(RULES, UNITS, [grant, move], "02059", months("2025-06", "2025-09"))
    assert [(pl.commune, only(pl).old_commune, str(only(pl).change)) for pl in lists] == [
        ("02059", None, "khong_doi"),
        ("02014", "02059", "khong_doi"),
        ("02014", "02059", "khong_doi"),
        ("02014", "02059", "khong_doi"),
    ]
