"""Coefficients and monthly amounts: every category, every age bound, every level change."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from plugins.social_assistance.amounts import (
    Entitlement,
    Person,
    age_in_month,
    amount_for,
    coefficient,
    combine,
    monthly_amount,
)
from plugins.social_assistance.month import Month
from plugins.social_assistance.rules import DEFAULT_RULES_PATH, load_rules

RULES = load_rules()
AUG_2020, SEP_2020 = Month(2020, 8), Month(2020, 9)


def d(text: str) -> date:
    return date.fromisoformat(text)


# (category, person, month, coefficient). Age bounds: a coefficient that changes with age
# changes from the month AFTER the birthday month; eligibility that begins at an age begins
# IN the birthday month.
CASES = [
    # 5.1: 2.5 under 4, 1.5 from 4 (born 2016-08: 4th birthday in 2020-08)
    ("5.1", Person(d("2016-08-15")), AUG_2020, "2.5"),
    ("5.1", Person(d("2016-08-15")), SEP_2020, "1.5"),
    ("5.1", Person(d("2016-08-15")), Month(2017, 1), "2.5"),
    ("5.2", Person(d("2003-02-01")), AUG_2020, "1.5"),
    # 5.3: 2.5 under 4, 2.0 from 4 to under 16
    ("5.3", Person(d("2016-08-31")), AUG_2020, "2.5"),
    ("5.3", Person(d("2016-08-31")), SEP_2020, "2.0"),
    ("5.3", Person(d("2010-01-31")), AUG_2020, "2.0"),
    # 5.4: 1.0 per child
    ("5.4", Person(d("1985-05-05"), children=1), AUG_2020, "1.0"),
    ("5.4", Person(d("1985-05-05"), children=3), AUG_2020, "3.0"),
    ("5.4", Person(d("1985-05-05"), children=0), AUG_2020, "0"),
    # 5.5a: 1.5 from 60 to under 80, 2.0 from 80 (born 1940-08: 80 in 2020-08)
    ("5.5a", Person(d("1940-08-20")), AUG_2020, "1.5"),
    ("5.5a", Person(d("1940-08-20")), SEP_2020, "2.0"),
    # 5.5b: 1.0 from the month of the 75th birthday; only from 2021-07
    ("5.5b", Person(d("1946-08-20")), Month(2021, 7), "0"),
    ("5.5b", Person(d("1946-08-20")), Month(2021, 8), "1.0"),
    ("5.5b", Person(d("1940-01-20")), Month(2021, 6), "0"),
    ("5.5b", Person(d("1940-01-20")), Month(2021, 7), "1.0"),
    # 5.5c: 1.0 from the month of the 80th birthday
    ("5.5c", Person(d("1940-08-20")), Month(2020, 7), "0"),
    ("5.5c", Person(d("1940-08-20")), AUG_2020, "1.0"),
    ("5.5d", Person(d("1935-03-03")), AUG_2020, "3.0"),
    # 5.6 especially severe: 2.0; child (<16) or elderly (>=60): 2.5
    ("5.6", Person(d("2004-08-10"), "dac_biet_nang"), AUG_2020, "2.5"),
    ("5.6", Person(d("2004-08-10"), "dac_biet_nang"), SEP_2020, "2.0"),
    ("5.6", Person(d("1960-08-10"), "dac_biet_nang"), AUG_2020, "2.0"),
    ("5.6", Person(d("1960-08-10"), "dac_biet_nang"), SEP_2020, "2.5"),
    # 5.6 severe: 1.5; child or elderly: 2.0
    ("5.6", Person(d("2004-08-10"), "nang"), AUG_2020, "2.0"),
    ("5.6", Person(d("2004-08-10"), "nang"), SEP_2020, "1.5"),
    ("5.6", Person(d("1960-08-10"), "nang"), AUG_2020, "1.5"),
    ("5.6", Person(d("1960-08-10"), "nang"), SEP_2020, "2.0"),
    ("5.6", Person(d("1960-08-10")), SEP_2020, "0"),  # no level: nothing to pay on
    # 5.7 only from 2021-07; 5.8 1.5
    ("5.7", Person(d("2020-12-01")), Month(2021, 6), "0"),
    ("5.7", Person(d("2020-12-01")), Month(2021, 7), "1.5"),
    ("5.8", Person(d("1980-04-04")), AUG_2020, "1.5"),
    # cs: 1.0, 1.5 while the cared child is under 4 (turns 4 in 2020-08)
    ("cs", Person(d("1980-04-04"), cared_birth_date=d("2016-08-01")), AUG_2020, "1.5"),
    ("cs", Person(d("1980-04-04"), cared_birth_date=d("2016-08-01")), SEP_2020, "1.0"),
    ("cs", Person(d("1980-04-04")), AUG_2020, "1.0"),
]


@pytest.mark.parametrize(("category", "person", "month", "expected"), CASES)
def test_coefficient_table(category: str, person: Person, month: Month, expected: str) -> None:
    assert coefficient(RULES, person, category, month) == Decimal(expected)


def test_unknown_category() -> None:
    with pytest.raises(ValueError, match="unknown category"):
        coefficient(RULES, Person(d("1950-01-01")), "5.9", AUG_2020)


@pytest.mark.parametrize(
    ("month", "rule", "age"),
    [
        (Month(2020, 7), "birthday_month", 79),
        (Month(2020, 8), "birthday_month", 80),
        (Month(2020, 8), "month_after_birthday_month", 79),
        (Month(2020, 9), "month_after_birthday_month", 80),
    ],
)
def test_two_age_rules(month: Month, rule: str, age: int) -> None:
    assert age_in_month(d("1940-08-31"), month, rule) == age  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("month", "amount"),
    [
        (Month(2021, 6), 405000),
        (Month(2021, 7), 540000),
        (Month(2024, 6), 540000),
        (Month(2024, 7), 750000),
    ],
)
def test_amount_follows_the_level_in_each_change_month(month: Month, amount: int) -> None:
    severe_adult = [Entitlement("5.6", Person(d("1980-03-03"), "nang"))]
    assert monthly_amount(RULES, severe_adult, month) == amount


def test_only_the_highest_coefficient_of_several_categories() -> None:
    person = Person(d("1950-03-03"), "dac_biet_nang")  # 70: elderly
    benefits = [Entitlement("5.5a", person), Entitlement("5.6", person), Entitlement("5.8", person)]
    assert monthly_amount(RULES, benefits, AUG_2020) == 270000 * 25 // 10  # 5.6 elderly: 2.5
    shown = combine(RULES, benefits, AUG_2020)
    assert (shown.category, shown.disability) == ("5.6", "dac_biet_nang")


def test_5_4_adds_per_child_on_top_of_the_highest_own_5_5_5_6_5_8() -> None:
    person = Person(d("1980-03-03"), "nang", children=2)
    benefits = [Entitlement("5.6", person), Entitlement("5.8", person), Entitlement("5.4", person)]
    # highest of own 5.6 (1.5) and 5.8 (1.5) = 1.5, plus 2 children x 1.0
    assert combine(RULES, benefits, AUG_2020).coefficient == Decimal("3.5")
    assert monthly_amount(RULES, benefits, AUG_2020) == 945000
    assert combine(RULES, benefits, AUG_2020).category == "5.4"


def test_5_4_alone_and_against_a_category_it_does_not_add_to() -> None:
    parent = Person(d("2002-03-03"), children=1)
    assert monthly_amount(RULES, [Entitlement("5.4", parent)], AUG_2020) == 270000
    # 5.2 (1.5) is not one 5.4 adds to: the highest wins
    both = [Entitlement("5.4", parent), Entitlement("5.2", parent)]
    assert combine(RULES, both, AUG_2020).coefficient == Decimal("1.5")


def test_cs_is_never_merged_with_own_categories() -> None:
    carer = Person(d("1970-03-03"), "nang", cared_birth_date=d("2019-01-01"))
    with pytest.raises(ValueError, match="cs"):
        monthly_amount(RULES, [Entitlement("5.6", carer), Entitlement("cs", carer)], AUG_2020)
    assert monthly_amount(RULES, [Entitlement("cs", carer)], AUG_2020) == 405000


def test_two_care_supports_of_one_carer_add_up_on_its_line() -> None:
    a = Person(d("1970-03-03"), cared_birth_date=d("2019-01-01"))
    b = Person(d("1970-03-03"), cared_birth_date=d("2000-01-01"))
    assert monthly_amount(RULES, [Entitlement("cs", a), Entitlement("cs", b)], AUG_2020) == 675000


def test_rounding_is_half_up_to_whole_vnd_once_per_line() -> None:
    assert amount_for(333333, Decimal("1.5")) == 500000  # 499,999.5
    assert amount_for(333333, Decimal("2.5")) == 833333  # 833,332.5
    assert amount_for(333331, Decimal("1.5")) == 499997  # 499,996.5 -> up


def test_rounding_with_a_provincial_level(tmp_path: Path) -> None:
    text = DEFAULT_RULES_PATH.read_text(encoding="utf-8").replace(
        "provincial_level = []\n",
        '[[provincial_level]]\nfrom = 2020-01-01\namount = 333333\nsource = "NQ test"\n',
    )
    path = tmp_path / "rules.toml"
    path.write_text(text, encoding="utf-8")
    rules = load_rules(path)
    person = Person(d("1980-03-03"), "nang", children=1)
    benefits = [Entitlement("5.6", person), Entitlement("5.4", person)]
    assert monthly_amount(rules, benefits, AUG_2020) == 833333  # 833,332.5
    assert monthly_amount(rules, benefits, Month(2019, 12)) == 675000  # national level then
    # Two care supports at 1.5: 333,333 x 3.0 = 999,999 when rounded once per line
    # (rounding each 499,999.5 apart would pay 1,000,000).
    carer = [
        Entitlement("cs", Person(d("1980-03-03"), cared_birth_date=d("2019-05-05"))),
        Entitlement("cs", Person(d("1980-03-03"), cared_birth_date=d("2018-05-05"))),
    ]
    assert monthly_amount(rules, carer, AUG_2020) == 999999


def test_a_pinned_amount_is_paid_as_accepted() -> None:
    person = Person(d("1980-03-03"), "nang")
    assert (
        monthly_amount(RULES, [Entitlement("5.6", person, pinned_amount=410000)], AUG_2020)
        == 410000
    )
