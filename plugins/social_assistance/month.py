"""A calendar month (``2020-08``), the unit of every allowance amount."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


@dataclass(frozen=True, slots=True)
class Month:
    """A calendar month; ordered, hashable, and written ``YYYY-MM`` as on the wire."""

    year: int
    month: int
    index: int = field(init=False, repr=False, compare=False, hash=False)
    """Months since year 0: consecutive months have consecutive indexes."""

    def __post_init__(self) -> None:
        if not 1 <= self.month <= 12 or not 1 <= self.year <= 9999:
            raise ValueError(f"tháng không hợp lệ {self.year}-{self.month} (not a valid month)")
        object.__setattr__(self, "index", self.year * 12 + self.month - 1)

    # Ordering by the precomputed index: months are compared on every hot path.
    def __lt__(self, other: Month) -> bool:
        return self.index < other.index

    def __le__(self, other: Month) -> bool:
        return self.index <= other.index

    def __gt__(self, other: Month) -> bool:
        return self.index > other.index

    def __ge__(self, other: Month) -> bool:
        return self.index >= other.index

    @classmethod
    def parse(cls, text: str) -> Month:
        """``"2020-08"`` -> ``Month(2020, 8)``; ValueError with a readable message otherwise."""
        found = _PARSED.get(text)
        if found is not None and cls is Month:
            return found
        m = _MONTH.match(text)
        if m is None:
            raise ValueError(f"tháng phải có dạng YYYY-MM: {text!r} (a month is YYYY-MM)")
        month = cls(int(m.group(1)), int(m.group(2)))
        if cls is Month and len(_PARSED) < _CACHE_LIMIT:
            _PARSED[text] = month
        return month

    @classmethod
    def of(cls, day: date) -> Month:
        """The month a date falls in."""
        return cls.from_index(day.year * 12 + day.month - 1)

    @classmethod
    def from_index(cls, index: int) -> Month:
        """Inverse of :attr:`index`. Months are immutable: one instance per index is shared."""
        found = _BY_INDEX.get(index)
        if found is not None and cls is Month:
            return found
        month = cls(index // 12, index % 12 + 1)
        if cls is Month:
            _BY_INDEX[index] = month  # at most 12 × 9999 months exist
        return month

    @property
    def first_day(self) -> date:
        return date(self.year, self.month, 1)

    def day(self, day: int) -> date:
        """A day of this month (``Month(2020, 7).day(24)`` is 2020-07-24)."""
        return date(self.year, self.month, day)

    def __add__(self, months: int) -> Month:
        return Month.from_index(self.index + months)

    def __sub__(self, months: int) -> Month:
        return Month.from_index(self.index - months)

    def months_since(self, other: Month) -> int:
        """How many months ``other`` is before this month (negative when after)."""
        return self.index - other.index

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    def __repr__(self) -> str:
        return f"Month({self})"


_BY_INDEX: dict[int, Month] = {}
_PARSED: dict[str, Month] = {}
_CACHE_LIMIT = 10_000


def month_range(first: Month, last: Month) -> list[Month]:
    """Every month from ``first`` to ``last`` inclusive (empty when ``last`` is earlier)."""
    return [Month.from_index(i) for i in range(first.index, last.index + 1)]
