"""Monthly payment lists (DanhSachChiTra, FORMATS.md §3.1): one per commune and month.

The list for month M is built on a configured day of M-1 from the decisions known then. Each
line is one payee line: a person's own allowance, or a carer's care support (``cs``). It says
what changes (``bienDong``), the month's amount, arrears (truy lĩnh: months that should have
been paid but were not listed, each at its own level and coefficient, never negative) and
unpaid amounts carried from earlier results (``soTienChuaNhan``). From 2025-07 the list is per
new (merged) commune and each line keeps the old commune code (``maXaCu``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from enum import StrEnum
from typing import Any, NamedTuple

from gateway.model import VN_TZ
from plugins.social_assistance.amounts import Entitlement, line_amount, monthly_amount
from plugins.social_assistance.history import PaidHistory, SentHistory
from plugins.social_assistance.month import Month, month_range
from plugins.social_assistance.roster import Benefit, LineKey, Roster, Status, Terms
from plugins.social_assistance.rules import AdminUnitError, AdminUnits, Commune, Rules
from plugins.vn_common.cccd import mask_cccd


class BienDong(StrEnum):
    """What changed on a line: new, stopped, adjusted, suspended, resumed, unchanged."""

    TANG = "tang"
    GIAM = "giam"
    DIEU_CHINH = "dieu_chinh"
    TAM_DUNG = "tam_dung"
    TIEP_TUC = "tiep_tuc"
    KHONG_DOI = "khong_doi"


class PaymentListError(ValueError):
    """A list whose totals or lines do not add up: it must not be sent."""


@dataclass(frozen=True, slots=True)
class PaymentLine:
    """One line of a list. ``arrears`` keeps the amount of each month (truy lĩnh);
    ``carried_from`` the months of the unpaid lines whose totals ``carried`` brings forward."""

    ky: Month
    key: LineKey
    full_name: str
    category: str
    disability: str | None
    month_amount: int
    arrears: tuple[tuple[Month, int], ...]
    carried: int
    carried_from: tuple[Month, ...]
    payout: str
    change: BienDong
    old_commune: str | None
    dossiers: tuple[str, ...]

    @property
    def citizen_id(self) -> str:
        return self.key[0]

    @property
    def arrears_amount(self) -> int:
        return sum(a for _, a in self.arrears) if self.arrears else 0

    @property
    def total(self) -> int:
        """Month amount + arrears + carried unpaid: what the payer pays on this line."""
        if not self.arrears:
            return self.month_amount + self.carried
        return self.month_amount + self.arrears_amount + self.carried

    def to_payload(self) -> dict[str, Any]:
        line: dict[str, Any] = {
            "soDinhDanh": self.citizen_id,
            "hoTen": self.full_name,
            "loaiDoiTuong": self.category,
        }
        if self.disability:
            line["mucDoKhuyetTat"] = self.disability
        line["soTienThang"] = self.month_amount
        line["soTienTruyLinh"] = self.arrears_amount if self.arrears else 0
        if self.arrears:
            line["truyLinhTu"] = str(self.arrears[0][0])
            line["truyLinhDen"] = str(self.arrears[-1][0])
        line["soTienChuaNhan"] = self.carried
        line["nhanTien"] = self.payout
        line["bienDong"] = str(self.change)
        if self.old_commune is not None:
            line["maXaCu"] = self.old_commune
        return line


@dataclass(frozen=True)
class PaymentList:
    """A commune's list for month ``ky``; build it with :func:`build_payment_list`."""

    ky: Month
    commune: str
    lan_gui: int
    built_at: datetime
    lines: tuple[PaymentLine, ...]
    total_people: int
    total_amount: int

    @classmethod
    def of(
        cls, ky: Month, commune: str, lan_gui: int, built_at: datetime, lines: Sequence[PaymentLine]
    ) -> PaymentList:
        """A list with its totals computed, checked."""
        total = sum(line.total for line in lines)
        return cls(ky, commune, lan_gui, built_at, tuple(lines), len(lines), total).check()

    def check(self) -> PaymentList:
        """Refuse a list whose totals or lines do not add up (FORMATS.md §3.1)."""
        where = f"danh sách {self.commune} kỳ {self.ky}"
        if self.total_people != len(self.lines):
            raise PaymentListError(
                f"{where}: tongSoNguoi {self.total_people} ≠ {len(self.lines)} dòng "
                "(people total differs from line count)"
            )
        if self.total_amount != sum(line.total for line in self.lines):
            raise PaymentListError(
                f"{where}: tongSoTien {self.total_amount:,} ≠ tổng các dòng "
                "(amount total differs from the sum of lines)"
            )
        if len({line.key for line in self.lines}) != len(self.lines):
            raise PaymentListError(
                f"{where}: một người có hai dòng cùng loại (a payee is listed twice)"
            )
        if self.built_at.tzinfo is None:
            raise PaymentListError(
                f"{where}: lapLuc thiếu múi giờ (build time must be timezone-aware)"
            )
        for line in self.lines:
            _check_line(where, self.ky, line)
        return self

    def to_payload(self) -> dict[str, Any]:
        """The exact dict the post-office connector renders to DanhSachChiTra XML."""
        self.check()
        return {
            "ky": str(self.ky),
            "maXa": self.commune,
            "lanGui": self.lan_gui,
            "lapLuc": self.built_at.astimezone(VN_TZ).isoformat(timespec="seconds"),
            "tongSoNguoi": self.total_people,
            "tongSoTien": self.total_amount,
            "lines": [line.to_payload() for line in self.lines],
        }


