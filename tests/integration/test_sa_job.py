"""The hourly social-assistance job: on the configured payment_day of month M−1 (the day as
counted in Asia/Ho_Chi_Minh) it builds and sends month M's lists; on other days, and on a
second run of the payment day, it does nothing. The clock is the job's ``now`` seam."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import structlog
from aiohttp.test_utils import TestClient
from sa_fixtures import decision_payload

from gateway.config import Config, config_from_dict
from gateway.hookspecs import JobContext
from gateway.log import configure_logging
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


async def test_sends_next_month_from_the_payment_day_once(app_client: TestClient[Any, Any]) -> None:
    ctx = JobContext("social_assistance:payment_lists", app_client.app)
    # the day before, late in the evening in Vietnam: nothing
    await build_on_payment_day(ctx, now=datetime(2020, 8, PAYMENT_DAY - 1, 23, 59, tzinfo=VN_TZ))
    # UTC already says the day before the payment day, in Vietnam too: nothing
    await build_on_payment_day(ctx, now=datetime(2020, 8, PAYMENT_DAY - 1, 16, 59, tzinfo=UTC))
    # an earlier day of the month: nothing
    await build_on_payment_day(ctx, now=datetime(2020, 8, 2, 10, 0, tzinfo=VN_TZ))
    assert await lists(app_client, "2020-09") == []
    assert await service.list_totals(app_client.app[STORE]) == {}
    # 00:30 on the payment day in Vietnam is still the day before in UTC: month M+1 is sent
    await build_on_payment_day(ctx, now=datetime(2020, 8, PAYMENT_DAY - 1, 17, 30, tzinfo=UTC))
    [row] = await lists(app_client, "2020-09")
    assert (row["maXa"], row["people"], row["lanGui"]) == ("02053", 1, 1)
    total = row["total"]
    # later runs of the same day (hourly) and of the following days send nothing again
    for day, hour in ((PAYMENT_DAY, 1), (PAYMENT_DAY, 23), (PAYMENT_DAY + 1, 9), (31, 23)):
        await build_on_payment_day(ctx, now=datetime(2020, 8, day, hour, tzinfo=VN_TZ))
    assert await lists(app_client, "2020-09") == [row]
    assert await service.list_totals(app_client.app[STORE]) == {"2020-09": total}
    # the run is audited as the job's, with the commune, the lines and the money
    [entry] = await audit_entries(app_client, "sa_payments_send")
    assert entry["actor"] == "job:payment_lists" and entry["target"] == "ky=2020-09"
    assert entry["detail"] == f"scope=all; sent=02053 (1 lists, 1 lines, {total:,} VND)"
    # the next month's payment day sends the month after
    await build_on_payment_day(ctx, now=datetime(2020, 9, PAYMENT_DAY, 9, tzinfo=VN_TZ))
    [row10] = await lists(app_client, "2020-10")
    assert (row10["people"], row10["lanGui"]) == (1, 1)
    assert [r["lanGui"] for r in await lists(app_client, "2020-09")] == [1]


async def audit_entries(client: TestClient[Any, Any], action: str) -> list[dict[str, Any]]:
    from sqlalchemy import select

    from gateway.store.tables import audit_log

    async with client.app[STORE].reader.connect() as conn:
        rows = (await conn.execute(select(audit_log).where(audit_log.c.action == action))).all()
    return [dict(r._mapping) for r in rows]


async def test_a_commune_left_unpaid_is_retried_daily_until_the_month_starts(
    tmp_path: Path, aiohttp_client: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from plugins.social_assistance.admin_units import DEFAULT_ADMIN_UNITS_PATH

    units = tmp_path / "admin_units.toml"
    shipped = DEFAULT_ADMIN_UNITS_PATH.read_text(encoding="utf-8")
    units.write_text(shipped, encoding="utf-8")
    config = config_from_dict(
        {
            "gateway": {"database": f"sqlite:///{tmp_path}/gw.db", "node_id": "job"},
            "systems": {"social_assistance": {"plugin": "social_assistance"}},
            "social_assistance": {"payment_day": PAYMENT_DAY, "admin_units": str(units)},
        },
        tmp_path / "gateway.toml",
    )
    client: TestClient[Any, Any] = await aiohttp_client(create_app(config, plugins=build_plugins()))
    rules = load_domain(config).rules
    sa = client.app[CONNECTORS]["social_assistance"]
    for n, code in ((1, "02053"), (2, "02099")):  # 02099: a code the file does not know
        payload = decision_payload(
            rules, so=f"{n}/QĐ-UBND", ngayKy="2020-08-03", maHoSo=f"HS-{n}",
            soDinhDanh=make_cccd("006", 1935, True, n), hoTen="Hoàng Thị Lan",
            ngaySinh="1935-04-12", maXa=code, loaiDoiTuong="5.5a",
        )  # fmt: skip
        assert (await sa.apply("decision.issued", payload)).detail == "applied"
    ctx = JobContext("social_assistance:payment_lists", client.app)
    store = client.app[STORE]
    saved = structlog.get_config()
    configure_logging("json")  # to the stderr capsys reads
    try:
        capsys.readouterr()
        await build_on_payment_day(ctx, now=datetime(2020, 8, PAYMENT_DAY, 9, tzinfo=VN_TZ))
    finally:
        structlog.configure(**saved)
    [row] = await lists(client, "2020-09")
    assert row["maXa"] == "02053"
    [alert] = await service.open_alerts(store)
    assert (alert["ky"], alert["ma_xa"], alert["people"], alert["attempts"]) == (
        "2020-09", "02099", 1, 1
    )  # fmt: skip
    assert alert["amount"] == row["total"] > 0  # the same 5.5a amount, left unpaid
    err = capsys.readouterr().err
    assert "sa_lists_missing" in err and "daily until 2020-09 starts" in err
    assert "02099" in err and "sa_list_not_sent" in err
    # later the same day: today's try is done
    await build_on_payment_day(ctx, now=datetime(2020, 8, PAYMENT_DAY, 23, tzinfo=VN_TZ))
    assert [a["attempts"] for a in await service.open_alerts(store)] == [1]
    # the next day: tried again, still missing
    await build_on_payment_day(ctx, now=datetime(2020, 8, PAYMENT_DAY + 1, 9, tzinfo=VN_TZ))
    assert [a["attempts"] for a in await service.open_alerts(store)] == [2]
    # the office adds the commune to admin_units.toml: the next day's try sends it
    block = '[[commune]]\ncode = "02099"\nname = "Xã Thử"\ndistrict = "064"\nuntil = 2025-07-01\n'
    units.write_text(shipped + "\n" + block, encoding="utf-8")
    await build_on_payment_day(ctx, now=datetime(2020, 8, PAYMENT_DAY + 2, 9, tzinfo=VN_TZ))
    assert sorted(r["maXa"] for r in await lists(client, "2020-09")) == ["02053", "02099"]
    assert await service.open_alerts(store) == []
    # done: the following days send nothing, the lists stay as they are
    before = await lists(client, "2020-09")
    await build_on_payment_day(ctx, now=datetime(2020, 8, 31, 9, tzinfo=VN_TZ))
    assert await lists(client, "2020-09") == before
    runs = await audit_entries(client, "sa_payments_send")
    assert [e["actor"] for e in runs] == ["job:payment_lists"] * 3
    assert "refused=02099 (1 lists, 1 lines," in runs[0]["detail"]
    assert "sent=02099" in runs[2]["detail"] and "unchanged=02053" in runs[2]["detail"]
