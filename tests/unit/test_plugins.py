"""The plugin manager (DESIGN.md §4, STYLE.md 2-5): one way in through the ``gateway`` entry
points, drop-in files, blocking, validation, load errors, and the typed facade."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from aiohttp import web

from gateway import hookimpl
from gateway.config import SystemConfig
from gateway.connector import Connector
from gateway.plugins import (
    DISABLE_ENV,
    ENTRY_POINT_GROUP,
    PluginError,
    await_me_maybe,
    blocked_names,
    build_plugins,
    dropin_files,
)
from gateway.simulation import SimulatorOptions


class _Conn(Connector):
    pass


class ConnectorPlugin:
    """Registers one connector under ``name``."""

    def __init__(self, name: str) -> None:
        self.name = name

    @hookimpl
    def gateway_register_connectors(self, register: Callable[..., None]) -> None:
        register(self.name, _Conn)


@pytest.fixture(autouse=True)
def _forget_dropin_modules() -> Iterator[None]:
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        if name.startswith("gateway_dropin_"):
            del sys.modules[name]


def system(plugin: str, name: str = "x", **extra: Any) -> SystemConfig:
    return SystemConfig(name=name, plugin=plugin, **extra)


# -- entry points -------------------------------------------------------------------------------


def test_bundled_http_json_comes_in_through_the_entry_point_group() -> None:
    plugins = build_plugins()
    assert ENTRY_POINT_GROUP == "gateway"
    assert plugins.pm.has_plugin("http_json")
    assert plugins.origins["http_json"] == "entry point plugins.http_json"
    assert plugins.load_errors == []
    registered = plugins.connectors()["http_json"]
    assert registered.plugin == "http_json"
    connector = plugins.build_connector(system("http_json", base_url="http://h"))
    assert type(connector).__name__ == "HttpJsonConnector"


def test_without_entry_points_nothing_is_loaded() -> None:
    plugins = build_plugins(load_entry_points=False)
    assert not plugins.pm.has_plugin("http_json")
    with pytest.raises(PluginError, match="no connector plugin named 'http_json'; known: none"):
        plugins.build_connector(system("http_json"))


def test_each_build_is_a_fresh_manager() -> None:
    first = build_plugins(extra=[("mine", ConnectorPlugin("mine"))])
    second = build_plugins()
    assert first.pm is not second.pm
    assert "mine" in first.connectors() and "mine" not in second.connectors()


def test_describe_lists_name_origin_version_and_hooks() -> None:
    plugins = build_plugins(extra=[("mine", ConnectorPlugin("mine"))])
    rows = {r["name"]: r for r in plugins.describe()}
    assert rows["http_json"]["origin"].startswith("entry point")
    assert rows["http_json"]["version"] == "0.1.0"
    assert rows["http_json"]["hooks"] == ["gateway_register_connectors"]
    assert rows["mine"]["origin"] == "registered in code"


# -- duplicates ---------------------------------------------------------------------------------


def test_two_plugins_registering_the_same_connector_name_is_an_error_naming_both() -> None:
    plugins = build_plugins(
        extra=[("alpha", ConnectorPlugin("dup")), ("beta", ConnectorPlugin("dup"))]
    )
    with pytest.raises(PluginError) as info:
        plugins.connectors()
    text = str(info.value)
    assert "'dup'" in text and "'alpha'" in text and "'beta'" in text


def test_a_plugin_reusing_a_bundled_connector_name_is_an_error_naming_both() -> None:
    plugins = build_plugins(extra=[("mine", ConnectorPlugin("http_json"))])
    with pytest.raises(PluginError) as info:
        plugins.build_connector(system("http_json"))
    assert "'http_json'" in str(info.value) and "'mine'" in str(info.value)


def test_same_plugin_name_registered_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="mine"):
        build_plugins(extra=[("mine", ConnectorPlugin("a")), ("mine", ConnectorPlugin("b"))])


# -- blocking -----------------------------------------------------------------------------------


def test_blocked_names_parse_the_environment_variable() -> None:
    assert blocked_names({DISABLE_ENV: " http_json , other,,"}) == {"http_json", "other"}
    assert blocked_names({}) == set()


def test_disable_env_blocks_a_bundled_plugin() -> None:
    plugins = build_plugins(env={DISABLE_ENV: "http_json"})
    assert not plugins.pm.has_plugin("http_json")
    assert plugins.pm.is_blocked("http_json")
    assert "http_json" not in plugins.connectors()
    with pytest.raises(PluginError) as info:
        plugins.build_connector(system("http_json"))
    assert "'http_json' is disabled by GATEWAY_DISABLE_PLUGINS" in str(info.value)


def test_disable_env_defaults_to_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DISABLE_ENV, "http_json")
    assert not build_plugins().pm.has_plugin("http_json")
    monkeypatch.delenv(DISABLE_ENV)
    assert build_plugins().pm.has_plugin("http_json")


def test_disable_env_blocks_plugins_registered_in_code() -> None:
    plugins = build_plugins(extra=[("mine", ConnectorPlugin("mine"))], env={DISABLE_ENV: "mine"})
    assert "mine" not in plugins.connectors()


# -- validation ---------------------------------------------------------------------------------


class WrongArgumentName:
    @hookimpl
    def gateway_validate_message(self, msg: Any, system: str) -> list[str]:
        return []


class UnknownHook:
    @hookimpl
    def gateway_validate_mesage(self, message: Any, system: str) -> list[str]:
        return []


def test_hookimpl_with_a_wrong_argument_name_is_a_plugin_error() -> None:
    with pytest.raises(PluginError) as info:
        build_plugins(extra=[("typo_plugin", WrongArgumentName())])
    text = str(info.value)
    assert "typo_plugin" in text and "gateway_validate_message" in text and "msg" in text


def test_hookimpl_for_an_unknown_hook_is_a_plugin_error() -> None:
    with pytest.raises(PluginError, match="gateway_validate_mesage"):
        build_plugins(extra=[("typo_plugin", UnknownHook())])


# -- drop-in files and load errors --------------------------------------------------------------

GOOD_DROPIN = """
from gateway import hookimpl
from gateway.connector import Connector

