"""Operator commands: ``deliveries list|show|retry|export``, ``dossiers show``, ``log verify``."""

from __future__ import annotations

import contextlib
import getpass
import json
import sys
from pathlib import Path
from typing import Any

import click

from gateway.cli.common import (
    config_option,
    echo_json,
    fmt_time,
    json_option,
    load,
    parse_when,
    private_file,
    run,
    table,
    with_store,
)
from gateway.log import mask_text, masked_json
from gateway.store import Store
from gateway.store.store import DeliveryFilter, LogFilter
from gateway.web.exports import csv_writer, log_csv_row


@click.group("deliveries", help="Deliveries: list, inspect, retry dead letters, export the log.")
def deliveries() -> None:
    pass


@deliveries.command("list", help="Latest deliveries, newest first.")
@click.option("--status", type=click.Choice(["pending", "in_flight", "delivered", "dead"]))
@click.option("--destination", help="Destination system name.")
@click.option("--dossier", help="Dossier key (MaHoSo).")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@click.option(
    "--before", "before_id", type=int, help="Show deliveries with an id below this (paging)."
)
@json_option
@config_option
def deliveries_list(
    status: str | None,
    destination: str | None,
    dossier: str | None,
    limit: int,
    before_id: int | None,
    as_json: bool,
    config_path: Path,
) -> None:
    config = load(config_path, read_only=True)
    flt = DeliveryFilter(status=status, destination=destination, dossier=dossier)
    rows = run(
        with_store(
            config,
            lambda s: s.list_deliveries(flt, limit=limit, before_id=before_id),
            read_only=True,
        )
    )
    for r in rows:
        r.pop("payload", None)
        r["last_error"] = mask_text(r["last_error"]) if r.get("last_error") else None
        for key in ("dossier_key", "ref"):  # keys stored before pseudonyms, too
            if isinstance(r.get(key), str):
                r[key] = mask_text(r[key])
    if as_json:
        echo_json(rows)
        return
    view = [
        {
            **r,
            "next_attempt_at": fmt_time(r["next_attempt_at"]) if r["status"] == "pending" else "",
            "last_error": (r["last_error"] or "")[:60],
        }
        for r in rows
    ]
    click.echo(
        table(
            view,
            [
                "id",
                "status",
                "destination",
                "dossier_key",
                "event",
                "attempts",
                "last_status",
                "next_attempt_at",
                "last_error",
            ],
        )
    )
    if len(rows) == limit:
        click.echo(f"(more: --before {rows[-1]['id']})", err=True)


@deliveries.command(
    "show", help="One delivery with every attempt (personal data masked unless --reveal)."
)
@click.argument("delivery_id", type=int)
@click.option(
    "--reveal",
    is_flag=True,
    help="Show the payload in full, personal data unmasked (recorded in the audit log).",
)
@click.option("--actor", default=None, help="Who reveals (default: the OS user).")
@json_option
@config_option
def deliveries_show(
    delivery_id: int, reveal: bool, actor: str | None, as_json: bool, config_path: Path
) -> None:
    config = load(config_path, read_only=True)
    who = f"cli:{actor or getpass.getuser()}"

    async def fetch(store: Store) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        found = await store.get_delivery(delivery_id)
        if found is not None and reveal:  # recorded before anything is shown
            await store.audit(who, "reveal", f"delivery {delivery_id}", "payload in full")
        return found, await store.list_log(LogFilter(delivery_id=delivery_id), limit=1000)

    delivery, attempts = run(with_store(config, fetch, read_only=True))
    if delivery is None:
        raise click.ClickException(f"no delivery with id {delivery_id}")
    if reveal:
        with contextlib.suppress(ValueError, RecursionError):  # else shown as stored
            delivery["payload"] = json.loads(delivery["payload"])
    else:
        delivery["payload"] = masked_json(delivery["payload"])
    if delivery.get("last_error"):
        delivery["last_error"] = mask_text(delivery["last_error"])
    for key in ("dossier_key", "ref"):
        if isinstance(delivery.get(key), str):
            delivery[key] = mask_text(delivery[key])
    for attempt in attempts:
        if attempt.get("error_message"):
            attempt["error_message"] = mask_text(attempt["error_message"])
    attempts.reverse()
    if as_json:
        echo_json({"delivery": delivery, "attempts": attempts})
        return
    for key in (
        "id",
        "status",
        "destination",
        "route",
        "dossier_key",
        "source",
        "event",
        "ref",
        "attempts",
        "idempotency_key",
        "last_status",
        "last_error",
    ):
        click.echo(f"{key:>16}: {delivery.get(key) if delivery.get(key) is not None else ''}")
    for key in ("created_at", "next_attempt_at", "deadline_at", "delivered_at"):
        click.echo(f"{key:>16}: {fmt_time(delivery.get(key))}")
    click.echo()
    click.echo("payload (in full, audited):" if reveal else "payload (personal data masked):")
    click.echo(json.dumps(delivery["payload"], ensure_ascii=False, indent=2))
    click.echo()
    click.echo(
        table(
            [
                {**a, "at": fmt_time(a["at"]), "next_attempt_at": fmt_time(a["next_attempt_at"])}
                for a in attempts
            ],
            [
                "attempt",
                "at",
                "outcome",
                "http_status",
                "duration_ms",
                "error_message",
                "next_attempt_at",
            ],
        )
    )


