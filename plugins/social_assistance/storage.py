"""Persistence of the plugin: settings, (de)serialisation of lists, and the sync read/write
functions over the ``sa_`` tables.

Writes are plain functions ``fn(conn, ...)`` run by ``PluginStore.write`` (:mod:`gateway.api`; one
transaction); reads are the same kind of functions run on the read engine with
:func:`read` (``AsyncConnection.run_sync``), so a write can reuse them inside its own
transaction.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, TypeVar, cast

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import and_, insert, select, update
from sqlalchemy.engine import Connection

from gateway.api import Config, ConfigError, audit_in
from gateway.api import PluginStore as Store
from gateway.model import canonical_json
from plugins.social_assistance._toml import RulesError
from plugins.social_assistance.admin_units import (
    DEFAULT_ADMIN_UNITS_PATH,
    AdminUnits,
    load_admin_units,
)
from plugins.social_assistance.decision import Decision
from plugins.social_assistance.history import LineOutcome, PaidHistory, SentHistory
from plugins.social_assistance.month import Month
from plugins.social_assistance.payment_list import BienDong, PaymentLine, PaymentList
from plugins.social_assistance.reconcile import reconcile
from plugins.social_assistance.roster import (
    Acceptance,
    DecisionKey,
    check_decision_amount,
    check_grant_start,
    decision_host,
)
from plugins.social_assistance.rules import DEFAULT_RULES_PATH, LineKind, Rules, load_rules
from plugins.social_assistance.tables import sa_decisions, sa_lists, sa_results

T = TypeVar("T")
SECTION = "social_assistance"
Figure = Literal["gateway", "registry"]


# -- settings -----------------------------------------------------------------------------------
class Settings(BaseModel):
    """``[social_assistance]`` of the gateway config; unknown keys are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rules: str = ""
    admin_units: str = ""
    payment_day: int = Field(default=24, ge=1, le=28)
    communes: list[str] = []


@dataclass(frozen=True)
class Domain:
    """What the plugin needs from the config: its settings and the two data files."""

    settings: Settings
    rules: Rules
    admin_units: AdminUnits


def load_settings(config: Config) -> Settings:
    try:
        return Settings.model_validate(config.plugin_section(SECTION))
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"])
        msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        raise ConfigError(config.path, f"{SECTION}.{key}", msg) from None


def load_domain(config: Config) -> Domain:
    """Settings plus rules and admin units (paths relative to the config file)."""
    settings = load_settings(config)
    rules_path = config.resolve_path(settings.rules) if settings.rules else DEFAULT_RULES_PATH
    units_path = (
        config.resolve_path(settings.admin_units)
        if settings.admin_units
        else DEFAULT_ADMIN_UNITS_PATH
    )
    try:
        rules, units = _load_files(
            str(rules_path), str(units_path), _stamp(rules_path), _stamp(units_path)
        )
    except RulesError as exc:
        raise ConfigError(config.path, SECTION, str(exc)) from None
    return Domain(settings, rules, units)


def _stamp(path: Path) -> tuple[int, int]:
    """When and how big a file is: an edited file is read again (a correction of a code in
    admin_units.toml counts from the next command, without a release)."""
    try:
        st = path.stat()
    except OSError:
        return (0, 0)  # the loader reports the missing file
    return (st.st_mtime_ns, st.st_size)


@lru_cache(maxsize=8)
def _load_files(
    rules_path: str, units_path: str, _rules_stamp: object, _units_stamp: object
) -> tuple[Rules, AdminUnits]:
    return load_rules(Path(rules_path)), load_admin_units(Path(units_path))


# -- serialisation --------------------------------------------------------------------------------
def dumps(value: Any) -> str:
    return canonical_json(value).decode()


def line_to_dict(line: PaymentLine) -> dict[str, Any]:
    return {
        "ky": str(line.ky),
        "key": list(line.key),
        "full_name": line.full_name,
        "category": line.category,
        "disability": line.disability,
        "month_amount": line.month_amount,
        "arrears": [[str(m), a] for m, a in line.arrears],
        "carried": line.carried,
        "carried_from": [str(m) for m in line.carried_from],
        "payout": line.payout,
        "change": str(line.change),
        "old_commune": line.old_commune,
        "dossiers": list(line.dossiers),
    }


