"""``gateway plugins list|check|new|reload`` with good and broken drop-in plugins, and the same
broken plugins contained in a running gateway: an import error, a hookimpl with a wrong
argument, an unknown hook, an async capability hook, a parse that raises, a send that hangs."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from gateway.cli import build_cli
from gateway.testing.harness import make_test_config, start_gateway, start_simulator
from gateway.testing.sink import Sink

# A single-file connector plugin with a simulator and contract samples; {parse} and {send}
# are the bodies of its parse and send (to make it broken in one way at a time).
DROPIN = """
import asyncio
import json

from gateway import hookimpl
from gateway.connector import Connector
from gateway.model import Message, OutboundRequest, ParseResult
from gateway.testing.contract import ContractSamples, InboundSample, sink_simulator

__version__ = "2.3.4"


class DropConnector(Connector):
    async def parse(self, body, content_type):
{parse}

    async def render(self, message):
        return OutboundRequest(
            "POST",
            self.system.base_url + "/in",
            json.dumps(message.payload).encode(),
            {{"Content-Type": "application/json"}},
        )

    async def send(self, session, request):
{send}


@hookimpl
def gateway_register_connectors(register):
    register("{name}", DropConnector)


@hookimpl
def gateway_register_simulators(register):
    register("{name}", sink_simulator)


def contract_samples():
    return ContractSamples(
        inbound=[InboundSample(b'{{"id": "1"}}')],
        outbound=[Message("x.received", "1", {{"id": "1"}})],
    )
