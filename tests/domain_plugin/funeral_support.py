"""A second domain plugin, written on :mod:`gateway.api` alone: funeral support (hỗ trợ chi
phí mai táng, procedure 1.001731).

A drop-in (``gateway.plugins_dir``) that shows everything a domain plugin needs, end to end:

* its own config section ``[funeral_support]`` validated by :class:`Settings`;
* its own table (``fs_claims``) and migration (the Alembic branch ``funeral_support``);
* an internal destination (``plugin = "funeral_support"``): a ``funeral.claim`` delivered to
  it is kept and, in the same transaction, a ``funeral.payment`` message is emitted through
  the gateway's one intake (validate hooks, routing, dedupe, ordering locks);
* a dashboard page (``/funeral``), an API route (``/api/v1/funeral/claims``), a nav entry;
* commands ``gateway funeral claims`` and ``gateway funeral resend MAHOSO``;
* a job that publishes the number of claims as a gauge.

The amount is 20 × the social-assistance base (Decree 20/2021/NĐ-CP art. 11), integer VND.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click
import jinja2
from aiohttp import web
from prometheus_client import Gauge
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import BigInteger, Column, Float, Integer, MetaData, String, Table, select
from sqlalchemy.engine import Connection

from gateway import hookimpl
from gateway.api import (
    ApiError,
    Config,
    Gateway,
    MessageRejected,
    NavEntry,
    PluginStore,
    PreparedMessage,
    add_nav,
    add_templates,
    config_of,
    config_option,
    connectors_of,
    emit_in,
    get_logger,
    load_config,
    metrics_registry_of,
    plugin_settings,
    protect,
    render_page,
    run,
    store_of,
    table,
    with_store,
)
from gateway.connector import Connector
from gateway.hookspecs import JobContext, RegisterConnector, RegisterJob
from gateway.model import Message, OutboundRequest, PermanentError, Receipt

NAME = "funeral_support"
SECTION = "funeral_support"
EVENT_CLAIM = "funeral.claim"
EVENT_PAYMENT = "funeral.payment"
PROCEDURE = "1.001731"
log = get_logger("plugins.funeral_support")


class Settings(BaseModel):
    """``[funeral_support]``; unknown keys are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_vnd: int = Field(default=360_000, gt=0)
    multiplier: int = Field(default=20, gt=0)

    @property
    def amount_vnd(self) -> int:
        return self.base_vnd * self.multiplier


metadata = MetaData()
fs_claims = Table(
    "fs_claims",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ma_ho_so", String(64), nullable=False, unique=True),
    Column("so_dinh_danh", String(12), nullable=False),
    Column("amount_vnd", BigInteger, nullable=False),
    Column("payment_uid", String(32), nullable=False),
    Column("received_at", Float, nullable=False),
)


def payment_message(ma_ho_so: str, cccd: str, amount: int) -> Message:
    return Message(
        event=EVENT_PAYMENT,
        external_id=ma_ho_so,
        dossier_key=ma_ho_so,
        procedure=PROCEDURE,
        ref=ma_ho_so,
        payload={"MaHoSo": ma_ho_so, "soDinhDanh": cccd, "soTien": amount},
    )


def keep_claim(conn: Connection, prepared: PreparedMessage, cccd: str, amount: int) -> str:
    """One transaction: the claim row and the payment message with its deliveries."""
    ma_ho_so = prepared.message.external_id
    found = conn.execute(
        select(fs_claims.c.payment_uid).where(fs_claims.c.ma_ho_so == ma_ho_so)
    ).scalar()
    if found is not None:
        return "duplicate claim"
    emitted = emit_in(conn, prepared)
    conn.execute(
        fs_claims.insert().values(
            ma_ho_so=ma_ho_so,
            so_dinh_danh=cccd,
            amount_vnd=amount,
            payment_uid=emitted.uid,
            received_at=time.time(),
        )
    )
    return f"kept; payment {amount:,} VND queued"


def claim_rows(conn: Connection) -> list[dict[str, Any]]:
    c = fs_claims.c
    rows = conn.execute(select(c.ma_ho_so, c.so_dinh_danh, c.amount_vnd).order_by(c.id))
    return [
        {"maHoSo": r.ma_ho_so, "soDinhDanh": "*" * 8 + r.so_dinh_danh[-4:], "soTien": r.amount_vnd}
        for r in rows
    ]


class FuneralSupportConnector(Connector):
    """The funeral-support office as an internal destination (no HTTP)."""

    gateway: Gateway | None = None

    async def render(self, message: Message) -> OutboundRequest:
        if message.event != EVENT_CLAIM or not isinstance(message.payload, dict):
            raise PermanentError(f"funeral_support takes {EVENT_CLAIM!r} objects only")
        return OutboundRequest(method="LOCAL", url="local:funeral_support", context=message.payload)

    async def send(self, session: Any, request: OutboundRequest) -> Receipt:
        if self.gateway is None:
            raise RuntimeError("funeral_support is not attached (gateway_startup did not run)")
        gw = self.gateway
        ma_ho_so, cccd = str(request.context["MaHoSo"]), str(request.context["soDinhDanh"])
        amount = gw.settings(SECTION, Settings).amount_vnd
        try:
            prepared = await gw.prepare(NAME, payment_message(ma_ho_so, cccd, amount))
        except MessageRejected as exc:
            raise PermanentError(
                f"payment refused by the intake: {'; '.join(exc.errors)}"
            ) from None
        detail = await gw.store.write(keep_claim, prepared, cccd, amount)
        gw.wake()
        return Receipt(status=200, detail=detail)