def _check_line(where: str, ky: Month, line: PaymentLine) -> None:
    arrears = line.arrears
    if line.month_amount < 0 or line.carried < 0 or (arrears and any(a <= 0 for _, a in arrears)):
        raise PaymentListError(
            f"{_who(where, line)}: số tiền âm hoặc truy lĩnh bằng 0 "
            "(negative amount or empty arrears month)"
        )
    if arrears and (any(m >= ky for m, _ in arrears) or list(arrears) != sorted(arrears)):
        raise PaymentListError(
            f"{_who(where, line)}: tháng truy lĩnh phải trước kỳ và tăng dần "
            "(arrears months must precede the list month, in order)"
        )
    change = line.change
    if change is BienDong.KHONG_DOI:
        return
    if change in (BienDong.GIAM, BienDong.TAM_DUNG) and line.month_amount:
        raise PaymentListError(
            f"{_who(where, line)}: dòng {change} phải có soTienThang = 0 "
            f"(a {change} line pays no month amount)"
        )
    if change is BienDong.TAM_DUNG and (arrears or line.carried):
        raise PaymentListError(
            f"{_who(where, line)}: dòng tạm dừng không chi tiền (a suspended line pays nothing)"
        )


def _who(where: str, line: PaymentLine) -> str:
    """How a check names a line (the CCCD masked), built only for the message."""
    return f"{where}, dòng {mask_cccd(line.citizen_id)}"


@dataclass(frozen=True, slots=True)
class ListRefused:
    """People no list can be built for this month (e.g. a merged commune without a code).

    ``lines`` and ``amount`` are what their list would have held (people and VND left
    unpaid), priced as if it had been built; ``name`` is the commune's name when known.
    """

    ky: Month
    registry_commune: str
    lines: int
    reason: str
    amount: int = 0
    name: str = ""


class _Group(NamedTuple):
    key: LineKey
    benefits: list[Benefit]
    terms: Terms


class _Prev(NamedTuple):
    """What the payer last had for a line: amount, category, disability, change."""

    month_amount: int
    category: str
    disability: str | None
    change: BienDong


def build_payment_list(
    rules: Rules,
    admin_units: AdminUnits,
    roster: Roster,
    commune: str,
    month: Month,
    *,
    paid_history: PaidHistory,
    sent_history: SentHistory,
    now: datetime,
) -> PaymentList:
    """The list for commune ``commune`` (its code for ``month``) from decisions known at ``now``.

    :raises AdminUnitError: the commune has no list of its own in ``month`` (merged away, or
        its new code is not confirmed).
    """
    unit = _list_unit(admin_units, commune, month)
    known = roster.as_of(vn_day(now))
    groups, _ = _group(admin_units, known, month)
    builder = _LineBuilder(rules, known, month, paid_history, sent_history, admin_units)
    return builder.payment_list(unit, groups.get(commune, []), now)


