"""The ``gateway`` command's click group: the core's commands and the plugins'
(``gateway_register_commands``)."""

from __future__ import annotations

import sys

import click

from gateway import __version__
from gateway.cli import demo, ops, plugins_cmd, system
from gateway.config import DEFAULT_CONFIG_PATH, ConfigError
from gateway.plugins import PluginError, build_plugins


def build_cli() -> click.Group:
    @click.group(
        help="Integration gateway for social-assistance dossiers.\n\n"
        "Every command reads the configuration named by --config, else $GATEWAY_CONFIG, "
        f"else {DEFAULT_CONFIG_PATH}.",
        epilog="Environment: GATEWAY_CONFIG — the configuration file when --config is not given.",
    )
    @click.version_option(__version__, prog_name="gateway")
    def cli() -> None:
        pass

    for command in (*system.COMMANDS, *plugins_cmd.COMMANDS, demo.demo, *ops.COMMANDS):
        cli.add_command(command)
    try:
        build_plugins().add_commands(cli)
    except PluginError as exc:  # the core commands still work (plugins check explains)
        click.echo(f"warning: plugin commands not loaded: {exc}", err=True)
    return cli


def main(argv: list[str] | None = None) -> None:
    cli = build_cli()
    try:
        # without standalone mode click returns (not raises) the code of click.exceptions.Exit
        code = cli.main(args=argv, prog_name="gateway", standalone_mode=False)
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except PluginError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    if isinstance(code, int) and code:
        sys.exit(code)
