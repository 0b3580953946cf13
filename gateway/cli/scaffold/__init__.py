"""``gateway plugins new NAME``: a pip-installable connector plugin package to start from.

The templates beside this module (``*.tmpl``, shipped as package data) become a package
whose tests and ``gateway plugins check NAME`` pass as generated: a connector (parse,
render, send, classify), a simulator, contract samples, a sample config section, a demo
configuration and tests. Placeholders are ``{{name}}`` (the connector and module name),
``{{dist}}`` (the distribution name), ``{{Class}}`` (the class-name prefix), ``{{title}}`` and
``{{gateway_version}}``.
"""

from __future__ import annotations

import keyword
import re
from importlib import resources
from pathlib import Path

from gateway import __version__

#: template -> path in the new package (``{name}`` is the module name)
FILES: dict[str, str] = {
    "pyproject.toml.tmpl": "pyproject.toml",
    "README.md.tmpl": "README.md",
    "plugin_init.py.tmpl": "{name}/__init__.py",
    "connector.py.tmpl": "{name}/connector.py",
    "simulator.py.tmpl": "{name}/simulator.py",
    "samples.py.tmpl": "{name}/samples.py",
    "config_section.toml.tmpl": "config/{name}.toml",
    "demo.toml.tmpl": "config/demo.toml",
    "test_contract.py.tmpl": "tests/test_contract.py",
    "test_connector.py.tmpl": "tests/test_connector.py",
    "test_gateway.py.tmpl": "tests/test_gateway.py",
}

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class ScaffoldError(Exception):
    """The package cannot be made (a bad name, a directory in the way)."""


def check_name(name: str) -> None:
    if not _NAME.match(name) or keyword.iskeyword(name) or name.endswith("_"):
        raise ScaffoldError(
            f"{name!r} is not a usable plugin name: lower-case letters, digits and '_', "
            "starting with a letter (it becomes the module and the connector name), "
            "for example civil_status"
        )
    if name in {"gateway", "plugins", "tests", "test"}:
        raise ScaffoldError(f"{name!r} would shadow a module of the gateway; choose another")


def placeholders(name: str) -> dict[str, str]:
    words = name.split("_")
    return {
        "name": name,
        "dist": "gateway-" + name.replace("_", "-"),
        "Class": "".join(w.capitalize() for w in words),
        "title": " ".join(words).capitalize() + " system",
        "gateway_version": __version__,
    }


def render(name: str) -> dict[str, str]:
    """The new package's files (relative path -> text)."""
    check_name(name)
    values = placeholders(name)
    here = resources.files(__package__ or "gateway.cli.scaffold")
    out: dict[str, str] = {}
    for template, target in FILES.items():
        text = here.joinpath(template).read_text(encoding="utf-8")
        for key, value in values.items():
            text = text.replace("{{" + key + "}}", value)
        out[target.format(name=name)] = text
    return out


def scaffold(name: str, directory: Path, *, force: bool = False) -> list[Path]:
    """Write the package into ``directory`` (created; it must be empty unless ``force``)."""
    files = render(name)
    if directory.exists() and any(directory.iterdir()) and not force:
        raise ScaffoldError(f"{directory} exists and is not empty (use --force to write into it)")
    written = []
    for relative, text in files.items():
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
