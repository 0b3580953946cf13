"""``gateway demo``: the whole flow on one machine.

The gateway on its own SQLite database (``var/demo.db``, fresh each run unless ``--keep``) and
a simulator for every configured system whose plugin ships one, each on the loopback port of
its ``base_url``; dossiers flow end to end continuously; plugins drive their own part through
``gateway_demo_tick`` (the social-assistance plugin sends a month's payment lists to the post
office); a summary line every few seconds; Ctrl-C stops everything cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
from aiohttp import web

from gateway.cli.common import config_option, load
from gateway.config import Config, ConfigError
from gateway.log import configure_logging
from gateway.model import VN_TZ
from gateway.plugins import PluginError, Plugins, plugins_for
from gateway.simulation import SimulatorOptions
from gateway.web.app import create_app, make_runner
from gateway.web.keys import CONFIG, STORE

DEMO_SECRETS = (
    "motcua.secret",
    "motcua.password",
    "registry.secret",
    "post_office.secret",
    "admin.token",
)


def private_dir(directory: Path) -> None:
    """``directory`` (and missing parents) made, and narrowed to 0700."""
    directory.mkdir(parents=True, mode=0o700, exist_ok=True)
    if directory.stat().st_mode & 0o077:
        directory.chmod(0o700)


def demo_database(var: Path, *, keep: bool) -> Path:
    """``var/demo.db``: the demo's own database (never the configured one), removed first
    (with its WAL files) unless ``keep``. ``var/`` is 0700 (the database is created 0600)."""
    private_dir(var)
    path = var / "demo.db"
    if not keep:
        for found in (path, var / "demo.db-wal", var / "demo.db-shm"):
            found.unlink(missing_ok=True)
    return path


def demo_config(config: Config, database: Path) -> Config:
    """``config`` on the demo's database."""
    gateway = config.gateway.model_copy(update={"database": f"sqlite:///{database}"})
    return config.model_copy(update={"gateway": gateway})


def ensure_demo_secrets(directory: Path) -> list[Path]:
    """Create the demo's shared secrets (random) where missing; return new files.

    The folder and its parent (``var/``, which holds the database) are 0700; each secret is
    created 0600 by ``open`` itself (``O_EXCL``), so it is never readable by others, not even
    between creating and narrowing it. Secrets an older version left readable are narrowed."""
    private_dir(directory.parent)
    private_dir(directory)
    created = []
    for name in DEMO_SECRETS:
        path = directory / name
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            if path.stat().st_mode & 0o077:
                path.chmod(0o600)
            continue
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(secrets.token_urlsafe(24) + "\n")
        created.append(path)
    return created


@click.command("demo", help="Run the gateway with simulators of the three systems, end to end.")
@click.option(
    "--fault-profile",
    default="none",
    show_default=True,
    help="none, slow, flaky, rural, blackout, expiring",
)
@click.option(
    "--rate",
    type=float,
    default=1.0,
    show_default=True,
    help="New dossiers per second at the desk.",
)
@click.option(
    "--speed",
    type=float,
    default=30.0,
    show_default=True,
    help="Simulated time speed-up (appraisal, payouts).",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--keep", is_flag=True, help="Keep var/demo.db from the last run (default: start afresh)."
)
@click.option(
    "--duration", type=float, default=0.0, help="Stop after this many seconds (0: until Ctrl-C)."
)
@click.option(
    "--every", type=float, default=3.0, show_default=True, help="Seconds between summary lines."
)
@config_option
def demo(
    fault_profile: str,
    rate: float,
    speed: float,
    seed: int,
    duration: float,
    every: float,
    keep: bool,
    config_path: Path,
) -> None:
    var = (config_path.parent / ".." / "var").resolve()
    for path in ensure_demo_secrets(var / "secrets"):
        click.echo(f"created demo secret {path}", err=True)
    config = demo_config(load(config_path), demo_database(var, keep=keep))
    log_path = Path(config.base_dir) / ".." / "var" / "demo.log"
    private_dir(log_path.parent)
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    configure_logging("json", stream=os.fdopen(log_fd, "a", encoding="utf-8"))
    plugins = plugins_for(config)
    try:
        asyncio.run(
            _demo(config, plugins, fault_profile, rate, speed, seed, duration, every, log_path)
        )
    except OSError as exc:
        raise click.ClickException(
            f"cannot start the demo: {exc.strerror or exc} (is a port in use?)"
        ) from None


