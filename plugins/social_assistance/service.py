"""Building and sending the monthly payment lists, and the monthly report.

:func:`send_month` loads what the office knows (applied and operator-accepted decisions, the
lists sent, the reconciled results), builds each commune's list for month M, checks it, and —
one transaction per commune — records it in ``sa_lists`` *and* ingests it into the gateway as
a ``payment.list`` message routed by the config (list recorded ⇔ delivery queued). A running
gateway picks the new deliveries up on its next sweep.

Sending a month again sends nothing new when the list is the same; ``resend`` sends the
next ``lanGui``, which replaces the earlier list at the payer.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from gateway.api import (
    Config,
    MessageRejected,
    Plugins,
    PreparedMessage,
    audit_in,
    delivery_statuses,
    emit_in,
    first_payloads,
    get_logger,
    mask_text,
    prepare_message,
)
from gateway.api import PluginStore as Store
from gateway.model import VN_TZ, Message, now_vn
from plugins.social_assistance.history import LineOutcome
from plugins.social_assistance.month import Month
from plugins.social_assistance.payment_list import (
    ListRefused,
    PaymentList,
    PaymentListError,
    iter_payment_lists,
)
from plugins.social_assistance.reconcile import suspension_candidates
from plugins.social_assistance.report import (
    MonthlyReport,
    days_to_decision,
    days_to_first_payment,
    is_overdue,
    monthly_report,
    needs_age_decision,
)
from plugins.social_assistance.roster import build_roster
from plugins.social_assistance.storage import (
    Domain,
    decision_rows,
    dumps,
    latest_rows,
    line_to_dict,
    lines_hash,
    list_from_row,
    list_rows,
    load_decisions,
    outcomes_by_list,
    paid_history,
    read,
    result_payloads,
    sent_history,
)
from plugins.social_assistance.tables import sa_alerts, sa_lists, sa_send_runs

log = get_logger("plugins.social_assistance.service")
SOURCE = "social_assistance"
EVENT_LIST = "payment.list"


FAILED = ("refused", "failed")
"""Statuses that leave people unpaid: a non-zero exit, an alert, a log line."""


@dataclass(slots=True)
class CommuneResult:
    """What happened to one commune's list: sent, unchanged, changed (not sent), empty (no
    one to pay), dry-run, refused (cannot be built) or failed (could not be recorded)."""

    commune: str
    people: int = 0
    total: int = 0
    lan_gui: int = 0
    status: str = ""
    reason: str = ""
    name: str = ""
    hint: str = ""

    @property
    def unpaid(self) -> bool:
        """Whether this commune's people are left unpaid by this run."""
        return self.status in FAILED

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def problem_line(self, month: Month) -> str:
        """One line for the operator: commune, people and money unpaid, why, what to do."""
        name = f" {self.name}" if self.name else ""
        return (
            f"KHÔNG CHI TRẢ / UNPAID {month}: xã {self.commune}{name} — {self.people} người, "
            f"{self.total:,} VND chưa được chi trả ({self.people} people, {self.total:,} VND "
            f"left unpaid): {self.reason} — cách xử lý / what to do: {self.hint}"
        )


def _hint(status: str, reason: str, month: Month) -> str:
    again = f"`gateway payments send --month {month}`"
    if "not confirmed" in reason:
        return (
            "điền mã xã mới đã công bố vào config/admin_units.toml rồi chạy lại "
            f"{again} (fill in the new commune's published code in admin_units.toml, "
            "then send again)"
        )
    if "unknown commune code" in reason:
        return (
            "thêm xã này (mã, tên, ngày hiệu lực) vào config/admin_units.toml hoặc sửa maXa "
            f"của quyết định, rồi chạy lại {again} (add the commune with its dates to "
            "admin_units.toml, or have the registry correct maXa, then send again)"
        )
    if status == "failed":
        return (
            f"danh sách chưa được ghi: kiểm tra cơ sở dữ liệu rồi chạy lại {again} "
            "(the list could not be recorded: check the database, then send again)"
        )
    return (
        f"danh sách bị từ chối nên không gửi: báo quản trị viên, sửa rồi chạy lại {again} "
        "(the list was refused — it does not add up, or a check refused it — and was not "
        "sent: report it, fix it, then send again)"
    )


@dataclass(slots=True)
class Snapshot:
    """What the office knows at one moment, read in one read transaction."""

    decisions: list[Any] = field(default_factory=list)
    accepted: dict[Any, Any] = field(default_factory=dict)
    sent: Any = None
    paid: Any = None
    month_rows: dict[tuple[str, str], Any] = field(default_factory=dict)


