"""The public API for plugins: the one module (with the contract) a plugin imports.

Everything here is a re-export; what is not re-exported here may change in any release.
The contract modules a plugin may also import are :mod:`gateway` (``hookimpl``),
:mod:`gateway.hookspecs`, :mod:`gateway.model`, :mod:`gateway.connector`,
:mod:`gateway.xmlsafe` and :mod:`gateway.testing` (tests and kits). A meta-test
(``tests/unit/test_plugin_imports.py``) keeps every module under ``plugins/`` on that surface.
The example to copy is ``tests/domain_plugin/funeral_support.py``; docs/writing-a-connector.md
§9 walks through it.

* **Emit a message** through the engine's one intake (validate and transform hooks, routing,
  dedupe, per-dossier ordering locks): :meth:`Gateway.emit`; or, to store it in the same
  transaction as the plugin's own rows, :meth:`Gateway.prepare` /
  :func:`prepare_message` then :func:`emit_in` inside ``store.write``.
* **Own tables and migrations**: declare SQLAlchemy Core tables on the plugin's own
  ``MetaData`` and return an Alembic branch's ``versions`` directory from the
  ``gateway_migration_dirs`` hook; ``gateway db upgrade`` and start-up apply it.
* **A transaction**: :class:`PluginStore` (``await store.write(fn, *args)`` /
  ``await store.read(fn, *args)`` with a sync ``fn(conn, ...)``); :func:`audit_in`; read views
  of the core's tables: :func:`first_payloads`, :func:`delivery_statuses`.
* **Schedule a job**: the ``gateway_register_jobs(register, config)`` hook,
  ``register(name, interval_seconds, job)`` with ``job(ctx: JobContext)``; ``Gateway.of(ctx.app)``
  inside the job. The engine's scheduler (:mod:`gateway.engine.scheduler`) runs each job once
  per cluster: every node schedules it, one node (elected in the store) runs each run, and
  another runs it if that node dies.
* **Pages, API routes, CLI commands, nav entries** through hooks: ``gateway_web_routes``
  (:func:`protect`, :func:`render_page`, :func:`add_templates`, :func:`add_nav`,
  :class:`NavEntry`, :class:`ApiError`), ``gateway_openapi_paths``,
  ``gateway_register_commands`` (:func:`config_option`, :func:`run`, :func:`table`,
  :func:`with_store`, :meth:`Gateway.open`).
* **Words and formats**: the dashboard's one catalogue (:data:`MESSAGES`, :func:`translate`,
  :func:`has`; a plugin's strings are keys there, both languages), :func:`both` for a text
  stored for every reader (``"vi / en"``), CLDR formats through Babel (:func:`format_money`,
  :func:`format_number`, :func:`format_date`, :func:`format_month`, :func:`format_compact`),
  server-rendered SVG charts (:func:`hbar_chart`, :func:`column_chart`, drawn by the core's
  ``_charts.html``).
* **Its own config section**: :func:`plugin_settings` (or :meth:`Gateway.settings`) with a
  pydantic model the plugin declares; errors name the file and the key.
"""

from gateway import hookimpl
from gateway.cli.common import config_option, run, table, with_store
from gateway.config import Config, ConfigError, SystemConfig, load_config
from gateway.engine.intake import IntakeAnswer
from gateway.faults import FAULTS_KEY, PROFILES, FaultProfile, install_faults
from gateway.hookspecs import JobContext, RegisterConnector, RegisterJob, RegisterSimulator
from gateway.host import (
    Emitted,
    Gateway,
    MessageRejected,
    PluginStore,
    PreparedMessage,
    add_nav,
    audit_in,
    config_of,
    connectors_of,
    delivery_statuses,
    emit_in,
    first_payloads,
    metrics_registry_of,
    plugin_settings,
    prepare_message,
    store_of,
)
from gateway.log import get_logger, mask_id, mask_name, mask_text
from gateway.plugins import Plugins, plugins_for
from gateway.pseudonym import pseudonym
from gateway.signing import sign
from gateway.simulation import SimulatorOptions
from gateway.store import StoreUnavailable
from gateway.web.admin import NavEntry, Principal, add_templates, principal, protect, render_page
from gateway.web.admin.charts import column_chart, hbar_chart
from gateway.web.admin.i18n import (
    LANGS,
    MESSAGES,
    both,
    format_compact,
    format_date,
    format_money,
    format_month,
    format_number,
    has,
    translate,
)
from gateway.web.admin.pages import lang_of
from gateway.web.errors import ApiError

__all__ = [
    "FAULTS_KEY",
    "LANGS",
    "MESSAGES",
    "PROFILES",
    "ApiError",
    "Config",
    "ConfigError",
    "Emitted",
    "FaultProfile",
    "Gateway",
    "IntakeAnswer",
    "JobContext",
    "MessageRejected",
    "NavEntry",
    "PluginStore",
    "Plugins",
    "PreparedMessage",
    "Principal",
    "RegisterConnector",
    "RegisterJob",
    "RegisterSimulator",
    "SimulatorOptions",
    "StoreUnavailable",
    "SystemConfig",
    "add_nav",
    "add_templates",
    "audit_in",
    "both",
    "column_chart",
    "config_of",
    "config_option",
    "connectors_of",
    "delivery_statuses",
    "emit_in",
    "first_payloads",
    "format_compact",
    "format_date",
    "format_money",
    "format_month",
    "format_number",
    "get_logger",
    "has",
    "hbar_chart",
    "hookimpl",
    "install_faults",
    "lang_of",
    "load_config",
    "mask_id",
    "mask_name",
    "mask_text",
    "metrics_registry_of",
    "plugin_settings",
    "plugins_for",
    "prepare_message",
    "principal",
    "protect",
    "pseudonym",
    "render_page",
    "run",
    "sign",
    "store_of",
    "table",
    "translate",
    "with_store",
]
