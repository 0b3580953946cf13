"""``gateway.api`` is a face of re-exports only, and every name on it is documented in
docs/hooks.md ("The plugin API")."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

from gateway import api

ROOT = Path(__file__).resolve().parents[2]


def test_the_api_module_only_re_exports() -> None:
    tree = ast.parse(inspect.getsource(api))
    for node in tree.body:
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue  # the docstring
        if isinstance(node, ast.Import | ast.ImportFrom):
            continue
        assert isinstance(node, ast.Assign), ast.dump(node)[:80]
        assert [t.id for t in node.targets if isinstance(t, ast.Name)] == ["__all__"]


def test_every_name_is_importable_and_listed_once() -> None:
    assert len(set(api.__all__)) == len(api.__all__)
    for name in api.__all__:
        assert getattr(api, name) is not None


def test_every_name_is_documented_in_the_hooks_reference() -> None:
    reference = (ROOT / "docs" / "hooks.md").read_text(encoding="utf-8")
    section = reference.split("## The plugin API (`gateway.api`)")[1]
    for name in api.__all__:
        row = re.search(rf"^\| `{re.escape(name)}` \| (.+) \|$", section, re.M)
        assert row is not None, f"{name} is not in docs/hooks.md"
        assert len(row.group(1).strip()) > 10, f"{name} has no description"