def iter_payment_lists(
    rules: Rules,
    admin_units: AdminUnits,
    rosters: Iterable[Roster],
    month: Month,
    *,
    paid_history: PaidHistory,
    sent_history: SentHistory,
    now: datetime,
) -> Iterator[PaymentList | ListRefused]:
    """Every commune's list, one at a time: memory is bounded by one roster chunk.

    Each roster in ``rosters`` must hold whole communes (every benefit of the communes it
    holds); a commune met in two chunks is an error rather than two half lists.
    """
    done: set[str] = set()
    day = vn_day(now)
    for roster in rosters:
        known = roster.as_of(day)
        groups, refused = _group(admin_units, known, month)
        builder = _LineBuilder(rules, known, month, paid_history, sent_history, admin_units)
        for r in refused:
            yield _priced(builder, admin_units, r, groups, now)
        for code in sorted(groups):
            if code.startswith(_UNPLACED):
                continue
            if code in done:
                raise ValueError(
                    f"xã {code} có trong hai phần danh sách "
                    f"(commune {code} split across roster chunks)"
                )
            done.add(code)
            yield builder.payment_list(_list_unit(admin_units, code, month), groups[code], now)


def _priced(
    builder: _LineBuilder,
    admin_units: AdminUnits,
    refused: ListRefused,
    groups: dict[str, list[_Group]],
    now: datetime,
) -> ListRefused:
    """A refusal with what its people's list would have paid (lines and VND left unpaid)."""
    code = refused.registry_commune
    name = admin_units.name_of(code)
    unit = Commune(code, name, "", None, None, None, (), True, "")
    try:
        priced = builder.payment_list(unit, groups.pop(_UNPLACED + code, []), now)
    except (PaymentListError, ValueError):
        return replace(refused, name=name)
    return replace(refused, lines=priced.total_people, amount=priced.total_amount, name=name)


_UNPLACED = "?"
"""Prefix of the groups of people whose commune has no list (kept to price the refusal)."""


def vn_day(now: datetime) -> date:
    """The calendar day in Vietnam at ``now`` (which decisions are known: signed by then)."""
    if now.tzinfo is None:
        raise ValueError("now phải có múi giờ (now must be timezone-aware)")
    return now.astimezone(VN_TZ).date()


def _list_unit(admin_units: AdminUnits, commune: str, month: Month) -> Commune:
    unit = admin_units.commune(commune, month)
    if unit is None or not unit.code_confirmed:
        target = admin_units.list_commune(commune, month)  # raises with the reason
        raise AdminUnitError(
            f"xã {commune} không còn danh sách riêng kỳ {month}: lập cho xã {target.label} "
            "(this commune has no list of its own for the month; build the new commune's)"
        )
    return unit


def _group(
    admin_units: AdminUnits, roster: Roster, month: Month
) -> tuple[dict[str, list[_Group]], list[ListRefused]]:
    """Lines grouped by the commune whose list holds them in ``month``."""
    groups: dict[str, list[_Group]] = {}
    unplaced: dict[str, tuple[int, str]] = {}
    placed: dict[str, str | AdminUnitError] = {}  # registry code -> list code (or why none)
    for key, benefits in roster.by_line().items():
        terms = _governing(benefits, month)
        code = placed.get(terms.commune)
        if code is None:
            try:
                code = admin_units.list_commune(terms.commune, month).code or ""
            except AdminUnitError as e:
                code = e
            placed[terms.commune] = code
        if isinstance(code, AdminUnitError):
            count, _ = unplaced.get(terms.commune, (0, ""))
            unplaced[terms.commune] = (count + 1, str(code))
            groups.setdefault(_UNPLACED + terms.commune, []).append(_Group(key, benefits, terms))
            continue
        groups.setdefault(code, []).append(_Group(key, benefits, terms))
    refused = [
        ListRefused(month, code, n, reason) for code, (n, reason) in sorted(unplaced.items())
    ]
    return groups, refused


def _governing(benefits: Sequence[Benefit], month: Month) -> Terms:
    """The terms that name the line: of the most recently decided benefit, active first."""
    if len(benefits) == 1:
        best = benefits[0]
    else:
        active = [b for b in benefits if b.span_at(month).status is Status.ACTIVE]
        best = max(active or benefits, key=lambda b: max(d.order_key for d in b.decisions))
    terms = best.latest_terms(month) or next(s.terms for s in best.spans if s.terms is not None)
    return terms


