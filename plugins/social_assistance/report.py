"""The office's monthly report data (DOMAIN.md §5) and timeliness helpers.

Everything here is computed from plain inputs — payment lists, reconciled outcomes,
suspension-candidate payloads, dates — so the same figures come out wherever they are shown.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from gateway.model import VN_TZ
from plugins.social_assistance.amounts import Entitlement, age_in_month, monthly_amount
from plugins.social_assistance.history import LineOutcome
from plugins.social_assistance.month import Month, month_range
from plugins.social_assistance.payment_list import BienDong, PaymentList
from plugins.social_assistance.roster import Roster, Status
from plugins.social_assistance.rules import Rules


@dataclass(slots=True)
class Tally:
    """Lines, lines receiving a month amount, and the VND they carry (month+arrears+carried)."""

    lines: int = 0
    receiving: int = 0
    amount: int = 0


@dataclass(frozen=True)
class MonthlyReport:
    ky: Month
    beneficiaries: int
    total_amount: int
    month_amount: int
    by_category: Mapping[str, Tally]
    by_group: Mapping[str, Tally]
    by_commune: Mapping[str, Tally]
    changes: Mapping[str, int]
    arrears_amount: int
    arrears_lines: int
    carried_amount: int
    carried_lines: int
    suspension_candidates: int
    paid_amount: int | None = None
    unpaid_amount: int | None = None
    unpaid_lines: int | None = None
    needs_age_decision: Sequence[str] = field(default=())

    @property
    def increases(self) -> int:
        """New and resumed lines."""
        return self.changes.get(BienDong.TANG, 0) + self.changes.get(BienDong.TIEP_TUC, 0)

    @property
    def decreases(self) -> int:
        """Stopped and suspended lines."""
        return self.changes.get(BienDong.GIAM, 0) + self.changes.get(BienDong.TAM_DUNG, 0)


def monthly_report(
    rules: Rules,
    lists: Iterable[PaymentList],
    *,
    outcomes: Iterable[LineOutcome] = (),
    candidates: Iterable[Mapping[str, Any]] = (),
    needs_age_decision: Sequence[str] = (),
) -> MonthlyReport:
    """Beneficiaries and amounts by category, group and commune for one month's lists.

    ``beneficiaries`` counts lines receiving a month amount; ``total_amount`` is the sum of
    the lists' ``tongSoTien``. With ``outcomes`` (reconciliation) it also says what was paid.
    """
    by_category: dict[str, Tally] = {}
    by_group: dict[str, Tally] = {g: Tally() for g in rules.groups}
    by_commune: dict[str, Tally] = {}
    changes: Counter[str] = Counter()
    totals = Counter[str]()
    ky: Month | None = None
    for payment_list in lists:
        ky = ky or payment_list.ky
        if payment_list.ky != ky:
            raise ValueError(
                f"báo cáo một kỳ, gặp {payment_list.ky} và {ky} (one month per report)"
            )
        totals["total"] += payment_list.total_amount
        for line in payment_list.lines:
            group = rules.category(line.category).group
            for tally in (
                by_category.setdefault(line.category, Tally()),
                by_group[group],
                by_commune.setdefault(payment_list.commune, Tally()),
            ):
                tally.lines += 1
                tally.receiving += line.month_amount > 0
                tally.amount += line.total
            changes[line.change] += 1
            totals["month"] += line.month_amount
            totals["receiving"] += line.month_amount > 0
            totals["arrears"] += line.arrears_amount
            totals["arrears_lines"] += bool(line.arrears)
            totals["carried"] += line.carried
            totals["carried_lines"] += line.carried > 0
    if ky is None:
        raise ValueError("không có danh sách nào (no payment lists to report on)")
    settled = list(outcomes)
    order = {code: i for i, code in enumerate(rules.categories)}
    return MonthlyReport(
        ky=ky,
        beneficiaries=totals["receiving"],
        total_amount=totals["total"],
        month_amount=totals["month"],
        by_category={c: by_category[c] for c in sorted(by_category, key=lambda c: order[c])},
        by_group=by_group,
        by_commune=dict(sorted(by_commune.items())),
        changes=dict(changes),
        arrears_amount=totals["arrears"],
        arrears_lines=totals["arrears_lines"],
        carried_amount=totals["carried"],
        carried_lines=totals["carried_lines"],
        suspension_candidates=sum(len(c["doiTuong"]) for c in candidates),
        paid_amount=sum(o.paid_amount for o in settled if o.paid) if settled else None,
        unpaid_amount=sum(o.due for o in settled if not o.paid) if settled else None,
        unpaid_lines=sum(1 for o in settled if not o.paid and o.due > 0) if settled else None,
        needs_age_decision=tuple(needs_age_decision),
    )


def needs_age_decision(rules: Rules, roster: Roster, month: Month) -> list[str]:
    """Dossiers still paid in a category the person has aged out of (5.1/5.3 at 16, 5.7 at 3,
    5.2 at 22): the office must decide; payment never stops without a decision."""
    found = []
    for b in roster.benefits:
        span = b.span_at(month)
        if span.status is not Status.ACTIVE or span.terms is None:
            continue
        limit = rules.category(span.terms.category).ages_out_at
        if (
            limit is not None
            and age_in_month(span.terms.birth_date, month, rules.coefficient_rule) >= limit
        ):
            found.append(b.dossier)
    return found


# ---------------------------------------------------------------------------------------
# Timeliness
# ---------------------------------------------------------------------------------------


def days_to_decision(received_at: datetime, signed_on: date) -> int:
    """Calendar days from reception of the dossier to the signing of its decision."""
    return (signed_on - received_at.astimezone(VN_TZ).date()).days


def days_to_first_payment(received_at: datetime, first_paid_on: date) -> int:
    """Calendar days from reception to the first payment (ngayChi of the first paid line)."""
    return (first_paid_on - received_at.astimezone(VN_TZ).date()).days


def is_overdue(due_at: datetime, *, decided_at: datetime | None, now: datetime) -> bool:
    """Past NgayHenTra: decided after it, or still undecided at ``now`` after it."""
    return (decided_at if decided_at is not None else now) > due_at


def arrears_from_lateness(
    rules: Rules, person_benefits: Sequence[Entitlement], should_start: Month, first_listed: Month
) -> tuple[int, int]:
    """(months, VND) owed because the first listed month came after payment should start;
    each month at its own level and coefficient."""
    months = month_range(should_start, first_listed - 1)
    return len(months), sum(monthly_amount(rules, person_benefits, m) for m in months)
