"""Building the plugin manager, and the typed facade the rest of the core uses.

The manager is built in a function (never at import time), fresh per app and per test:
add the specs, block names from ``GATEWAY_DISABLE_PLUGINS``, load the ``gateway`` entry
points (bundled plugins come in the same way as an administrator's), load drop-in files,
then ``check_pending()``. A plugin that fails to load is remembered with its reason
(:attr:`Plugins.load_errors`); the gateway refuses to start only if a configured system
needs it.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import inspect
import os
import sys
import traceback
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeVar

import pluggy

from gateway import PROJECT_NAME, hookspecs
from gateway.log import get_logger, mask_text

log = get_logger("gateway.plugins")

if TYPE_CHECKING:
    import click
    from aiohttp import web

    from gateway.config import Config, SystemConfig
    from gateway.connector import Connector
    from gateway.hookspecs import ConnectorFactory, JobFunction
    from gateway.model import Message
    from gateway.simulation import SimulatorFactory

ENTRY_POINT_GROUP = PROJECT_NAME
DISABLE_ENV = "GATEWAY_DISABLE_PLUGINS"

T = TypeVar("T")


async def await_me_maybe(value: T | Awaitable[T]) -> T:
    """Resolve a hook result that may be a value or an awaitable (sync or async plugins)."""
    if inspect.isawaitable(value):
        return await value
    return value


class PluginError(Exception):
    """A plugin problem that stops start-up (names the plugin and the reason)."""


@dataclass(slots=True)
class LoadError:
    name: str
    origin: str
    reason: str


@dataclass(slots=True, frozen=True)
class DropIn:
    """A loaded drop-in file: what it was (its SHA-256) when its module was executed."""

    path: Path
    digest: str
    module: ModuleType


@dataclass(slots=True)
class Registered:
    name: str
    factory: Any
    plugin: str


@dataclass(slots=True)
class Plugins:
    """Typed facade over ``pm.hook``: the only object the core calls plugins through."""

    pm: pluggy.PluginManager
    load_errors: list[LoadError] = field(default_factory=list)
    blocked: set[str] = field(default_factory=set)
    origins: dict[str, str] = field(default_factory=dict)
    dropins: dict[str, DropIn] = field(default_factory=dict)
    _connectors: dict[str, Registered] | None = None
    _simulators: dict[str, Registered] | None = None

    def adopt(self, other: Plugins) -> None:
        """Take over ``other``'s manager and findings (a reload): everything holding this
        facade (the app, the engine, intake) sees the new plugins from the next call on."""
        self.pm = other.pm
        self.load_errors = other.load_errors
        self.blocked = other.blocked
        self.origins = other.origins
        self.dropins = other.dropins
        self._connectors = other._connectors
        self._simulators = other._simulators

    # -- capabilities ----------------------------------------------------------------------
    def _collect(self, hook_name: str, *args: Any) -> dict[str, Registered]:
        found: dict[str, Registered] = {}
        hook = getattr(self.pm.hook, hook_name)
        for impl in hook.get_hookimpls():
            plugin_name = self.pm.get_name(impl.plugin) or repr(impl.plugin)

            def register(name: str, factory: Any, _plugin: str = plugin_name) -> None:
                if name in found:
                    raise PluginError(
                        f"{hook_name}: name {name!r} registered by both "
                        f"{found[name].plugin!r} and {_plugin!r}"
                    )
                found[name] = Registered(name, factory, _plugin)

            impl.function(*args, register) if args else impl.function(register)
        return found

    def connectors(self) -> dict[str, Registered]:
        """Connector factories by name (``[systems.X] plugin = "name"``)."""
        if self._connectors is None:
            self._connectors = self._collect("gateway_register_connectors")
        return self._connectors

    def simulators(self) -> dict[str, Registered]:
        if self._simulators is None:
            self._simulators = self._collect("gateway_register_simulators")
        return self._simulators

    def connector_factory(self, plugin: str) -> ConnectorFactory:
        registered = self.connectors().get(plugin)
        if registered is None and plugin in self.blocked:
            raise PluginError(f"connector plugin {plugin!r} is disabled by {DISABLE_ENV}")
        if registered is None:
            reason = next((e.reason for e in self.load_errors if e.name == plugin), None)
            known = ", ".join(sorted(self.connectors())) or "none"
            extra = f" (it failed to load: {reason})" if reason else f"; known: {known}"
            raise PluginError(f"no connector plugin named {plugin!r}{extra}")
        factory: ConnectorFactory = registered.factory
        return factory

    def build_connector(self, system: SystemConfig) -> Connector:
        factory = self.connector_factory(system.plugin)
        try:
            return factory(system)
        except ValueError as exc:
            raise PluginError(str(exc)) from None

    def simulator_factory(self, plugin: str) -> SimulatorFactory:
        registered = self.simulators().get(plugin)
        if registered is None:
            known = ", ".join(sorted(self.simulators())) or "none"
            raise PluginError(f"no simulator for {plugin!r}; known: {known}")
        factory: SimulatorFactory = registered.factory
        return factory

    def jobs(self, config: Config) -> dict[str, tuple[float, JobFunction]]:
        found: dict[str, tuple[float, JobFunction]] = {}

        def register(name: str, interval: float, job: JobFunction) -> None:
            if name in found:
                raise PluginError(f"gateway_register_jobs: job {name!r} registered twice")
            found[name] = (interval, job)

        self.pm.hook.gateway_register_jobs(register=register, config=config)
        return found

    def add_commands(self, cli: click.Group) -> None:
        self.pm.hook.gateway_register_commands(cli=cli)

    def migration_dirs(self) -> list[str]:
        return [d for dirs in self.pm.hook.gateway_migration_dirs() for d in dirs]

    def openapi_paths(self) -> dict[str, Any]:
        """Path items the plugins document for their admin-API routes (a path twice: error)."""
        merged: dict[str, Any] = {}
        for impl in self.pm.hook.gateway_openapi_paths.get_hookimpls():
            found: Any = impl.function()
            paths: dict[str, Any] = found or {}
            for path, item in paths.items():
                if path in merged:
                    name = self.pm.get_name(impl.plugin)
                    raise PluginError(f"gateway_openapi_paths: {path} documented twice ({name})")
                merged[path] = item
        return merged

    def add_web_routes(self, app: web.Application) -> None:
        self.pm.hook.gateway_web_routes(app=app)

    async def startup(self, app: web.Application) -> None:
        for result in self.pm.hook.gateway_startup(app=app):
            await await_me_maybe(result)

    async def demo_tick(self, app: web.Application, elapsed: float) -> list[str]:
        """The plugins' lines of a ``gateway demo`` summary (see ``gateway_demo_tick``)."""
        lines = []
        for result in self.pm.hook.gateway_demo_tick(app=app, elapsed=elapsed):
            line = await await_me_maybe(result)
            if line:
                lines.append(str(line))
        return lines

    # -- extensions on the intake path -------------------------------------------------------
    @property
    def has_validators(self) -> bool:
        return bool(self.pm.hook.gateway_validate_message.get_hookimpls())

    @property
    def has_transforms(self) -> bool:
        return bool(self.pm.hook.gateway_transform_message.get_hookimpls())

    async def validate(self, message: Message, system: str) -> list[str]:
        errors: list[str] = []
        for impl in self.pm.hook.gateway_validate_message.get_hookimpls():
            value: Any = impl.function(message=message, system=system)
            result: list[str] | None = await await_me_maybe(value)
            errors.extend(result or [])
        return errors

    async def transform(self, message: Message, system: str) -> Message:
        # registration order, each transform receiving the previous one's result
        for impl in self.pm.hook.gateway_transform_message.get_hookimpls():
            value: Any = impl.function(message=message, system=system)
            result: Message | None = await await_me_maybe(value)
            if result is not None:
                message = result
        return message

    async def delivery_outcome(
        self, delivery_id: int, destination: str, dossier_key: str, outcome: str, error: str | None
    ) -> None:
        """Tell every observer; one that raises is logged and the others are still told."""
        for impl in self.pm.hook.gateway_delivery_outcome.get_hookimpls():
            try:
                value: Any = impl.function(
                    delivery_id=delivery_id,
                    destination=destination,
                    dossier_key=dossier_key,
                    outcome=outcome,
                    error=error,
                )
                await await_me_maybe(value)
            except Exception as exc:
                log.warning(
                    "outcome_observer_failed",
                    plugin=self.pm.get_name(impl.plugin),
                    error=mask_text(repr(exc)),
                )

    @property
    def has_outcome_observers(self) -> bool:
        return bool(self.pm.hook.gateway_delivery_outcome.get_hookimpls())

    def describe(self) -> list[dict[str, Any]]:
        """Name, origin, version and hooks of every registered plugin (for ``plugins list``)."""
        rows = []
        for name, plugin in self.pm.list_name_plugin():
            if plugin is None:
                continue
            hooks = sorted(h.name for h in self.pm.get_hookcallers(plugin) or [])
            rows.append(
                {
                    "name": name,
                    "origin": self.origins.get(name, "registered"),
                    "version": getattr(plugin, "__version__", ""),
                    "hooks": hooks,
                }
            )
        return rows


