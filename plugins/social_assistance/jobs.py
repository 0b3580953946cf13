"""The scheduled job: from the payment day of month M−1 (Asia/Ho_Chi_Minh) until month M
starts, build and send month M's lists until every commune's is sent. Runs hourly.

A month is done once a whole-scope send of it ran and no commune of it is still failing
(no open alert). Until then the job tries again once a day — each commune still missing, the
others answer "unchanged" — and says so in the log (``sa_lists_missing``) and on the
dashboard (the payments page's alert).
"""

from __future__ import annotations

from datetime import datetime, time

from gateway.api import Config, Gateway, get_logger
from gateway.hookspecs import JobContext, RegisterJob
from gateway.model import VN_TZ, now_vn
from plugins.social_assistance import service
from plugins.social_assistance.month import Month
from plugins.social_assistance.storage import load_settings

log = get_logger("plugins.social_assistance.jobs")
INTERVAL = 3600.0
ACTOR = "job:payment_lists"


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
    if now.day < domain.settings.payment_day:
        return
    month = Month.of(now.date()) + 1
    gw = Gateway.of(app)
    midnight = datetime.combine(now.date(), time.min, VN_TZ).timestamp()
    state = await service.month_state(gw.store, month, midnight)
    if state.complete or state.tried_since:
        return  # every list is sent, or today's try is done
    results = await service.send_month(
        gw.store, gw.config, gw.plugins, domain, month, now=now, actor=ACTOR
    )
    sent = [r for r in results if r.status == "sent"]
    missing = [r for r in results if r.unpaid]
    log.info(
        "sa_lists_built",
        ky=str(month),
        sent=len(sent),
        refused=len(missing),
        total_vnd=sum(r.total for r in sent),
    )
    if missing:
        log.warning(
            "sa_lists_missing",
            ky=str(month),
            communes=[f"{r.commune} {r.name}".strip() for r in missing],
            people=sum(r.people for r in missing),
            unpaid_vnd=sum(r.total for r in missing),
            retry=f"daily until {month} starts (mỗi ngày cho đến đầu kỳ {month})",
        )
    if sent:
        gw.wake()
    await refresh_metric(app)
