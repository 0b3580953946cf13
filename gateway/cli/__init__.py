"""The ``gateway`` command (click): :mod:`gateway.cli.app`. Plugins add subcommands with
``gateway_register_commands``.

This package's ``__init__`` stays light: ``python -m gateway.cli`` imports it before
:mod:`gateway.cli.entry` runs, and the entry point decides what the process imports first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway.cli.app import build_cli, main

__all__ = ["build_cli", "main"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from gateway.cli import app

        return getattr(app, name)
    raise AttributeError(f"module 'gateway.cli' has no attribute {name!r}")