def _snapshot(conn: Connection, domain: Domain, ky: str) -> Snapshot:
    decisions, accepted = load_decisions(conn, domain.rules)
    return Snapshot(
        decisions,
        accepted,
        sent_history(conn),
        paid_history(conn, domain.rules),
        latest_rows(list_rows(conn, ky=ky)),
    )


def build_lists(
    domain: Domain, snap: Snapshot, month: Month, now: datetime
) -> list[PaymentList | ListRefused]:
    roster = build_roster(domain.rules, snap.decisions, snap.accepted)
    return list(
        iter_payment_lists(
            domain.rules,
            domain.admin_units,
            [roster],
            month,
            paid_history=snap.paid,
            sent_history=snap.sent,
            now=now,
        )
    )


def list_message(payment_list: PaymentList) -> Message:
    """The ``payment.list`` message of one commune's list."""
    payload = payment_list.to_payload()
    ky, code, lan = payload["ky"], payload["maXa"], payload["lanGui"]
    return Message(
        event=EVENT_LIST,
        external_id=f"{ky}:{code}:{lan}",
        payload=payload,
        dossier_key=f"{ky}:{code}",
        source=SOURCE,
        ref=f"{ky}:{code}",
    )


def _record_and_queue(
    conn: Connection, payment_list: PaymentList, prepared: PreparedMessage, now: float
) -> str:
    """One transaction: the sa_lists row and the payment.list message with its deliveries
    (through the gateway's one intake: same dedupe and per-dossier ordering locks)."""
    payload = payment_list.to_payload()
    ky, code, lan = payload["ky"], payload["maXa"], payload["lanGui"]
    result = emit_in(conn, prepared, now)
    conn.execute(
        sa_lists.insert().values(
            ky=ky,
            ma_xa=code,
            lan_gui=lan,
            payload=dumps(payload),
            lines=dumps([line_to_dict(line) for line in payment_list.lines]),
            content_hash=lines_hash(payment_list),
            total_people=payment_list.total_people,
            total_amount=payment_list.total_amount,
            built_at=payment_list.built_at.timestamp(),
            message_uid=result.uid,
        )
    )
    return result.uid


async def send_month(
    store: Store,
    config: Config,
    plugins: Plugins,
    domain: Domain,
    month: Month,
    *,
    communes: Iterable[str] | None = None,
    dry_run: bool = False,
    resend: bool = False,
    now: datetime | None = None,
    progress: Callable[[CommuneResult], None] | None = None,
    actor: str = "cli",
) -> list[CommuneResult]:
    """Build, check and send month ``month``'s lists (see the module doc).

    ``communes`` (else the configured ``[social_assistance] communes``; empty: every commune
    in the roster) may hold old or new codes: :meth:`AdminUnits.select_lists` says which
    lists they select for the month. Every selected commune gets a result; a commune whose
    list cannot be built or recorded is ``refused`` / ``failed`` with the people and VND it
    leaves unpaid. Unless ``dry_run``, the run is audited (``sa_payments_send``) and the open
    alerts of the month are updated in the same transaction: a failed commune opens (or
    keeps) one, a commune of the run's scope that is no longer failing resolves it.
    """
    now = now or now_vn()
    ky = str(month)
    snap = await read(store, _snapshot, domain, ky)
    units = domain.admin_units
    configured = list(communes or domain.settings.communes or ())
    selected: dict[str, Any] | None = None
    registry_codes: set[str] = set()
    problems: list[Any] = []
    if configured:
        selected, problems = units.select_lists(configured, month)
        registry_codes = set(configured)
        for code in [*configured, *selected]:
            registry_codes.update(units.old_codes_of(code))
    out: dict[str, CommuneResult] = {}

    def done(res: CommuneResult) -> None:
        if res.unpaid and not res.hint:
            res.hint = _hint(res.status, res.reason, month)
        out[res.commune] = res
        if progress is not None:
            progress(res)

    # a configured code the file does not know any more (its commune taken out) cannot say
    # which old codes it held: every refusal for a code the file does not know is reported
    lost = any("unknown commune code" in problem.reason for problem in problems)
    for built in build_lists(domain, snap, month, now):
        if isinstance(built, ListRefused):
            unknown = lost and "unknown commune code" in built.reason
            if (
                selected is not None
                and built.registry_commune not in registry_codes
                and not unknown
            ):
                continue
            done(
                CommuneResult(
                    built.registry_commune,
                    built.lines,
                    built.amount,
                    0,
                    "refused",
                    built.reason,
                    built.name,
                )
            )
            continue
        if selected is not None and built.commune not in selected:
            continue
        res = _decide(built, snap.month_rows.get((ky, built.commune)), resend)
        res.name = units.name_of(built.commune)
        if res.status == "sent" and not dry_run:
            try:
                prepared = await prepare_message(config, plugins, SOURCE, list_message(built))
                await store.write(_record_and_queue, built, prepared, time.time())
            except PaymentListError as exc:
                res.status, res.reason = "refused", str(exc)
            except MessageRejected as exc:
                res.status, res.reason = "refused", "; ".join(exc.errors)
            except Exception as exc:  # any failure is reported, never skipped
                res.status = "failed"
                res.reason = mask_text(f"{type(exc).__name__}: {exc}").replace("\n", " ")
        elif res.status == "sent":
            res.status = "dry-run"
        done(res)
    for problem in problems:
        if problem.code not in out:
            done(CommuneResult(problem.code, 0, 0, 0, "refused", problem.reason, problem.name))
    for code, unit in (selected or {}).items():
        if code not in out:
            done(CommuneResult(code, 0, 0, 0, "empty", "no one to pay", unit.name))
    results = list(out.values())
    for res in results:
        if res.unpaid:
            log.warning(
                "sa_list_not_sent",
                ky=ky,
                commune=res.commune,
                name=res.name,
                people=res.people,
                unpaid_vnd=res.total,
                status=res.status,
                reason=res.reason,
                hint=res.hint,
                dry_run=dry_run,
            )
    if not dry_run:
        scope = None if not configured or communes is None else registry_codes | set(selected or ())
        await store.write(_after_run, ky, results, scope, actor, now.timestamp())
    return results


