"""``gateway payments send|held|accept`` and ``gateway report monthly``."""

from __future__ import annotations

import csv
import getpass
import io
import json
import os
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
from gateway.model import now_vn
from plugins.social_assistance import documents, service
from plugins.social_assistance.month import Month
from plugins.social_assistance.storage import (
    AcceptError,
    accept_decision,
    load_domain,
    read,
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
            "people": f"{r.people:,}",
            "total VND": f"{r.total:,}",
            "lanGui": r.lan_gui,
            "status": r.status,
            "note": r.reason,
        }
        for r in results
    ]
    click.echo(
        table(
            rows,
            ["commune", "people", "total VND", "lanGui", "status", "note"],
            right=("people", "total VND", "lanGui"),
        )
    )
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
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json", "csv", "xlsx"]), default="table"
)
@click.option(
    "--out",
    "out_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file (xlsx: default bao-cao-thang-YYYY-MM.xlsx here).",
)
@click.option("--preparer", default=None, help="Người lập biểu on the xlsx (default: OS user).")
@config_option
def monthly_cmd(
    month_text: str, fmt: str, out_path: Path | None, preparer: str | None, config_path: Path
) -> None:
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
    if fmt == "xlsx":
        body = documents.report_xlsx(
            data,
            month,
            names=documents.report_names(domain, data, month),
            preparer=preparer or getpass.getuser(),
            when=now_vn(),
        )
        target = out_path or Path(f"bao-cao-thang-{month}.xlsx")
        _write(target, body)
        click.echo(f"wrote {target} ({data['lists']} lists)", err=True)
        return
    if fmt == "json":
        text = json.dumps(data, ensure_ascii=False, indent=2) + "\n"
    elif fmt == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, documents.REPORT_COLUMNS)
        writer.writeheader()
        writer.writerows(documents.report_rows(data))
        text = buf.getvalue()
    else:
        rows = [
            {k: f"{v:,}" if isinstance(v, int) else v for k, v in row.items()}
            for row in documents.report_rows(data)
        ]
        text = table(rows, documents.REPORT_COLUMNS, right=("lines", "receiving", "amount"))
        text += "\n"
        if not data["lists"]:
            text += f"no payment list was built for {month}\n"
    if out_path is None:
        click.echo(text, nl=False)
    else:
        _write(out_path, text.encode("utf-8"))
        click.echo(f"wrote {out_path}", err=True)


def _write(path: Path, body: bytes) -> None:
    """Write an export, created 0600: it holds the people of a list or report."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(body)
    except OSError as exc:
        raise click.ClickException(f"cannot write {path}: {exc.strerror or exc}") from None


@payments.command("export")
@click.option("--month", "month_text", required=True, help="The list month, YYYY-MM.")
@click.option("--commune", "communes", multiple=True, help="Only this commune code (repeatable).")
@click.option("--format", "fmt", type=click.Choice(["xlsx"]), default="xlsx", show_default=True)
@click.option(
    "--out",
    "out_path",
    type=click.Path(path_type=Path),
    default=Path("."),
    show_default=True,
    help="A folder (one file per commune), or a file name when one commune is asked for.",
)
@click.option("--preparer", default=None, help="Người lập biểu (default: the OS user).")
@config_option
def export_cmd(
    month_text: str,
    communes: tuple[str, ...],
    fmt: str,
    out_path: Path,
    preparer: str | None,
    config_path: Path,
) -> None:
    """The signing lists of month M (one .xlsx per commune: names, amounts, a signature
    column; A4, ready to print). They name the payees: keep them as the office keeps paper."""
    month = _month(month_text)
    config = _config(config_path)
    try:
        domain = load_domain(config)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    who = preparer or getpass.getuser()

    async def go(store: Store) -> list[documents.ListDocument]:
        wanted = list(communes) or [r["maXa"] for r in await service.overview(store, domain, month)]
        found = []
        for code in wanted:
            doc = await read(store, documents.read_list_document, domain, str(month), code)
            if doc is None:
                raise click.ClickException(f"no list of commune {code} for {month}")
            found.append(doc)
        for doc in found:
            await store.audit(
                f"cli:{getpass.getuser()}", "download", f"payment list {doc.ky}:{doc.commune}", fmt
            )
        return found

    docs = run(with_store(config, go))
    if not docs:
        raise click.ClickException(f"no payment list was built for {month}")
    single_file = len(communes) == 1 and out_path.suffix == ".xlsx"
    if not single_file:
        out_path.mkdir(parents=True, exist_ok=True)
    rows = []
    for doc in docs:
        target = out_path if single_file else out_path / doc.file_name
        _write(target, documents.list_xlsx(doc, preparer=who, when=now_vn()))
        rows.append(
            {
                "commune": doc.commune,
                "name": doc.commune_name,
                "people": f"{doc.total_people:,}",
                "total VND": f"{doc.total_amount:,}",
                "file": str(target),
            }
        )
    click.echo(
        table(
            rows, ["commune", "name", "people", "total VND", "file"], right=("people", "total VND")
        )
    )
