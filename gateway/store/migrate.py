"""Alembic migrations run on the gateway's own connection (``gateway db upgrade``).

Alembic (and Mako) take a good part of a second to import: at start-up the gateway first
compares the database's ``alembic_version`` rows with the heads read straight from the
migration files (:func:`up_to_date`) and imports Alembic only when something is to be done
or the files say anything it cannot read for certain.
"""

from __future__ import annotations

import ast
import os
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

MIGRATIONS = Path(__file__).parent / "migrations"
#: PostgreSQL advisory lock held while migrating: nodes started together migrate one by one
#: (the others then find the schema up to date); DDL is transactional there
MIGRATION_LOCK = 0x6761_7465_7761_7901
VERSION_TABLE = "alembic_version"


def version_dirs(extra_dirs: list[str] | None = None) -> list[str]:
    return [str(MIGRATIONS / "versions"), *(extra_dirs or [])]


def alembic_config(extra_dirs: list[str] | None = None) -> AlembicConfig:
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("path_separator", "os")
    cfg.set_main_option("version_locations", os.pathsep.join(version_dirs(extra_dirs)))
    return cfg


def upgrade(connection: Connection, extra_dirs: list[str] | None = None) -> None:
    """Apply every pending migration (all branches: the core's and the plugins')."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK})
    if up_to_date(connection, extra_dirs):
        return
    from alembic import command

    cfg = alembic_config(extra_dirs)
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, "heads")


def pending(connection: Connection, extra_dirs: list[str] | None = None) -> set[str]:
    """Heads of the scripts that the database has not reached (empty when up to date)."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config(extra_dirs))
    current = set(MigrationContext.configure(connection).get_current_heads())
    return set(script.get_heads()) - current


def up_to_date(connection: Connection, extra_dirs: list[str] | None = None) -> bool:
    """Whether the database is at exactly the heads of the migration files — decided
    without Alembic. False whenever in doubt (then Alembic decides and does the work)."""
    heads = file_heads(version_dirs(extra_dirs))
    if heads is None or not inspect(connection).has_table(VERSION_TABLE):
        return False
    current = {
        row[0] for row in connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}"))
    }
    return current == heads


def file_heads(dirs: list[str]) -> set[str] | None:
    """The head revisions of the migration scripts in ``dirs`` (revisions no other script
    revises), read with :mod:`ast`; None if any script's ``revision`` / ``down_revision``
    is not a plain literal."""
    revisions: set[str] = set()
    revised: set[str] = set()
    for directory in dirs:
        for path in sorted(Path(directory).glob("*.py")):
            if path.name.startswith("_"):
                continue
            found = _revision_of(path)
            if found is None:
                return None
            revision, down = found
            revisions.add(revision)
            revised.update(down)
    return revisions - revised if revisions else None


def _revision_of(path: Path) -> tuple[str, set[str]] | None:
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return None
    values: dict[str, object] = {}
    for node in tree.body:
        target, value = None, None
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign):
            target, value = node.target, node.value
        if isinstance(target, ast.Name) and target.id in ("revision", "down_revision"):
            if target.id in values or value is None:
                return None
            try:
                values[target.id] = ast.literal_eval(value)
            except ValueError:
                return None
    revision, down = values.get("revision"), values.get("down_revision", "missing")
    if not isinstance(revision, str) or down == "missing":
        return None
    if down is None:
        return revision, set()
    if isinstance(down, str):
        return revision, {down}
    if isinstance(down, tuple | list) and all(isinstance(d, str) for d in down):
        return revision, set(down)
    return None