def _status(benefits: Sequence[Benefit], month: Month) -> Status | None:
    if len(benefits) == 1:
        return benefits[0].span_at(month).status
    statuses = {b.span_at(month).status for b in benefits}
    return next(
        (s for s in (Status.ACTIVE, Status.SUSPENDED, Status.STOPPED) if s in statuses), None
    )


def _payable(benefits: Sequence[Benefit], month: Month, *, repaid: bool) -> list[Entitlement]:
    ents = []
    for b in benefits:
        span = b.span_at(month)
        if span.terms and (
            span.status is Status.ACTIVE
            or (repaid and span.status is Status.SUSPENDED and span.repaid)
        ):
            if span.terms.host is None:
                ents.append(span.terms.entitlement())
            else:
                ents.extend(span.terms.entitlements())
    return ents


class _LineBuilder:
    """Builds the lines of one list month against the histories."""

    def __init__(
        self,
        rules: Rules,
        roster: Roster,
        month: Month,
        paid: PaidHistory,
        sent: SentHistory,
        admin_units: AdminUnits,
    ) -> None:
        self.rules = rules
        self.roster = roster
        self.month = month
        self.paid = paid
        self.sent = sent
        self.admin_units = admin_units
        self._baseline_days: dict[Month, date] = {}
        self._unit: Commune | None = None

    def payment_list(self, unit: Commune, groups: list[_Group], now: datetime) -> PaymentList:
        self._unit = unit
        code = unit.code or ""
        start = self.sent.start((code, *unit.merged_from), self.month)
        merged = self.admin_units.is_merged_list(unit, self.month)
        lines = [line for g in groups if (line := self.line(g, start, merged)) is not None]
        lines.sort(key=lambda line: line.key)
        return PaymentList.of(
            self.month, code, self.sent.next_lan_gui(code, self.month), now, lines
        )

    def entitled(self, benefits: Sequence[Benefit], month: Month) -> int:
        """What a line should pay for ``month``, resumed-with-arrears months included."""
        ents = _payable(benefits, month, repaid=True)
        return monthly_amount(self.rules, ents, month) if ents else 0

    def line(self, group: _Group, start: Month, merged: bool) -> PaymentLine | None:
        key, benefits, _ = group
        month = self.month
        baseline_day = self._baseline_days.get(start)
        if baseline_day is None:
            baseline_day = self._baseline_days[start] = self.rules.calendar.build_date(start - 1)
        status = _status(benefits, month)
        if status is None:
            return None
        prev = self._prev(key, benefits, start, baseline_day)
        if status is Status.SUSPENDED:
            if prev is None or prev.change is BienDong.GIAM:
                return None  # never listed: first appears when resumed (as tang)
            return self._make(group, BienDong.TAM_DUNG, 0, (), (), merged)
        arrears = self._arrears(key, benefits, start, baseline_day)
        carried = self._carried(key)
        if status is Status.STOPPED:
            if prev is not None and prev.change is BienDong.GIAM:
                return None
            if prev is None and not arrears and not carried:
                return None
            return self._make(group, BienDong.GIAM, 0, arrears, carried, merged)
        amount, shown = line_amount(self.rules, _payable(benefits, month, repaid=False), month)
        change = _change(prev, amount, shown.category, shown.disability)
        return self._make(
            group, change, amount, arrears, carried, merged, shown.category, shown.disability
        )

    def _make(
        self,
        group: _Group,
        change: BienDong,
        amount: int,
        arrears: tuple[tuple[Month, int], ...],
        carried: tuple[tuple[Month, int], ...],
        merged: bool,
        category: str | None = None,
        disability: str | None = None,
    ) -> PaymentLine:
        terms = group.terms
        if category is None:
            category = terms.category
            disability = (
                terms.disability
                if "mucDoKhuyetTat" in self.rules.category(category).requires
                else None
            )
        benefits = group.benefits
        return PaymentLine(
            self.month,  # ky
            group.key,
            terms.full_name,
            category,
            disability,
            amount,  # month_amount
            arrears,
            sum(a for _, a in carried) if carried else 0,
            tuple(m for m, _ in carried) if carried else (),  # carried_from
            terms.payout,
            change,
            self._old_code(group) if merged else None,  # old_commune
            (benefits[0].dossier,) if len(benefits) == 1 else tuple(b.dossier for b in benefits),
        )

    def _old_code(self, group: _Group) -> str:
        """``maXaCu``: the code the registry gave, when it is one of the old codes merged into
        the list's commune; for a person the registry re-filed under the new code, the last
        old code of their own decisions (their old commune); else the code as given."""
        code = group.terms.commune
        unit = self._unit
        if unit is None or code in unit.merged_from:
            return code
        decisions = sorted(
            (d for b in group.benefits for d in b.decisions), key=lambda d: d.order_key
        )
        old = [d.commune for d in decisions if d.commune in unit.merged_from]
        return old[-1] if old else code

    def _prev(
        self, key: LineKey, benefits: Sequence[Benefit], start: Month, baseline_day: date
    ) -> _Prev | None:
        """The last line the payer had: from the gateway's lists, else the earlier system's."""
        line = self.sent.last_line(key, self.month)
        if line is not None:
            return _Prev(line.month_amount, line.category, line.disability, line.change)
        before = self._baseline(benefits, baseline_day)
        last = start - 1
        status = _status(before, last) if before else None
        if status is Status.ACTIVE:
            amount, shown = line_amount(self.rules, _payable(before, last, repaid=False), last)
            return _Prev(amount, shown.category or "", shown.disability, BienDong.KHONG_DOI)
        if status is None:
            return None
        ever_paid = any(
            s.status is Status.ACTIVE and s.start <= last for b in before for s in b.spans
        )
        if status is Status.SUSPENDED and ever_paid:
            return _Prev(0, "", None, BienDong.TAM_DUNG)
        if status is Status.STOPPED and ever_paid:
            return _Prev(0, "", None, BienDong.GIAM)
        return None

    def _baseline(self, benefits: Sequence[Benefit], day: date) -> list[Benefit]:
        return [b2 for b in benefits if (b2 := self.roster.benefit_as_of(b, day)) is not None]

    def _arrears(
        self, key: LineKey, benefits: Sequence[Benefit], start: Month, baseline_day: date
    ) -> tuple[tuple[Month, int], ...]:
        """Each earlier month's shortfall (entitled − already listed), never negative.

        Already listed = what the gateway's lists carried for the month (its own amount and
        arrears) plus, before the gateway's first month, what the earlier system paid from
        the decisions known when it built its last list.
        """
        late = [r for b in benefits for d, r in b.reaches if d.signed_on > baseline_day]
        late_before_start = bool(late) and min(late) < start
        if not late_before_start and start >= self.month:
            return ()  # nothing decided late, no month of the gateway's before this one
        firsts = [m for b in benefits if (m := b.first_month) is not None]
        if not firsts:
            return ()
        first = min(firsts)
        found: list[tuple[Month, int]] = []
        if late_before_start:
            before = self._baseline(benefits, baseline_day)
            for m in month_range(max(min(late), first), start - 1):
                listed = self.entitled(before, m) + self.sent.covered(key, m, self.month)
                found.append((m, self.entitled(benefits, m) - listed))
        for m in month_range(max(start, first), self.month - 1):
            found.append((m, self.entitled(benefits, m) - self.sent.covered(key, m, self.month)))
        return tuple((m, a) for m, a in found if a > 0)

    def _carried(self, key: LineKey) -> tuple[tuple[Month, int], ...]:
        """Unpaid line totals of earlier months not yet carried into a later list."""
        unpaid = self.paid.unpaid(key, self.month)
        if not unpaid:
            return ()
        already = {m for line in self.sent.lines(key, self.month) for m in line.carried_from}
        return tuple((o.ky, o.due) for o in unpaid if o.ky not in already)


def _change(
    prev: _Prev | None, amount: int, category: str | None, disability: str | None
) -> BienDong:
    if prev is None or prev.change is BienDong.GIAM:
        return BienDong.TANG
    if prev.change is BienDong.TAM_DUNG:
        return BienDong.TIEP_TUC
    if (prev.month_amount, prev.category, prev.disability) != (amount, category, disability):
        return BienDong.DIEU_CHINH
    return BienDong.KHONG_DOI
