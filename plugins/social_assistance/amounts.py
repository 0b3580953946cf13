"""Coefficients (hệ số) and monthly amounts (số tiền trợ cấp hàng tháng).

Monthly amount = standard level × coefficient, rounded half-up to whole VND once per line per
month. A person's own categories pay only the highest coefficient, except a per-child
category (5.4) that adds its coefficient on top of the highest of the categories it names in
``adds_on_top_of``. Care support (``cs``) is always its own line. Every number comes from
:class:`~plugins.social_assistance.rules.Rules`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from plugins.social_assistance.month import Month
from plugins.social_assistance.rules import AgeRule, Category, Rules

ZERO = Decimal(0)
_ONE_VND = Decimal(1)


@dataclass(frozen=True, slots=True)
class Person:
    """What a coefficient depends on, besides the category and the month.

    :param birth_date: the beneficiary's (ngaySinh).
    :param disability: ``nang`` / ``dac_biet_nang`` (mucDoKhuyetTat), for 5.6.
    :param children: number of children (soCon), for 5.4.
    :param cared_birth_date: birth date of the person cared for (ngaySinhNguoiDuocChamSoc),
        for ``cs``; unknown means no age-dependent rate applies.
    """

    birth_date: date
    disability: str | None = None
    children: int = 0
    cared_birth_date: date | None = None


@dataclass(frozen=True, slots=True)
class Entitlement:
    """One benefit of a person in a month: a category and the facts it is paid on.

    ``pinned_amount`` is set when an operator accepted the registry's figure over ours: that
    benefit then pays exactly that amount (see :func:`monthly_amount`).
    """

    category: str
    person: Person
    pinned_amount: int | None = None


@dataclass(frozen=True, slots=True)
class Combined:
    """The coefficient a line pays and the category (and disability level) it shows."""

    coefficient: Decimal
    category: str | None
    disability: str | None


def age_in_month(birth: date, month: Month, rule: AgeRule) -> int:
    """Age in years that counts in ``month``.

    ``birthday_month``: the new age counts from the month of the birthday (eligibility).
    ``month_after_birthday_month``: from the month after it (coefficient changes).
    """
    years = month.year - birth.year
    if month.month < birth.month or (rule != "birthday_month" and month.month == birth.month):
        years -= 1
    return years


def is_eligible(rules: Rules, person: Person, category: Category, month: Month) -> bool:
    """Whether the category exists in ``month`` and the person has reached its age."""
    return category.period_at(month) is not None and _reached(rules, person, category, month)


def _reached(rules: Rules, person: Person, category: Category, month: Month) -> bool:
    if category.per_child and person.children <= 0:
        return False
    if category.eligible_from_age is None:
        return True
    return (
        age_in_month(person.birth_date, month, rules.eligibility_rule) >= category.eligible_from_age
    )


_MEMO_LIMIT = 200_000
"""Entries kept in :attr:`Rules.coefficients` before it starts afresh (a few MB at most)."""


def coefficient(rules: Rules, person: Person, category: str, month: Month) -> Decimal:
    """The coefficient of ``category`` for ``person`` in ``month``; 0 when not eligible then.

    Ages count in whole months (:func:`age_in_month`), so the result depends on the birth
    months, not the days: it is remembered per (category, month, birth month, disability,
    children, cared-for birth month) — many people share one.
    """
    key = _memo_key(person, category, month)
    memo = rules.coefficients
    found = memo.get(key)
    if found is None:
        found = _coefficient(rules, person, category, month)
        if len(memo) >= _MEMO_LIMIT:
            memo.clear()
        memo[key] = found
    return found


def _memo_key(person: Person, category: str, month: Month) -> tuple[object, ...]:
    """Everything a coefficient (and so a one-benefit line) depends on."""
    born, cared = person.birth_date, person.cared_birth_date
    return (
        category,
        month.index,
        born.year * 12 + born.month,
        person.disability,
        person.children,
        None if cared is None else cared.year * 12 + cared.month,
    )


def _coefficient(rules: Rules, person: Person, category: str, month: Month) -> Decimal:
    cat = rules.category(category)
    period = cat.period_at(month)
    if period is None or not _reached(rules, person, cat, month):
        return ZERO
    born = person.cared_birth_date if cat.age_of == "cared" else person.birth_date
    age = None if born is None else max(age_in_month(born, month, rules.coefficient_rule), 0)
    for band in period.bands:
        if band.matches(age, person.disability):
            return band.coefficient * person.children if cat.per_child else band.coefficient
    return ZERO  # e.g. 5.6 without a disability level: nothing to pay on


def amount_for(level: int, coefficient: Decimal) -> int:
    """Level × coefficient rounded half-up to whole VND (done once per line per month)."""
    key = (level, coefficient)
    found = _AMOUNTS.get(key)
    if found is None:
        found = int((level * coefficient).quantize(_ONE_VND, rounding=ROUND_HALF_UP))
        if len(_AMOUNTS) >= _MEMO_LIMIT:
            _AMOUNTS.clear()
        _AMOUNTS[key] = found
    return found


_AMOUNTS: dict[tuple[int, Decimal], int] = {}
"""(level, coefficient) -> amount: a handful of levels times a handful of coefficients."""


def combine(rules: Rules, person_benefits: Sequence[Entitlement], month: Month) -> Combined:
    """The coefficient one line pays: cs lines add up; own lines take the highest (+5.4)."""
    cats = [rules.category(e.category) for e in person_benefits]
    if len({c.line for c in cats}) > 1:
        raise ValueError("cs luôn là một dòng riêng (cs is always its own line)")
    coefs = [coefficient(rules, e.person, e.category, month) for e in person_benefits]
    if not cats:
        return Combined(ZERO, None, None)
    if len(cats) == 1 and not cats[0].per_child:
        return _shown(cats[0], person_benefits[0], coefs[0])
    if cats[0].line == "cs":
        return Combined(sum(coefs, ZERO), cats[0].code, None)
    order = rules.order
    options: list[tuple[Decimal, int, Combined]] = []
    for cat, coef, ent in zip(cats, coefs, person_benefits, strict=True):
        if not cat.per_child:
            options.append((coef, -order[cat.code], _shown(cat, ent, coef)))
            continue
        bases = [
            t
            for t in zip(coefs, person_benefits, cats, strict=True)
            if t[2].code in cat.adds_on_top_of
        ]
        base = max(bases, key=lambda t: (t[0], -order[t[2].code]), default=None)
        disability = (
            base[1].person.disability if base and "mucDoKhuyetTat" in base[2].requires else None
        )
        total = coef + (base[0] if base else ZERO)
        options.append((total, -order[cat.code], Combined(total, cat.code, disability)))
    return max(options, key=lambda t: (t[0], t[1]))[2]


def _shown(cat: Category, ent: Entitlement, coef: Decimal) -> Combined:
    disability = ent.person.disability if "mucDoKhuyetTat" in cat.requires else None
    return Combined(coef, cat.code, disability)


_RESULTS: dict[tuple[int, Combined], tuple[int, Combined]] = {}


def line_amount(
    rules: Rules, person_benefits: Sequence[Entitlement], month: Month
) -> tuple[int, Combined]:
    """The amount of one line in ``month`` and what the line shows (category, disability).

    Level(month) × combined coefficient, rounded once. A benefit with an operator-accepted
    (pinned) amount pays that amount; the line then pays the higher of the pinned amounts and
    what its other benefits combine to.
    """
    if len(person_benefits) == 1 and person_benefits[0].pinned_amount is None:
        # the common line: one benefit, nothing pinned (what combine() does for it, directly;
        # remembered like the coefficient, on which alone it depends besides the month)
        ent = person_benefits[0]
        key = _memo_key(ent.person, ent.category, month)
        memo = rules.single_lines
        found: tuple[int, Combined] | None = memo.get(key)
        if found is not None:
            return found
        cat = rules.category(ent.category)
        if not cat.per_child:
            coef = coefficient(rules, ent.person, ent.category, month)
            found = (amount_for(rules.level(month), coef), _shown(cat, ent, coef))
            # one shared pair per distinct result (a few dozen): the memo then adds no
            # objects for the garbage collector to traverse, however many people it holds
            if len(_RESULTS) >= _MEMO_LIMIT:
                _RESULTS.clear()
            found = _RESULTS.setdefault(found, found)
            if len(memo) >= _MEMO_LIMIT:
                memo.clear()
            memo[key] = found
            return found
    shown = combine(rules, person_benefits, month)
    free = [e for e in person_benefits if e.pinned_amount is None]
    if len(free) == len(person_benefits):
        return amount_for(rules.level(month), shown.coefficient), shown
    pinned = [e.pinned_amount or 0 for e in person_benefits if e.pinned_amount is not None]
    computed = (
        amount_for(rules.level(month), combine(rules, free, month).coefficient) if free else 0
    )
    return max([computed, *pinned]), shown


def monthly_amount(rules: Rules, person_benefits: Sequence[Entitlement], month: Month) -> int:
    """The amount of one line in ``month``: level(month) × combined coefficient, rounded
    half-up to whole VND once (see :func:`line_amount` for operator-pinned amounts)."""
    return line_amount(rules, person_benefits, month)[0]
