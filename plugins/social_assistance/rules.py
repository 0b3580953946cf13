"""The allowance rules as data: ``config/social_assistance.toml`` loaded into frozen models.

Every amount, coefficient, age bound and date lives in the TOML file with its legal source;
this module only reads, validates and looks them up. A bad file raises :class:`RulesError`
with one line naming the file, the key and the problem. Administrative units
(``config/admin_units.toml``) are loaded by :func:`load_admin_units`, re-exported here.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from plugins.social_assistance._toml import RulesError, Table, read_toml
from plugins.social_assistance.admin_units import (
    DEFAULT_ADMIN_UNITS_PATH,
    AdminUnitError,
    AdminUnits,
    Commune,
    load_admin_units,
)
from plugins.social_assistance.month import Month

__all__ = [
    "DEFAULT_ADMIN_UNITS_PATH",
    "DEFAULT_RULES_PATH",
    "AdminUnitError",
    "AdminUnits",
    "Authority",
    "Band",
    "Calendar",
    "Category",
    "CoefficientPeriod",
    "Commune",
    "LevelPeriod",
    "Rules",
    "RulesError",
    "load_admin_units",
    "load_rules",
]

DEFAULT_RULES_PATH = Path(__file__).resolve().parents[2] / "config" / "social_assistance.toml"

AgeRule = Literal["birthday_month", "month_after_birthday_month"]
AGE_RULES: tuple[AgeRule, ...] = ("birthday_month", "month_after_birthday_month")
LineKind = Literal["own", "cs"]
StartRule = Literal["signing", "eligibility_birthday", "stated_month"]
DECISION_ATTRIBUTES = ("mucDoKhuyetTat", "soCon", "ngaySinhNguoiDuocChamSoc")


@dataclass(frozen=True, slots=True)
class LevelPeriod:
    """A standard level (mức chuẩn) in force from ``start`` until ``end`` (exclusive)."""

    start: Month
    end: Month | None
    amount: int
    source: str


@dataclass(frozen=True, slots=True)
class Band:
    """One row of a coefficient table; ``None`` conditions match anything."""

    coefficient: Decimal
    age_below: int | None = None
    age_from: int | None = None
    disability: str | None = None

    @property
    def tests_age(self) -> bool:
        return self.age_below is not None or self.age_from is not None

    def matches(self, age: int | None, disability: str | None) -> bool:
        if self.disability is not None and self.disability != disability:
            return False
        if self.tests_age and age is None:
            return False
        if self.age_below is not None and not age < self.age_below:  # type: ignore[operator]
            return False
        return self.age_from is None or age >= self.age_from  # type: ignore[operator]


@dataclass(frozen=True, slots=True)
class CoefficientPeriod:
    start: Month
    source: str
    bands: tuple[Band, ...]


@dataclass(frozen=True, slots=True)
class Category:
    """A beneficiary category (``5.1`` … ``5.8``, ``cs``) and its coefficient tables."""

    code: str
    name: str
    group: str
    line: LineKind
    start_rule: StartRule
    age_of: Literal["person", "cared"]
    eligible_from_age: int | None
    ages_out_at: int | None
    per_child: bool
    adds_on_top_of: frozenset[str]
    requires: frozenset[str]
    periods: tuple[CoefficientPeriod, ...]

    @property
    def available_from(self) -> Month:
        return self.periods[0].start

    def period_at(self, month: Month) -> CoefficientPeriod | None:
        """The coefficient table in force in ``month``; None before the category existed."""
        found = None
        for p in self.periods:  # two or three periods: a scan beats building a bisect key
            if p.start.index > month.index:
                break
            found = p
        return found


@dataclass(frozen=True, slots=True)
class Authority:
    """Who signs grant, adjust and stop decisions from ``start`` on."""

    start: Month
    code: str
    title: str
    source: str


@dataclass(frozen=True, slots=True)
class Calendar:
    list_build_day: int
    results_due_day: int
    unpaid_months_for_suspension: int

    def build_date(self, month: Month) -> date:
        """The day of M-1 on which the list for ``month`` is built."""
        return (month - 1).day(self.list_build_day)


@dataclass(frozen=True)
class Rules:
    """Everything ``config/social_assistance.toml`` says, typed and validated."""

    path: str
    calendar: Calendar
    eligibility_rule: AgeRule
    coefficient_rule: AgeRule
    levels: tuple[LevelPeriod, ...]
    provincial_levels: tuple[LevelPeriod, ...]
    authorities: tuple[Authority, ...]
    disability_levels: Mapping[str, str]
    groups: Mapping[str, str]
    categories: Mapping[str, Category]
    _level_starts: tuple[Month, ...] = field(init=False, repr=False, compare=False)
    order: Mapping[str, int] = field(init=False, repr=False, compare=False)
    """Category code -> its position in the file (ties between equal coefficients)."""
    coefficients: dict[tuple[object, ...], Decimal] = field(init=False, repr=False, compare=False)
    """Memo of :func:`~plugins.social_assistance.amounts.coefficient`, keyed by what the
    coefficient depends on (every line asks again for people alike); bounded there."""
    single_lines: dict[tuple[object, ...], Any] = field(init=False, repr=False, compare=False)
    """Memo of :func:`~plugins.social_assistance.amounts.line_amount` for a line of one
    benefit with no pinned amount, keyed like :attr:`coefficients`; bounded there."""
    _levels_by_month: dict[int, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_level_starts", tuple(p.start for p in self.levels))
        object.__setattr__(self, "order", {code: i for i, code in enumerate(self.categories)})
        object.__setattr__(self, "coefficients", {})
        object.__setattr__(self, "single_lines", {})
        object.__setattr__(self, "_levels_by_month", {})

    def national_level(self, month: Month) -> int:
        i = bisect_right(self._level_starts, month)
        if not i:
            raise RulesError(self.path, "standard_level", f"no standard level for {month}")
        return self.levels[i - 1].amount

    def level(self, month: Month) -> int:
        """The standard level for ``month``: the national one, or a higher provincial one."""
        found = self._levels_by_month.get(month.index)
        if found is None:
            found = self._levels_by_month[month.index] = self._level(month)
        return found

    def _level(self, month: Month) -> int:
        national = self.national_level(month)
        for p in self.provincial_levels:
            if p.start <= month and (p.end is None or month < p.end):
                return max(national, p.amount)
        return national

    def category(self, code: str) -> Category:
        try:
            return self.categories[code]
        except KeyError:
            raise ValueError(
                f"loại đối tượng không có trong quy định: {code!r} (unknown category)"
            ) from None

    def authority(self, day: date) -> Authority:
        """The deciding authority on ``day`` (district chairman, commune chairman from 2025-07)."""
        found = [a for a in self.authorities if a.start <= Month.of(day)]
        if not found:
            raise RulesError(self.path, "authority", f"no deciding authority on {day}")
        return found[-1]

    @property
    def cs_codes(self) -> frozenset[str]:
        """Categories paid on their own care-support line (``cs``)."""
        return frozenset(c.code for c in self.categories.values() if c.line == "cs")


# ---------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------


def load_rules(path: Path | str = DEFAULT_RULES_PATH) -> Rules:
    """Read and validate the rules file; :class:`RulesError` on the first problem found."""
    root = Table(read_toml(path), path, "")
    if root.get("schema", int) != 1:
        raise root.error("schema", "only schema 1 is understood")
    cal = root.table("calendar")
    calendar = Calendar(
        list_build_day=_day_of_month(cal, "list_build_day"),
        results_due_day=_day_of_month(cal, "results_due_day"),
        unpaid_months_for_suspension=cal.positive_int("unpaid_months_for_suspension"),
    )
    cal.finish()
    ages = root.table("age_rules")
    eligibility: AgeRule = ages.choice("eligibility_begins", AGE_RULES)  # type: ignore[assignment]
    coefficient: AgeRule = ages.choice("coefficient_changes", AGE_RULES)  # type: ignore[assignment]
    ages.finish()
    levels = _levels(root.tables("standard_level"), open_ended=True)
    provincial = _levels(root.tables("provincial_level", required=False), open_ended=False)
    disability = _names(root.table("disability_levels"))
    groups = _names(root.table("groups"))
    categories = _categories(root.table("categories"), disability, groups)
    rules = Rules(
        path=str(path),
        calendar=calendar,
        eligibility_rule=eligibility,
        coefficient_rule=coefficient,
        levels=levels,
        provincial_levels=provincial,
        authorities=_authorities(root.tables("authority")),
        disability_levels=disability,
        groups=groups,
        categories=categories,
    )
    root.finish()
    _check_provincial_higher(rules, root)
    return rules


def _day_of_month(t: Table, name: str) -> int:
    day = t.positive_int(name)
    if day > 28:
        raise t.error(name, f"{day} is not a day every month has (1–28)")
    return day


def _names(t: Table) -> Mapping[str, str]:
    names = {k: t.get(k, str) for k in t.data}
    if not names:
        raise RulesError(t.path, t.key, "must not be empty")
    return MappingProxyType(names)


def _check_sorted(
    entries: Sequence[Table], starts: Sequence[Month], ends: Sequence[Month | None]
) -> None:
    """Effective periods must be sorted by start and must not overlap."""
    for i in range(1, len(starts)):
        if starts[i] <= starts[i - 1]:
            raise entries[i].error(
                "from",
                f"{starts[i]} is not after the previous entry's {starts[i - 1]} "
                "(unsorted or duplicate period)",
            )
        end = ends[i - 1]
        if end is not None and end > starts[i]:
            raise entries[i].error(
                "from", f"{starts[i]} overlaps the previous entry, which runs until {end}"
            )
    for i, end in enumerate(ends):
        if end is not None and end <= starts[i]:
            raise entries[i].error("until", f"{end} is not after from {starts[i]}")


def _levels(entries: list[Table], *, open_ended: bool) -> tuple[LevelPeriod, ...]:
    periods = []
    for t in entries:
        start = Month.of(t.month_start("from"))  # type: ignore[arg-type]
        until = None if open_ended else t.month_start("until", required=False)
        periods.append(
            LevelPeriod(
                start,
                Month.of(until) if until else None,
                t.positive_int("amount"),
                t.get("source", str),
            )
        )
        t.finish()
    _check_sorted(entries, [p.start for p in periods], [p.end for p in periods])
    return tuple(periods)


def _check_provincial_higher(rules: Rules, root: Table) -> None:
    for i, p in enumerate(rules.provincial_levels):
        national = rules.national_level(p.start)
        if p.amount <= national:
            raise RulesError(
                rules.path,
                f"provincial_level[{i}].amount",
                f"{p.amount} is not higher than the national level {national} in {p.start}",
            )


def _authorities(entries: list[Table]) -> tuple[Authority, ...]:
    found = []
    for t in entries:
        start = Month.of(t.month_start("from"))  # type: ignore[arg-type]
        found.append(
            Authority(start, t.get("code", str), t.get("title", str), t.get("source", str))
        )
        t.finish()
    _check_sorted(entries, [a.start for a in found], [None] * len(found))
    return tuple(found)


def _categories(
    t: Table, disability: Mapping[str, str], groups: Mapping[str, str]
) -> Mapping[str, Category]:
    categories = {code: _category(t.table(code), code, disability, groups) for code in t.data}
    if not categories:
        raise RulesError(t.path, t.key, "no categories")
    for code, cat in categories.items():
        for other in sorted(cat.adds_on_top_of - categories.keys()):
            raise t.error(f"{code}.adds_on_top_of", f"unknown category {other!r}")
    return MappingProxyType(categories)


def _category(
    t: Table, code: str, disability: Mapping[str, str], groups: Mapping[str, str]
) -> Category:
    group = t.get("group", str)
    if group not in groups:
        raise t.error("group", f"unknown group {group!r} (not in [groups])")
    requires = frozenset(t.str_list("requires"))
    for attr in sorted(requires - set(DECISION_ATTRIBUTES)):
        raise t.error("requires", f"unknown decision attribute {attr!r}")
    per_child = t.get("per_child", bool, False)
    adds = frozenset(t.str_list("adds_on_top_of"))
    if adds and not per_child:
        raise t.error("adds_on_top_of", "only a per_child category adds on top of others")
    variants = tuple(disability) if "mucDoKhuyetTat" in requires else (None,)
    entries = t.tables("periods")
    periods = tuple(_coefficient_period(p, variants, disability) for p in entries)
    _check_sorted(entries, [p.start for p in periods], [None] * len(periods))
    cat = Category(
        code=code,
        name=t.get("name", str),
        group=group,
        line=t.choice("line", ("own", "cs")),  # type: ignore[arg-type]
        start_rule=t.choice("start", ("signing", "eligibility_birthday", "stated_month")),  # type: ignore[arg-type]
        age_of=t.choice("age_of", ("person", "cared"), "person"),  # type: ignore[arg-type]
        eligible_from_age=t.get("eligible_from_age", int, required=False),
        ages_out_at=t.get("ages_out_at", int, required=False),
        per_child=per_child,
        adds_on_top_of=adds,
        requires=requires,
        periods=periods,
    )
    if cat.start_rule == "eligibility_birthday" and cat.eligible_from_age is None:
        raise t.error("eligible_from_age", 'missing (required by start = "eligibility_birthday")')
    t.finish()
    return cat


def _coefficient_period(
    t: Table, variants: tuple[str | None, ...], disability: Mapping[str, str]
) -> CoefficientPeriod:
    start = Month.of(t.month_start("from"))  # type: ignore[arg-type]
    source = t.get("source", str)
    bands = tuple(_band(b, disability) for b in t.tables("bands"))
    t.finish()
    for variant in variants:
        if not any(not b.tests_age and b.disability in (None, variant) for b in bands):
            what = f" for mucDoKhuyetTat={variant}" if variant else ""
            raise t.error(
                "bands",
                f"coefficient missing{what}: no band without an age condition covers every age",
            )
    return CoefficientPeriod(start, source, bands)


def _band(t: Table, disability: Mapping[str, str]) -> Band:
    level = t.get("disability", str, required=False)
    if level is not None and level not in disability:
        raise t.error("disability", f"unknown disability level {level!r}")
    band = Band(
        coefficient=t.decimal("coefficient"),
        age_below=t.get("age_below", int, required=False),
        age_from=t.get("age_from", int, required=False),
        disability=level,
    )
    if band.age_below is not None and band.age_from is not None and band.age_from >= band.age_below:
        raise t.error("age_from", f"{band.age_from} is not below age_below {band.age_below}")
    t.finish()
    return band
