"""Meta-test: every module under ``plugins/`` (and every Python file ``gateway plugins new``
writes) imports the gateway only through its public surface — :mod:`gateway.api` and the
contract (``gateway`` for ``hookimpl``, :mod:`gateway.hookspecs`, :mod:`gateway.model`,
:mod:`gateway.connector`, :mod:`gateway.xmlsafe`, :mod:`gateway.testing`)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from gateway.cli.scaffold import render

ROOT = Path(__file__).resolve().parents[2]
PUBLIC = (
    "gateway.api",
    "gateway.hookspecs",
    "gateway.model",
    "gateway.connector",
    "gateway.xmlsafe",
    "gateway.testing",
)
#: what ``from gateway import ...`` may take (the package itself is the hook marker's home)
FROM_GATEWAY = {"hookimpl", "PROJECT_NAME", "__version__"}


def _public(module: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in PUBLIC)


def core_imports(source: str) -> list[str]:
    """``module`` (or ``gateway.name``) for every import of the core outside the surface."""
    bad: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                top = alias.name.split(".")[0]
                if top == "gateway" and not _public(alias.name):
                    bad.append(alias.name)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "gateway":
                bad += [f"gateway.{a.name}" for a in node.names if a.name not in FROM_GATEWAY]
            elif node.module.startswith("gateway.") and not _public(node.module):
                bad.append(node.module)
    return bad


def _sources() -> list[Path]:
    # the plugins shipped, and the second domain plugin the tests load as a drop-in
    return sorted((ROOT / "plugins").rglob("*.py")) + sorted(
        (ROOT / "tests" / "domain_plugin").glob("*.py")
    )


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_plugin_imports_only_the_public_api(path: Path) -> None:
    bad = core_imports(path.read_text(encoding="utf-8"))
    assert bad == [], f"{path.relative_to(ROOT)} imports core internals: {bad}"


def test_a_scaffolded_plugin_imports_only_the_public_api() -> None:
    files = {k: v for k, v in render("sample_plugin").items() if k.endswith(".py")}
    assert "sample_plugin/connector.py" in files
    bad = {name: found for name, text in files.items() if (found := core_imports(text))}
    assert bad == {}


def test_the_check_sees_every_way_of_importing_the_core() -> None:
    sample = """
import gateway.store.writes
from gateway.store import Store
from gateway import store, hookimpl
from gateway.web.keys import STORE
from gateway.api import Gateway
from gateway.testing.contract import ConnectorContract
import gateway.model
from . import sibling
def later():
    from gateway.engine.intake import Intake
"""
    assert core_imports(sample) == [
        "gateway.store.writes",
        "gateway.store",
        "gateway.store",
        "gateway.web.keys",
        "gateway.engine.intake",
    ]


def test_the_domain_plugin_is_covered() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in _sources()}
    assert "plugins/social_assistance/service.py" in names
    assert "plugins/social_assistance/web.py" in names
    assert "tests/domain_plugin/funeral_support.py" in names
