"""The roster: the state of every benefit, month by month, derived from its decisions.

A benefit is named by its dossier (``maHoSo``); a carer's care support has its own dossier.
Decisions of one benefit apply in order of signing date, then decision number compared
numerically; each governs from its own month on. The roster is a pure function of the set of
decisions (and of the operator's accepted amounts): re-sent decisions change nothing and the
input order does not matter.

A grant or adjustment whose amount (``soTienThang``) disagrees with ours is *held* — not
applied — until an operator accepts one figure (:class:`Acceptance`).
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import StrEnum
from itertools import pairwise
from typing import Literal

from plugins.social_assistance.amounts import Entitlement, Person, amount_for, coefficient
from plugins.social_assistance.decision import SETS_TERMS, Decision, DecisionError, DecisionKind
from plugins.social_assistance.month import Month
from plugins.social_assistance.rules import Authority, LineKind, Rules
from plugins.vn_common.cccd import mask_cccd

__all__ = [
    "AmountMismatch",
    "Benefit",
    "Decision",
    "DecisionConflict",
    "DecisionError",
    "DecisionKey",
    "DecisionKind",
    "EarlyStart",
    "Roster",
    "Span",
    "Status",
    "Terms",
    "allowed_start",
    "build_roster",
    "check_decision_amount",
    "check_grant_start",
    "deciding_authority",
    "decision_host",
    "grant_start",
]

DecisionKey = tuple[str, str, date]
Acceptance = Literal["registry", "gateway"]
"""Which figure an operator accepted for a held decision: the registry's or the gateway's."""
LineKey = tuple[str, LineKind]
"""A payment line: the payee's CCCD and whether it is their own allowance or care support."""
_BEGINNING = Month(1, 1)


