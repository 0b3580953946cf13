"""Meta-tests: the product packages hold no test-only code and no ``assert`` guards.

* ``assert`` disappears under ``python -O``: a runtime guard must raise a real error.
* The product (``gateway/`` outside ``gateway/testing``, and ``plugins/``) does not import the
  test kit, except ``gateway plugins check``, which runs the connector contract on purpose.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: product modules allowed to import the test kit, and why
KIT_USERS = {"gateway/cli/plugins_cmd.py": "`gateway plugins check` runs the contract suite"}


def _product() -> list[Path]:
    core = [p for p in sorted((ROOT / "gateway").rglob("*.py")) if "testing" not in p.parts]
    return core + sorted((ROOT / "plugins").rglob("*.py"))


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def asserts(source: str) -> list[int]:
    return [n.lineno for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Assert)]


def kit_imports(source: str) -> list[str]:
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        names = (
            [a.name for a in node.names]
            if isinstance(node, ast.Import)
            else [node.module or ""]
            if isinstance(node, ast.ImportFrom) and node.level == 0
            else []
        )
        found += [n for n in names if n == "gateway.testing" or n.startswith("gateway.testing.")]
    return found


@pytest.mark.parametrize("path", _product(), ids=_rel)
def test_no_assert_as_a_runtime_guard(path: Path) -> None:
    assert asserts(path.read_text(encoding="utf-8")) == [], f"assert in {_rel(path)}"


@pytest.mark.parametrize("path", _product(), ids=_rel)
def test_the_product_does_not_import_the_test_kit(path: Path) -> None:
    if _rel(path) in KIT_USERS:
        return
    assert kit_imports(path.read_text(encoding="utf-8")) == [], _rel(path)


def test_the_checks_can_fail() -> None:
    sample = "import gateway.testing.faults\nfrom gateway.testing import sink\nassert x\n"
    assert asserts(sample) == [3]
    assert kit_imports(sample) == ["gateway.testing.faults", "gateway.testing"]


def test_test_only_modules_are_out_of_the_packages() -> None:
    assert not (ROOT / "gateway/store/throwaway.py").exists()
    assert not (ROOT / "plugins/social_assistance/fixtures.py").exists()
    assert (ROOT / "gateway/testing/postgres.py").exists()
    assert (ROOT / "tests/sa_fixtures.py").exists()
