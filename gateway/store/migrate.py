"""Alembic migrations run on the gateway's own connection (``gateway db upgrade``)."""

from __future__ import annotations

import os
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection

MIGRATIONS = Path(__file__).parent / "migrations"
#: PostgreSQL advisory lock held while migrating: nodes started together migrate one by one
#: (the others then find the schema up to date); DDL is transactional there
MIGRATION_LOCK = 0x6761_7465_7761_7901


def alembic_config(extra_dirs: list[str] | None = None) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("path_separator", "os")
    dirs = [str(MIGRATIONS / "versions"), *(extra_dirs or [])]
    cfg.set_main_option("version_locations", os.pathsep.join(dirs))
    return cfg


def upgrade(connection: Connection, extra_dirs: list[str] | None = None) -> None:
    """Apply every pending migration (all branches: the core's and the plugins')."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK})
    cfg = alembic_config(extra_dirs)
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, "heads")


def pending(connection: Connection, extra_dirs: list[str] | None = None) -> set[str]:
    """Heads of the scripts that the database has not reached (empty when up to date)."""
    script = ScriptDirectory.from_config(alembic_config(extra_dirs))
    current = set(MigrationContext.configure(connection).get_current_heads())
    return set(script.get_heads()) - current
