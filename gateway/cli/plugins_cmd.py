"""``gateway plugins list|check|new|reload``: what is installed, whether it works, a new one.

* ``list`` — every plugin: name, version, where it came from (bundled, an installed package's
  entry point, a drop-in file, code), its connectors and simulators, the configured systems
  using it, its hooks; and the plugins that failed to load, with the reason.
* ``check [NAME]`` — load errors, every hook implementation against the specs, each
  configured system's connector built with its options, and the connector contract suite
  (:mod:`gateway.testing.contract`) against the plugin's simulator, each check bounded in
  time. One line per check (``ok``, ``FAIL`` with the reason, ``skip``); exit status 1 when
  anything failed.
* ``new NAME`` — a pip-installable plugin package (:mod:`gateway.cli.scaffold`).
* ``reload`` — SIGHUP to the running gateway (its pid file), which reloads drop-in plugins
  without dropping traffic (:mod:`gateway.reload`).
"""

from __future__ import annotations

import asyncio
import inspect
import os
import signal
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import click

from gateway.cli.common import config_option, echo_json, json_option, load, table
from gateway.config import Config
from gateway.plugins import (
    ENTRY_POINT_GROUP,
    SYNC_HOOKS,
    PluginError,
    Plugins,
    build_plugins,
    plugins_for,
)

BUNDLED_DISTRIBUTION = "motcua-gateway"
DEFAULT_PID_FILE = Path("var/gateway.pid")


@click.group("plugins", help="Plugins: what is installed, whether it works, a new one.")
def plugins() -> None:
    pass


def _config_if_any(ctx: click.Context, config_path: Path) -> Config | None:
    """The config, or None when the default path is absent (a plugin author's checkout)."""
    source = ctx.get_parameter_source("config_path")
    if not config_path.exists() and source is click.core.ParameterSource.DEFAULT:
        click.echo(
            f"no configuration: {config_path} does not exist and neither --config nor "
            "$GATEWAY_CONFIG names one; showing the installed plugins only (no systems use them)",
            err=True,
        )
        return None
    return load(config_path)


def _build(config: Config | None) -> Plugins:
    return plugins_for(config) if config else build_plugins()


# -- list ---------------------------------------------------------------------------------------


def _distributions() -> dict[str, tuple[str, str]]:
    """Entry-point name -> (distribution name, version)."""
    found = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        dist = ep.dist
        if dist is not None:
            found[ep.name] = (dist.metadata["Name"] or "", dist.version)
    return found


def describe(pm: Plugins, config: Config | None) -> list[dict[str, Any]]:
    """One row per registered plugin (what ``plugins list`` prints)."""
    dists = _distributions()
    connectors, simulators = _safe(pm.connectors), _safe(pm.simulators)
    rows = pm.describe()
    for row in rows:
        name = row["name"]
        origin = str(row["origin"])
        dist_name, dist_version = dists.get(name, ("", ""))
        if origin.startswith("entry point"):
            bundled = dist_name == BUNDLED_DISTRIBUTION
            row["source"] = "bundled" if bundled else f"package {dist_name}"
        elif origin.startswith("drop-in"):
            row["source"] = "drop-in"
        else:
            row["source"] = "code"
        row["version"] = row["version"] or dist_version
        provided = [n for n, r in connectors.items() if r.plugin == name]
        row["connectors"] = ", ".join(provided)
        row["simulators"] = ", ".join(n for n, r in simulators.items() if r.plugin == name)
        systems = config.systems.items() if config else []
        row["systems"] = ", ".join(s for s, cfg in systems if cfg.plugin in provided)
        row["hooks"] = ", ".join(h.removeprefix("gateway_") for h in row["hooks"])
    return rows


def _safe(fn: Any) -> dict[str, Any]:
    try:
        found: dict[str, Any] = fn()
        return found
    except PluginError:
        return {}  # a duplicate name: ``plugins check`` says which


@plugins.command(
    "list", help="Every plugin: name, version, origin, hooks, systems using it, load errors."
)
@config_option
@json_option
@click.pass_context
def plugins_list(ctx: click.Context, config_path: Path, as_json: bool) -> None:
    config = _config_if_any(ctx, config_path)
    pm = _build(config)
    rows = describe(pm, config)
    errors = [{"name": e.name, "origin": e.origin, "error": e.reason} for e in pm.load_errors]
    if as_json:
        echo_json({"plugins": rows, "errors": errors})
        return
    columns = ["name", "version", "source", "origin", "connectors", "simulators", "systems"]
    click.echo(table(rows, [*columns, "hooks"]))
    for e in errors:
        click.echo(f"LOAD ERROR {e['name']} ({e['origin']}): {e['error']}", err=True)


