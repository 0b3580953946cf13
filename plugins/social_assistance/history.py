"""What earlier payment lists carried, and what the payer reported paid.

In-memory stores with the lookups the list builder needs; the persistence layer can offer
the same methods over the database. A corrected list (next ``lanGui``) replaces the earlier
sending of the same commune and month.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from plugins.social_assistance.month import Month

if TYPE_CHECKING:
    from plugins.social_assistance.payment_list import PaymentLine, PaymentList
    from plugins.social_assistance.roster import LineKey


class SentHistory:
    """The lists the gateway has sent, line by line.

    :param start: the first month the gateway built lists for. Months before it are assumed
        settled by the earlier system from the decisions known when its last list (for
        ``start - 1``) was built. Default: per commune, the earliest month recorded for it
        (or for the old communes merged into it), else the month being built (its first list).
    """

    def __init__(self, lists: Iterable[PaymentList] = (), *, start: Month | None = None) -> None:
        self._start = start
        self._lists: dict[tuple[str, Month], PaymentList] = {}
        self._lines: dict[LineKey, dict[Month, PaymentLine]] = defaultdict(dict)
        for payment_list in lists:
            self.record(payment_list)

    def start(self, communes: Iterable[str], building: Month) -> Month:
        """The first gateway month for these communes, seen when building ``building``."""
        if self._start is not None:
            return min(self._start, building)
        codes = set(communes)
        return min(
            (ky for code, ky in self._lists if code in codes and ky < building), default=building
        )

    def record(self, payment_list: PaymentList) -> None:
        """Remember a sent list; it replaces an earlier sending for the same commune/month."""
        where = (payment_list.commune, payment_list.ky)
        old = self._lists.get(where)
        if old is not None:
            for line in old.lines:
                self._lines[line.key].pop(old.ky, None)
        self._lists[where] = payment_list
        for line in payment_list.lines:
            self._lines[line.key][payment_list.ky] = line

    def next_lan_gui(self, commune: str, ky: Month) -> int:
        old = self._lists.get((commune, ky))
        return 1 if old is None else old.lan_gui + 1

    def last_line(self, key: LineKey, before: Month) -> PaymentLine | None:
        """The latest line for ``key`` in a list for a month before ``before``."""
        months = [m for m in self._lines.get(key, {}) if m < before]
        return self._lines[key][max(months)] if months else None

    def lines(self, key: LineKey, before: Month) -> list[PaymentLine]:
        by_month = self._lines.get(key, {})
        return [by_month[m] for m in sorted(by_month) if m < before]

    def covered(self, key: LineKey, month: Month, before: Month) -> int:
        """What lists before ``before`` carried for ``month``: its own amount plus arrears."""
        total = 0
        for line in self.lines(key, before):
            if line.ky == month:
                total += line.month_amount
            total += sum(a for m, a in line.arrears if m == month)
        return total


@dataclass(frozen=True, slots=True)
class LineOutcome:
    """The payer's answer for one line of one sent list (from reconciliation)."""

    ky: Month
    commune: str
    key: LineKey
    full_name: str
    due: int
    paid: bool
    paid_amount: int
    mismatch: bool = False


class PaidHistory:
    """Reconciled payment results, by line and month."""

    def __init__(self, outcomes: Iterable[LineOutcome] = ()) -> None:
        self._by_key: dict[LineKey, dict[Month, LineOutcome]] = defaultdict(dict)
        for outcome in outcomes:
            self.record(outcome)

    def record(self, outcome: LineOutcome) -> None:
        self._by_key[outcome.key][outcome.ky] = outcome

    def record_all(self, outcomes: Iterable[LineOutcome]) -> None:
        for outcome in outcomes:
            self.record(outcome)

    def outcome(self, key: LineKey, ky: Month) -> LineOutcome | None:
        return self._by_key.get(key, {}).get(ky)

    def unpaid(self, key: LineKey, before: Month) -> list[LineOutcome]:
        """Lines of months before ``before`` the payer did not pay, oldest first."""
        by_month = self._by_key.get(key, {})
        return [o for m, o in sorted(by_month.items()) if m < before and not o.paid and o.due > 0]

    def outcomes(self, ky: Month) -> list[LineOutcome]:
        """Every recorded outcome of month ``ky``."""
        return [o for by_month in self._by_key.values() if (o := by_month.get(ky)) is not None]