def blocked_names(env: dict[str, str] | None = None) -> set[str]:
    raw = (env if env is not None else os.environ).get(DISABLE_ENV, "")
    return {n.strip() for n in raw.split(",") if n.strip()}


def _load_dropin(path: Path) -> ModuleType:
    name = f"gateway_dropin_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    previous = sys.modules.get(name)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:  # a failed (re)load leaves the previous module, or none
        if previous is not None:
            sys.modules[name] = previous
        else:
            sys.modules.pop(name, None)
        raise
    return module


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def unknown_hooks(pm: pluggy.PluginManager, plugin: object) -> list[str]:
    """Hook implementations of ``plugin`` that name no hook in the specs (a typo, or a hook
    of a newer gateway), unless marked ``optionalhook``."""
    names = []
    for caller in pm.get_hookcallers(plugin) or []:
        if caller.has_spec():
            continue
        impls = [i for i in caller.get_hookimpls() if i.plugin is plugin]
        if any(not i.optionalhook for i in impls):
            names.append(caller.name)
    return sorted(names)


#: hooks the gateway calls synchronously: an ``async def`` implementation would never run
SYNC_HOOKS = frozenset(
    {
        "gateway_register_connectors",
        "gateway_register_simulators",
        "gateway_register_jobs",
        "gateway_register_commands",
        "gateway_migration_dirs",
        "gateway_web_routes",
    }
)