# -- check --------------------------------------------------------------------------------------


@dataclass(slots=True)
class Report:
    lines: list[tuple[str, str, str]] = field(default_factory=list)
    verbose: bool = False

    def add(self, status: str, kind: str, text: str, *, quiet: bool = False) -> None:
        self.lines.append((status, kind, text))
        if not quiet or self.verbose or status == "FAIL":
            click.echo(f"{status:<4} {kind} {text}")

    def count(self, status: str) -> int:
        return sum(1 for s, _, _ in self.lines if s == status)

    @property
    def failed(self) -> bool:
        return self.count("FAIL") > 0


def hook_problems(pm: Plugins, plugin: object) -> list[str]:
    """What is wrong with a loaded plugin's hook implementations (pluggy already refused
    wrong argument names and unknown hooks at load)."""
    problems = []
    for caller in pm.pm.get_hookcallers(plugin) or []:
        for impl in caller.get_hookimpls():
            if impl.plugin is not plugin:
                continue
            if caller.name in SYNC_HOOKS and inspect.iscoroutinefunction(impl.function):
                problems.append(
                    f"{caller.name} is async, but the gateway calls it synchronously "
                    "(its coroutine would never run): make it a plain function"
                )
            if not caller.has_spec() and not impl.optionalhook:
                problems.append(f"{caller.name} is not a gateway hook")
    return problems


def _selected(pm: Plugins, name: str | None) -> set[str]:
    """Plugin names ``check NAME`` is about (NAME may also be a connector name)."""
    everything = {n for n, p in pm.pm.list_name_plugin() if p is not None}
    if name is None:
        return everything | {e.name for e in pm.load_errors}
    chosen = {name} & (everything | {e.name for e in pm.load_errors})
    registered = _safe(pm.connectors).get(name)
    if registered is not None:
        chosen.add(registered.plugin)
    return chosen


def _check_contract(
    pm: Plugins, connector: str, report: Report, timeout: float, verbose: bool
) -> None:
    from gateway.testing.contract import runner_for

    runner = runner_for(pm, connector, check_timeout=timeout)
    results = asyncio.run(runner.run_all())
    for r in results:
        status = {"pass": "ok", "fail": "FAIL", "skip": "skip"}[r.status]
        detail = f": {r.reason}" if r.reason else ""
        report.add(status, "contract", f"{connector}: {r.check}{detail}", quiet=True)
    counts = {s: sum(1 for r in results if r.status == s) for s in ("pass", "fail", "skip")}
    what = "against its simulator" if runner.simulator else "(the plugin ships no simulator)"
    samples = "" if runner.samples else "; no contract_samples(): sample checks skipped"
    summary = (
        f"{connector} {what}: {counts['pass']} passed, {counts['fail']} failed, "
        f"{counts['skip']} skipped{samples}"
    )
    if not verbose:
        click.echo(f"{'FAIL' if counts['fail'] else 'ok':<4} contract {summary}")


