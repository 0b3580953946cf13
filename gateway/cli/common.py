"""Helpers shared by the CLI commands."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from gateway import model, pseudonym
from gateway.config import DEFAULT_CONFIG_PATH, Config, load_config
from gateway.model import VN_TZ
from gateway.store import NoDatabase, Store

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


def config_option(fn: F) -> F:
    """The ``--config PATH`` option every command takes (``$GATEWAY_CONFIG``)."""
    return click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False, path_type=Path),
        default=DEFAULT_CONFIG_PATH,
        show_default=True,
        envvar="GATEWAY_CONFIG",
        show_envvar=True,
        help="The gateway's TOML configuration (or set $GATEWAY_CONFIG).",
    )(fn)


def json_option(fn: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")(
        fn
    )


def run(coro: Awaitable[T]) -> T:
    """Run a coroutine from a (synchronous) click command."""
    return asyncio.run(_wrap(coro))


async def _wrap(coro: Awaitable[T]) -> T:
    return await coro


async def with_store(
    config: Config,
    fn: Callable[[Store], Awaitable[T]],
    *,
    migrate: bool = True,
    read_only: bool = False,
) -> T:
    """Open the configured store (migrated), run ``fn``, close it. A relative SQLite path is
    the config file's folder's; ``read_only`` commands never create a database (a clear
    error instead)."""
    from gateway.plugins import plugins_for

    try:
        store = Store(
            config.gateway.database,
            node_id=f"{config.gateway.node_id}-cli",
            base_dir=Path(config.base_dir),
            create=not read_only,
        )
    except NoDatabase as exc:
        raise click.ClickException(str(exc)) from None
    await store.open()
    try:
        if migrate:
            await store.upgrade(plugins_for(config).migration_dirs())
        # the same pseudonyms as the gateway (looking up a dossier key typed with a CCCD)
        key = await store.read_key(pseudonym.KEY_NAME) if migrate or read_only else None
        if key is None and migrate and not read_only:
            key = await store.ensure_key(pseudonym.KEY_NAME)
        if key is not None:
            pseudonym.install_key(key)
        return await fn(store)
    finally:
        await store.close()


def load(config_path: Path, *, read_only: bool = False) -> Config:
    """The configuration; ``read_only`` commands do not need the systems' secrets."""
    return load_config(config_path, read_only=read_only)


def private_file(path: Path) -> Any:
    """``path`` opened for writing text, created 0600 (an export holds the office's data)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    return os.fdopen(fd, "w", newline="", encoding="utf-8")


def fmt_time(epoch: float | None) -> str:
    if epoch is None:
        return ""
    return datetime.fromtimestamp(epoch, VN_TZ).strftime("%Y-%m-%d %H:%M:%S%z")


def table(
    rows: Sequence[dict[str, Any]], columns: Sequence[str], *, right: Sequence[str] = ()
) -> str:
    """A plain text table (no colours: works in any terminal and in logs); the ``right``
    columns (numbers) are right-aligned."""
    cells = [[str(r.get(c, "") if r.get(c) is not None else "") for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]

    def fit(value: str, column: str, width: int) -> str:
        return value.rjust(width) if column in right else value.ljust(width)

    line = "  ".join(fit(c, c, w) for c, w in zip(columns, widths, strict=True))
    out = [line, "  ".join("-" * w for w in widths)]
    out += [
        "  ".join(fit(v, c, w) for v, c, w in zip(row, columns, widths, strict=True))
        for row in cells
    ]
    return "\n".join(out)


def echo_json(value: Any) -> None:
    click.echo(json.dumps(value, ensure_ascii=False, indent=2, default=str))


def parse_when(value: str | None) -> float | None:
    """``2020-08-03`` or ``2020-08-03T08:15`` (Asia/Ho_Chi_Minh unless an offset is given)."""
    if not value:
        return None
    try:
        return model.parse_when(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not a date or time like {model.WHEN_EXAMPLES}"
        ) from None