# -- hooks ---------------------------------------------------------------------------------------
@hookimpl
def gateway_register_connectors(register: RegisterConnector) -> None:
    register(NAME, FuneralSupportConnector)


@hookimpl
def gateway_migration_dirs() -> list[str]:
    return [str(Path(__file__).parent / "funeral_support_migrations")]


@hookimpl
async def gateway_startup(app: web.Application) -> None:
    plugin_settings(config_of(app), SECTION, Settings)  # a bad section stops start-up
    app[GAUGE] = Gauge(
        "gateway_funeral_claims", "Funeral-support claims kept", registry=metrics_registry_of(app)
    )
    gw = Gateway.of(app)
    for connector in connectors_of(app).values():
        if isinstance(connector, FuneralSupportConnector):
            connector.gateway = gw


GAUGE = web.AppKey("funeral_support_gauge", Gauge)


PAGE = """{% extends "base.html" %}
{% block title %}Hỗ trợ mai táng / Funeral support{% endblock %}
{% block main %}<h1>Hỗ trợ mai táng (Funeral support)</h1>
<table id="fs-claims">{% for r in rows %}<tr><td>{{ r.maHoSo }}</td><td>{{ r.soDinhDanh }}</td>
<td>{{ "{:,}".format(r.soTien) }}</td></tr>{% endfor %}</table>{% endblock %}"""


async def claims_page(request: web.Request) -> web.Response:
    rows = await store_of(request.app).read(claim_rows)
    return await render_page(request, "fs_claims.html", {"rows": rows})


async def claims_api(request: web.Request) -> web.Response:
    limit_text = request.query.get("limit", "100")
    if not limit_text.isdigit() or not 0 < int(limit_text) <= 1000:
        raise ApiError(400, "bad_limit", f"limit must be 1..1000, not {limit_text!r}")
    rows = await store_of(request.app).read(claim_rows)
    return web.json_response({"claims": rows[: int(limit_text)]})


@hookimpl
def gateway_web_routes(app: web.Application) -> None:
    add_templates(app, jinja2.DictLoader({"fs_claims.html": PAGE}))
    app.router.add_get("/funeral", claims_page)
    protect(app, "/funeral", "viewer")
    app.router.add_get("/api/v1/funeral/claims", claims_api)
    protect(app, "/api/v1/funeral/claims", "viewer")
    add_nav(app, NavEntry("/funeral", {"vi": "Mai táng", "en": "Funeral support"}))


@hookimpl
def gateway_openapi_paths() -> dict[str, Any]:
    return {
        "/api/v1/funeral/claims": {
            "get": {
                "summary": "Funeral-support claims (CCCD masked)",
                "parameters": [
                    {"name": "limit", "in": "query", "schema": {"type": "integer"}},
                ],
                "responses": {"200": {"description": "the claims"}},
            }
        }
    }


async def publish_claims(ctx: JobContext) -> None:
    """The job: the number of claims kept, as ``gateway_funeral_claims``."""
    gauge = ctx.app.get(GAUGE)
    if gauge is not None:
        gauge.set(len(await Gateway.of(ctx.app).store.read(claim_rows)))


@hookimpl
def gateway_register_jobs(register: RegisterJob, config: Config) -> None:
    if any(s.plugin == NAME for s in config.systems.values()):
        plugin_settings(config, SECTION, Settings)
        register("funeral_support:publish", 3600.0, publish_claims)


@click.group("funeral")
def funeral() -> None:
    """Funeral support (hỗ trợ mai táng, 1.001731)."""


@funeral.command("claims")
@config_option
def claims_cmd(config_path: Path) -> None:
    """The claims kept (CCCD masked)."""
    config = load_config(config_path)

    async def go(store: PluginStore) -> list[dict[str, Any]]:
        return await store.read(claim_rows)

    rows = run(with_store(config, go))
    click.echo(table(rows, ["maHoSo", "soDinhDanh", "soTien"]))


@funeral.command("resend")
@click.argument("ma_ho_so")
@config_option
def resend_cmd(ma_ho_so: str, config_path: Path) -> None:
    """Emit a claim's payment again (the intake answers a duplicate when nothing changed)."""
    config = load_config(config_path)

    async def go() -> str:
        async with Gateway.open(config) as gw:

            def find(conn: Connection) -> tuple[str, int] | None:
                c = fs_claims.c
                row = conn.execute(
                    select(c.so_dinh_danh, c.amount_vnd).where(c.ma_ho_so == ma_ho_so)
                ).first()
                return None if row is None else (row.so_dinh_danh, int(row.amount_vnd))

            found = await gw.store.read(find)
            if found is None:
                raise click.ClickException(f"no claim {ma_ho_so!r}")
            answer = await gw.emit(NAME, payment_message(ma_ho_so, *found))
            return "duplicate" if answer.duplicates else "accepted"

    click.echo(run(go()))


@hookimpl
def gateway_register_commands(cli: click.Group) -> None:
    cli.add_command(funeral)
