"""``gateway payments send|held|accept`` and ``gateway report monthly``."""

from __future__ import annotations

import csv
import getpass
import io
import json
import sys
from pathlib import Path
from typing import Any

import click

from gateway.api import (
    Config,
    ConfigError,
    config_option,
    load_config,
    plugins_for,
    run,
    table,
    with_store,
)
from gateway.api import PluginStore as Store
from plugins.social_assistance import service
from plugins.social_assistance.month import Month
from plugins.social_assistance.storage import (
    AcceptError,
    accept_decision,
    load_domain,
)


def _month(value: str) -> Month:
    try:
        return Month.parse(value)
    except ValueError:
        raise click.BadParameter("must be YYYY-MM") from None


def _cli_actor() -> str:
    """Who runs a command from the shell (the audit's actor)."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def _config(path: Path, *, read_only: bool = False) -> Config:
    """The configuration; ``read_only`` commands need none of the systems' secrets."""
    try:
        return load_config(path, read_only=read_only)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


UNPAID_EXIT = 3
"""Exit status of ``payments send`` when a commune's list was not built or not sent."""


@click.group()
def payments() -> None:
    """Monthly payment lists (chi trả trợ cấp xã hội hàng tháng)."""


@payments.command("send")
@click.option("--month", "month_text", required=True, help="The list month, YYYY-MM.")
@click.option(
    "--commune",
    "communes",
    multiple=True,
    help="Only this commune, by its old or new code (repeatable).",
)
@click.option("--dry-run", is_flag=True, help="Build and check, send nothing.")
@click.option("--resend", is_flag=True, help="Send again with the next lanGui.")
@config_option
def send(
    month_text: str, communes: tuple[str, ...], dry_run: bool, resend: bool, config_path: Path
) -> None:
    """Build, check and send month M's lists to the payer.

    Exits 3, with one line per commune on stderr (code, name, people and VND left unpaid,
    what to do), when any selected commune's list could not be built or sent.
    """
    month = _month(month_text)
    config = _config(config_path)
    try:
        domain = load_domain(config)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    plugins = plugins_for(config)

    async def go(store: Store) -> list[service.CommuneResult]:
        expected = len(communes or domain.settings.communes) or 1
        with click.progressbar(
            length=expected, label=f"kỳ {month}", file=sys.stderr, show_pos=True
        ) as bar:
            return await service.send_month(
                store,
                config,
                plugins,
                domain,
                month,
                communes=communes or None,
                dry_run=dry_run,
                resend=resend,
                progress=lambda _r: bar.update(1),
                actor=_cli_actor(),
            )

    results = run(with_store(config, go))
    rows = [
        {
            "commune": r.commune,
            "people": r.people,
            "total VND": f"{r.total:,}",
            "lanGui": r.lan_gui,
            "status": r.status,
            "note": r.reason,
        }
        for r in results
    ]
    click.echo(table(rows, ["commune", "people", "total VND", "lanGui", "status", "note"]))
    sent = [r for r in results if r.status == "sent"]
    unpaid = [r for r in results if r.unpaid]
    click.echo(
        f"{len(sent)} sent, {sum(r.status == 'unchanged' for r in results)} unchanged, "
        f"{len(unpaid)} refused; "
        f"{sum(r.total for r in sent):,} VND queued"
    )
    if unpaid:
        # never silent: one line per commune left unpaid, on stderr, and a non-zero exit
        for r in unpaid:
            click.echo(r.problem_line(month), err=True)
        raise click.exceptions.Exit(UNPAID_EXIT)


@payments.command("held")
@config_option
def held_cmd(config_path: Path) -> None:
    """Decisions held for an operator (registry amount ≠ rules, or a grant starting before
    the rules allow: both months)."""
    config = _config(config_path, read_only=True)
    rows = run(with_store(config, service.held, read_only=True))
    columns = ["id", "so", "maHoSo", "ngayKy", "state", "registry_amount", "rules_amount"]
    if any(r.get("registry_month") for r in rows):
        columns += ["registry_month", "rules_month"]
    click.echo(table(rows, columns))


@payments.command("accept")
@click.argument("so")
@click.option("--figure", type=click.Choice(["gateway", "registry"]), required=True)
@click.option("--actor", default="cli", show_default=True, help="Who accepts (audited).")
@config_option
def accept(so: str, figure: str, actor: str, config_path: Path) -> None:
    """Accept one figure of held decision SO (its number, or its id)."""
    import time

    config = _config(config_path)

    async def go(store: Store) -> dict[str, Any]:
        found = [r for r in await service.held(store) if r["state"] == "held"]
        match = [r for r in found if r["so"] == so or str(r["id"]) == so]
        if len(match) != 1:
            raise click.ClickException(f"no single held decision {so!r}")
        try:
            result: dict[str, Any] = await store.write(
                accept_decision, match[0]["id"], figure, actor, time.time()
            )
        except AcceptError as exc:
            raise click.ClickException(str(exc)) from None
        return result

    click.echo(json.dumps(run(with_store(config, go)), ensure_ascii=False))


@click.group()
def report() -> None:
    """Reports of the social-assistance office."""


@report.command("monthly")
@click.option("--month", "month_text", required=True, help="YYYY-MM")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table")
@config_option
def monthly_cmd(month_text: str, fmt: str, config_path: Path) -> None:
    """Beneficiaries and amounts by category and commune, changes, arrears, carried unpaid,
    suspension candidates and timeliness."""
    month = _month(month_text)
    config = _config(config_path, read_only=True)
    try:
        domain = load_domain(config)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    data = run(
        with_store(config, lambda store: service.monthly(store, domain, month), read_only=True)
    )
    if fmt == "json":
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    flat = _flat(data)
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(["section", "key", "lines", "receiving", "amount"])
        writer.writerows(flat)
        click.echo(buf.getvalue(), nl=False)
        return
    rows = [
        {"section": s, "key": k, "lines": li, "receiving": rc, "amount": a}
        for s, k, li, rc, a in flat
    ]
    click.echo(table(rows, ["section", "key", "lines", "receiving", "amount"]))


def _flat(data: dict[str, Any]) -> list[tuple[str, str, Any, Any, Any]]:
    out: list[tuple[str, str, Any, Any, Any]] = []
    for name in (
        "beneficiaries",
        "total_amount",
        "increases",
        "decreases",
        "arrears_amount",
        "carried_amount",
        "suspension_candidates",
        "paid_amount",
        "unpaid_amount",
    ):
        if name in data:
            out.append(("total", name, "", "", data[name]))
    for section in ("by_category", "by_commune"):
        for key, t in data.get(section, {}).items():
            out.append((section, key, t["lines"], t["receiving"], t["amount"]))
    tl = data["timeliness"]
    out.append(("timeliness", "overdue", tl["overdue"], "", ""))
    out.append(
        (
            "timeliness",
            "arrears_from_lateness",
            tl["arrears_from_lateness_months"],
            "",
            tl["arrears_from_lateness_vnd"],
        )
    )
    return out
