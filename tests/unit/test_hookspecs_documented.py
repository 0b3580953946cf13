"""Meta-test of the plugin contract (STYLE.md item 8): every hook in gateway/hookspecs.py is
documented — each parameter as ``:param name:`` and a ``:returns:`` line — and is named in at
least one test file. Hooks are discovered from the module, so a new hook that is
undocumented or untested fails here."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gateway import PROJECT_NAME, hookspecs

TESTS = Path(__file__).resolve().parents[1]
SPEC_MARK = f"{PROJECT_NAME}_spec"  # what pluggy's HookspecMarker sets on a spec


def _hooks() -> dict[str, Callable[..., Any]]:
    return {
        name: fn
        for name, fn in vars(hookspecs).items()
        if inspect.isfunction(fn) and hasattr(fn, SPEC_MARK)
    }


HOOKS = _hooks()


def _test_sources() -> dict[Path, str]:
    me = Path(__file__).resolve()
    return {
        path: path.read_text(encoding="utf-8")
        for path in sorted(TESTS.rglob("*.py"))
        if path.resolve() != me and ".venv" not in path.parts
    }


def test_hooks_are_discovered() -> None:
    # guards against the discovery silently finding nothing (the tests below would pass)
    assert len(HOOKS) >= 10
    assert "gateway_register_connectors" in HOOKS
    assert all(name.startswith("gateway_") for name in HOOKS)


def test_every_hook_function_in_the_module_is_a_spec() -> None:
    public = {
        name
        for name, fn in vars(hookspecs).items()
        if inspect.isfunction(fn)
        and name.startswith("gateway_")
        and fn.__module__ == hookspecs.__name__
    }
    assert public == set(HOOKS), "a gateway_* function in hookspecs.py lacks @hookspec"


@pytest.mark.parametrize("name", sorted(HOOKS))
def test_hook_is_documented(name: str) -> None:
    fn = HOOKS[name]
    doc = inspect.getdoc(fn) or ""
    assert doc, f"{name} has no docstring"
    summary = doc.splitlines()[0]
    assert summary.strip().endswith("."), f"{name}: the first line should be a sentence"
    missing = [p for p in inspect.signature(fn).parameters if f":param {p}:" not in doc]
    assert not missing, f"{name}: no ':param <name>:' for {missing}"
    documented = set(re.findall(r":param (\w+):", doc))
    extra = documented - set(inspect.signature(fn).parameters)
    assert not extra, f"{name}: documents parameters it does not take: {sorted(extra)}"
    assert re.search(r"^:returns:", doc, re.MULTILINE), f"{name}: no ':returns:' line"


@pytest.mark.parametrize("name", sorted(HOOKS))
def test_hook_is_fully_typed(name: str) -> None:
    sig = inspect.signature(HOOKS[name])
    untyped = [p.name for p in sig.parameters.values() if p.annotation is inspect.Parameter.empty]
    assert not untyped, f"{name}: untyped parameters {untyped}"
    assert sig.return_annotation is not inspect.Signature.empty, f"{name}: no return annotation"


@pytest.mark.parametrize("name", sorted(HOOKS))
def test_hook_is_not_firstresult(name: str) -> None:
    # DESIGN.md §4: implementations may be async, and a coroutine is never None
    opts = getattr(HOOKS[name], SPEC_MARK)
    assert not opts.get("firstresult"), f"{name} is firstresult"


@pytest.mark.parametrize("name", sorted(HOOKS))
def test_hook_is_named_in_a_test(name: str) -> None:
    pattern = re.compile(rf"\b{re.escape(name)}\b")
    users = [p.relative_to(TESTS) for p, text in _test_sources().items() if pattern.search(text)]
    assert users, f"no test under {TESTS} mentions {name}: write one that exercises it"