def line_from_dict(d: Mapping[str, Any]) -> PaymentLine:
    return PaymentLine(
        ky=Month.parse(d["ky"]),
        key=(str(d["key"][0]), cast(LineKind, d["key"][1])),
        full_name=d["full_name"],
        category=d["category"],
        disability=d["disability"],
        month_amount=int(d["month_amount"]),
        arrears=tuple((Month.parse(m), int(a)) for m, a in d["arrears"]),
        carried=int(d["carried"]),
        carried_from=tuple(Month.parse(m) for m in d["carried_from"]),
        payout=d["payout"],
        change=BienDong(d["change"]),
        old_commune=d["old_commune"],
        dossiers=tuple(d["dossiers"]),
    )


def lines_hash(payment_list: PaymentList) -> str:
    """What a list says, apart from when it was built and its sending number."""
    body = [line_to_dict(line) for line in payment_list.lines]
    return hashlib.sha256(canonical_json(body)).hexdigest()


def list_from_row(row: Any) -> PaymentList:
    lines = [line_from_dict(d) for d in json.loads(row.lines)]
    return PaymentList(
        Month.parse(row.ky),
        row.ma_xa,
        int(row.lan_gui),
        datetime.fromisoformat(json.loads(row.payload)["lapLuc"]),
        tuple(lines),
        int(row.total_people),
        int(row.total_amount),
    )


# -- decisions ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class DecisionOutcome:
    state: str  # applied | held | conflict | duplicate
    detail: str
    row_id: int


def store_decision(
    conn: Connection, payload: Mapping[str, str], decision: Decision, rules: Rules, now: float
) -> DecisionOutcome:
    """Keep a decision: an identical re-send changes nothing; a different content under the
    same dossier, number and signing date is a conflict; an amount that differs from the
    rules is held with both figures."""
    d = sa_decisions.c
    digest = hashlib.sha256(canonical_json(dict(payload))).hexdigest()
    dossier_rows = conn.execute(
        select(d.id, d.so, d.ngay_ky, d.content_hash, d.state, d.payload, d.accepted_figure).where(
            d.ma_ho_so == decision.dossier
        )
    ).all()  # one query: duplicates, conflicts, a 5.4's host, held ones to look at again
    signed = decision.signed_on.isoformat()
    same = [r for r in dossier_rows if r.so == decision.number and r.ngay_ky == signed]
    for row in same:
        if row.content_hash == digest:
            return DecisionOutcome("duplicate", f"already known ({row.state})", int(row.id))
    values: dict[str, Any] = {
        "so": decision.number,
        "ma_ho_so": decision.dossier,
        "so_dinh_danh": decision.citizen_id,
        "ngay_ky": decision.signed_on.isoformat(),
        "content_hash": digest,
        "payload": dumps(dict(payload)),
        "received_at": now,
    }
    if same:
        values["state"] = "conflict"
        detail = "conflict: another content for the same dossier, number and signing date"
    else:
        per_child = rules.categories.get(decision.category or "")
        earlier = (
            _applied(dossier_rows, rules) if per_child is not None and per_child.per_child else []
        )
        hold = _hold(rules, decision, earlier)
        values.update(hold)
        detail = _hold_detail(hold)
    row_id = conn.execute(insert(sa_decisions).values(**values)).inserted_primary_key
    held = [r for r in dossier_rows if r.state == "held" and r.accepted_figure is None]
    if not same and held:
        _release_held(conn, held, decision.dossier, rules, now)
    return DecisionOutcome(str(values["state"]), detail, int(row_id[0]) if row_id else 0)


def _applied(rows: Iterable[Any], rules: Rules) -> list[Decision]:
    """The applied decisions among a dossier's rows (what a 5.4 decision's host is read from)."""
    return [
        Decision.from_payload(json.loads(r.payload), rules) for r in rows if r.state == "applied"
    ]


def _dossier_decisions(conn: Connection, dossier: str, rules: Rules) -> list[Decision]:
    """The applied decisions of one dossier, read again (after a new one was stored)."""
    d = sa_decisions.c
    rows = conn.execute(select(d.state, d.payload).where(d.ma_ho_so == dossier)).all()
    return _applied(rows, rules)


def _hold(rules: Rules, decision: Decision, earlier: list[Decision]) -> dict[str, Any]:
    """The state a new decision is kept in, with both figures / months when it is held: an
    amount that disagrees with the rules (5.4 on a host priced as the whole benefit), or a
    grant that starts before the rules allow (FORMATS.md §2.2)."""
    mismatch = check_decision_amount(rules, decision, decision_host(rules, earlier, decision))
    early = check_grant_start(rules, decision)
    out: dict[str, Any] = {"state": "held" if mismatch or early else "applied"}
    if mismatch is not None:
        out.update(registry_amount=mismatch.registry_amount, rules_amount=mismatch.computed_amount)
    if early is not None:
        out.update(registry_month=str(early.registry_month), rules_month=str(early.rules_month))
    return out


