"""Properties: list totals add up; arrears are each missed month's own amount; any order of
the decisions gives the same roster."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sa_fixtures import decision, simulate

from plugins.social_assistance.amounts import monthly_amount
from plugins.social_assistance.month import Month, month_range
from plugins.social_assistance.roster import Decision, build_roster, check_grant_start
from plugins.social_assistance.rules import load_admin_units, load_rules

RULES = load_rules()
UNITS = load_admin_units()
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
OWN = ("5.1", "5.2", "5.3", "5.5a", "5.5c", "5.5d", "5.6", "5.8", "5.4", "cs")


def day_between(first: date, last: date) -> st.SearchStrategy[date]:
    return st.integers(0, (last - first).days).map(lambda n: first + timedelta(days=n))


@st.composite
def benefit_decisions(draw: st.DrawFn, serial: int) -> list[Decision]:
    """A grant and a few follow-ups (adjust, suspend, resume, stop) for person ``serial``."""
    category = draw(st.sampled_from(OWN))
    extra: dict[str, object] = {}
    if category == "5.6":
        extra["mucDoKhuyetTat"] = draw(st.sampled_from(("nang", "dac_biet_nang")))
    if category == "5.4":
        extra["soCon"] = draw(st.integers(1, 4))
    if category == "cs":
        extra["ngaySinhNguoiDuocChamSoc"] = draw(
            day_between(date(2015, 1, 1), date(2021, 12, 28))
        ).isoformat()
    birth = draw(day_between(date(1925, 1, 1), date(2012, 12, 28))).isoformat()
    signed = draw(day_between(date(2020, 1, 1), date(2021, 10, 28)))
    offset = draw(st.integers(-3, 2))
    person = {"birth": birth, "serial": serial, "dossier": f"HS-{serial}"}
    grant = decision(
        RULES,
        so=f"{serial}0/QĐ",
        ngayKy=signed.isoformat(),
        loaiDoiTuong=category,
        tuThang=str(Month.of(signed) + offset),
        **person,
        **extra,
    )  # type: ignore[arg-type]
    out = [grant]
    for i, kind in enumerate(
        draw(
            st.lists(
                st.sampled_from(("tam_dung", "tiep_tuc", "thoi_huong", "dieu_chinh")), max_size=3
            )
        )
    ):
        when = signed + timedelta(days=draw(st.integers(1, 400)))
        attrs: dict[str, object] = {
            "loai": kind,
            "tuThang": str(Month.of(when) + draw(st.integers(-2, 2))),
        }
        if kind == "tiep_tuc":
            attrs["truyLinh"] = draw(st.sampled_from(("true", "false")))
        if kind == "dieu_chinh":
            attrs |= {"loaiDoiTuong": category, **extra}
        number = draw(st.sampled_from((9, 10, 11, 100 + i)))
        out.append(
            decision(RULES, so=f"{number}/QĐ-UBND", ngayKy=when.isoformat(), **person, **attrs)
        )  # type: ignore[arg-type]
    return out


@st.composite
def rosters(draw: st.DrawFn) -> list[Decision]:
    count = draw(st.integers(1, 4))
    return [d for serial in range(1, count + 1) for d in draw(benefit_decisions(serial))]


@SETTINGS
@given(decisions=rosters(), data=st.data())
def test_any_permutation_of_decisions_gives_the_same_roster(
    decisions: list[Decision], data: st.DataObject
) -> None:
    shuffled = data.draw(st.permutations(decisions))
    resent = shuffled + data.draw(st.lists(st.sampled_from(decisions), max_size=3))
    assert build_roster(RULES, resent) == build_roster(RULES, decisions)


@SETTINGS
@given(decisions=rosters(), data=st.data())
def test_every_list_total_is_the_sum_of_its_lines(
    decisions: list[Decision], data: st.DataObject
) -> None:
    first = data.draw(st.sampled_from(month_range(Month(2020, 2), Month(2021, 9))))
    months = month_range(first, first + 7)
    unpaid = {m: {d.citizen_id for d in decisions if data.draw(st.booleans())} for m in months}
    for built in simulate(RULES, UNITS, decisions, "02053", months, unpaid=unpaid):
        payload = built.to_payload()
        assert payload["tongSoNguoi"] == len(payload["lines"])
        assert payload["tongSoTien"] == sum(
            line["soTienThang"] + line["soTienTruyLinh"] + line["soTienChuaNhan"]
            for line in payload["lines"]
        )
        assert all(a > 0 for line in built.lines for _, a in line.arrears)


@SETTINGS
@given(
    category=st.sampled_from(("5.6", "5.5a", "5.8", "cs")),
    disability=st.sampled_from(("nang", "dac_biet_nang")),
    birth=day_between(date(1930, 1, 1), date(2015, 12, 28)),
    stated=st.sampled_from(month_range(Month(2020, 1), Month(2024, 10))),
    delay=st.integers(0, 14),
)
def test_arrears_are_the_sum_of_each_missed_months_own_amount(
    category: str, disability: str, birth: date, stated: Month, delay: int
) -> None:
    signed = (stated + delay).day(10)
    attrs = {"mucDoKhuyetTat": disability} if category == "5.6" else {}
    if category == "cs":
        attrs = {"ngaySinhNguoiDuocChamSoc": birth.isoformat()}
    grant = decision(
        RULES,
        so="1/QĐ",
        ngayKy=signed.isoformat(),
        loaiDoiTuong=category,
        tuThang=str(stated),
        birth="1960-05-05" if category == "cs" else birth.isoformat(),
        **attrs,
    )  # type: ignore[arg-type]
    # a tuThang before signing is held (FORMATS.md §2.2): the operator accepts our month
    accepted = {grant.key: "gateway"} if check_grant_start(RULES, grant) else None
    roster = build_roster(RULES, [grant], accepted)  # type: ignore[arg-type]
    benefit = roster.benefits[0]
    start = benefit.first_month
    assert start is not None
    first_list = Month.of(signed) + 1  # built on the 24th of the signing month, after the 10th
    [built] = simulate(RULES, UNITS, [grant], "02053", [first_list], accepted=accepted)  # type: ignore[arg-type]
    terms = benefit.payable(start)
    assert terms is not None
    expected = [
        (m, monthly_amount(RULES, [terms.entitlement()], m))
        for m in month_range(start, first_list - 1)
    ]
    line_arrears = built.lines[0].arrears if built.lines else ()
    assert line_arrears == tuple((m, a) for m, a in expected if a > 0)