"""
GOOD_PARSE = (
    "        doc = json.loads(body)\n"
    '        return ParseResult([Message("x.received", doc["id"], doc)])'
)
RAISING_PARSE = '        raise ValueError("the vendor changed the format")'
GOOD_SEND = "        return await super().send(session, request)"
HANGING_SEND = "        await asyncio.Event().wait()"
PERMANENT_503 = (
    "        receipt = await super().send(session, request)\n"
    "        return receipt\n\n"
    "    def classify_response(self, status, body, headers, request):\n"
    "        from gateway.model import PermanentError, Receipt\n"
    "        if status < 300:\n"
    "            return Receipt(status=status)\n"
    '        raise PermanentError(f"HTTP {status}")'
)


def dropin(name: str, parse: str = GOOD_PARSE, send: str = GOOD_SEND) -> str:
    return DROPIN.format(name=name, parse=parse, send=send)


BROKEN: dict[str, str] = {
    "import_error": "import no_such_module_xyz\n",
    "wrong_argument": (
        "from gateway import hookimpl\n\n"
        "@hookimpl\n"
        "def gateway_register_connectors(registar):\n"
        "    pass\n"
    ),
    "unknown_hook": (
        "from gateway import hookimpl\n\n"
        "@hookimpl\n"
        "def gateway_register_conectors(register):\n"
        "    pass\n"
    ),
    "async_capability": (
        "from gateway import hookimpl\n\n"
        "@hookimpl\n"
        "async def gateway_register_connectors(register):\n"
        "    pass\n"
    ),
}


@pytest.fixture(autouse=True)
def _forget_dropin_modules() -> Iterator[None]:
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        if name.startswith("gateway_dropin_"):
            del sys.modules[name]


def write_config(tmp_path: Path, systems: dict[str, dict[str, Any]] | None = None) -> Path:
    lines = [
        "[gateway]",
        f'database = "sqlite:///{tmp_path}/gw.db"',
        'plugins_dir = "dropins"',
        "",
    ]
    for name, table in (systems or {}).items():
        lines.append(f"[systems.{name}]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in table.items()]
        lines.append("")
    path = tmp_path / "gateway.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    (tmp_path / "dropins").mkdir(exist_ok=True)
    return path


def add_dropin(tmp_path: Path, name: str, text: str) -> None:
    (tmp_path / "dropins").mkdir(exist_ok=True)
    (tmp_path / "dropins" / f"{name}.py").write_text(text, encoding="utf-8")


def cli(*args: str) -> Result:
    return CliRunner().invoke(build_cli(), list(args), catch_exceptions=False)


# -- list ---------------------------------------------------------------------------------------


def test_list_shows_source_version_hooks_systems_and_load_errors(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"people": {"plugin": "civil", "base_url": "http://x"}})
    add_dropin(tmp_path, "civil", dropin("civil"))
    add_dropin(tmp_path, "import_error", BROKEN["import_error"])
    result = cli("plugins", "list", "--config", str(config))
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line for line in result.stdout.splitlines()[2:]}
    assert "2.3.4" in rows["civil"] and "drop-in" in rows["civil"]
    assert "people" in rows["civil"] and "register_simulators" in rows["civil"]
    assert "bundled" in rows["http_json"] and "0.1.0" in rows["http_json"]
    assert "LOAD ERROR import_error" in result.stderr
    assert "no_such_module_xyz" in result.stderr

    doc = json.loads(cli("plugins", "list", "--json", "--config", str(config)).stdout)
    civil = next(p for p in doc["plugins"] if p["name"] == "civil")
    assert civil["source"] == "drop-in"
    assert civil["origin"] == f"drop-in {tmp_path / 'dropins' / 'civil.py'}"
    assert (civil["connectors"], civil["simulators"], civil["systems"]) == (
        "civil",
        "civil",
        "people",
    )
    assert [e["name"] for e in doc["errors"]] == ["import_error"]


def test_list_without_a_config_lists_the_installed_plugins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no config/gateway.toml here
    result = cli("plugins", "list")
    assert result.exit_code == 0, result.output
    assert {"http_json", "one_stop_shop", "district_registry", "post_office"} <= {
        line.split()[0] for line in result.stdout.splitlines()[2:]
    }


# -- check: a good plugin -------------------------------------------------------------------------


def test_check_a_good_dropin_runs_the_contract_against_its_simulator(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"people": {"plugin": "civil", "base_url": "http://x"}})
    add_dropin(tmp_path, "civil", dropin("civil"))
    result = cli("plugins", "check", "civil", "--config", str(config))
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "ok   hooks civil: register_connectors, register_simulators" in out
    assert "ok   system people: connector 'civil'" in out
    assert "ok   contract civil against its simulator: 33 passed, 0 failed, 0 skipped" in out
    assert "http_json" not in out  # NAME limits the check to that plugin

    verbose = cli("plugins", "check", "civil", "-v", "--no-contract", "--config", str(config))
    assert verbose.exit_code == 0 and "contract" not in verbose.stdout


def test_check_an_unknown_name_fails(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    result = cli("plugins", "check", "nothing_here", "--config", str(config))
    assert result.exit_code == 1
    assert "FAIL plugin nothing_here: not installed (known: " in result.stdout


# -- check: broken plugins, each reported with its reason --------------------------------------


@pytest.mark.parametrize(
    ("broken", "expected"),
    [
        ("import_error", "FAIL load import_error: ModuleNotFoundError: No module named"),
        ("wrong_argument", "registar"),
        ("unknown_hook", "unknown hook(s) gateway_register_conectors"),
        ("async_capability", "gateway_register_connectors must be a plain function"),
    ],
)
def test_check_reports_a_plugin_that_does_not_load(
    tmp_path: Path, broken: str, expected: str
) -> None:
    config = write_config(tmp_path)
    add_dropin(tmp_path, broken, BROKEN[broken])
    add_dropin(tmp_path, "civil", dropin("civil"))
    result = cli("plugins", "check", "--no-contract", "--config", str(config))
    assert result.exit_code == 1, result.output
    failures = [line for line in result.stdout.splitlines() if line.startswith("FAIL")]
    assert len(failures) == 1, result.stdout
    assert failures[0].startswith(f"FAIL load {broken}: ")
    assert expected in failures[0]
    assert "ok   hooks civil:" in result.stdout  # the others still load
    assert "ok   hooks http_json:" in result.stdout


def test_check_reports_a_parse_that_raises(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    add_dropin(tmp_path, "civil", dropin("civil", parse=RAISING_PARSE))
    result = cli("plugins", "check", "civil", "--config", str(config))
    assert result.exit_code == 1
    assert (
        "FAIL contract civil: inbound_samples_parse: inbound sample 0: parse raised "
        "ValueError: the vendor changed the format"
    ) in result.stdout
    assert "32 passed, 1 failed" in result.stdout


def test_check_reports_a_send_that_hangs_as_a_timeout_and_does_not_hang(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    add_dropin(tmp_path, "civil", dropin("civil", send=HANGING_SEND))
    started = time.monotonic()
    result = cli("plugins", "check", "civil", "--config", str(config))
    assert time.monotonic() - started < 20
    assert result.exit_code == 1
    assert "send did not return within 5s" in result.stdout
    assert "FAIL contract civil: outbound_samples_delivered" in result.stdout


def test_check_reports_a_wrong_classification(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    add_dropin(tmp_path, "civil", dropin("civil", send=PERMANENT_503))
    result = cli("plugins", "check", "civil", "--config", str(config))
    assert result.exit_code == 1
    assert "FAIL contract civil: classify_http_503: HTTP 503 must be retryable" in result.stdout
    assert "FAIL contract civil: classify_http_500" in result.stdout


def test_check_names_a_system_whose_options_the_connector_refuses(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"people": {"plugin": "civil", "bogus": 1}})
    add_dropin(tmp_path, "civil", dropin("civil"))
    result = cli("plugins", "check", "civil", "--no-contract", "--config", str(config))
    assert result.exit_code == 1
    assert "FAIL system people: systems.people.bogus: unknown key" in result.stdout


def test_check_async_hook_registered_in_code_is_a_hook_problem() -> None:
    from gateway import hookimpl
    from gateway.cli.plugins_cmd import hook_problems
    from gateway.plugins import build_plugins

    class Late:
        @hookimpl
        async def gateway_web_routes(self, app: Any) -> None:
            pass

    plugin = Late()
    plugins = build_plugins(extra=[("late", plugin)], load_entry_points=False)
    [problem] = hook_problems(plugins, plugin)
    assert "gateway_web_routes is async" in problem


# -- the same broken plugins contained in a running gateway -------------------------------------


async def test_a_broken_dropin_nobody_uses_does_not_stop_the_gateway(tmp_path: Path) -> None:
    for name, text in BROKEN.items():
        add_dropin(tmp_path, name, text)
    sink = Sink()
    sim = await start_simulator(lambda _options: sink.app())
    config = make_test_config(
        tmp_path,
        {
            "gateway": {"plugins_dir": "dropins"},
            "systems": {
                "src": {"plugin": "http_json", "inbound_secret": "s-7c2e9a41b8d3f6051e4d"},
                "dst": {"plugin": "http_json", "base_url": sim.url},
            },
            "routes": [{"from": "src", "event": "message.received", "to": ["dst"]}],
        },
    )
    gateway = await start_gateway(config)
    try:
        assert sorted(e.name for e in gateway.plugins.load_errors) == sorted(BROKEN)
        answer = await gateway.push("src", {"id": "A1"})
        assert answer.status == 202
        await gateway.wait_for_deliveries("dst")
    finally:
        await gateway.close()
        await sim.close()


async def test_a_parse_that_raises_is_a_500_for_that_system_only(tmp_path: Path) -> None:
    add_dropin(tmp_path, "civil", dropin("civil", parse=RAISING_PARSE))
    config = make_test_config(
        tmp_path,
        {
            "gateway": {"plugins_dir": "dropins"},
            "systems": {
                "people": {"plugin": "civil", "inbound_secret": "s-7c2e9a41b8d3f6051e4d"},
                "src": {"plugin": "http_json", "inbound_secret": "s-7c2e9a41b8d3f6051e4d"},
            },
        },
    )
    gateway = await start_gateway(config)
    try:
        broken = await gateway.push("people", {"id": "1"})
        assert broken.status == 500
        error = await broken.json()
        assert error["error"] == "plugin_error" and "nothing was stored" in error["message"]
        assert (await gateway.push("src", {"id": "2"})).status == 202
    finally:
        await gateway.close()


async def test_a_send_that_hangs_holds_only_its_own_lane(tmp_path: Path) -> None:
    add_dropin(tmp_path, "civil", dropin("civil", send=HANGING_SEND))
    sink = Sink()
    sim = await start_simulator(lambda _options: sink.app())
    config = make_test_config(
        tmp_path,
        {
            "gateway": {"plugins_dir": "dropins", "shutdown_grace": 0.2},
            "systems": {
                "src": {"plugin": "http_json", "inbound_secret": "s-7c2e9a41b8d3f6051e4d"},
                "stuck": {"plugin": "civil", "base_url": sim.url, "concurrency": 1},
                "dst": {"plugin": "http_json", "base_url": sim.url},
            },
            "routes": [{"from": "src", "event": "message.received", "to": ["stuck", "dst"]}],
        },
    )
    gateway = await start_gateway(config)
    try:
        for i in range(3):
            assert (await gateway.push("src", {"id": f"A{i}"})).status == 202
        await gateway.wait_for_deliveries("dst", count=3)
        counts = (await gateway.counts())["stuck"]
        assert counts.get("delivered", 0) == 0 and counts.get("in_flight", 0) == 1
    finally:
        await gateway.close()
        await sim.close()


# -- new and reload -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["Civil", "civil-status", "1civil", "class", "gateway", "x_"])
def test_new_refuses_a_bad_name(tmp_path: Path, name: str) -> None:
    result = CliRunner().invoke(
        build_cli(), ["plugins", "new", name, "--directory", str(tmp_path / "p")]
    )
    assert result.exit_code == 1
    assert "Error:" in result.output
    assert not (tmp_path / "p").exists()


def test_new_refuses_an_installed_name_and_a_directory_in_the_way(tmp_path: Path) -> None:
    taken = CliRunner().invoke(build_cli(), ["plugins", "new", "http_json"])
    assert taken.exit_code == 1 and "already installed" in taken.output
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "notes.txt").write_text("mine")
    args = ["plugins", "new", "civil", "--directory", str(tmp_path / "p")]
    blocked = CliRunner().invoke(build_cli(), args)
    assert blocked.exit_code == 1 and "not empty" in blocked.output
    forced = CliRunner().invoke(build_cli(), [*args, "--force"])
    assert forced.exit_code == 0, forced.output
    assert (tmp_path / "p" / "civil" / "connector.py").is_file()
    assert (tmp_path / "p" / "notes.txt").read_text() == "mine"


def test_reload_without_a_running_gateway_says_so(tmp_path: Path) -> None:
    missing = CliRunner().invoke(
        build_cli(), ["plugins", "reload", "--pid-file", str(tmp_path / "gw.pid")]
    )
    assert missing.exit_code == 1 and "no pid file" in missing.output
    (tmp_path / "gw.pid").write_text("999999999\n")
    stale = CliRunner().invoke(
        build_cli(), ["plugins", "reload", "--pid-file", str(tmp_path / "gw.pid")]
    )
    assert stale.exit_code == 1 and "stale pid file" in stale.output


def test_check_exit_status_reaches_the_shell(tmp_path: Path) -> None:
    from gateway.cli import main

    config = write_config(tmp_path)
    main(["plugins", "check", "http_json", "--no-contract", "--config", str(config)])  # 0
    add_dropin(tmp_path, "import_error", BROKEN["import_error"])
    with pytest.raises(SystemExit) as info:
        main(["plugins", "check", "--no-contract", "--config", str(config)])
    assert info.value.code == 1
