"""The social-assistance office as an internal destination system.

``[systems.social_assistance] plugin = "social_assistance"`` (no ``base_url``). The core
delivers ``decision.issued`` and ``payment.results`` messages to it like to any system;
:meth:`SocialAssistanceConnector.render` makes a ``LOCAL`` request and
:meth:`SocialAssistanceConnector.send` applies it to the plugin's own tables (no HTTP):

* ``decision.issued`` — the decision is kept (an identical re-send is a no-op); its amount is
  checked against the rules: applied, or held with both figures for an operator;
* ``payment.results`` — the result line is kept (one per ky, commune, person, category),
  what is known is reconciled, and a person unpaid for three months in a row becomes a
  ``payment.suspension_candidates`` follow-up (routed to the registry).
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

import aiohttp

from gateway.api import PluginStore as Store
from gateway.api import get_logger, mask_text, pseudonym
from gateway.connector import Connector, both
from gateway.model import Message, OutboundRequest, PermanentError, Receipt
from plugins.social_assistance.admin_units import AdminUnitError, AdminUnits
from plugins.social_assistance.decision import Decision, DecisionError
from plugins.social_assistance.month import Month
from plugins.social_assistance.reconcile import (
    ResultError,
    ResultLine,
    reconcile,
    suspension_candidates,
)
from plugins.social_assistance.storage import (
    Domain,
    latest_rows,
    list_from_row,
    list_rows,
    person_paid_history,
    result_payloads,
    store_decision,
    store_result,
)

log = get_logger("plugins.social_assistance")

EVENT_DECISION = "decision.issued"
EVENT_RESULTS = "payment.results"
EVENT_LIST = "payment.list"
EVENT_CANDIDATES = "payment.suspension_candidates"
LOCAL_URL = "local:social_assistance"


class SocialAssistanceConnector(Connector):
    """Applies decisions and payment results to the plugin's tables (see the module doc)."""

    #: the monthly lists (service.send_month) and the suspension candidates (reconciliation)
    emits: ClassVar[tuple[str, ...] | None] = (EVENT_LIST, EVENT_CANDIDATES)
    store: Store | None = None
    domain: Domain | None = None

    def attach(self, store: Store, domain: Domain) -> None:
        """Called at start-up (``gateway_startup``): where to keep things, and the rules."""
        self.store = store
        self.domain = domain

    async def render(self, message: Message) -> OutboundRequest:
        if message.event not in (EVENT_DECISION, EVENT_RESULTS):
            raise PermanentError(both("err_sa_event", event=repr(message.event)))
        if not isinstance(message.payload, dict):
            raise PermanentError(both("err_payload_object"))
        return OutboundRequest(
            method="LOCAL",
            url=LOCAL_URL,
            body=message.canonical_payload(),
            context={"event": message.event, "payload": message.payload, "ref": message.ref},
        )

    async def send(self, session: aiohttp.ClientSession, request: OutboundRequest) -> Receipt:
        return await self.apply(request.context["event"], request.context["payload"])

    async def apply(self, event: str, payload: dict[str, Any]) -> Receipt:
        """Apply one message's payload (also used by tests and imports without the engine)."""
        store, domain = self._attached()
        if event == EVENT_DECISION:
            return await self._decision(store, domain, payload)
        return await self._result(store, domain, payload)

    def _attached(self) -> tuple[Store, Domain]:
        if self.store is None or self.domain is None:
            raise RuntimeError("social_assistance connector is not attached to the store")
        return self.store, self.domain

    async def _decision(self, store: Store, domain: Domain, payload: dict[str, Any]) -> Receipt:
        rules = domain.rules
        attrs = {str(k): str(v) for k, v in payload.items()}
        try:
            decision = Decision.from_payload(attrs, rules)
        except DecisionError as exc:
            raise PermanentError(mask_text(both("err_sa_decision", str(exc)))) from None
        outcome = await store.write(store_decision, attrs, decision, rules, time.time())
        if outcome.state == "held":
            log.warning("sa_decision_held", so=decision.number, detail=outcome.detail)
        return Receipt(status=200, detail=outcome.detail)

    async def _result(self, store: Store, domain: Domain, payload: dict[str, Any]) -> Receipt:
        try:
            line = ResultLine.from_payload(payload)
        except ResultError as exc:
            raise PermanentError(mask_text(both("err_sa_result", str(exc)))) from None
        rules, units = domain.rules, domain.admin_units
        return await store.write(_apply_result, payload, line, rules, units, time.time())


def _apply_result(
    conn: Any,
    payload: dict[str, Any],
    line: ResultLine,
    rules: Any,
    units: AdminUnits,
    now: float,
) -> Receipt:
    if not store_result(conn, payload, now):
        return Receipt(status=200, detail=both("ans_sa_duplicate"))
    ky, commune = str(line.ky), line.commune
    latest = latest_rows(list_rows(conn, ky=ky, commune=commune)).get((ky, commune))
    if latest is None:
        return Receipt(status=200, detail=both("ans_sa_no_list", commune=commune, ky=ky))
    sent = list_from_row(latest)
    rec = reconcile(rules, sent, result_payloads(conn, ky=ky, commune=commune))
    key = line.line_key(rules)
    if any(f.key == key for f in rec.amount_flags):
        detail = both("ans_sa_amount_differs")
    elif any(r.citizen_id == line.citizen_id for r in rec.unknown):
        detail = both("ans_sa_not_on_list")
    else:
        detail = both("ans_sa_paid" if line.paid else "ans_sa_unpaid")
    follow_ups: list[Message] = []
    if not line.paid:
        # the run is the person's whole history, under old and new codes (2025 merger)
        history = person_paid_history(conn, rules, line.citizen_id)
        for cand in suspension_candidates(rules, history, Month.parse(ky)):
            people = [p for p in cand["doiTuong"] if p["soDinhDanh"] == line.citizen_id]
            if people:
                code = _current_code(units, str(cand["maXa"]), Month.parse(ky))
                follow_ups.append(
                    Message(
                        event=EVENT_CANDIDATES,
                        external_id=f"{ky}:{code}:{pseudonym(line.citizen_id)}",
                        payload={"ky": ky, "maXa": code, "doiTuong": people},
                        dossier_key=f"{code}:{pseudonym(line.citizen_id)}",
                        ref=f"{ky}:{code}",
                    )
                )
                detail += "; suspension candidate (3 unpaid months)"
    return Receipt(status=200, detail=detail, follow_ups=follow_ups)


def _current_code(units: AdminUnits, code: str, month: Month) -> str:
    """The commune a proposal names: the one whose list holds ``code`` in ``month`` (the new
    commune from 2025-07); the code as it is when the file cannot place it."""
    try:
        return units.list_commune(code, month).code or code
    except AdminUnitError:
        return code