def _hold_detail(hold: Mapping[str, Any]) -> str:
    if hold["state"] == "applied":
        return "applied"
    parts = []
    if hold.get("registry_amount") is not None:
        parts.append(
            f"registry {hold['registry_amount']:,} VND vs rules {hold['rules_amount']:,} VND"
        )
    if hold.get("registry_month") is not None:
        parts.append(
            f"starts {hold['registry_month']}, before {hold['rules_month']} the rules allow"
        )
    return "held: " + "; ".join(parts)


def _release_held(
    conn: Connection, held: list[Any], dossier: str, rules: Rules, now: float
) -> None:
    """Held decisions of ``dossier`` (``held`` rows) that a newly known decision makes right
    (a 5.4 whose host arrived after it) are applied, each release audited."""
    d = sa_decisions.c
    earlier = _dossier_decisions(conn, dossier, rules)
    for row in held:
        decision = Decision.from_payload(json.loads(row.payload), rules)
        if _hold(rules, decision, earlier)["state"] != "applied":
            continue
        conn.execute(
            update(sa_decisions)
            .where(d.id == row.id)
            .values(state="applied", registry_amount=None, rules_amount=None)
        )
        audit_in(
            conn,
            [
                (
                    "system",
                    "sa_release_held",
                    f"{dossier} {row.so}",
                    f"ky={decision.from_month}; maXa={decision.commune}; 1 line; "
                    f"{decision.monthly_amount or 0:,} VND a month; the rules now agree",
                )
            ],
            now,
        )


class AcceptError(ValueError):
    """The decision cannot be accepted (unknown, not held, or already accepted)."""


def accept_decision(
    conn: Connection, row_id: int, figure: Figure, actor: str, now: float
) -> dict[str, Any]:
    """An operator accepts one figure of a held decision; audited in the same transaction."""
    d = sa_decisions.c
    row = conn.execute(select(sa_decisions).where(d.id == row_id)).first()
    if row is None:
        raise AcceptError(f"no decision with id {row_id}")
    if row.state != "held":
        raise AcceptError(f"decision {row.so} is {row.state}, not held")
    conn.execute(
        update(sa_decisions)
        .where(d.id == row_id)
        .values(state="applied", accepted_figure=figure, accepted_by=actor, accepted_at=now)
    )
    payload = json.loads(row.payload)
    figures = []
    if row.registry_amount is not None:
        figures.append(f"registry {row.registry_amount:,} VND, rules {row.rules_amount:,} VND")
    if row.registry_month is not None:
        figures.append(f"starts {row.registry_month} (registry), {row.rules_month} (rules)")
    audit_in(
        conn,
        [
            (
                actor,
                "sa_accept_figure",
                f"{row.ma_ho_so} {row.so}",
                f"figure={figure}; ky={payload.get('tuThang')}; maXa={payload.get('maXa')}; "
                f"1 line; {_vnd(payload.get('soTienThang'))} a month as decided; "
                f"{'; '.join(figures)}",
            )
        ],
        now,
    )
    return {"id": row_id, "so": row.so, "maHoSo": row.ma_ho_so, "figure": figure}


def _vnd(value: Any) -> str:
    """``1,750,000 VND`` (the decision's stated amount; "0 VND" when it states none)."""
    text = str(value or "0")
    return f"{int(text):,} VND" if text.isdigit() else f"{text} VND"


def decision_rows(conn: Connection, states: Iterable[str] | None = None) -> list[Any]:
    q = select(sa_decisions).order_by(sa_decisions.c.id)
    if states is not None:
        q = q.where(sa_decisions.c.state.in_(list(states)))
    return list(conn.execute(q).all())


def load_decisions(
    conn: Connection, rules: Rules
) -> tuple[list[Decision], dict[DecisionKey, Acceptance]]:
    """Decisions the roster is built from: applied (incl. operator-accepted) and conflicting
    ones (the roster holds conflicts itself); held ones wait for an operator."""
    decisions: list[Decision] = []
    accepted: dict[DecisionKey, Acceptance] = {}
    for row in decision_rows(conn, ("applied", "conflict")):
        decision = Decision.from_payload(json.loads(row.payload), rules)
        decisions.append(decision)
        if row.accepted_figure:
            accepted[decision.key] = cast(Acceptance, row.accepted_figure)
    return decisions, accepted


