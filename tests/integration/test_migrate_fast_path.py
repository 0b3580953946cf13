"""Start-up skips importing Alembic when the database is at the files' heads — and only then."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine

from gateway.store import migrate

PLUGIN_VERSIONS = str(
    Path(__file__).resolve().parents[2]
    / "plugins"
    / "social_assistance"
    / "migrations"
    / "versions"
)

NEW_HEAD = '''"""A plugin's later migration."""
from alembic import op
import sqlalchemy as sa

revision: str = "x0002"
down_revision: str | None = "x0001"


def upgrade() -> None:
    op.create_table("x_more", sa.Column("id", sa.Integer, primary_key=True))
'''
FIRST = '''"""A plugin's first migration."""
from alembic import op
import sqlalchemy as sa

revision = "x0001"
down_revision = None
branch_labels = ("x",)


def upgrade() -> None:
    op.create_table("x_first", sa.Column("id", sa.Integer, primary_key=True))
'''


def test_heads_are_read_from_the_files() -> None:
    heads = migrate.file_heads(migrate.version_dirs([PLUGIN_VERSIONS]))
    assert heads == {"0004_sessions_keys", "sa0002"}


def test_a_script_it_cannot_read_for_certain_means_no_shortcut(tmp_path: Path) -> None:
    (tmp_path / "0001_odd.py").write_text('revision = "a" + "b"\ndown_revision = None\n')
    assert migrate.file_heads([str(tmp_path)]) is None
    (tmp_path / "0001_odd.py").write_text('revision = "ab"\n')  # no down_revision at all
    assert migrate.file_heads([str(tmp_path)]) is None


def test_a_merge_revision_revises_both_parents(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text('revision = "a"\ndown_revision = None\n')
    (tmp_path / "b.py").write_text('revision = "b"\ndown_revision = None\n')
    (tmp_path / "m.py").write_text('revision = "m"\ndown_revision = ("a", "b")\n')
    assert migrate.file_heads([str(tmp_path)]) == {"m"}


def test_up_to_date_only_at_exactly_the_heads_and_a_new_script_is_applied(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'gw.db'}")
    extra = tmp_path / "versions"
    extra.mkdir()
    (extra / "x0001.py").write_text(FIRST)
    dirs = [str(extra)]
    with engine.begin() as conn:
        assert not migrate.up_to_date(conn, dirs)  # empty database
        migrate.upgrade(conn, dirs)
    with engine.begin() as conn:
        assert migrate.up_to_date(conn, dirs)
        assert migrate.pending(conn, dirs) == set()
    (extra / "x0002.py").write_text(NEW_HEAD)  # a plugin upgrade ships a migration
    with engine.begin() as conn:
        assert not migrate.up_to_date(conn, dirs)
        migrate.upgrade(conn, dirs)
    with engine.begin() as conn:
        assert migrate.up_to_date(conn, dirs)
        tables = {r[0] for r in conn.exec_driver_sql("SELECT name FROM sqlite_master")}
    assert {"x_first", "x_more", "messages", "deliveries"} <= tables
    engine.dispose()