@plugins.command(
    "check",
    help="Load plugins, validate their hooks, build every configured system's connector and run "
    "the connector contract suite against each plugin's simulator. Exit status 1 on failure.",
)
@click.argument("name", required=False)
@config_option
@click.option("--no-contract", is_flag=True, help="Skip the connector contract suite.")
@click.option(
    "--timeout",
    type=float,
    default=20.0,
    show_default=True,
    help="Seconds allowed for each contract check (a check that hangs fails).",
)
@click.option("-v", "--verbose", is_flag=True, help="One line per contract check.")
@click.pass_context
def plugins_check(
    ctx: click.Context,
    name: str | None,
    config_path: Path,
    no_contract: bool,
    timeout: float,
    verbose: bool,
) -> None:
    config = _config_if_any(ctx, config_path)
    report = Report(verbose=verbose)
    try:
        pm = _build(config)
    except PluginError as exc:
        report.add("FAIL", "load", str(exc))
        raise click.exceptions.Exit(1) from None
    chosen = _selected(pm, name)
    if name is not None and not chosen:
        known = ", ".join(sorted(n for n, p in pm.pm.list_name_plugin() if p is not None))
        report.add("FAIL", "plugin", f"{name}: not installed (known: {known})")
        raise click.exceptions.Exit(1)
    for e in pm.load_errors:
        if e.name in chosen:
            report.add("FAIL", "load", f"{e.name}: {e.reason}")
    for plugin_name, plugin in sorted(pm.pm.list_name_plugin(), key=lambda t: t[0]):
        if plugin is None or plugin_name not in chosen:
            continue
        problems = hook_problems(pm, plugin)
        hooks = sorted(c.name for c in pm.pm.get_hookcallers(plugin) or [])
        for problem in problems:
            report.add("FAIL", "hooks", f"{plugin_name}: {problem}")
        if not problems:
            listed = ", ".join(h.removeprefix("gateway_") for h in hooks) or "none"
            report.add("ok", "hooks", f"{plugin_name}: {listed}")
    try:
        connectors = pm.connectors()
        pm.simulators()
    except PluginError as exc:
        report.add("FAIL", "register", str(exc))
        raise click.exceptions.Exit(1) from None
    mine = sorted(c for c, r in connectors.items() if r.plugin in chosen)
    for system_name, system in config.systems.items() if config else []:
        if name is not None and system.plugin not in mine and system.plugin not in chosen:
            continue
        try:
            pm.build_connector(system)
            report.add("ok", "system", f"{system_name}: connector {system.plugin!r}")
        except PluginError as exc:
            report.add("FAIL", "system", f"{system_name}: {exc}")
    if not no_contract:
        for connector in mine:
            _check_contract(pm, connector, report, timeout, verbose)
    click.echo(
        f"{report.count('ok')} ok, {report.count('FAIL')} failed, {report.count('skip')} skipped"
    )
    if report.failed:
        raise click.exceptions.Exit(1)


# -- new ----------------------------------------------------------------------------------------


@plugins.command("new", help="Make a pip-installable connector plugin package to start from.")
@click.argument("name")
@click.option(
    "--directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where to write it (default: ./gateway-NAME).",
)
@click.option("--force", is_flag=True, help="Write into a directory that is not empty.")
def plugins_new(name: str, directory: Path | None, force: bool) -> None:
    from gateway.cli.scaffold import ScaffoldError, placeholders, scaffold

    try:
        target = directory or Path(placeholders(name)["dist"])
        installed = build_plugins()
        if installed.pm.has_plugin(name) or name in _safe(installed.connectors):
            raise ScaffoldError(f"a plugin or connector named {name!r} is already installed")
        written = scaffold(name, target, force=force)
    except ScaffoldError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"created {target} ({len(written)} files):")
    for path in written:
        click.echo(f"  {path.relative_to(target)}")
    click.echo(
        "next:\n"
        f"  cd {target} && pip install -e .     # into the gateway's environment\n"
        "  pytest                              # unit tests, contract suite, end-to-end\n"
        f"  gateway plugins check {name}"
    )


# -- reload -------------------------------------------------------------------------------------


def pid_file_option(fn: Any) -> Any:
    return click.option(
        "--pid-file",
        type=click.Path(dir_okay=False, path_type=Path),
        default=DEFAULT_PID_FILE,
        show_default=True,
        envvar="GATEWAY_PID_FILE",
        help="Where `gateway run` writes its process id.",
    )(fn)


@plugins.command(
    "reload",
    help="Reload drop-in plugins in the running gateway (SIGHUP to the pid in --pid-file); "
    "in-flight deliveries finish with the old code.",
)
@pid_file_option
def plugins_reload(pid_file: Path) -> None:
    if not hasattr(signal, "SIGHUP"):
        raise click.ClickException("reloading needs SIGHUP (not available on this platform)")
    try:
        pid = int(pid_file.read_text().strip())
    except FileNotFoundError:
        raise click.ClickException(
            f"no pid file {pid_file}: is `gateway run` running here (see --pid-file)?"
        ) from None
    except ValueError:
        raise click.ClickException(f"{pid_file} does not hold a process id") from None
    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError:
        raise click.ClickException(f"no process {pid} (stale pid file {pid_file})") from None
    click.echo(f"sent SIGHUP to gateway pid {pid}: it reloads drop-in plugins")
    click.echo("its log says what changed (event plugins_reloaded); see `gateway plugins list`")


COMMANDS = [plugins]