def async_sync_hooks(pm: pluggy.PluginManager, plugin: object) -> list[str]:
    """Hooks in :data:`SYNC_HOOKS` that ``plugin`` implements with ``async def``."""
    return sorted(
        caller.name
        for caller in pm.get_hookcallers(plugin) or []
        if caller.name in SYNC_HOOKS
        and any(
            i.plugin is plugin and inspect.iscoroutinefunction(i.function)
            for i in caller.get_hookimpls()
        )
    )


def _register_checked(pm: pluggy.PluginManager, plugin: object, name: str) -> None:
    """Register a loaded plugin; one that implements an unknown hook, or a synchronous hook
    with ``async def``, is refused on its own (it would otherwise fail ``check_pending()``
    for every plugin, or leave a coroutine that never runs)."""
    pm.register(plugin, name=name)
    unknown, wrongly_async = unknown_hooks(pm, plugin), async_sync_hooks(pm, plugin)
    if unknown or wrongly_async:
        pm.unregister(plugin)
    if unknown:
        raise PluginError(
            f"unknown hook(s) {', '.join(unknown)}: not in gateway.hookspecs "
            "(a typo in the name, or a hook of a newer gateway)"
        )
    if wrongly_async:
        raise PluginError(
            f"{', '.join(wrongly_async)} must be a plain function, not async: the gateway "
            "calls it synchronously"
        )


