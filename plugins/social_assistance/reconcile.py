"""Reconciliation of payment results (KetQuaChiTra, FORMATS.md §3.2) against the sent list.

Each result line answers one list line: a person's own line, or their care-support line when
it names a ``cs`` category. Paid amounts that differ from the line total, results for people
not on the list and lines left unanswered are flagged for the office; unpaid lines are
carried into the next list; three (configured) consecutive unpaid months make a suspension
candidate for the registry (FORMATS.md §2.3).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from plugins.social_assistance.history import LineOutcome, PaidHistory
from plugins.social_assistance.month import Month
from plugins.social_assistance.payment_list import PaymentLine, PaymentList
from plugins.social_assistance.roster import LineKey
from plugins.social_assistance.rules import Rules
from plugins.vn_common.cccd import mask_cccd

_RESULT_KEYS = {
    "ky",
    "maXa",
    "soDinhDanh",
    "trangThai",
    "soTien",
    "ngayChi",
    "lyDo",
    "loaiDoiTuong",
    "nhanTien",
}


class ResultError(ValueError):
    """A result line that cannot be read; the message names the problem, not the person."""


@dataclass(frozen=True, slots=True)
class ResultLine:
    """One payer result: ky, maXa, soDinhDanh, trangThai (paid), soTien, ngayChi, lyDo,
    loaiDoiTuong (names a care-support line), nhanTien."""

    ky: Month
    commune: str
    citizen_id: str
    paid: bool
    amount: int
    paid_on: date | None = None
    reason: str | None = None
    category: str | None = None

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> ResultLine:
        unknown = sorted(set(payload) - _RESULT_KEYS)
        if unknown:
            raise ResultError(f"thuộc tính không xác định {unknown[0]!r} (unknown attribute)")
        who = mask_cccd(str(payload.get("soDinhDanh", "")))
        try:
            status = str(payload["trangThai"])
            if status not in ("da_chi", "chua_chi"):
                raise ResultError(
                    f"dòng {who}: trangThai {status!r} không hợp lệ (must be da_chi or chua_chi)"
                )
            amount = str(payload.get("soTien", "0"))
            if not re.fullmatch(r"\d+", amount):
                raise ResultError(
                    f"dòng {who}: soTien phải là số nguyên (soTien must be whole VND)"
                )
            paid_on = payload.get("ngayChi")
            return cls(
                ky=Month.parse(str(payload["ky"])),
                commune=str(payload["maXa"]),
                citizen_id=str(payload["soDinhDanh"]),
                paid=status == "da_chi",
                amount=int(amount),
                paid_on=date.fromisoformat(str(paid_on)) if paid_on else None,
                reason=payload.get("lyDo") or None,
                category=payload.get("loaiDoiTuong") or None,
            )
        except KeyError as e:
            raise ResultError(f"dòng {who}: thiếu {e.args[0]} ({e.args[0]} is required)") from None
        except ValueError as e:
            if isinstance(e, ResultError):
                raise
            raise ResultError(f"dòng {who}: {e}") from None

    def line_key(self, rules: Rules) -> LineKey:
        return (self.citizen_id, "cs" if self.category in rules.cs_codes else "own")


@dataclass(frozen=True, slots=True)
class AmountFlag:
    """A result whose amount is not the line's: paid ≠ total, or unpaid with an amount."""

    key: LineKey
    due: int
    reported: int
    paid: bool


@dataclass(frozen=True)
class Reconciliation:
    ky: Month
    commune: str
    outcomes: tuple[LineOutcome, ...]
    amount_flags: tuple[AmountFlag, ...]
    unknown: tuple[ResultLine, ...]
    unanswered: tuple[PaymentLine, ...]
    duplicates: tuple[ResultLine, ...]
    other_list: tuple[ResultLine, ...]

    @property
    def paid_amount(self) -> int:
        return sum(o.paid_amount for o in self.outcomes if o.paid)

    @property
    def unpaid_amount(self) -> int:
        """Funds not spent (to carry into the next list)."""
        return sum(o.due for o in self.outcomes if not o.paid)


def reconcile(
    rules: Rules, sent: PaymentList, results: Iterable[ResultLine | Mapping[str, Any]]
) -> Reconciliation:
    """Match the payer's result lines to the lines of the list that was sent."""
    lines = {line.key: line for line in sent.lines}
    outcomes: dict[LineKey, LineOutcome] = {}
    flags: list[AmountFlag] = []
    unknown: list[ResultLine] = []
    duplicates: list[ResultLine] = []
    other: list[ResultLine] = []
    for raw in results:
        result = raw if isinstance(raw, ResultLine) else ResultLine.from_payload(raw)
        key = result.line_key(rules)
        if (result.ky, result.commune) != (sent.ky, sent.commune):
            other.append(result)
        elif key not in lines:
            unknown.append(result)
        elif key in outcomes:
            duplicates.append(result)
        else:
            line = lines[key]
            expected = line.total if result.paid else 0
            if result.amount != expected:
                flags.append(AmountFlag(key, line.total, result.amount, result.paid))
            outcomes[key] = LineOutcome(
                sent.ky,
                sent.commune,
                key,
                line.full_name,
                line.total,
                result.paid,
                result.amount,
                result.amount != expected,
            )
    unanswered = tuple(line for key, line in lines.items() if key not in outcomes)
    return Reconciliation(
        sent.ky,
        sent.commune,
        tuple(outcomes.values()),
        tuple(flags),
        tuple(unknown),
        unanswered,
        tuple(duplicates),
        tuple(other),
    )


def suspension_candidates(
    rules: Rules, paid_history: PaidHistory, ky: Month, *, commune: str | None = None
) -> list[dict[str, Any]]:
    """People unpaid for the configured number of consecutive months up to ``ky``, per commune.

    Payloads for the registry (DeNghiTamDung): ``{"ky", "maXa", "doiTuong": [{"soDinhDanh",
    "hoTen", "cacThangChuaNhan": [...]}]}``, one per commune that has any.
    """
    n = rules.calendar.unpaid_months_for_suspension
    months = [ky - i for i in range(n - 1, -1, -1)]
    by_commune: dict[str, dict[str, dict[str, Any]]] = {}
    for last in paid_history.outcomes(ky):
        if commune is not None and last.commune != commune:
            continue
        run = [paid_history.outcome(last.key, m) for m in months]
        if not all(o is not None and not o.paid and o.due > 0 for o in run):
            continue
        people = by_commune.setdefault(last.commune, {})
        people.setdefault(
            last.key[0],
            {
                "soDinhDanh": last.key[0],
                "hoTen": last.full_name,
                "cacThangChuaNhan": [str(m) for m in months],
            },
        )
    return [
        {"ky": str(ky), "maXa": code, "doiTuong": [people[c] for c in sorted(people)]}
        for code, people in sorted(by_commune.items())
    ]
