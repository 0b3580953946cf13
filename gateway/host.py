"""What the gateway offers a plugin, behind :mod:`gateway.api` (import it from there).

A plugin gets a :class:`Gateway` handle — from the running app (:meth:`Gateway.of`, in hooks
that receive the app, in jobs through ``ctx.app``) or opened for a command
(:meth:`Gateway.open`) — and plain functions for use inside its own transactions
(:func:`emit_in`, :func:`audit_in`). Every message it emits goes through the engine's one
intake: the same validate and transform hooks, routing, dedupe and ordering locks as a push.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

from aiohttp import web
from prometheus_client import CollectorRegistry
from pydantic import BaseModel, ValidationError
from sqlalchemy import select
from sqlalchemy.engine import Connection

from gateway import pseudonym
from gateway.config import Config, ConfigError
from gateway.connector import Connector
from gateway.engine.intake import Intake, IntakeAnswer
from gateway.engine.intake import emit_in as _emit_in
from gateway.model import Message, ParseResult
from gateway.plugins import Plugins, plugins_for
from gateway.store import IngestResult, IntakeItem, Store
from gateway.store import writes as _writes
from gateway.store.tables import deliveries, messages
from gateway.web.admin.nav import NavEntry
from gateway.web.keys import CONFIG, CONNECTORS, ENGINE, METRICS, NAV, PLUGINS, STORE, need

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

#: A message that passed the intake's checks and is routed, ready for :func:`emit_in`.
PreparedMessage = IntakeItem
#: What storing a message gave: ``uid``, ``duplicate`` (seen before) and ``deliveries``.
Emitted = IngestResult


class PluginStore(Protocol):
    """The store as a plugin may use it: transactions on plain SQLAlchemy Core.

    ``fn(connection, *args)`` is synchronous and runs inside one transaction (``write``) or
    one read transaction (``read``); a write that raises keeps nothing. Database trouble is
    :class:`gateway.store.StoreUnavailable` (re-exported as ``api.StoreUnavailable``).
    """

    async def read(self, fn: Callable[..., T], *args: Any) -> T: ...

    async def write(self, fn: Callable[..., T], *args: Any, inline: bool = False) -> T: ...

    async def audit(self, actor: str, action: str, target: str, detail: str = "") -> None: ...


class MessageRejected(Exception):
    """A message a plugin emitted failed the intake's checks (text, validate/transform hooks,
    or no route); ``errors`` says why, masked."""

    def __init__(self, ref: str, errors: Sequence[str]) -> None:
        super().__init__(f"{ref}: " + "; ".join(errors))
        self.ref = ref
        self.errors = tuple(errors)


# -- messages -------------------------------------------------------------------------------------
async def prepare_message(
    config: Config, plugins: Plugins, source: str, message: Message
) -> PreparedMessage:
    """Run ``message`` through the intake's checks and routing, as from ``source`` (usually the
    plugin's name): the text check, every validate and transform hook, the route table.

    :raises MessageRejected: a check refused it (nothing is stored).
    """
    items, rejected = await Intake(config, plugins).prepare(source, ParseResult(messages=[message]))
    if rejected:
        raise MessageRejected(rejected[0].ref, rejected[0].errors)
    return items[0]


def emit_in(conn: Connection, prepared: PreparedMessage, now: float | None = None) -> Emitted:
    """Store a prepared message and its deliveries inside the caller's write transaction (so
    the plugin's own rows and the message commit together), under the intake's ordering and
    dedupe locks. A message seen before (same source, id and content) is a duplicate."""
    return _emit_in(conn, [prepared], time.time() if now is None else now)[0]


def audit_in(
    conn: Connection, entries: Sequence[tuple[str, str, str, str]], now: float | None = None
) -> None:
    """Write ``(actor, action, target, detail)`` entries to the audit log in the caller's
    transaction (shown on the dashboard's audit page)."""
    _writes.audit(conn, entries, now)


# -- read views of the core's tables (inside a plugin's read or write transaction) ---------------
def first_payloads(conn: Connection, event: str, dossier_keys: Iterable[str]) -> dict[str, Any]:
    """The payload of the first stored message of ``event`` per dossier key (of those given),
    decoded from JSON; keys without one are absent."""
    m = messages.c
    found: dict[str, Any] = {}
    keys = sorted(set(dossier_keys))
    for i in range(0, len(keys), 500):
        rows = conn.execute(
            select(m.dossier_key, m.payload)
            .where(m.event == event, m.dossier_key.in_(keys[i : i + 500]))
            .order_by(m.id)
        )
        for row in rows:
            found.setdefault(row.dossier_key, json.loads(row.payload))
    return found


def delivery_statuses(conn: Connection, message_uids: Iterable[str]) -> dict[str, str]:
    """The status (``pending``, ``in_flight``, ``delivered``, ``dead``) of the delivery of each
    message uid given (the last one when a message went to several destinations); a message
    without a delivery (not routed) is absent."""
    uids = sorted(set(message_uids))
    out: dict[str, str] = {}
    m, d = messages.c, deliveries.c
    for i in range(0, len(uids), 500):
        q = (
            select(m.uid, d.status)
            .select_from(messages.join(deliveries, d.message_id == m.id))
            .where(m.uid.in_(uids[i : i + 500]))
            .order_by(d.id)
        )
        for uid, status in conn.execute(q):
            out[uid] = status
    return out


# -- configuration --------------------------------------------------------------------------------
def plugin_settings(config: Config, section: str, model: type[M]) -> M:
    """The plugin's own top-level table (``[section]``) validated by ``model``.

    :raises ConfigError: one line naming the file, the key and the problem.
    """
    try:
        return model.model_validate(config.plugin_section(section))
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"])
        problem = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        raise ConfigError(config.path, f"{section}.{key}" if key else section, problem) from None


# -- the running app ------------------------------------------------------------------------------
def store_of(app: web.Application) -> PluginStore:
    """The running app's store (set when the app starts)."""
    return need(app, STORE)


def config_of(app: web.Application) -> Config:
    """The running app's configuration."""
    return need(app, CONFIG)


def connectors_of(app: web.Application) -> Mapping[str, Connector]:
    """The configured systems' connectors, by system name."""
    return need(app, CONNECTORS)


def metrics_registry_of(app: web.Application) -> CollectorRegistry:
    """The app's Prometheus registry (``/metrics``): add a plugin's own gauges to it."""
    return need(app, METRICS).registry


def add_nav(app: web.Application, entry: NavEntry) -> None:
    """Add an entry to the dashboard's navigation (in ``gateway_web_routes``)."""
    need(app, NAV).append(entry)


class Gateway:
    """A plugin's handle on the gateway: its config, the store, and the one intake.

    Stable: :attr:`config`, :attr:`store`, :attr:`plugins` (pass it on, its methods are not
    part of the API), :meth:`settings`, :meth:`prepare`, :meth:`emit`, :meth:`wake`.
    """

    def __init__(
        self, config: Config, store: PluginStore, plugins: Plugins, app: web.Application | None
    ) -> None:
        self.config = config
        self.store = store
        self.plugins = plugins
        self._app = app

    @classmethod
    def of(cls, app: web.Application) -> Gateway:
        """The handle of a running app (in ``gateway_startup``, a route, a job's ``ctx.app``)."""
        return cls(need(app, CONFIG), need(app, STORE), need(app, PLUGINS), app)

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, config: Config) -> AsyncIterator[Gateway]:
        """For a command: open the configured store (migrated, the plugins' branches too) and
        close it after. Messages emitted here are stored; a running gateway delivers them
        within its sweep (``poll_interval``)."""
        plugins = plugins_for(config)
        store = Store(
            config.gateway.database,
            node_id=f"{config.gateway.node_id}-cli",
            base_dir=Path(config.base_dir),  # a relative path is the config file's folder's
        )
        await store.open()
        try:
            await store.upgrade(plugins.migration_dirs())
            # the gateway's pseudonyms (a message emitted here keyed by a person)
            pseudonym.install_key(await store.ensure_key(pseudonym.KEY_NAME))
            yield cls(config, store, plugins, None)
        finally:
            await store.close()

    def settings(self, section: str, model: type[M]) -> M:
        """See :func:`plugin_settings`."""
        return plugin_settings(self.config, section, model)

    async def prepare(self, source: str, message: Message) -> PreparedMessage:
        """See :func:`prepare_message`."""
        return await prepare_message(self.config, self.plugins, source, message)

    async def emit(self, source: str, message: Message) -> IntakeAnswer:
        """Emit one message through the engine's one intake and return its answer once it is
        durable (``answer.accepted`` / ``duplicates`` / ``rejected``). In a running gateway it
        joins the group commit; in a command it is stored in its own transaction."""
        engine = self._app.get(ENGINE) if self._app is not None else None
        if engine is not None:
            return await engine.submit(source, ParseResult(messages=[message]))
        intake = Intake(self.config, self.plugins)
        items, rejected = await intake.prepare(source, ParseResult(messages=[message]))
        answer = IntakeAnswer(rejected=[{"ref": r.ref, "errors": list(r.errors)} for r in rejected])
        if items:
            for result in await self.store.write(_emit_in, items, time.time()):
                entry = {"ref": result.ref, "id": result.uid}
                (answer.duplicates if result.duplicate else answer.accepted).append(entry)
                answer.new_deliveries += result.deliveries
        return answer

    def wake(self) -> None:
        """Tell a running engine there is new work (after :func:`emit_in`); no-op otherwise."""
        engine = self._app.get(ENGINE) if self._app is not None else None
        if engine is not None:
            engine.wake(None)
