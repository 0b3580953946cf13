"""``gateway run``, ``db upgrade``, ``simulate`` (``plugins ...`` is in :mod:`.plugins_cmd`)."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import gc
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from aiohttp import web

from gateway.cli.common import config_option, load, run
from gateway.cli.plugins_cmd import pid_file_option
from gateway.log import configure_logging
from gateway.plugins import plugins_for
from gateway.simulation import SimulatorOptions
from gateway.store import Store


@click.command(
    "run",
    help="Run the gateway: intake, delivery workers, admin API and dashboard. SIGHUP (or "
    "`gateway plugins reload`) reloads drop-in plugins without dropping traffic.",
)
@config_option
@pid_file_option
def run_cmd(config_path: Path, pid_file: Path) -> None:
    from gateway.web.app import create_app
    from gateway.web.keys import PLUGINS

    config = load(config_path)
    configure_logging(config.gateway.log_format)
    app = create_app(config)
    _migrate_in_child(config_path, config.gateway.database, app[PLUGINS].migration_dirs())
    app[_RELOADS] = set()
    app.on_startup.append(functools.partial(_on_started, pid_file=pid_file))
    app.on_cleanup.append(functools.partial(_on_stopped, pid_file=pid_file))
    click.echo(
        f"gateway listening on http://{config.gateway.listen} (config {config_path})", err=True
    )
    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        runner.run(serve_until_signalled(app, config.gateway.host, config.gateway.port))


def _migrate_in_child(config_path: Path, database: str, dirs: list[str]) -> None:
    """A SQLite database that needs migrating (a new one, or one made by an older version) is
    migrated by a short-lived ``gateway db upgrade`` child before the gateway starts: Alembic
    and Mako (10 MB, measured: a new database 98.9 → 88.5 MB idle) then never load into the
    long-running process, which finds the schema up to date. Only when migrations are due
    (read without Alembic, :func:`gateway.store.migrate.up_to_date`): a restart costs nothing.
    Other databases migrate in-process as before (``Store.upgrade``)."""
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    from gateway.store import migrate

    url = make_url(database)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return
    if Path(url.database).exists():
        engine = create_engine(url.set(drivername="sqlite"))
        try:
            with engine.connect() as conn:
                if migrate.up_to_date(conn, dirs):
                    return
        except Exception:  # unreadable here: the child says why, readably
            pass
        finally:
            engine.dispose()
    command = [sys.executable, "-m", "gateway.cli", "db", "upgrade", "--config", str(config_path)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode:
        raise click.ClickException(
            f"migrating {url.database} failed: {(done.stderr or done.stdout).strip()[-2000:]}"
        )


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop where it is installed (Linux, macOS), unless ``GATEWAY_LOOP=asyncio``:
    the same asyncio API on libuv: less CPU per request (docs/performance.md, "Third round")."""
    if os.environ.get("GATEWAY_LOOP", "").strip().lower() == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter


def pin_mmap_threshold(size: int = 1 << 20) -> None:
    """Blocks of ``size`` bytes or more (an inbound body, its joined copy) get their own
    mapping and go back to the system when freed. By default glibc raises that threshold, up
    to 32 MB, each time such a block is freed, so after a few 10 MB bodies they come from the
    heap and stay in RSS (an unsigned flood grew the process by 24-57 MB from one run to the
    next). Pinning it keeps the growth to what is held. Nothing to do off glibc."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").mallopt(M_MMAP_THRESHOLD, size)


async def serve_until_signalled(app: web.Application, host: str, port: int) -> None:
    """Serve until SIGTERM or SIGINT, then shut down gracefully: intake answers 503 at once
    while the listener stays open and in-flight attempts finish (``shutdown_grace``); then the
    listener closes, leases are released and the store is closed."""
    from gateway.web.app import make_runner
    from gateway.web.keys import CONFIG, ENGINE

    grace = app[CONFIG].gateway.shutdown_grace
    runner = make_runner(app, handle_signals=False, shutdown_timeout=grace)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        # what start-up loaded (modules, models, the store's metadata) lives as long as the
        # process: keep it out of the cyclic collector's full passes, which otherwise walked
        # it all — a 50-90 ms stall of every delivery and request every few seconds
        gc.freeze()
        pin_mmap_threshold()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        click.echo("stopping: intake answers 503, in-flight attempts finish…", err=True)
        engine = app.get(ENGINE)
        if engine is not None:
            await engine.drain(grace)
    finally:
        await runner.cleanup()


_RELOADS = web.AppKey("reload_tasks", set[asyncio.Task[Any]])


async def _on_started(app: web.Application, *, pid_file: Path) -> None:
    """Write the pid file and reload drop-in plugins on SIGHUP (where there is one)."""
    from gateway.reload import reload_plugins

    _write_pid(pid_file)
    tasks = app[_RELOADS]
    if not hasattr(signal, "SIGHUP"):
        return

    def on_sighup() -> None:
        task = asyncio.create_task(reload_plugins(app), name="reload-plugins")
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, on_sighup)


async def _on_stopped(app: web.Application, *, pid_file: Path) -> None:
    if hasattr(signal, "SIGHUP"):
        asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
    tasks: set[asyncio.Task[Any]] = app[_RELOADS]
    for task in list(tasks):
        with contextlib.suppress(Exception):
            await task
    _remove_pid(pid_file)


def _write_pid(pid_file: Path) -> None:
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.write_text(f"{os.getpid()}\n")


def _remove_pid(pid_file: Path) -> None:
    """Remove the pid file if it is still ours (another gateway may have started since)."""
    with contextlib.suppress(OSError):
        if pid_file.read_text().strip() == str(os.getpid()):
            pid_file.unlink()


@click.group("db", help="Database maintenance.")
def db() -> None:
    pass


@db.command("upgrade", help="Apply pending migrations (the core's and the plugins').")
@config_option
def db_upgrade(config_path: Path) -> None:
    config = load(config_path)

    async def upgrade() -> set[str]:
        store = Store(
            config.gateway.database,
            node_id=config.gateway.node_id,
            base_dir=Path(config.base_dir),
        )
        await store.open()
        try:
            dirs = plugins_for(config).migration_dirs()
            await store.upgrade(dirs)
            return await store.pending_migrations(dirs)
        finally:
            await store.close()

    missing = run(upgrade())
    if missing:
        raise click.ClickException(f"migrations still pending: {', '.join(sorted(missing))}")
    click.echo("database is up to date")


@click.command(
    "simulate", help="Run the simulator of one external system (by its name in the config)."
)
@click.argument("system_name")
@click.option("--port", type=int, default=0, help="Port on 127.0.0.1 (0: any free port).")
@click.option(
    "--fault-profile",
    default="none",
    show_default=True,
    help="none, slow, flaky, rural, blackout, expiring",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--speed", type=float, default=1.0, show_default=True, help="Simulated time speed-up."
)
@click.option(
    "--set", "extra", multiple=True, metavar="KEY=VALUE", help="Simulator-specific setting."
)
@config_option
def simulate(
    system_name: str,
    port: int,
    fault_profile: str,
    seed: int,
    speed: float,
    extra: tuple[str, ...],
    config_path: Path,
) -> None:
    config = load(config_path)
    system = config.systems.get(system_name)
    if system is None:
        raise click.BadParameter(
            f"no system {system_name!r} in {config_path}; known: {', '.join(config.systems)}"
        )
    factory = plugins_for(config).simulator_factory(system.plugin)
    settings: dict[str, object] = {}
    for kv in extra:
        key, sep, value = kv.partition("=")
        if not sep:
            raise click.BadParameter(f"--set {kv!r}: expected KEY=VALUE")
        try:
            settings[key] = json.loads(value)
        except json.JSONDecodeError:
            settings[key] = value
    options = SimulatorOptions(
        gateway_url=f"http://{config.gateway.listen}",
        secret=system.inbound_secret.get_secret_value() if system.inbound_secret else None,
        system=system_name,
        fault_profile=fault_profile,
        seed=seed,
        speed=speed,
        extra=settings,
    )
    configure_logging(config.gateway.log_format)
    app = factory(options)
    click.echo(
        f"simulating {system_name} ({system.plugin}) with fault profile {fault_profile}", err=True
    )
    asyncio.run(_serve(app, port))


async def _serve(app: web.Application, port: int) -> None:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    sockets = getattr(site._server, "sockets", None) or []
    for sock in sockets:
        click.echo(f"listening on http://127.0.0.1:{sock.getsockname()[1]}", err=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


COMMANDS = [run_cmd, db, simulate]