class DropConnector(Connector):
    pass

@hookimpl
def gateway_register_connectors(register):
    register("{name}", DropConnector)
"""


def test_broken_dropin_is_recorded_with_its_reason_and_the_rest_load(tmp_path: Path) -> None:
    (tmp_path / "good_dropin.py").write_text(GOOD_DROPIN.format(name="dropped"))
    (tmp_path / "broken_dropin.py").write_text("raise RuntimeError('cannot start: no licence')\n")
    plugins = build_plugins(plugins_dir=tmp_path)
    assert plugins.pm.has_plugin("good_dropin")
    assert plugins.origins["good_dropin"] == f"drop-in {tmp_path / 'good_dropin.py'}"
    assert "dropped" in plugins.connectors() and "http_json" in plugins.connectors()
    [error] = plugins.load_errors
    assert error.name == "broken_dropin"
    assert error.origin == f"drop-in {tmp_path / 'broken_dropin.py'}"
    assert "RuntimeError: cannot start: no licence" in error.reason
    assert "broken_dropin.py:1" in error.reason


def test_dropin_with_a_wrong_argument_name_is_a_load_error(tmp_path: Path) -> None:
    (tmp_path / "typo_dropin.py").write_text(
        "from gateway import hookimpl\n\n"
        "@hookimpl\n"
        "def gateway_validate_message(msg, system):\n"
        "    return []\n"
    )
    plugins = build_plugins(plugins_dir=tmp_path)
    [error] = plugins.load_errors
    assert error.name == "typo_dropin"
    assert "msg" in error.reason
    assert not plugins.pm.has_plugin("typo_dropin")


def test_building_a_connector_of_a_plugin_that_failed_to_load_gives_the_reason(
    tmp_path: Path,
) -> None:
    (tmp_path / "payer.py").write_text("import no_such_module_here\n")
    plugins = build_plugins(plugins_dir=tmp_path)
    with pytest.raises(PluginError) as info:
        plugins.build_connector(system("payer"))
    text = str(info.value)
    assert "'payer'" in text and "failed to load" in text and "no_such_module_here" in text


def test_dropin_files_are_only_identifier_named_py_files_directly_inside(tmp_path: Path) -> None:
    (tmp_path / "ok_plugin.py").write_text(GOOD_DROPIN.format(name="ok"))
    (tmp_path / "bad-name.py").write_text("raise RuntimeError('must not be imported')\n")
    (tmp_path / "1st.py").write_text("raise RuntimeError('must not be imported')\n")
    (tmp_path / "notes.txt").write_text("raise RuntimeError('must not be imported')\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "nested.py").write_text("raise RuntimeError('must not be imported')\n")
    (tmp_path / "package.py").mkdir()  # a directory with a .py name is not a file
    outside = tmp_path.parent / f"{tmp_path.name}_outside.py"
    outside.write_text("raise RuntimeError('must not be imported')\n")
    (tmp_path / "linked.py").symlink_to(outside)
    try:
        assert dropin_files(tmp_path) == [tmp_path / "ok_plugin.py"]
        plugins = build_plugins(plugins_dir=tmp_path)
        assert plugins.load_errors == []
        assert {n for n, o in plugins.origins.items() if o.startswith("drop-in")} == {"ok_plugin"}
    finally:
        outside.unlink()


def test_missing_plugins_dir_is_no_error(tmp_path: Path) -> None:
    assert dropin_files(tmp_path / "absent") == []
    assert build_plugins(plugins_dir=tmp_path / "absent").load_errors == []


def test_dropin_named_like_a_bundled_plugin_is_a_load_error_not_a_crash(tmp_path: Path) -> None:
    (tmp_path / "http_json.py").write_text(GOOD_DROPIN.format(name="shadow"))
    plugins = build_plugins(plugins_dir=tmp_path)
    assert plugins.origins["http_json"].startswith("entry point")
    assert [e.name for e in plugins.load_errors] == ["http_json"]


def test_blocked_dropin_is_not_imported(tmp_path: Path) -> None:
    (tmp_path / "noisy.py").write_text("raise RuntimeError('imported although blocked')\n")
    plugins = build_plugins(plugins_dir=tmp_path, env={DISABLE_ENV: "noisy"})
    assert plugins.load_errors == []


# -- await_me_maybe -----------------------------------------------------------------------------


async def test_await_me_maybe_returns_plain_values() -> None:
    assert await await_me_maybe(42) == 42
    assert await await_me_maybe(None) is None


async def test_await_me_maybe_awaits_coroutines_and_futures() -> None:
    import asyncio

    async def answer() -> str:
        return "async"

    assert await await_me_maybe(answer()) == "async"
    future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    future.set_result(7)
    assert await await_me_maybe(future) == 7


# -- other capability hooks through the facade --------------------------------------------------


SIM_SYSTEM = web.AppKey("sim_system", str)


class SimulatorPlugin:
    def __init__(self, name: str) -> None:
        self.name = name

    @hookimpl
    def gateway_register_simulators(self, register: Callable[..., None]) -> None:
        def factory(options: SimulatorOptions) -> web.Application:
            app = web.Application()
            app[SIM_SYSTEM] = options.system
            return app

        register(self.name, factory)


def test_gateway_register_simulators_reaches_the_facade() -> None:
    plugins = build_plugins(extra=[("sims", SimulatorPlugin("fake_system"))])
    app = plugins.simulator_factory("fake_system")(SimulatorOptions(system="fake"))
    assert app[SIM_SYSTEM] == "fake"
    with pytest.raises(PluginError, match="no simulator for 'nothing'"):
        plugins.simulator_factory("nothing")


def test_gateway_register_simulators_duplicate_names_both_plugins() -> None:
    plugins = build_plugins(
        extra=[("one", SimulatorPlugin("same")), ("two", SimulatorPlugin("same"))]
    )
    with pytest.raises(PluginError, match=r"'one'.*'two'|'two'.*'one'"):
        plugins.simulators()


class CommandPlugin:
    @hookimpl
    def gateway_register_commands(self, cli: click.Group) -> None:
        @click.command("hello")
        def hello() -> None:
            click.echo("xin chào")

        cli.add_command(hello)


def test_gateway_register_commands_adds_subcommands() -> None:
    from click.testing import CliRunner

    @click.group()
    def cli() -> None:
        pass

    build_plugins(extra=[("cmds", CommandPlugin())]).add_commands(cli)
    result = CliRunner().invoke(cli, ["hello"])
    assert result.exit_code == 0 and result.output.strip() == "xin chào"


class MigrationsPlugin:
    def __init__(self, directory: str) -> None:
        self.directory = directory

    @hookimpl
    def gateway_migration_dirs(self) -> list[str]:
        return [self.directory]


def test_gateway_migration_dirs_are_collected_from_every_plugin(tmp_path: Path) -> None:
    plugins = build_plugins(
        load_entry_points=False,
        extra=[
            ("m1", MigrationsPlugin(str(tmp_path / "a"))),
            ("m2", MigrationsPlugin(str(tmp_path / "b"))),
        ],
    )
    assert sorted(plugins.migration_dirs()) == [str(tmp_path / "a"), str(tmp_path / "b")]
    assert build_plugins(load_entry_points=False).migration_dirs() == []
    # the bundled social_assistance plugin brings its own tables
    bundled = build_plugins().migration_dirs()
    assert any(d.endswith("social_assistance/migrations/versions") for d in bundled)


def test_environment_is_not_modified_by_building() -> None:
    before = dict(os.environ)
    build_plugins(env={DISABLE_ENV: "http_json"})
    assert dict(os.environ) == before


# -- start-up refuses only when a configured system needs a broken plugin -----------------------


def _config_with_dropins(tmp_path: Path, systems: dict[str, Any]) -> Any:
    from gateway.config import config_from_dict

    dropins = tmp_path / "dropins"
    dropins.mkdir(exist_ok=True)
    (dropins / "unused_broken.py").write_text("raise RuntimeError('broken on purpose')\n")
    return config_from_dict(
        {
            "gateway": {"database": f"sqlite:///{tmp_path}/gw.db", "plugins_dir": "dropins"},
            "systems": systems,
        },
        tmp_path / "gateway.toml",
    )


def test_app_builds_despite_a_broken_plugin_no_system_needs(tmp_path: Path) -> None:
    from gateway.plugins import plugins_for
    from gateway.web.app import create_app

    config = _config_with_dropins(tmp_path, {"a": {"plugin": "http_json"}})
    plugins = plugins_for(config)
    assert [e.name for e in plugins.load_errors] == ["unused_broken"]
    assert isinstance(create_app(config, plugins=plugins), web.Application)


def test_app_refuses_to_build_when_a_system_needs_a_broken_plugin(tmp_path: Path) -> None:
    from gateway.web.app import create_app

    config = _config_with_dropins(tmp_path, {"payer": {"plugin": "unused_broken"}})
    with pytest.raises(PluginError) as info:
        create_app(config)
    text = str(info.value)
    assert "systems.payer.plugin" in text and "broken on purpose" in text
    assert str(tmp_path / "gateway.toml") in text
