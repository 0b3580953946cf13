"""Monthly social assistance (trợ cấp xã hội hàng tháng).

The domain rules are pure functions (rules, roster, payment lists, reconciliation, report:
see README.md). This module wires them into the gateway: the ``social_assistance`` connector
(an internal destination: decisions and payment results are applied to the plugin's own
``sa_`` tables), its migrations, the ``payments`` / ``report`` commands, the dashboard pages
and API, and the job that builds next month's lists on the payment day.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway import hookimpl

if TYPE_CHECKING:
    import click
    from aiohttp import web

    from gateway.api import Config
    from gateway.hookspecs import RegisterConnector, RegisterJob

HERE = Path(__file__).parent


@hookimpl
def gateway_register_connectors(register: RegisterConnector) -> None:
    from plugins.social_assistance.connector import SocialAssistanceConnector

    register("social_assistance", SocialAssistanceConnector)


@hookimpl
def gateway_migration_dirs() -> list[str]:
    return [str(HERE / "migrations" / "versions")]


@hookimpl
async def gateway_startup(app: web.Application) -> None:
    from plugins.social_assistance.web import startup

    await startup(app)


@hookimpl
async def gateway_demo_tick(app: web.Application, elapsed: float) -> str | None:
    from plugins.social_assistance.demo import tick

    return await tick(app, elapsed)


@hookimpl
def gateway_openapi_paths() -> dict[str, Any]:
    from plugins.social_assistance.openapi import PATHS

    return PATHS


@hookimpl
def gateway_web_routes(app: web.Application) -> None:
    from plugins.social_assistance.web import setup_routes

    setup_routes(app)


@hookimpl
def gateway_register_jobs(register: RegisterJob, config: Config) -> None:
    from plugins.social_assistance.jobs import register_jobs

    register_jobs(register, config)


@hookimpl
def gateway_register_commands(cli: click.Group) -> None:
    from plugins.social_assistance.cli import payments, report

    cli.add_command(payments)
    cli.add_command(report)
