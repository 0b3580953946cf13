"""Payment results (KetQuaChiTra) reconciled against the sent list; suspension candidates."""

from __future__ import annotations

import pytest
from sa_fixtures import decision, payer_result, simulate

from plugins.social_assistance.history import PaidHistory
from plugins.social_assistance.month import Month, month_range
from plugins.social_assistance.payment_list import PaymentList
from plugins.social_assistance.reconcile import (
    ResultError,
    ResultLine,
    reconcile,
    suspension_candidates,
)
from plugins.social_assistance.roster import Decision
from plugins.social_assistance.rules import load_admin_units, load_rules

RULES = load_rules()
UNITS = load_admin_units()
SEPT = Month(2020, 9)


def people() -> list[Decision]:
    own = decision(
        RULES,
        so="1/QĐ",
        ngayKy="2020-03-03",
        loaiDoiTuong="5.6",
        mucDoKhuyetTat="nang",
        birth="1980-04-04",
        serial=1,
        dossier="A",
        hoTen="Lò Văn Pha",
    )
    care = decision(
        RULES,
        so="2/QĐ",
        ngayKy="2020-03-03",
        loaiDoiTuong="cs",
        birth="1980-04-04",
        serial=1,
        dossier="A-CS",
        hoTen="Lò Văn Pha",
    )
    other = decision(
        RULES,
        so="3/QĐ",
        ngayKy="2020-03-03",
        loaiDoiTuong="5.5d",
        birth="1940-02-02",
        serial=2,
        dossier="B",
        female=True,
    )
    return [own, care, other]


def september() -> PaymentList:
    return simulate(RULES, UNITS, people(), "02053", [SEPT])[0]


def test_every_line_paid() -> None:
    sent = september()
    result = reconcile(RULES, sent, [payer_result(line, sent, paid=True) for line in sent.lines])
    assert len(result.outcomes) == 3 and all(o.paid for o in result.outcomes)
    assert result.paid_amount == sent.total_amount and result.unpaid_amount == 0
    assert result.amount_flags == result.unknown == result.unanswered == ()


def test_a_cs_result_answers_the_carers_care_line_not_their_own() -> None:
    sent = september()
    care_line = next(line for line in sent.lines if line.key[1] == "cs")
    own_line = next(line for line in sent.lines if line.key == (care_line.citizen_id, "own"))
    result = reconcile(
        RULES,
        sent,
        [payer_result(care_line, sent, paid=False), payer_result(own_line, sent, paid=True)],
    )
    outcomes = {o.key: o.paid for o in result.outcomes}
    assert outcomes == {care_line.key: False, own_line.key: True}
    assert result.unanswered == tuple(line for line in sent.lines if line.key not in outcomes)


def test_amount_mismatch_unknown_person_duplicate_and_other_list_are_flagged() -> None:
    sent = september()
    line = sent.lines[0]
    wrong = payer_result(line, sent, paid=True) | {"soTien": str(line.total - 1000)}
    stranger = payer_result(line, sent, paid=True) | {"soDinhDanh": "006080009999"}
    other_month = payer_result(line, sent, paid=True) | {"ky": "2020-10"}
    result = reconcile(RULES, sent, [wrong, stranger, wrong, other_month])
    assert [(f.due, f.reported) for f in result.amount_flags] == [(line.total, line.total - 1000)]
    assert result.outcomes[0].mismatch and result.outcomes[0].paid
    assert [r.citizen_id for r in result.unknown] == ["006080009999"]
    assert len(result.duplicates) == 1 and len(result.other_list) == 1


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"trangThai": "paid"}, "trangThai"),
        ({"soTien": "1.5"}, "soTien"),
        ({"ky": "2020/09"}, "YYYY-MM"),
        ({"extra": "1"}, "unknown attribute"),
    ],
)
def test_unreadable_result_lines(changes: dict[str, str], expected: str) -> None:
    base = {
        "ky": "2020-09",
        "maXa": "02053",
        "soDinhDanh": "006080004321",
        "trangThai": "da_chi",
        "soTien": "1",
    }
    with pytest.raises(ResultError, match=expected) as e:
        ResultLine.from_payload(base | changes)
    assert "006080004321" not in str(e.value)


def test_three_consecutive_unpaid_months_make_a_suspension_candidate() -> None:
    decisions = people()
    absent = decisions[2].citizen_id
    paid = PaidHistory()
    unpaid = {m: {absent} for m in month_range(Month(2020, 9), Month(2020, 11))}
    simulate(
        RULES,
        UNITS,
        decisions,
        "02053",
        month_range(Month(2020, 8), Month(2020, 11)),
        unpaid=unpaid,
        paid=paid,
    )
    assert suspension_candidates(RULES, paid, Month(2020, 10)) == []
    assert suspension_candidates(RULES, paid, Month(2020, 11)) == [
        {
            "ky": "2020-11",
            "maXa": "02053",
            "doiTuong": [
                {
                    "soDinhDanh": absent,
                    "hoTen": decisions[2].full_name,
                    "cacThangChuaNhan": ["2020-09", "2020-10", "2020-11"],
                }
            ],
        }
    ]
    assert suspension_candidates(RULES, paid, Month(2020, 11), commune="02020") == []


def test_a_paid_month_breaks_the_run() -> None:
    decisions = people()
    absent = decisions[2].citizen_id
    paid = PaidHistory()
    unpaid = {Month(2020, 9): {absent}, Month(2020, 11): {absent}}
    simulate(
        RULES,
        UNITS,
        decisions,
        "02053",
        month_range(Month(2020, 9), Month(2020, 11)),
        unpaid=unpaid,
        paid=paid,
    )
    assert suspension_candidates(RULES, paid, Month(2020, 11)) == []
