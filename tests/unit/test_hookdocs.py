"""The hooks reference (docs/hooks.md and the index in docs/writing-a-connector.md) is
generated from gateway/hookspecs.py and committed up to date; every hook is in it with each
of its parameters. (That every hook is documented and tested: test_hookspecs_documented.)"""

from __future__ import annotations

import inspect
import shutil
from pathlib import Path

import pytest

from gateway.testing import hookdocs

ROOT = Path(__file__).resolve().parents[2]


def test_the_committed_docs_are_up_to_date(capsys: pytest.CaptureFixture[str]) -> None:
    code = hookdocs.main(["--root", str(ROOT), "--check"])
    assert code == 0, capsys.readouterr().err


def test_every_hook_and_parameter_is_in_the_reference() -> None:
    reference = (ROOT / hookdocs.HOOKS_DOC).read_text(encoding="utf-8")
    guide = (ROOT / hookdocs.GUIDE).read_text(encoding="utf-8")
    found = hookdocs.hooks()
    assert len(found) >= 10
    for _section, fn in found:
        assert f"### `{fn.__name__}`" in reference
        assert f"[`{fn.__name__}`](hooks.md#{fn.__name__})" in guide
        section = reference.split(f"### `{fn.__name__}`")[1].split("### ")[0]
        for param in inspect.signature(fn).parameters:
            assert f"| `{param}` |" in section, f"{fn.__name__}: {param} not documented"
        assert "**Returns:**" in section


def test_sections_follow_the_banners_of_hookspecs() -> None:
    sections = {fn.__name__: section for section, fn in hookdocs.hooks()}
    assert sections["gateway_register_connectors"].startswith("Capabilities")
    assert sections["gateway_validate_message"].startswith("Intake")
    assert sections["gateway_delivery_outcome"].startswith("Delivery")


def test_a_stale_doc_is_detected_and_regenerated(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "docs").mkdir()
    for doc in (hookdocs.HOOKS_DOC, hookdocs.GUIDE):
        shutil.copy(ROOT / doc, tmp_path / doc)
    hooks_md = tmp_path / hookdocs.HOOKS_DOC
    hooks_md.write_text(hooks_md.read_text().replace("gateway_startup", "gateway_start"))
    assert hookdocs.main(["--root", str(tmp_path), "--check"]) == 1
    assert "docs/hooks.md is out of date" in capsys.readouterr().err
    assert hookdocs.main(["--root", str(tmp_path)]) == 0
    assert hookdocs.main(["--root", str(tmp_path), "--check"]) == 0


def test_the_guide_needs_its_markers() -> None:
    with pytest.raises(ValueError, match="markers"):
        hookdocs.guide_with_index("# a guide without the index\n")