@deliveries.command(
    "retry", help="Put dead deliveries back in the queue (logged, with who did it)."
)
@click.argument("ids", type=int, nargs=-1)
@click.option("--all-dead", is_flag=True, help="Retry every dead delivery.")
@click.option("--actor", default=None, help="Who is retrying (default: the OS user).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@config_option
def deliveries_retry(
    ids: tuple[int, ...], all_dead: bool, actor: str | None, yes: bool, config_path: Path
) -> None:
    if not ids and not all_dead:
        raise click.UsageError("name delivery ids, or --all-dead")
    if ids and all_dead:
        raise click.UsageError("give ids or --all-dead, not both")
    config = load(config_path)
    who = f"cli:{actor or getpass.getuser()}"
    if all_dead and not yes:
        click.confirm("Retry every dead delivery?", abort=True)

    async def retry(store: Store) -> tuple[list[int], dict[int, str | None]]:
        done = await store.retry_dead(None if all_dead else list(ids), who)
        left = {}
        for delivery_id in sorted(set(ids) - set(done)):
            found = await store.get_delivery(delivery_id)
            left[delivery_id] = None if found is None else str(found["status"])
        return done, left

    retried, left = run(with_store(config, retry))
    click.echo(f"queued again: {len(retried)} ({', '.join(map(str, retried)) or 'none'})")
    not_dead = {i: status for i, status in left.items() if status is not None}
    if not_dead:
        text = ", ".join(f"{i} ({status})" for i, status in not_dead.items())
        click.echo(f"not dead, left alone: {text}", err=True)
    unknown = [i for i, status in left.items() if status is None]
    if unknown:
        raise click.ClickException(f"no delivery with id {', '.join(map(str, unknown))}")


@deliveries.command("export", help="Export the delivery log as CSV (personal data masked).")
@click.option(
    "--out",
    "out_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="File (default: stdout).",
)
@click.option("--system", help="Source or destination system.")
@click.option("--outcome", type=click.Choice(["delivered", "retry_scheduled", "dead", "replayed"]))
@click.option("--dossier", help="Dossier key (MaHoSo).")
@click.option("--since", help="From this date/time (Asia/Ho_Chi_Minh), e.g. 2020-08-01.")
@click.option("--until", help="Before this date/time.")
@config_option
def deliveries_export(
    out_path: Path | None,
    system: str | None,
    outcome: str | None,
    dossier: str | None,
    since: str | None,
    until: str | None,
    config_path: Path,
) -> None:
    config = load(config_path, read_only=True)
    flt = LogFilter(
        system=system,
        outcome=outcome,
        dossier=dossier,
        since=parse_when(since),
        until=parse_when(until),
    )

    async def export(store: Store) -> int:
        total = await store.count_log(flt)
        handle = private_file(out_path) if out_path else sys.stdout
        written = 0
        try:
            writer = csv_writer(handle)
            writer.writeheader()
            with click.progressbar(length=total, label="exporting", file=sys.stderr) as bar:
                async for batch in store.iter_log(flt):
                    for row in batch:
                        writer.writerow(log_csv_row(row))
                    written += len(batch)
                    bar.update(len(batch))
        finally:
            if out_path:
                handle.close()
        return written

    count = run(with_store(config, export, read_only=True))
    click.echo(f"exported {count} attempts" + (f" to {out_path}" if out_path else ""), err=True)


@click.group("dossiers", help="Dossiers across the three systems.")
def dossiers() -> None:
    pass


@dossiers.command("show", help="The timeline of one dossier: every message and attempt.")
@click.argument("mahoso")
@json_option
@config_option
def dossiers_show(mahoso: str, as_json: bool, config_path: Path) -> None:
    config = load(config_path, read_only=True)
    timeline = run(with_store(config, lambda s: s.dossier_timeline(mahoso), read_only=True))
    if not timeline["messages"] and not timeline["deliveries"]:
        raise click.ClickException(f"no dossier {mahoso!r} is known to the gateway")
    if as_json:
        for row in (*timeline["messages"], *timeline["deliveries"], *timeline["attempts"]):
            for key in ("dossier_key", "ref", "external_id", "error_message", "last_error"):
                if isinstance(row.get(key), str):
                    row[key] = mask_text(row[key])
        echo_json(timeline)
        return
    events: list[tuple[float, str]] = []
    for m in timeline["messages"]:
        events.append(
            (
                m["received_at"],
                f"received  {m['event']} from {m['source']} (revision {m['revision']})",
            )
        )
    for a in timeline["attempts"]:
        err = f" — {a['error_message']}" if a["error_message"] else ""
        status = f" HTTP {a['http_status']}" if a["http_status"] else ""
        events.append(
            (
                a["at"],
                f"attempt   #{a['attempt']} → {a['destination']}: {a['outcome']}{status}{err}",
            )
        )
    for at, text in sorted(events, key=lambda e: e[0]):
        click.echo(f"{fmt_time(at)}  {mask_text(text)}")
    states = ", ".join(f"{d['destination']}: {d['status']}" for d in timeline["deliveries"])
    click.echo(f"\ndeliveries now: {states or 'none'}")


@click.group("log", help="The delivery log.")
def log_group() -> None:
    pass


@log_group.command(
    "verify", help="Check the hash chain of the delivery log (detects edits and deletions)."
)
@config_option
def log_verify(config_path: Path) -> None:
    config = load(config_path, read_only=True)
    pruned = config.gateway.log_retention_days is not None
    checked, problems = run(
        with_store(config, lambda s: s.verify_log(pruned=pruned), read_only=True)
    )
    for p in problems[:50]:
        click.echo(f"BROKEN {p}")
    if problems:
        click.echo(f"{len(problems)} problems in {checked} rows", err=True)
        raise click.exceptions.Exit(1)
    click.echo(f"ok: {checked} rows, chain intact")


COMMANDS = [deliveries, dossiers, log_group]
