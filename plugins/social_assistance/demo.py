"""The social-assistance part of ``gateway demo`` (``gateway_demo_tick``).

Once the registry simulator's decisions have built a roster (from :data:`SEND_AFTER` seconds
on, and as soon as at least one person is known), next month's payment lists are built and
sent to the post office — what the scheduled job does on the payment day — once per run. The
post-office simulator pays most lines and reports some unpaid; the results come back and are
reconciled. Every summary line says where the month stands: lists, people, VND, what the post
office did with them, and where to see it (``/payments``).
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from gateway.api import Gateway, get_logger
from gateway.model import now_vn
from plugins.social_assistance import service
from plugins.social_assistance.month import Month

log = get_logger("plugins.social_assistance.demo")
SEND_AFTER = 15.0
"""Seconds after the demo starts before the lists are built (time for decisions to arrive)."""


@dataclass(slots=True)
class DemoState:
    """What the demo did (on the app from start-up: a started app takes no new keys)."""

    month: Month | None = None
    sent: bool = False
    refused: int = 0


STATE = web.AppKey("social_assistance_demo", DemoState)


async def tick(app: web.Application, elapsed: float) -> str | None:
    from plugins.social_assistance.web import _domain, refresh_metric

    gw = Gateway.of(app)
    if not any(s.plugin == "social_assistance" for s in gw.config.systems.values()):
        return None
    state = app.get(STATE)
    if state is None:
        return None  # not started through the plugin's gateway_startup
    if state.month is None:
        state.month = Month.of(now_vn().date()) + 1
    month = state.month
    store, domain = gw.store, _domain(app)
    if not state.sent and elapsed >= SEND_AFTER:
        results = await service.send_month(store, gw.config, gw.plugins, domain, month)
        sent = [r for r in results if r.status == "sent"]
        state.refused = sum(r.status == "refused" for r in results)
        if sent:
            state.sent = True
            gw.wake()
            await refresh_metric(app)
            log.info("sa_demo_lists_sent", ky=str(month), lists=len(sent))
    rows = await service.overview(store, domain, month)
    if not rows:
        when = "now" if elapsed >= SEND_AFTER else f"in {SEND_AFTER - elapsed:.0f} s"
        return f"payments {month}: lists for the post office {when} (waiting for decisions)"
    people = sum(r["people"] for r in rows)
    total = sum(r["total"] for r in rows)
    delivered = sum(r["delivery"] == "delivered" for r in rows)
    paid, unpaid = sum(r["paid"] for r in rows), sum(r["unpaid"] for r in rows)
    refused = f", {state.refused} refused" if state.refused else ""
    return (
        f"payments {month}: {len(rows)} lists{refused}, {people} people, {total:,} VND"
        f" | post office: {delivered}/{len(rows)} lists delivered, {paid} paid, {unpaid} unpaid"
        f" | see /payments?month={month}"
    )
