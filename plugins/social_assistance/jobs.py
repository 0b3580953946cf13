"""The scheduled job: on the payment day of month M−1 (Asia/Ho_Chi_Minh), build and send
month M's lists if they were not built yet. Runs hourly."""

from __future__ import annotations

from datetime import datetime

from gateway.api import Config, Gateway, get_logger
from gateway.hookspecs import JobContext, RegisterJob
from gateway.model import VN_TZ, now_vn
from plugins.social_assistance import service
from plugins.social_assistance.month import Month
from plugins.social_assistance.storage import load_settings

log = get_logger("plugins.social_assistance.jobs")
INTERVAL = 3600.0


def register_jobs(register: RegisterJob, config: Config) -> None:
    if not any(s.plugin == "social_assistance" for s in config.systems.values()):
        return
    load_settings(config)  # a bad section stops start-up with the key and the file
    register("social_assistance:payment_lists", INTERVAL, build_on_payment_day)


async def build_on_payment_day(ctx: JobContext, now: datetime | None = None) -> None:
    """``now`` (an aware datetime; default the clock) is a seam for tests: the day is taken
    in Asia/Ho_Chi_Minh whatever its zone."""
    from plugins.social_assistance.web import _domain, refresh_metric

    app = ctx.app
    domain = _domain(app)
    now = now.astimezone(VN_TZ) if now is not None else now_vn()
    if now.day != domain.settings.payment_day:
        return
    month = Month.of(now.date()) + 1
    gw = Gateway.of(app)
    if await service.month_built(gw.store, month):
        return
    results = await service.send_month(gw.store, gw.config, gw.plugins, domain, month, now=now)
    sent = [r for r in results if r.status == "sent"]
    log.info(
        "sa_lists_built",
        ky=str(month),
        sent=len(sent),
        refused=sum(r.status == "refused" for r in results),
        total_vnd=sum(r.total for r in sent),
    )
    if sent:
        gw.wake()
    await refresh_metric(app)
