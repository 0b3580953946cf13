"""``gateway run``, ``db upgrade``, ``plugins list|check``, ``simulate``."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import click
from aiohttp import web

from gateway.cli.common import config_option, echo_json, json_option, load, run, table
from gateway.log import configure_logging
from gateway.plugins import PluginError, build_plugins, plugins_for
from gateway.simulation import SimulatorOptions
from gateway.store import Store


@click.command("run", help="Run the gateway: intake, delivery workers, admin API and dashboard.")
@config_option
def run_cmd(config_path: Path) -> None:
    from gateway.web.app import create_app

    config = load(config_path)
    configure_logging(config.gateway.log_format)
    app = create_app(config)
    click.echo(
        f"gateway listening on http://{config.gateway.listen} (config {config_path})", err=True
    )
    web.run_app(
        app,
        host=config.gateway.host,
        port=config.gateway.port,
        shutdown_timeout=config.gateway.shutdown_grace,
        print=None,
        access_log=None,
    )


@click.group("db", help="Database maintenance.")
def db() -> None:
    pass


@db.command("upgrade", help="Apply pending migrations (the core's and the plugins').")
@config_option
def db_upgrade(config_path: Path) -> None:
    config = load(config_path)

    async def upgrade() -> set[str]:
        store = Store(config.gateway.database, node_id=config.gateway.node_id)
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


@click.group("plugins", help="Plugins: what is installed and whether it works.")
def plugins() -> None:
    pass


@plugins.command(
    "list", help="Every plugin: name, version, origin, hooks, systems using it, load errors."
)
@config_option
@json_option
def plugins_list(config_path: Path, as_json: bool) -> None:
    config = load(config_path) if config_path.exists() else None
    pm = plugins_for(config) if config else build_plugins()
    rows = pm.describe()
    connectors = pm.connectors()
    for row in rows:
        provided = [n for n, r in connectors.items() if r.plugin == row["name"]]
        row["connectors"] = ", ".join(provided)
        row["systems"] = ", ".join(
            s for s, cfg in (config.systems.items() if config else []) if cfg.plugin in provided
        )
        row["hooks"] = ", ".join(h.removeprefix("gateway_") for h in row["hooks"])
    errors = [{"name": e.name, "origin": e.origin, "error": e.reason} for e in pm.load_errors]
    if as_json:
        echo_json({"plugins": rows, "errors": errors})
        return
    click.echo(table(rows, ["name", "version", "origin", "connectors", "systems", "hooks"]))
    for e in errors:
        click.echo(f"LOAD ERROR {e['name']} ({e['origin']}): {e['error']}", err=True)


@plugins.command("check", help="Check that every configured system's plugin loads and builds.")
@config_option
def plugins_check(config_path: Path) -> None:
    config = load(config_path)
    pm = plugins_for(config)
    failed = False
    for e in pm.load_errors:
        click.echo(f"FAIL load {e.name}: {e.reason}")
        failed = True
    for name, system in config.systems.items():
        try:
            pm.build_connector(system)
            click.echo(f"ok   system {name}: connector {system.plugin!r}")
        except PluginError as exc:
            click.echo(f"FAIL system {name}: {exc}")
            failed = True
    if failed:
        raise click.exceptions.Exit(1)


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


COMMANDS = [run_cmd, db, plugins, simulate]