def dropin_files(directory: Path) -> list[Path]:
    """Single-file plugins in ``plugins_dir``: ``*.py`` directly inside it, no links."""
    if not directory.is_dir():
        return []
    return sorted(
        p
        for p in directory.iterdir()
        if p.suffix == ".py" and p.is_file() and not p.is_symlink() and p.stem.isidentifier()
    )


def build_plugins(
    *,
    extra: Iterable[tuple[str, object]] = (),
    plugins_dir: Path | None = None,
    load_entry_points: bool = True,
    env: dict[str, str] | None = None,
    previous: Plugins | None = None,
) -> Plugins:
    """Build a fresh plugin manager with every available plugin loaded.

    With ``previous`` (a reload), drop-in files that have not changed keep their module
    (nothing is executed again), and a drop-in that now fails to load keeps its previous
    version running, with the failure recorded in :attr:`Plugins.load_errors`.
    """
    pm = pluggy.PluginManager(PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    blocked = blocked_names(env)
    for name in blocked:
        pm.set_blocked(name)
    plugins = Plugins(pm, blocked=blocked)
    if load_entry_points:
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if ep.name in blocked or pm.has_plugin(ep.name):
                continue
            try:
                module = ep.load()
                _register_checked(pm, module, ep.name)
                plugins.origins[ep.name] = f"entry point {ep.value}"
            except Exception as exc:
                plugins.load_errors.append(LoadError(ep.name, f"entry point {ep.value}", _why(exc)))
    if plugins_dir is not None:
        for path in dropin_files(plugins_dir):
            if path.stem not in blocked:
                _add_dropin(plugins, path, previous.dropins if previous else {})
    for name, plugin in extra:
        if name not in blocked:
            try:
                pm.register(plugin, name=name)
            except pluggy.PluginValidationError as exc:
                raise PluginError(f"plugin {name!r}: {_one_line(exc)}") from None
            plugins.origins[name] = "registered in code"
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(str(exc)) from None
    return plugins


def _add_dropin(plugins: Plugins, path: Path, before: dict[str, DropIn]) -> None:
    name, origin = path.stem, f"drop-in {path}"
    old = before.get(name)
    try:
        digest = _digest(path)
        if old is not None and old.path == path and old.digest == digest:
            module = old.module  # unchanged: not executed again
        else:
            module = _load_dropin(path)
        _register_checked(plugins.pm, module, name)
    except Exception as exc:
        reason = _why(exc)
        if old is not None and not plugins.pm.has_plugin(name):
            with contextlib.suppress(Exception):
                _register_checked(plugins.pm, old.module, name)
                plugins.origins[name] = origin
                plugins.dropins[name] = old
                reason += " (the previous version keeps running)"
        plugins.load_errors.append(LoadError(name, origin, reason))
        return
    plugins.origins[name] = origin
    plugins.dropins[name] = DropIn(path, digest, module)


def _one_line(exc: BaseException) -> str:
    """A multi-line exception message (pluggy's validation errors) as one readable line."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return "; ".join(lines) or type(exc).__name__


def _why(exc: BaseException) -> str:
    """Why a plugin failed to load, on one line: validation errors as pluggy words them,
    anything else with the file and line it came from."""
    if isinstance(exc, PluginError | pluggy.PluginValidationError):
        return f"{type(exc).__name__}: {_one_line(exc)}"
    return _one_line(ValueError(_reason(exc)))


def _reason(exc: BaseException) -> str:
    last = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" ({Path(last[0].filename).name}:{last[0].lineno})" if last else ""
    return f"{type(exc).__name__}: {exc}{where}"


def plugins_for(config: Config, **kwargs: Any) -> Plugins:
    """The plugin manager for a config (its ``plugins_dir`` included)."""
    directory = config.gateway.plugins_dir
    return build_plugins(
        plugins_dir=config.resolve_path(directory) if directory else None, **kwargs
    )


HookCallable = Callable[..., Any]
