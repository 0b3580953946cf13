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

from sqlalchemy.engine import Connection

from gateway.api import (
    Config,
    MessageRejected,
    Plugins,
    PreparedMessage,
    delivery_statuses,
    emit_in,
    first_payloads,
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
from plugins.social_assistance.tables import sa_lists

SOURCE = "social_assistance"
EVENT_LIST = "payment.list"


@dataclass(slots=True)
class CommuneResult:
    """What happened to one commune's list: sent, unchanged, changed (not sent), refused."""

    commune: str
    people: int = 0
    total: int = 0
    lan_gui: int = 0
    status: str = ""
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


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
) -> list[CommuneResult]:
    """Build, check and send month ``month``'s lists (see the module doc)."""
    now = now or now_vn()
    ky = str(month)
    snap = await read(store, _snapshot, domain, ky)
    wanted = set(communes or domain.settings.communes or ())
    out: list[CommuneResult] = []
    for built in build_lists(domain, snap, month, now):
        if isinstance(built, ListRefused):
            if wanted and built.registry_commune not in wanted:
                continue
            res = CommuneResult(built.registry_commune, built.lines, 0, 0, "refused", built.reason)
        else:
            if wanted and built.commune not in wanted:
                continue
            res = _decide(built, snap.month_rows.get((ky, built.commune)), resend)
            if res.status == "sent" and not dry_run:
                try:
                    prepared = await prepare_message(config, plugins, SOURCE, list_message(built))
                    await store.write(_record_and_queue, built, prepared, time.time())
                except PaymentListError as exc:
                    res.status, res.reason = "refused", str(exc)
                except MessageRejected as exc:
                    res.status, res.reason = "refused", "; ".join(exc.errors)
            elif res.status == "sent":
                res.status = "dry-run"
        out.append(res)
        if progress is not None:
            progress(res)
    return out


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