class Status(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class Terms:
    """What the governing grant or adjustment decided, and what the amount depends on."""

    category: str
    full_name: str
    birth_date: date
    commune: str
    payout: str
    disability: str | None
    children: int
    cared_birth_date: date | None
    pinned_amount: int | None
    host: str | None = None
    """For 5.4 on a host (FORMATS.md §2.2): the benefit's own 5.5x / 5.6 / 5.8 category, kept
    under the per-child coefficient (``disability`` is then the host's)."""
    _entitlement: Entitlement | None = field(default=None, init=False, repr=False, compare=False)

    def entitlement(self) -> Entitlement:
        """What these terms pay on (made once: every list month asks again)."""
        found = self._entitlement
        if found is None:
            person = Person(self.birth_date, self.disability, self.children, self.cared_birth_date)
            found = Entitlement(self.category, person, self.pinned_amount)
            object.__setattr__(self, "_entitlement", found)
        return found

    def entitlements(self) -> tuple[Entitlement, ...]:
        """The host and the per-child category for 5.4 on a host; else the one."""
        if self.host is None:
            return (self.entitlement(),)
        host = Person(self.birth_date, self.disability, 0, None)
        parent = Person(self.birth_date, None, self.children, None)
        return (
            Entitlement(self.host, host, self.pinned_amount),
            Entitlement(self.category, parent, self.pinned_amount),
        )


@dataclass(frozen=True, slots=True)
class Span:
    """Months from ``start`` until the next span: a status (None = not started) and terms.

    ``repaid``: suspended months that a resume decision pays as arrears (truyLinh).
    """

    start: Month
    status: Status | None
    terms: Terms | None
    repaid: bool = False


@dataclass(frozen=True, slots=True)
class AmountMismatch:
    """A grant/adjustment whose registry amount differs from ours; held for an operator."""

    decision: DecisionKey
    month: Month
    registry_amount: int
    computed_amount: int
    registry_coefficient: Decimal | None
    computed_coefficient: Decimal
    registry_level: int | None
    computed_level: int

    @property
    def message(self) -> str:
        dossier, number, _ = self.decision
        return (
            f"quyết định {number} (hồ sơ {dossier}) tháng {self.month}: "
            f"số tiền {self.registry_amount:,} khác số tính lại {self.computed_amount:,} "
            f"= {self.computed_level:,} × {self.computed_coefficient}"
            " — chờ cán bộ chọn một con số (registry amount differs from the recomputed one; "
            "held until an operator accepts one)"
        )


@dataclass(frozen=True, slots=True)
class DecisionConflict:
    """Decisions that cannot both be true: held, none of them applied."""

    decision: DecisionKey
    problem: str

    @property
    def message(self) -> str:
        dossier, number, _ = self.decision
        return f"quyết định {number} (hồ sơ {dossier}): {self.problem}"


@dataclass(frozen=True, slots=True)
class EarlyStart:
    """A grant whose ``tuThang`` is before the first month DOMAIN.md §3 allows: held for an
    operator with both months, never moved silently (FORMATS.md §2.2)."""

    decision: DecisionKey
    registry_month: Month
    rules_month: Month

    @property
    def message(self) -> str:
        dossier, number, _ = self.decision
        return (
            f"quyết định {number} (hồ sơ {dossier}): hưởng từ {self.registry_month}, trước tháng "
            f"{self.rules_month} quy định cho phép — chờ cán bộ chọn một tháng (the grant starts "
            "before the rules allow; held until an operator accepts one month)"
        )


Held = AmountMismatch | DecisionConflict | EarlyStart


@dataclass(frozen=True, slots=True)
class Benefit:
    """One benefit's timeline. ``reaches`` pairs each applied decision with the earliest
    month it changes (a resume with arrears reaches back to the suspension)."""

    dossier: str
    citizen_id: str
    line: LineKind
    spans: tuple[Span, ...]
    decisions: tuple[Decision, ...]
    reaches: tuple[tuple[Decision, Month], ...]
    _starts: tuple[Month, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_starts", tuple(s.start for s in self.spans))

    @property
    def line_key(self) -> LineKey:
        return (self.citizen_id, self.line)

    def span_at(self, month: Month) -> Span:
        return self.spans[bisect_right(self._starts, month) - 1]

    def payable(self, month: Month) -> Terms | None:
        """The terms a month is paid on: active, or suspended but repaid on resume."""
        span = self.span_at(month)
        if span.status is Status.ACTIVE or (span.status is Status.SUSPENDED and span.repaid):
            return span.terms
        return None

    def latest_terms(self, month: Month) -> Terms | None:
        """The terms in force in ``month`` (whatever the status), else the last known ones."""
        i = bisect_right(self._starts, month) - 1
        if i >= 0 and (terms := self.spans[i].terms) is not None:
            return terms
        return next((s.terms for s in reversed(self.spans[: i + 1]) if s.terms), None)

    @property
    def first_month(self) -> Month | None:
        return next((s.start for s in self.spans if s.status is not None), None)


@dataclass(frozen=True)
class Roster:
    """Every benefit's timeline plus the decisions held for an operator."""

    benefits: tuple[Benefit, ...]
    held: tuple[Held, ...]
    decisions: frozenset[Decision]
    rules: Rules = field(compare=False, repr=False)
    accepted: Mapping[DecisionKey, Acceptance] = field(compare=False, repr=False)

    def as_of(self, day: date) -> Roster:
        """The roster from the decisions signed on or before ``day``."""
        known = [d for d in self.decisions if d.signed_on <= day]
        return (
            self
            if len(known) == len(self.decisions)
            else build_roster(self.rules, known, self.accepted)
        )

    def benefit_as_of(self, benefit: Benefit, day: date) -> Benefit | None:
        """One benefit as it stood on ``day`` (None when none of its decisions was signed)."""
        known = [d for d in benefit.decisions if d.signed_on <= day]
        if len(known) == len(benefit.decisions):
            return benefit
        return _build_benefit(self.rules, known, self.accepted)[0] if known else None

    def by_line(self) -> dict[LineKey, list[Benefit]]:
        """Benefits grouped by payment line (a person's own allowance / their care support)."""
        lines: dict[LineKey, list[Benefit]] = defaultdict(list)
        for b in self.benefits:
            lines[b.line_key].append(b)
        return lines


Host = tuple[str, str | None]
"""A 5.4 decision's host: the benefit's own category and its disability level."""


def check_decision_amount(
    rules: Rules, decision: Decision, host: Host | None = None
) -> AmountMismatch | None:
    """The registry's ``soTienThang`` against ours for ``tuThang``; None when they agree.

    For 5.4 on a host (``host``, see :func:`decision_host`) ours is the whole benefit: the
    host's coefficient plus 1.0 per child.
    """
    if decision.kind not in SETS_TERMS or decision.category is None:
        return None
    month = decision.from_month
    if host is None:
        person = Person(
            decision.birth_date,
            decision.disability,
            decision.children or 0,
            decision.cared_birth_date,
        )
        coef = coefficient(rules, person, decision.category, month)
    else:
        host_person = Person(decision.birth_date, host[1], 0, None)
        parent = Person(decision.birth_date, None, decision.children or 0, None)
        coef = coefficient(rules, host_person, host[0], month) + coefficient(
            rules, parent, decision.category, month
        )
    level = rules.level(month)
    computed = amount_for(level, coef)
    if computed == decision.monthly_amount:
        return None
    return AmountMismatch(
        decision.key,
        month,
        decision.monthly_amount or 0,
        computed,
        decision.coefficient,
        coef,
        decision.level,
        level,
    )


def deciding_authority(rules: Rules, decision: Decision) -> Authority:
    """Who had to sign ``decision``: the district chairman before 2025-07-01, the commune
    chairman from then on (``[[authority]]`` in the rules)."""
    return rules.authority(decision.signed_on)


def allowed_start(rules: Rules, decision: Decision) -> Month:
    """The first month DOMAIN.md §3 lets a grant pay, by the category's start rule: the
    signing month; the 75th / 80th birthday month (5.5b, 5.5c); ``tuThang`` as decided for
    5.6 (the certificate's month, not on the decision); never before the category exists."""
    cat = rules.category(decision.category or "")
    if cat.start_rule == "signing":
        start = Month.of(decision.signed_on)
    elif cat.start_rule == "eligibility_birthday":
        start = _birthday_month(rules, decision.birth_date, cat.eligible_from_age or 0)
    else:
        start = decision.from_month
    return max(start, cat.available_from)


def grant_start(rules: Rules, decision: Decision) -> Month:
    """The first month a grant pays: ``tuThang``, or the allowed start when that is later
    (a grant whose ``tuThang`` is earlier is held: :func:`check_grant_start`)."""
    return max(decision.from_month, allowed_start(rules, decision))


def check_grant_start(rules: Rules, decision: Decision) -> EarlyStart | None:
    """A grant whose ``tuThang`` precedes :func:`allowed_start`; None for any other."""
    if decision.kind is not DecisionKind.HUONG or decision.category is None:
        return None
    allowed = allowed_start(rules, decision)
    if decision.from_month >= allowed:
        return None
    return EarlyStart(decision.key, decision.from_month, allowed)


def decision_host(rules: Rules, earlier: Iterable[Decision], decision: Decision) -> Host | None:
    """The host a 5.4 decision keeps (FORMATS.md §2.2): the category its own
    ``mucDoKhuyetTat`` names, else the 5.5x / 5.6 / 5.8 category (or host) the benefit has
    in ``tuThang`` from the dossier's ``earlier`` applied decisions; None for 5.4 alone
    and for every other category."""
    cat = rules.categories.get(decision.category or "")
    if cat is None or not cat.per_child or decision.kind not in SETS_TERMS:
        return None
    before = [d for d in earlier if d.order_key < decision.order_key]
    spans = [Span(_BEGINNING, None, None)]
    for d in _in_order(before):
        _apply(rules, spans, d, None, _host_in(rules, spans, d))
    return _host_in(rules, spans, decision)


def _host_in(rules: Rules, spans: list[Span], d: Decision) -> Host | None:
    cat = rules.categories.get(d.category or "")
    if cat is None or not cat.per_child or d.kind not in SETS_TERMS:
        return None
    if d.disability is not None:
        named = [c for c in cat.adds_on_top_of if "mucDoKhuyetTat" in rules.category(c).requires]
        if named:
            return (named[0], d.disability)
    i = bisect_right([s.start for s in spans], d.from_month) - 1
    known = [s.terms for s in spans[: i + 1] if s.terms is not None]
    if not known:
        known = [s.terms for s in spans if s.terms is not None]
    if not known:
        return None
    terms = known[-1]
    if terms.host is not None:
        return (terms.host, terms.disability)
    if terms.category in cat.adds_on_top_of:
        return (terms.category, terms.disability)
    return None


def _birthday_month(rules: Rules, birth: date, age: int) -> Month:
    month = Month(birth.year + age, birth.month)
    return month if rules.eligibility_rule == "birthday_month" else month + 1


def build_roster(
    rules: Rules,
    decisions: Iterable[Decision],
    accepted: Mapping[DecisionKey, Acceptance] | None = None,
) -> Roster:
    """The roster from a set of decisions; ``accepted`` releases held amount mismatches."""
    accepted = dict(accepted or {})
    unique = frozenset(decisions)
    by_dossier: dict[str, list[Decision]] = defaultdict(list)
    for d in unique:
        by_dossier[d.dossier].append(d)
    benefits: list[Benefit] = []
    held: list[Held] = []
    for dossier in sorted(by_dossier):
        benefit, problems = _build_benefit(rules, by_dossier[dossier], accepted)
        held.extend(problems)
        if benefit is not None:
            benefits.append(benefit)
    held.sort(key=lambda h: (h.decision[0], h.decision[2], h.decision[1], type(h).__name__))
    return Roster(tuple(benefits), tuple(held), unique, rules, accepted)


def _build_benefit(
    rules: Rules, decisions: list[Decision], accepted: Mapping[DecisionKey, Acceptance]
) -> tuple[Benefit | None, list[Held]]:
    ordered = _in_order(decisions)
    held: list[Held] = list(_conflicts(ordered))
    conflicted = {h.decision for h in held}
    spans = [Span(_BEGINNING, None, None)]
    reaches: list[tuple[Decision, Month]] = []
    for d in ordered:
        if conflicted and d.key in conflicted:
            continue
        host = _host_in(rules, spans, d)
        pinned, problem = _amount_verdict(rules, d, accepted, host)
        if problem is not None:
            held.append(problem)
            continue
        start = None
        early = check_grant_start(rules, d)
        if early is not None:
            choice = accepted.get(d.key)
            if choice is None:
                held.append(early)
                continue
            start = early.registry_month if choice == "registry" else early.rules_month
        reach = _apply(rules, spans, d, pinned, host, start)
        if reach is not None:
            reaches.append((d, reach))
    if all(s.status is None for s in spans):
        return None, held  # nothing granted (yet): e.g. the grant is held
    line = rules.category(next(s.terms.category for s in spans if s.terms is not None)).line
    return Benefit(
        ordered[0].dossier,
        ordered[0].citizen_id,
        line,
        tuple(spans),
        tuple(ordered),
        tuple(reaches),
    ), held


def _in_order(decisions: list[Decision]) -> list[Decision]:
    """Signing date, then number; ties (conflicting decisions) broken by content, so the
    order never depends on the input's."""
    if len(decisions) == 1:
        return list(decisions)
    ordered = sorted(decisions, key=lambda d: d.order_key)
    if any(a.order_key == b.order_key for a, b in pairwise(ordered)):
        ordered.sort(key=lambda d: (d.order_key, repr(d)))
    return ordered


def _conflicts(ordered: list[Decision]) -> Iterable[DecisionConflict]:
    """Same decision sent twice with different content; decisions naming another person."""
    if len(ordered) == 1:
        return
    seen: dict[DecisionKey, Decision] = {}
    for d in ordered:
        if d.key in seen and seen[d.key] != d:
            yield DecisionConflict(
                d.key, "gửi lại với nội dung khác (re-sent with different content)"
            )
        seen.setdefault(d.key, d)
    first = ordered[0].citizen_id
    for d in ordered:
        if d.citizen_id != first:
            yield DecisionConflict(
                d.key,
                f"soDinhDanh {mask_cccd(d.citizen_id)} khác {mask_cccd(first)} của hồ sơ "
                "(another person than the dossier's)",
            )


def _amount_verdict(
    rules: Rules, d: Decision, accepted: Mapping[DecisionKey, Acceptance], host: Host | None
) -> tuple[int | None, AmountMismatch | None]:
    """(pinned amount, held mismatch) for a decision."""
    mismatch = check_decision_amount(rules, d, host)
    if mismatch is None:
        return None, None
    choice = accepted.get(d.key)
    if choice is None:
        return None, mismatch
    return (d.monthly_amount if choice == "registry" else None), None


def _apply(
    rules: Rules,
    spans: list[Span],
    d: Decision,
    pinned: int | None,
    host: Host | None = None,
    start: Month | None = None,
) -> Month | None:
    """Apply one decision in place; returns the earliest month it changes (None: no effect).
    ``start``: a grant's first month as an operator accepted it (an early ``tuThang``)."""
    if d.kind is DecisionKind.HUONG:
        terms = _terms(d, pinned, None, host)
        start = start or grant_start(rules, d)
        first = spans[0]
        if len(spans) == 1 and first.status is None and first.start < start:
            # a benefit's first grant (the common case): what _map_from gives, directly
            spans.append(Span(start, Status.ACTIVE, terms))
            return start
        return _map_from(spans, start, lambda s: Span(s.start, Status.ACTIVE, terms))
    t = d.from_month
    if d.kind is DecisionKind.DIEU_CHINH:
        return _map_from(
            spans,
            t,
            lambda s: (
                s
                if s.status is None
                else Span(s.start, s.status, _terms(d, pinned, s.terms, host), s.repaid)
            ),
        )
    if d.kind is DecisionKind.TAM_DUNG:
        return _map_from(
            spans,
            t,
            lambda s: (
                Span(s.start, Status.SUSPENDED, s.terms, False) if s.status is Status.ACTIVE else s
            ),
        )
    if d.kind is DecisionKind.THOI_HUONG:
        return _map_from(
            spans,
            t,
            lambda s: (
                Span(s.start, Status.STOPPED, s.terms)
                if s.status in (Status.ACTIVE, Status.SUSPENDED)
                else s
            ),
        )
    reach = _repay_suspension(spans, t) if d.arrears else None
    _map_from(
        spans,
        t,
        lambda s: Span(s.start, Status.ACTIVE, s.terms) if s.status is Status.SUSPENDED else s,
    )
    return reach or t


def _terms(d: Decision, pinned: int | None, before: Terms | None, host: Host | None) -> Terms:
    return Terms(
        category=d.category or "",
        full_name=d.full_name or (before.full_name if before else ""),
        birth_date=d.birth_date,
        commune=d.commune,
        payout=d.payout,
        disability=host[1] if host is not None else d.disability,
        children=d.children or 0,
        cared_birth_date=d.cared_birth_date,
        pinned_amount=pinned,
        host=host[0] if host is not None else None,
    )


def _split(spans: list[Span], month: Month) -> int:
    """Make a span start at ``month``; return its index."""
    i = bisect_right([s.start for s in spans], month) - 1
    span = spans[i]
    if span.start != month:
        spans.insert(i + 1, Span(month, span.status, span.terms, span.repaid))
        i += 1
    return i


def _map_from(spans: list[Span], month: Month, f: Callable[[Span], Span]) -> Month:
    i = _split(spans, month)
    spans[i:] = [f(s) for s in spans[i:]]
    _merge(spans)
    return month


def _merge(spans: list[Span]) -> None:
    """Join neighbours that say the same thing (keeps timelines canonical)."""
    out = [spans[0]]
    last = out[0]
    for s in spans[1:]:
        if (
            s.status != last.status
            or s.repaid != last.repaid
            or (s.terms is not last.terms and s.terms != last.terms)
        ):
            out.append(s)
            last = s
    spans[:] = out


def _repay_suspension(spans: list[Span], resume: Month) -> Month | None:
    """Mark the suspended run just before ``resume`` as repaid; return where it starts."""
    end = _split(spans, resume)
    i = end
    while i > 0 and spans[i - 1].status is Status.SUSPENDED:
        i -= 1
    for j in range(i, end):
        s = spans[j]
        spans[j] = Span(s.start, s.status, s.terms, True)
    return spans[i].start if i < end else None