def _after_run(
    conn: Connection,
    ky: str,
    results: list[CommuneResult],
    scope: set[str] | None,
    actor: str,
    now: float,
) -> None:
    """One transaction: the open alerts of month ``ky`` brought up to date, and the audit."""
    a = sa_alerts.c
    open_rows = {
        r.ma_xa: r
        for r in conn.execute(select(sa_alerts).where(a.ky == ky, a.resolved_at.is_(None))).all()
    }
    failing = {r.commune: r for r in results if r.unpaid}
    for code, res in failing.items():
        values = {
            "name": res.name,
            "people": res.people,
            "amount": res.total,
            "reason": res.reason,
            "hint": res.hint,
            "last_attempt_at": now,
        }
        row = open_rows.get(code)
        if row is None:
            conn.execute(
                insert(sa_alerts).values(ky=ky, ma_xa=code, opened_at=now, attempts=1, **values)
            )
        else:
            conn.execute(
                update(sa_alerts)
                .where(a.id == row.id)
                .values(attempts=int(row.attempts) + 1, **values)
            )
    touched = {r.commune for r in results}
    for code, row in open_rows.items():
        if code in failing:
            continue
        if scope is None or code in scope or code in touched:
            conn.execute(
                update(sa_alerts).where(a.id == row.id).values(resolved_at=now, resolved_by=actor)
            )
    conn.execute(
        insert(sa_send_runs).values(
            ky=ky, at=now, actor=actor, whole_scope=int(scope is None), unpaid=len(failing)
        )
    )
    audit_in(conn, [(actor, AUDIT_SEND, f"ky={ky}", _audit_detail(results, scope))], now)


AUDIT_SEND = "sa_payments_send"


def _audit_detail(results: list[CommuneResult], scope: set[str] | None) -> str:
    """Which communes, how many lines and how much money, by what happened to them."""
    parts = ["scope=all" if scope is None else "scope=" + ",".join(sorted(scope))]
    for status in ("sent", "unchanged", "changed", "empty", "refused", "failed"):
        found = [r for r in results if r.status == status]
        if found:
            codes = ",".join(r.commune for r in found)
            lines = sum(r.people for r in found)
            vnd = sum(r.total for r in found)
            parts.append(f"{status}={codes} ({len(found)} lists, {lines} lines, {vnd:,} VND)")
    return "; ".join(parts)


def _decide(built: PaymentList, earlier: Any, resend: bool) -> CommuneResult:
    res = CommuneResult(built.commune, built.total_people, built.total_amount, built.lan_gui)
    try:
        built.check()
    except PaymentListError as exc:
        res.status, res.reason = "refused", str(exc)
        return res
    if earlier is None or resend:
        res.status = "sent"
    elif earlier.content_hash == lines_hash(built):
        res.status, res.lan_gui = "unchanged", int(earlier.lan_gui)
        res.reason = "nothing new"
    else:
        res.status, res.lan_gui = "changed", int(earlier.lan_gui)
        res.reason = "differs from the list sent: send again with --resend"
    return res