# -- lists and results ---------------------------------------------------------------------
def list_rows(conn: Connection, ky: str | None = None, commune: str | None = None) -> list[Any]:
    q = select(sa_lists).order_by(sa_lists.c.id)
    if ky is not None:
        q = q.where(sa_lists.c.ky == ky)
    if commune is not None:
        q = q.where(sa_lists.c.ma_xa == commune)
    return list(conn.execute(q).all())


def latest_rows(rows: Iterable[Any]) -> dict[tuple[str, str], Any]:
    """The latest sending (highest lan_gui) per (ky, commune)."""
    out: dict[tuple[str, str], Any] = {}
    for row in rows:
        key = (row.ky, row.ma_xa)
        if key not in out or row.lan_gui > out[key].lan_gui:
            out[key] = row
    return out


def sent_history(conn: Connection) -> SentHistory:
    return SentHistory(list_from_row(r) for r in sorted(list_rows(conn), key=lambda r: r.lan_gui))


def result_payloads(
    conn: Connection, ky: str | None = None, commune: str | None = None
) -> list[dict[str, Any]]:
    r = sa_results.c
    q = select(r.payload).order_by(r.id)
    if ky is not None:
        q = q.where(r.ky == ky)
    if commune is not None:
        q = q.where(r.ma_xa == commune)
    return [json.loads(p) for p in conn.execute(q).scalars()]


def outcomes_by_list(
    conn: Connection, rules: Rules, commune: str | None = None
) -> dict[tuple[str, str], list[LineOutcome]]:
    """Reconciled outcomes of every latest list that has results."""
    results: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for p in result_payloads(conn, commune=commune):
        results.setdefault((str(p["ky"]), str(p["maXa"])), []).append(p)
    out: dict[tuple[str, str], list[LineOutcome]] = {}
    for key, row in latest_rows(list_rows(conn, commune=commune)).items():
        if key in results:
            out[key] = list(reconcile(rules, list_from_row(row), results[key]).outcomes)
    return out


def paid_history(conn: Connection, rules: Rules, commune: str | None = None) -> PaidHistory:
    history = PaidHistory()
    for outcomes in outcomes_by_list(conn, rules, commune).values():
        history.record_all(outcomes)
    return history


def person_paid_history(conn: Connection, rules: Rules, citizen_id: str) -> PaidHistory:
    """One person's reconciled outcomes over their whole history, under every commune code
    their lists had (old codes before the 2025 merger, new ones after): a run of unpaid
    months is the person's, not a commune's."""
    r = sa_results.c
    mine: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for text in conn.execute(
        select(r.payload).where(r.so_dinh_danh == citizen_id).order_by(r.id)
    ).scalars():
        p = json.loads(text)
        mine.setdefault((str(p["ky"]), str(p["maXa"])), []).append(p)
    history = PaidHistory()
    for (ky, code), results in mine.items():
        latest = latest_rows(list_rows(conn, ky=ky, commune=code)).get((ky, code))
        if latest is not None:
            history.record_all(reconcile(rules, list_from_row(latest), results).outcomes)
    return history


def store_result(conn: Connection, payload: Mapping[str, Any], now: float) -> bool:
    """Keep one result line; False when that line's result is already known."""
    r = sa_results.c
    key = (
        str(payload["ky"]),
        str(payload["maXa"]),
        str(payload["soDinhDanh"]),
        str(payload.get("loaiDoiTuong") or ""),
    )
    exists = conn.execute(
        select(r.id).where(
            and_(r.ky == key[0], r.ma_xa == key[1], r.so_dinh_danh == key[2])
            & (r.loai_doi_tuong == key[3])
        )
    ).first()
    if exists is not None:
        return False
    conn.execute(
        insert(sa_results).values(
            ky=key[0],
            ma_xa=key[1],
            so_dinh_danh=key[2],
            loai_doi_tuong=key[3],
            payload=dumps(dict(payload)),
            received_at=now,
        )
    )
    return True


async def read(store: Store, fn: Callable[..., T], *args: Any) -> T:
    """Run a sync read function on the store's read engine."""
    return await store.read(fn, *args)


def epoch(value: datetime) -> float:
    return value.timestamp()


def today_vn(now: float | None = None) -> date:
    from gateway.model import VN_TZ

    return datetime.fromtimestamp(time.time() if now is None else now, VN_TZ).date()
