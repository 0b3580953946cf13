"""Monthly report data and timeliness; the Chợ Đồn district month (DOMAIN.md §5)."""

from __future__ import annotations

from datetime import date, datetime

from sa_fixtures import (
    CHODON_AUGUST_2020,
    chodon_august_2020,
    decision,
    payer_result,
    simulate,
)

from gateway.model import VN_TZ
from plugins.social_assistance.amounts import Entitlement, Person
from plugins.social_assistance.history import PaidHistory, SentHistory
from plugins.social_assistance.month import Month, month_range
from plugins.social_assistance.payment_list import PaymentList, iter_payment_lists
from plugins.social_assistance.reconcile import reconcile, suspension_candidates
from plugins.social_assistance.report import (
    arrears_from_lateness,
    days_to_decision,
    days_to_first_payment,
    is_overdue,
    monthly_report,
    needs_age_decision,
)
from plugins.social_assistance.roster import Decision, build_roster
from plugins.social_assistance.rules import load_admin_units, load_rules

RULES = load_rules()
UNITS = load_admin_units()
AUGUST = Month(2020, 8)


def chodon_lists() -> list[PaymentList]:
    decisions = [Decision.from_payload(p, RULES) for p in chodon_august_2020(RULES)]
    roster = build_roster(RULES, decisions)
    assert roster.held == ()
    built = iter_payment_lists(
        RULES, UNITS, [roster], AUGUST, paid_history=PaidHistory(), sent_history=SentHistory(),
        now=datetime(2020, 7, 24, 10, tzinfo=VN_TZ),
    )  # fmt: skip
    return [x for x in built if isinstance(x, PaymentList)]


def test_chodon_august_2020_report_matches_the_district() -> None:
    lists = chodon_lists()
    report = monthly_report(RULES, lists)
    expected = CHODON_AUGUST_2020
    assert report.beneficiaries == expected["beneficiaries"] == 1714
    assert report.total_amount == expected["total"] == 662_715_000 == 270_000 * 24545 // 10
    assert report.total_amount == sum(line.total for pl in lists for line in pl.lines)
    assert {g: t.lines for g, t in report.by_group.items() if t.lines} == expected["groups"]
    assert len(lists) == len(report.by_commune) == 20
    assert sum(t.amount for t in report.by_commune.values()) == report.total_amount
    assert sum(t.lines for t in report.by_category.values()) == 1714
    assert (
        report.changes == {"khong_doi": 1714}
        and report.arrears_amount == report.carried_amount == 0
    )
    assert report.increases == report.decreases == 0


def test_report_with_results_arrears_carried_and_candidates() -> None:
    absent = decision(
        RULES,
        so="1/QĐ",
        ngayKy="2020-03-03",
        loaiDoiTuong="5.5d",
        birth="1940-02-02",
        serial=2,
        dossier="B",
    )
    late = decision(
        RULES,
        so="2/QĐ",
        ngayKy="2020-09-10",
        loaiDoiTuong="5.8",
        birth="1980-02-02",
        serial=3,
        dossier="C",
    )
    paid = PaidHistory()
    months = month_range(Month(2020, 8), Month(2020, 10))
    lists = simulate(
        RULES,
        UNITS,
        [absent, late],
        "02053",
        months,
        unpaid={m: {absent.citizen_id} for m in months},
        paid=paid,
    )
    october = lists[-1]
    report = monthly_report(
        RULES,
        [october],
        outcomes=paid.outcomes(october.ky),
        candidates=suspension_candidates(RULES, paid, october.ky),
    )
    assert report.changes == {"khong_doi": 1, "tang": 1} and report.increases == 1
    assert (
        report.arrears_amount == 405000 and report.arrears_lines == 1
    )  # September for the late grant
    assert report.carried_amount == 810000 + 810000  # September's line carried August's
    assert report.suspension_candidates == 1
    absent_line = next(line for line in october.lines if line.citizen_id == absent.citizen_id)
    assert report.unpaid_amount == absent_line.total == 810000 + 1620000
    assert report.paid_amount == october.total_amount - report.unpaid_amount  # type: ignore[operator]


def test_paid_and_unpaid_from_reconciled_results() -> None:
    lists = chodon_lists()[:1]
    sent = lists[0]
    results = [payer_result(line, sent, paid=i % 10 != 0) for i, line in enumerate(sent.lines)]
    outcomes = reconcile(RULES, sent, results).outcomes
    report = monthly_report(RULES, lists, outcomes=outcomes)
    assert report.paid_amount + report.unpaid_amount == sent.total_amount  # type: ignore[operator]
    assert report.unpaid_lines == len(range(0, len(sent.lines), 10))


def test_children_past_their_categorys_age_need_a_decision() -> None:
    child = decision(
        RULES, so="1/QĐ", ngayKy="2020-03-03", loaiDoiTuong="5.1", birth="2004-08-08", serial=5
    )
    roster = build_roster(RULES, [child])
    assert needs_age_decision(RULES, roster, Month(2020, 8)) == []
    assert needs_age_decision(RULES, roster, Month(2020, 9)) == [child.dossier]


def test_timeliness() -> None:
    received = datetime(2020, 8, 3, 8, 15, tzinfo=VN_TZ)
    assert days_to_decision(received, date(2020, 8, 20)) == 17
    assert days_to_first_payment(received, date(2020, 9, 5)) == 33
    due = datetime(2020, 8, 24, 17, tzinfo=VN_TZ)
    assert not is_overdue(
        due,
        decided_at=datetime(2020, 8, 20, 9, tzinfo=VN_TZ),
        now=datetime(2020, 9, 1, tzinfo=VN_TZ),
    )
    assert is_overdue(due, decided_at=None, now=datetime(2020, 8, 25, tzinfo=VN_TZ))
    assert not is_overdue(due, decided_at=None, now=datetime(2020, 8, 24, 9, tzinfo=VN_TZ))


def test_arrears_due_to_lateness_at_each_months_own_level() -> None:
    person = [Entitlement("5.6", Person(date(1980, 3, 3), "nang"))]
    assert arrears_from_lateness(RULES, person, Month(2021, 5), Month(2021, 9)) == (
        4,
        405000 * 2 + 540000 * 2,
    )
    assert arrears_from_lateness(RULES, person, Month(2021, 9), Month(2021, 9)) == (0, 0)
