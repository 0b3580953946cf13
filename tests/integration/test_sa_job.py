"""The hourly social-assistance job: on the configured payment_day of month M−1 (the day as
counted in Asia/Ho_Chi_Minh) it builds and sends month M's lists; on other days, and on a
second run of the payment day, it does nothing. The clock is the job's ``now`` seam."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sa_fixtures import decision_payload

from gateway.config import Config, config_from_dict
from gateway.hookspecs import JobContext
from gateway.model import VN_TZ
from gateway.plugins import build_plugins
from gateway.web.app import create_app
from gateway.web.keys import CONNECTORS, STORE
from plugins.social_assistance import service
from plugins.social_assistance.jobs import build_on_payment_day, register_jobs
from plugins.social_assistance.month import Month
from plugins.social_assistance.storage import load_domain
from plugins.vn_common.cccd import make_cccd

PAYMENT_DAY = 12


def job_config(tmp_path: Path) -> Config:
    return config_from_dict(
        {
            "gateway": {"database": f"sqlite:///{tmp_path}/gw.db", "node_id": "job"},
            "systems": {"social_assistance": {"plugin": "social_assistance"}},
            "social_assistance": {"payment_day": PAYMENT_DAY},
        },
        tmp_path / "gateway.toml",
    )


@pytest.fixture
async def app_client(tmp_path: Path, aiohttp_client: Any) -> TestClient[Any, Any]:
    config = job_config(tmp_path)
    client: TestClient[Any, Any] = await aiohttp_client(create_app(config, plugins=build_plugins()))
    rules = load_domain(config).rules
    payload = decision_payload(
        rules,
        so="215/QĐ-UBND",
        ngayKy="2020-08-03",
        maHoSo="HS-A",
        soDinhDanh=make_cccd("006", 1935, True, 1),
        hoTen="Hoàng Thị Lan",
        ngaySinh="1935-04-12",
        maXa="02053",
        loaiDoiTuong="5.5a",
    )
    receipt = await client.app[CONNECTORS]["social_assistance"].apply("decision.issued", payload)
    assert receipt.detail == "applied"
    return client


async def lists(client: TestClient[Any, Any], ky: str) -> list[dict[str, Any]]:
    domain = load_domain(job_config_of(client))
    return await service.overview(client.app[STORE], domain, Month.parse(ky))


def job_config_of(client: TestClient[Any, Any]) -> Config:
    from gateway.web.keys import CONFIG

    config: Config = client.app[CONFIG]
    return config


def test_the_job_is_registered_hourly(tmp_path: Path) -> None:
    found: list[tuple[str, float, Any]] = []
    register_jobs(lambda name, every, fn: found.append((name, every, fn)), job_config(tmp_path))
    assert found == [("social_assistance:payment_lists", 3600.0, build_on_payment_day)]
    bare = config_from_dict({"gateway": {"database": "sqlite://"}}, tmp_path / "g.toml")
    found.clear()
    register_jobs(lambda name, every, fn: found.append((name, every, fn)), bare)
    assert found == []


async def test_sends_next_month_on_the_payment_day_once(app_client: TestClient[Any, Any]) -> None:
    ctx = JobContext("social_assistance:payment_lists", app_client.app)
    # the day before, late in the evening in Vietnam: nothing
    await build_on_payment_day(ctx, now=datetime(2020, 8, PAYMENT_DAY - 1, 23, 59, tzinfo=VN_TZ))
    # UTC already says the payment day, but in Vietnam it is the day after: nothing
    await build_on_payment_day(ctx, now=datetime(2020, 8, PAYMENT_DAY, 18, 0, tzinfo=UTC))
    # another day of the month: nothing
    await build_on_payment_day(ctx, now=datetime(2020, 8, 24, 10, 0, tzinfo=VN_TZ))
    assert await lists(app_client, "2020-09") == []
    assert await service.list_totals(app_client.app[STORE]) == {}
    # 00:30 on the payment day in Vietnam is still the day before in UTC: month M+1 is sent
    await build_on_payment_day(ctx, now=datetime(2020, 8, PAYMENT_DAY - 1, 17, 30, tzinfo=UTC))
    [row] = await lists(app_client, "2020-09")
    assert (row["maXa"], row["people"], row["lanGui"]) == ("02053", 1, 1)
    total = row["total"]
    # later runs of the same day (hourly) send nothing again
    for hour in (1, 10, 23):
        await build_on_payment_day(ctx, now=datetime(2020, 8, PAYMENT_DAY, hour, tzinfo=VN_TZ))
    assert await lists(app_client, "2020-09") == [row]
    assert await service.list_totals(app_client.app[STORE]) == {"2020-09": total}
    # the next month's payment day sends the month after
    await build_on_payment_day(ctx, now=datetime(2020, 9, PAYMENT_DAY, 9, tzinfo=VN_TZ))
    [row10] = await lists(app_client, "2020-10")
    assert (row10["people"], row10["lanGui"]) == (1, 1)
    assert [r["lanGui"] for r in await lists(app_client, "2020-09")] == [1]
