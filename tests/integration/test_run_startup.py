"""``gateway run``'s start-up choices: a SQLite database that needs migrating is migrated by
a short-lived child (Alembic never loads into the long-running process, about 10 MB), and the
event loop is uvloop's where it is installed, asyncio's on request."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gateway.cli.system import event_loop_factory

ROOT = Path(__file__).resolve().parents[2]


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(
        textwrap.dedent(
            f"""
            [gateway]
            listen = "127.0.0.1:0"
            database = "sqlite:///{tmp_path}/gw.db"
            node_id = "t"
            """
        ),
        encoding="utf-8",
    )
    return path


def _migrate_here(config: Path) -> str:
    """Run the start-up migration step in a fresh interpreter; report what it loaded."""
    script = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        from gateway.cli.common import load
        from gateway.cli.system import _migrate_in_child
        from gateway.plugins import plugins_for
        config = load(Path({str(config)!r}))
        _migrate_in_child(Path({str(config)!r}), config.gateway.database,
                          plugins_for(config).migration_dirs())
        print("alembic loaded" if "alembic" in sys.modules else "alembic not loaded")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, check=True
    )
    return done.stdout.strip()


def test_a_new_database_is_migrated_by_a_child_and_alembic_stays_out(tmp_path: Path) -> None:
    config = _config(tmp_path)
    assert _migrate_here(config) == "alembic not loaded"
    # the child did the work: the schema is there and up to date
    from sqlalchemy import create_engine

    from gateway.cli.common import load
    from gateway.plugins import plugins_for
    from gateway.store import migrate

    dirs = plugins_for(load(config)).migration_dirs()
    engine = create_engine(f"sqlite:///{tmp_path}/gw.db")
    try:
        with engine.connect() as conn:
            assert migrate.up_to_date(conn, dirs)
    finally:
        engine.dispose()
    # a restart finds it up to date: no child, nothing loaded
    assert _migrate_here(config) == "alembic not loaded"


def test_a_failed_migration_stops_the_start_with_the_reason(tmp_path: Path) -> None:
    config = _config(tmp_path)
    (tmp_path / "gw.db").write_bytes(b"this is not a database" * 100)
    script = textwrap.dedent(
        f"""
        from pathlib import Path
        from gateway.cli.system import _migrate_in_child
        _migrate_in_child(Path({str(config)!r}), "sqlite:///{tmp_path}/gw.db", [])
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, check=False
    )
    assert done.returncode != 0
    assert "not a database" in done.stderr


def test_the_event_loop_is_uvloops_unless_asked_for_asyncio(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    uvloop = pytest.importorskip("uvloop")
    monkeypatch.delenv("GATEWAY_LOOP", raising=False)
    assert event_loop_factory() is uvloop.new_event_loop
    monkeypatch.setenv("GATEWAY_LOOP", "asyncio")
    assert event_loop_factory() is None
    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        assert not isinstance(runner.get_loop(), uvloop.Loop)
    assert os.environ["GATEWAY_LOOP"] == "asyncio"


def test_the_workbook_library_loads_only_when_a_workbook_is_written(tmp_path: Path) -> None:
    """openpyxl is 175 modules and ~9 MB: a gateway that never writes an .xlsx never loads it."""
    config = _config(tmp_path)
    script = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        from gateway.cli.common import load
        from gateway.web.app import create_app
        create_app(load(Path({str(config)!r})))
        print("openpyxl loaded" if "openpyxl" in sys.modules else "openpyxl not loaded")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert done.stdout.strip() == "openpyxl not loaded"