async def month_built(store: Store, month: Month) -> bool:
    rows = await read(store, list_rows, str(month))
    return bool(rows)


def _open_alerts(conn: Connection, ky: str | None = None) -> list[dict[str, Any]]:
    a = sa_alerts.c
    q = select(sa_alerts).where(a.resolved_at.is_(None)).order_by(a.ky, a.ma_xa)
    if ky is not None:
        q = q.where(a.ky == ky)
    return [dict(r._mapping) for r in conn.execute(q).all()]


async def open_alerts(store: Store, month: Month | None = None) -> list[dict[str, Any]]:
    """Communes whose list of a month is still not built or sent (oldest month first)."""
    return await read(store, _open_alerts, None if month is None else str(month))


@dataclass(frozen=True, slots=True)
class MonthState:
    """Where month M's sending stands for the payment-day job."""

    complete: bool  # a whole-scope send ran and no commune of the month is still failing
    tried_since: bool  # a send of the month ran at or after the given moment
    open: tuple[dict[str, Any], ...]


def _month_state(conn: Connection, ky: str, since: float) -> MonthState:
    r = sa_send_runs.c
    runs = conn.execute(select(r.at, r.whole_scope).where(r.ky == ky)).all()
    opened = tuple(_open_alerts(conn, ky))
    whole = any(run.whole_scope for run in runs)
    return MonthState(whole and not opened, any(run.at >= since for run in runs), opened)


async def month_state(store: Store, month: Month, since: float) -> MonthState:
    return await read(store, _month_state, str(month), since)


# -- the monthly report -----------------------------------------------------------------------
def _report_data(conn: Connection, domain: Domain, ky: str) -> dict[str, Any]:
    rows = latest_rows(list_rows(conn, ky=ky))
    lists = [list_from_row(r) for r in rows.values()]
    outcomes: list[LineOutcome] = []
    for (k, _), found in outcomes_by_list(conn, domain.rules).items():
        if k == ky:
            outcomes.extend(found)
    history = paid_history(conn, domain.rules)
    candidates = suspension_candidates(domain.rules, history, Month.parse(ky))
    decisions, accepted = load_decisions(conn, domain.rules)
    return {
        "lists": lists,
        "rows": rows,
        "outcomes": outcomes,
        "candidates": candidates,
        "decisions": decisions,
        "accepted": accepted,
        "timeliness": _timeliness(conn, domain, lists),
    }


def _received_dossiers(conn: Connection, keys: set[str]) -> dict[str, dict[str, Any]]:
    """The one-stop-shop's dossier.received payloads by MaHoSo (first revision)."""
    return first_payloads(conn, "dossier.received", keys)


def _vn_datetime(text: str) -> datetime | None:
    try:
        return datetime.strptime(text, "%Y%m%d%H%M%S").replace(tzinfo=VN_TZ)
    except (TypeError, ValueError):
        return None


def _timeliness(conn: Connection, domain: Domain, lists: list[PaymentList]) -> dict[str, Any]:
    """Per dossier: days from reception to decision and to first payment; overdue dossiers;
    arrears paid because of lateness."""
    grants = [r for r in decision_rows(conn) if json.loads(r.payload).get("loai") == "huong"]
    received = _received_dossiers(conn, {r.ma_ho_so for r in grants})
    first_paid: dict[str, date] = {}
    for p in result_payloads(conn):
        if p.get("trangThai") == "da_chi" and p.get("ngayChi"):
            day = date.fromisoformat(str(p["ngayChi"]))
            cid = str(p["soDinhDanh"])
            if cid not in first_paid or day < first_paid[cid]:
                first_paid[cid] = day
    arrears_months = arrears_vnd = 0
    for pl in lists:
        for line in pl.lines:
            if line.change == "tang" and line.arrears:
                arrears_months += len(line.arrears)
                arrears_vnd += line.arrears_amount
    now = now_vn()
    rows: list[dict[str, Any]] = []
    overdue = 0
    for r in grants:
        dossier = received.get(r.ma_ho_so)
        if dossier is None:
            continue
        got = _vn_datetime(str(dossier.get("NgayTiepNhan", "")))
        due = _vn_datetime(str(dossier.get("NgayHenTra", "")))
        if got is None:
            continue
        signed = date.fromisoformat(r.ngay_ky)
        decided_at = datetime.combine(signed, datetime.min.time(), VN_TZ)
        late = due is not None and is_overdue(due, decided_at=decided_at, now=now)
        overdue += late
        paid_on = first_paid.get(r.so_dinh_danh)
        rows.append(
            {
                "maHoSo": r.ma_ho_so,
                "days_to_decision": days_to_decision(got, signed),
                "days_to_first_payment": (days_to_first_payment(got, paid_on) if paid_on else None),
                "overdue": late,
            }
        )
    return {
        "dossiers": rows,
        "overdue": overdue,
        "arrears_from_lateness_months": arrears_months,
        "arrears_from_lateness_vnd": arrears_vnd,
    }


