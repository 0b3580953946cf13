"""The plugin contract: every hook the gateway calls, typed and documented.

Hooks come in two styles:

* **capability hooks** use the register-callback style: the gateway calls
  ``gateway_register_connectors(register)`` and the plugin calls ``register(name, factory)``
  for each thing it provides. Duplicate names are a start-up error naming both plugins.
* **extension hooks** (validation, transforms, outcome observers, web routes, jobs) are
  called for every implementation; implementations may be plain functions or coroutines
  (the core resolves both with :func:`gateway.plugins.await_me_maybe`). No hook is
  ``firstresult``: a coroutine is never ``None``, so ``firstresult`` and async do not mix.

A hook implementation that raises is contained: the error is recorded against the message
or job it was working on, and the gateway and the other systems keep running.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import pluggy

from gateway import PROJECT_NAME

if TYPE_CHECKING:
    import click
    from aiohttp import web

    from gateway.config import Config, SystemConfig
    from gateway.connector import Connector
    from gateway.model import Message
    from gateway.simulation import SimulatorFactory

hookspec = pluggy.HookspecMarker(PROJECT_NAME)

ConnectorFactory = Callable[["SystemConfig"], "Connector"]
RegisterConnector = Callable[[str, ConnectorFactory], None]
RegisterSimulator = Callable[[str, "SimulatorFactory"], None]
JobFunction = Callable[["JobContext"], Awaitable[None]]
RegisterJob = Callable[[str, float, JobFunction], None]


class JobContext:
    """What a scheduled job receives: the running app (store, config, plugins) and its name."""

    def __init__(self, name: str, app: web.Application) -> None:
        self.name = name
        self.app = app


# ---------------------------------------------------------------------------------------
# Capabilities (called once when the plugin manager is built or the app starts)
# ---------------------------------------------------------------------------------------


@hookspec
def gateway_register_connectors(register: RegisterConnector) -> None:
    """Register the connectors this plugin provides.

    Called once per plugin manager. Call ``register(name, factory)`` for each connector;
    ``name`` is what ``[systems.X] plugin = "..."`` refers to and ``factory(system_config)``
    returns a :class:`gateway.connector.Connector` for one configured system.

    :param register: the callback; a name registered twice is a start-up error.
    :returns: nothing.
    """


@hookspec
def gateway_register_simulators(register: RegisterSimulator) -> None:
    """Register simulators of external systems (for ``gateway simulate``, demos and tests).

    Call ``register(connector_name, factory)`` where ``factory(SimulatorOptions)`` returns an
    :class:`aiohttp.web.Application` that speaks the system's wire format, with fault knobs.

    :param register: the callback; a name registered twice is a start-up error.
    :returns: nothing.
    """


@hookspec
def gateway_register_jobs(register: RegisterJob, config: Config) -> None:
    """Register scheduled jobs that run inside ``gateway run``.

    Call ``register(name, interval_seconds, job)``; ``job(ctx: JobContext)`` is a coroutine
    function run every ``interval_seconds`` (counted from the end of a run) by the engine's
    scheduler, **once per cluster**: every node schedules it, one node runs each run, and if
    that node dies another runs it. A job that raises is logged and runs again at its next
    interval.

    :param register: the callback.
    :param config: the validated configuration (read your own section from it).
    :returns: nothing.
    """


@hookspec
def gateway_register_commands(cli: click.Group) -> None:
    """Add subcommands to the ``gateway`` command line.

    Called when the CLI is built. Add commands with ``cli.add_command(...)``.

    :param cli: the top-level click group.
    :returns: nothing.
    """


@hookspec
def gateway_migration_dirs() -> list[str]:
    """Directories of Alembic migration scripts a plugin needs for its own tables.

    Called by ``gateway db upgrade`` and at start-up. Each directory is an Alembic version
    location; its first revision must declare its own ``branch_labels``.

    :returns: a list of absolute directory paths (may be empty).
    """
    return []


# ---------------------------------------------------------------------------------------
# Application lifecycle
# ---------------------------------------------------------------------------------------


@hookspec
def gateway_startup(app: web.Application) -> Awaitable[None] | None:
    """Called when the web application starts, after the store is open and migrated.

    Prepare plugin state here (routes must be added earlier, in ``gateway_web_routes``).

    :param app: the running application: ``Gateway.of(app)``, ``store_of(app)``,
        ``config_of(app)`` (:mod:`gateway.api`).
    :returns: nothing, or an awaitable.
    """


@hookspec
def gateway_demo_tick(app: web.Application, elapsed: float) -> Awaitable[str | None] | str | None:
    """Called by ``gateway demo`` at every summary line, with the seconds since it started.

    A plugin drives its own part of the demonstration here (for example, once dossiers have
    been decided, build and send a month's payment lists) and says how it goes in one line of
    the terminal summary. Never called by ``gateway run``.

    :param app: the running demo application (``gateway.api.Gateway.of(app)``).
    :param elapsed: seconds since the demo started serving.
    :returns: one summary line (or None for nothing to say), or an awaitable of it.
    """


@hookspec
def gateway_openapi_paths() -> dict[str, Any]:
    """OpenAPI 3.1 path items for the admin-API routes a plugin adds under ``/api/v1/``.

    Called by ``python -m gateway.web.admin.openapi`` when it writes the committed document
    (``gateway/web/openapi.json``); every ``/api/v1`` route must be documented there. Path items
    may refer to the core document's components (``#/components/schemas/Error``).

    :returns: a mapping of path (``/api/v1/...``) to its path item (may be empty).
    """
    return {}


@hookspec
def gateway_web_routes(app: web.Application) -> None:
    """Add routes to the web application (dashboard pages, API endpoints) before it starts.

    :param app: the application being built; add to ``app.router``.
    :returns: nothing.
    """


# ---------------------------------------------------------------------------------------
# Intake (called for every inbound message, before it is stored)
# ---------------------------------------------------------------------------------------


@hookspec
def gateway_validate_message(message: Message, system: str) -> list[str] | Awaitable[list[str]]:
    """Extra validation of an inbound message after its connector parsed it.

    :param message: the parsed, NFC-normalised message.
    :param system: the source system's name.
    :returns: a list of readable errors; any error rejects the item (the others go on).
    """
    return []


@hookspec
def gateway_transform_message(
    message: Message, system: str
) -> Message | Awaitable[Message | None] | None:
    """Change a message before it is stored and routed (enrich, fix a known quirk).

    Implementations run in registration order, each receiving the previous one's result.

    :param message: the message as parsed (or as the previous transform returned it).
    :param system: the source system's name.
    :returns: the replacement message, or ``None`` to leave it unchanged.
    """


# ---------------------------------------------------------------------------------------
# Delivery (called after every attempt is recorded)
# ---------------------------------------------------------------------------------------


@hookspec
def gateway_delivery_outcome(
    delivery_id: int,
    destination: str,
    dossier_key: str,
    outcome: str,
    error: str | None,
) -> Awaitable[None] | None:
    """Observe the outcome of one delivery attempt, after it is committed to the log.

    Observers must be quick; they run outside the delivery path and their errors are logged
    and otherwise ignored.

    :param delivery_id: the delivery's id.
    :param destination: the destination system's name.
    :param dossier_key: the dossier key (MaHoSo) of the message.
    :param outcome: ``delivered``, ``retry_scheduled`` or ``dead``.
    :param error: the masked error message, or ``None`` on success.
    :returns: nothing, or an awaitable.
    """