async def _demo(
    config: Config,
    plugins: Plugins,
    fault_profile: str,
    rate: float,
    speed: float,
    seed: int,
    duration: float,
    every: float,
    log_path: Path,
) -> None:
    runners: list[web.AppRunner] = []
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    app = create_app(config, plugins=plugins)
    try:
        runner = make_runner(app, handle_signals=False)
        await runner.setup()
        await web.TCPSite(runner, config.gateway.host, config.gateway.port).start()
        runners.append(runner)
        sims = await _start_simulators(config, plugins, fault_profile, rate, speed, seed, runners)
        _banner(config, sims, fault_profile, log_path)
        started = time.monotonic()
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=every)
            elapsed = time.monotonic() - started
            click.echo(await _summary(app))
            for line in await plugins.demo_tick(app, elapsed):
                click.echo(f"{'':11}{line}")
            if duration and elapsed >= duration:
                break
    finally:
        click.echo(
            "stopping: simulators first, then the gateway (in-flight attempts finish)…", err=True
        )
        for runner in reversed(runners):
            await runner.cleanup()
        click.echo("stopped", err=True)


async def _serve(app: web.Application, host: str, port: int) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


async def _start_simulators(
    config: Config,
    plugins: Plugins,
    fault_profile: str,
    rate: float,
    speed: float,
    seed: int,
    runners: list[web.AppRunner],
) -> dict[str, str]:
    started: dict[str, str] = {}
    for name, system in config.systems.items():
        url = urlsplit(system.base_url)
        if url.hostname not in ("127.0.0.1", "localhost") or url.port is None:
            continue
        try:
            factory = plugins.simulator_factory(system.plugin)
        except PluginError:
            continue
        options = SimulatorOptions(
            gateway_url=f"http://{config.gateway.listen}",
            secret=system.inbound_secret.get_secret_value() if system.inbound_secret else None,
            system=name,
            fault_profile=fault_profile,
            seed=seed,
            speed=speed,
            extra=_simulator_extra(system.plugin, system.options, rate / speed),
        )
        try:
            runners.append(await _serve(factory(options), url.hostname, url.port))
        except OSError as exc:
            raise ConfigError(
                config.path,
                f"systems.{name}.base_url",
                f"port {url.port} is in use: {exc.strerror}",
            ) from None
        started[name] = system.base_url
    return started


def _simulator_extra(plugin: str, options: dict[str, Any], rate: float) -> dict[str, Any]:
    """Simulator settings from the system's config (``rate`` is in simulated time)."""
    if plugin == "one_stop_shop":
        password = options.get("password")
        return {
            "rate": rate,
            "username": options.get("username", "gateway"),
            "password": str(password) if password else "secret",
            "madonvi": options.get("madonvi", "000.00.12.H06"),
            # the desk's clock starts now, so a second demo run brings new dossiers
            "start": datetime.now(VN_TZ).replace(second=0, microsecond=0).isoformat(),
        }
    if plugin == "post_office":
        return {"unpaid_every": 5}  # every 5th line unpaid: reconciliation shows, whatever the seed
    return {}


def _banner(config: Config, sims: dict[str, str], fault_profile: str, log_path: Path) -> None:
    base = f"http://{config.gateway.listen}"
    click.echo(
        f"gateway     {base}   (dashboard {base}/ · API {base}/api/v1/ · metrics {base}/metrics)"
    )
    for name, url in sims.items():
        click.echo(f"simulator   {name:<12} {url}")
    click.echo(f"database    {config.gateway.database}   (the demo's own; --keep keeps it)")
    token = log_path.parent / "secrets" / "admin.token"
    if token.exists():
        click.echo(f"sign in     with the admin token in {token.resolve()}")
    click.echo(
        f"fault profile {fault_profile}; structured log in {log_path.resolve()}; Ctrl-C stops"
    )


async def _summary(app: web.Application) -> str:
    store = app[STORE]
    received = await store.message_counts()
    depths = await store.destination_depths()
    destinations = {d for r in app[CONFIG].routes for d in r.to} | set(depths)
    now = datetime.now(VN_TZ).strftime("%H:%M:%S")
    got = " · ".join(f"{k} {v}" for k, v in sorted(received.items())) or "none yet"
    delivered = (
        " · ".join(f"{d} {depths.get(d, {}).get('delivered', 0)}" for d in sorted(destinations))
        or "none yet"
    )
    waiting = sum(c.get("pending", 0) + c.get("in_flight", 0) for c in depths.values())
    dead = sum(c.get("dead", 0) for c in depths.values())
    return f"[{now}] received: {got} | delivered: {delivered} | waiting {waiting} | dead {dead}"