def report_to_dict(report: MonthlyReport | None, data: Mapping[str, Any]) -> dict[str, Any]:
    if report is None:
        return {"lists": 0, "timeliness": data["timeliness"]}
    return {
        "ky": str(report.ky),
        "lists": len(data["lists"]),
        "beneficiaries": report.beneficiaries,
        "total_amount": report.total_amount,
        "month_amount": report.month_amount,
        "by_category": {k: asdict(v) for k, v in report.by_category.items()},
        "by_group": {k: asdict(v) for k, v in report.by_group.items()},
        "by_commune": {k: asdict(v) for k, v in report.by_commune.items()},
        "changes": {str(k): v for k, v in report.changes.items()},
        "increases": report.increases,
        "decreases": report.decreases,
        "arrears_amount": report.arrears_amount,
        "arrears_lines": report.arrears_lines,
        "carried_amount": report.carried_amount,
        "carried_lines": report.carried_lines,
        "suspension_candidates": report.suspension_candidates,
        "paid_amount": report.paid_amount,
        "unpaid_amount": report.unpaid_amount,
        "unpaid_lines": report.unpaid_lines,
        "needs_age_decision": len(report.needs_age_decision),
        "timeliness": data["timeliness"],
    }


async def monthly(store: Store, domain: Domain, month: Month) -> dict[str, Any]:
    """The monthly report as a JSON-ready dict (no names, no CCCDs)."""
    data = await read(store, _report_data, domain, str(month))
    if not data["lists"]:
        return report_to_dict(None, data)
    roster = build_roster(domain.rules, data["decisions"], data["accepted"])
    report = monthly_report(
        domain.rules,
        data["lists"],
        outcomes=data["outcomes"],
        candidates=data["candidates"],
        needs_age_decision=needs_age_decision(domain.rules, roster, month),
    )
    return report_to_dict(report, data)


# -- the payments overview (dashboard and API) ---------------------------------------------------
def _overview(conn: Connection, domain: Domain, ky: str) -> list[dict[str, Any]]:
    rows = latest_rows(list_rows(conn, ky=ky))
    outcomes = outcomes_by_list(conn, domain.rules)
    status_by_uid = delivery_statuses(conn, [r.message_uid for r in rows.values()])
    out = []
    for (k, code), row in sorted(rows.items()):
        found = outcomes.get((k, code), [])
        out.append(
            {
                "ky": k,
                "maXa": code,
                "lanGui": int(row.lan_gui),
                "people": int(row.total_people),
                "total": int(row.total_amount),
                "delivery": status_by_uid.get(row.message_uid, "not routed"),
                "paid": sum(1 for o in found if o.paid),
                "unpaid": sum(1 for o in found if not o.paid),
                "flagged": sum(1 for o in found if o.mismatch),
            }
        )
    return out


async def overview(store: Store, domain: Domain, month: Month) -> list[dict[str, Any]]:
    return await read(store, _overview, domain, str(month))


def _held(conn: Connection) -> list[dict[str, Any]]:
    out = []
    for r in decision_rows(conn, ("held", "conflict")):
        out.append(
            {
                "id": int(r.id),
                "so": r.so,
                "maHoSo": r.ma_ho_so,
                "ngayKy": r.ngay_ky,
                "state": r.state,
                "registry_amount": r.registry_amount,
                "rules_amount": r.rules_amount,
                "registry_month": r.registry_month,
                "rules_month": r.rules_month,
            }
        )
    return out


async def held(store: Store) -> list[dict[str, Any]]:
    return await read(store, _held)


async def candidates(store: Store, domain: Domain, month: Month) -> list[dict[str, Any]]:
    def fn(conn: Connection) -> list[dict[str, Any]]:
        return suspension_candidates(domain.rules, paid_history(conn, domain.rules), month)

    return await read(store, fn)


async def list_totals(store: Store) -> dict[str, int]:
    """Total VND of the latest lists per month (for the metric)."""

    def fn(conn: Connection) -> dict[str, int]:
        totals: dict[str, int] = {}
        for (k, _), row in latest_rows(list_rows(conn)).items():
            totals[k] = totals.get(k, 0) + int(row.total_amount)
        return totals

    return await read(store, fn)
