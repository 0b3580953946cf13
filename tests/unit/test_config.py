"""Configuration: a valid file loads, secrets resolve, and every mistake is ONE line naming
the file, the key and the problem (DESIGN.md §9)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from gateway.cli.demo import ensure_demo_secrets
from gateway.config import Config, ConfigError, config_from_dict, load_config
from gateway.plugins import PluginError, build_plugins
from gateway.web.app import create_app

REPO = Path(__file__).resolve().parents[2]

VALID = """\
[gateway]
listen = "127.0.0.1:8181"
database = "sqlite:///var/test.db"
node_id = "node-7"
lease_seconds = 60

[limits]
max_body_bytes = 2048
queue_bound = 10

[[tokens]]
name = "ops"
role = "operator"
token_sha256 = "ab"

[systems.intake]
plugin = "http_json"
inbound_secret = "literal-for-tests-7c2e9a41b8d3f6051e4d"

[systems.sink]
plugin = "http_json"
base_url = "http://127.0.0.1:8090"
path = "/receive"
timeout = {connect = 2, read = 20}
concurrency = 3
retry = {initial = 0.5, multiplier = 3, max = 60, jitter = 0, deadline = 3600}
breaker = {failures = 2, reset_after = 9}

[[routes]]
from = "intake"
event = "message.received"
procedure = "1.001776"
to = ["sink"]

[social_assistance]
payment_day = 24
"""


def write(tmp_path: Path, text: str, name: str = "gateway.toml") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def config_error(path: Path) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    err = info.value
    text = str(err)
    assert "\n" not in text, f"not one line: {text!r}"
    assert text.startswith(f"{path}: "), text
    return err


def replace(text: str, old: str, new: str) -> str:
    assert old in text
    return text.replace(old, new, 1)


# -- what loads ---------------------------------------------------------------------------------


def test_valid_file_loads(tmp_path: Path) -> None:
    path = write(tmp_path, VALID)
    config = load_config(path)
    assert isinstance(config, Config)
    assert config.path == str(path)
    assert config.gateway.host == "127.0.0.1" and config.gateway.port == 8181
    assert config.gateway.node_id == "node-7"
    assert config.limits.max_body_bytes == 2048 and config.limits.queue_bound == 10
    assert config.tokens[0].role == "operator"
    sink = config.systems["sink"]
    assert sink.name == "sink" and sink.plugin == "http_json"
    assert (sink.timeout.connect, sink.timeout.read) == (2, 20)
    assert sink.retry.multiplier == 3 and sink.breaker.failures == 2
    assert sink.options == {"path": "/receive"}
    assert config.systems["intake"].inbound_secret is not None
    assert (
        config.systems["intake"].inbound_secret.get_secret_value()
        == "literal-for-tests-7c2e9a41b8d3f6051e4d"
    )
    route = config.routes[0]
    assert (route.from_, route.event, route.procedure, route.to) == (
        "intake",
        "message.received",
        "1.001776",
        ["sink"],
    )
    assert config.plugin_section("social_assistance") == {"payment_day": 24}
    assert config.resolve_path("rules.toml") == tmp_path / "rules.toml"


def test_secret_never_shows_in_repr(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, VALID))
    assert "literal-for-tests-7c2e9a41b8d3f6051e4d" not in repr(config)


def test_env_secret_resolves(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GW_TEST_INTAKE_SECRET", "from-the-environment-7c2e9a41b8d3f605")
    text = replace(
        VALID,
        'inbound_secret = "literal-for-tests-7c2e9a41b8d3f6051e4d"',
        'inbound_secret = {"$env" = "GW_TEST_INTAKE_SECRET"}',
    )
    config = load_config(write(tmp_path, text))
    secret = config.systems["intake"].inbound_secret
    assert (
        secret is not None and secret.get_secret_value() == "from-the-environment-7c2e9a41b8d3f605"
    )


def test_file_secret_resolves_relative_to_the_config_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    etc = tmp_path / "etc"
    write(etc, "from-a-file-7c2e9a41b8d3f6051e4d\n", "intake.secret")
    text = replace(
        VALID,
        'inbound_secret = "literal-for-tests-7c2e9a41b8d3f6051e4d"',
        'inbound_secret = {"$file" = "intake.secret"}',
    )
    path = write(etc, text)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # relative to the config file, not to the working directory
    config = load_config(path)
    secret = config.systems["intake"].inbound_secret
    assert secret is not None and secret.get_secret_value() == "from-a-file-7c2e9a41b8d3f6051e4d"


def test_absolute_file_secret_resolves(tmp_path: Path) -> None:
    secret_file = write(tmp_path / "secrets", "absolute-7c2e9a41b8d3f6051e4d\n", "s.txt")
    text = replace(
        VALID,
        'inbound_secret = "literal-for-tests-7c2e9a41b8d3f6051e4d"',
        f'inbound_secret = {{"$file" = "{secret_file}"}}',
    )
    config = load_config(write(tmp_path, text))
    secret = config.systems["intake"].inbound_secret
    assert secret is not None and secret.get_secret_value() == "absolute-7c2e9a41b8d3f6051e4d"


def shipped_copy(tmp_path: Path) -> Path:
    """The shipped config/ in a fresh tree (its secrets live in ../var/secrets/)."""
    shutil.copytree(REPO / "config", tmp_path / "config")
    return tmp_path / "config" / "gateway.toml"


def test_shipped_config_loads_with_the_demo_secrets(tmp_path: Path) -> None:
    path = shipped_copy(tmp_path)
    created = ensure_demo_secrets(tmp_path / "var" / "secrets")
    assert {p.name for p in created} >= {"motcua.secret", "admin.token"}
    assert all(p.stat().st_mode & 0o077 == 0 for p in created)  # readable by the owner only
    config = load_config(path)
    assert set(config.systems) >= {"motcua", "registry", "post_office"}
    secret = config.systems["motcua"].inbound_secret
    assert secret is not None
    assert secret.get_secret_value() == (tmp_path / "var/secrets/motcua.secret").read_text().strip()
    plugins = build_plugins()
    for system in config.systems.values():
        plugins.build_connector(system)


def test_shipped_config_without_secrets_names_the_missing_file(tmp_path: Path) -> None:
    err = config_error(shipped_copy(tmp_path))
    assert err.key.endswith("inbound_secret") or err.key.endswith("token")
    assert "cannot read secret file" in err.problem and "var/secrets" in err.problem


def test_read_only_commands_load_the_shipped_config_without_any_secret(tmp_path: Path) -> None:
    """Issue 14 (13): `deliveries list` and the like need no inbound secret, token or
    password; the secrets they could not read are left out (never a placeholder)."""
    config = load_config(shipped_copy(tmp_path), read_only=True)
    assert set(config.systems) >= {"motcua", "registry", "post_office"}
    assert all(s.inbound_secret is None for s in config.systems.values())
    assert config.tokens == []
    assert config.gateway.database == "sqlite:///../var/gateway.db"  # next to config/, not cwd


# -- what is refused ----------------------------------------------------------------------------


def test_missing_env_var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GW_TEST_NOT_SET", raising=False)
    text = replace(
        VALID,
        'inbound_secret = "literal-for-tests-7c2e9a41b8d3f6051e4d"',
        'inbound_secret = {"$env" = "GW_TEST_NOT_SET"}',
    )
    path = write(tmp_path, text)
    err = config_error(path)
    assert err.key == "systems.intake.inbound_secret"
    assert str(err) == (
        f"{path}: systems.intake.inbound_secret: environment variable GW_TEST_NOT_SET is not set"
    )


def test_missing_secret_file(tmp_path: Path) -> None:
    text = replace(
        VALID,
        'inbound_secret = "literal-for-tests-7c2e9a41b8d3f6051e4d"',
        'inbound_secret = {"$file" = "nowhere.secret"}',
    )
    path = write(tmp_path, text)
    err = config_error(path)
    assert err.key == "systems.intake.inbound_secret"
    assert "nowhere.secret" in err.problem


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ("queue_bound = 10", "queue_bond = 10", "limits.queue_bond"),
        ('listen = "127.0.0.1:8181"', 'lisen = "127.0.0.1:8181"', "gateway.lisen"),
        (
            "timeout = {connect = 2, read = 20}",
            "timeout = {conect = 2, read = 20}",
            "systems.sink.timeout.conect",
        ),
        (
            "breaker = {failures = 2, reset_after = 9}",
            "breaker = {failures = 2, reset = 9}",
            "systems.sink.breaker.reset",
        ),
    ],
)
def test_unknown_key(tmp_path: Path, old: str, new: str, key: str) -> None:
    path = write(tmp_path, replace(VALID, old, new))
    err = config_error(path)
    assert err.key == key
    assert str(err) == f"{path}: {key}: unknown key"


def test_unknown_key_in_a_route_uses_the_same_index_notation(tmp_path: Path) -> None:
    # the reference checks say routes[0].to[0]; a schema error in the same table must not
    # switch to routes.0.procedur
    path = write(tmp_path, replace(VALID, 'procedure = "1.001776"', 'procedur = "1.001776"'))
    err = config_error(path)
    assert err.key == "routes[0].procedur"
    assert err.problem == "unknown key"


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ("queue_bound = 10", 'queue_bound = "many"', "limits.queue_bound"),
        ("concurrency = 3", 'concurrency = "three"', "systems.sink.concurrency"),
        ("lease_seconds = 60", "lease_seconds = [60]", "gateway.lease_seconds"),
        (
            "timeout = {connect = 2, read = 20}",
            'timeout = {connect = "fast", read = 20}',
            "systems.sink.timeout.connect",
        ),
    ],
)
def test_wrong_type(tmp_path: Path, old: str, new: str, key: str) -> None:
    path = write(tmp_path, replace(VALID, old, new))
    err = config_error(path)
    assert err.key == key
    assert err.problem


def test_out_of_range_value(tmp_path: Path) -> None:
    path = write(tmp_path, replace(VALID, "concurrency = 3", "concurrency = 0"))
    err = config_error(path)
    assert err.key == "systems.sink.concurrency"
    assert "greater than 0" in err.problem


def test_heartbeat_interval_at_most_half_the_node_timeout(tmp_path: Path) -> None:
    cluster = "[gateway]\nnode_timeout = 3\nheartbeat_interval = 2\n"
    path = write(tmp_path, replace(VALID, "[gateway]\n", cluster))
    err = config_error(path)
    assert err.key == "gateway.heartbeat_interval"
    assert "at most half of gateway.node_timeout (3), not 2" in err.problem
    ok = write(tmp_path, replace(VALID, "[gateway]\n", cluster.replace("= 2", "= 1.5")))
    config = load_config(ok)
    assert (config.gateway.node_timeout, config.gateway.heartbeat_interval) == (3.0, 1.5)


@pytest.mark.parametrize("listen", ["localhost", "127.0.0.1:", ":8080", "127.0.0.1:http"])
def test_bad_listen(tmp_path: Path, listen: str) -> None:
    path = write(tmp_path, replace(VALID, '"127.0.0.1:8181"', f'"{listen}"'))
    err = config_error(path)
    assert err.key == "gateway.listen"
    assert "HOST:PORT" in err.problem


def test_route_to_unknown_system(tmp_path: Path) -> None:
    path = write(tmp_path, replace(VALID, 'to = ["sink"]', 'to = ["sink", "nowhere"]'))
    err = config_error(path)
    assert err.key == "routes[0].to[1]"
    assert str(err) == f"{path}: routes[0].to[1]: no system named 'nowhere'"


def test_route_from_unknown_system(tmp_path: Path) -> None:
    path = write(tmp_path, replace(VALID, 'from = "intake"', 'from = "intke"'))
    err = config_error(path)
    assert err.key == "routes[0].from"
    assert "intke" in err.problem


def test_route_without_destinations(tmp_path: Path) -> None:
    path = write(tmp_path, replace(VALID, 'to = ["sink"]', "to = []"))
    err = config_error(path)
    assert err.key.endswith("to")
    assert err.key.startswith("routes")


def test_timeout_not_shorter_than_lease(tmp_path: Path) -> None:
    # lease_seconds = 60: connect + read = 60 must be refused (a lease would expire mid-send)
    path = write(
        tmp_path,
        replace(VALID, "timeout = {connect = 2, read = 20}", "timeout = {connect = 10, read = 50}"),
    )
    err = config_error(path)
    assert err.key == "systems.sink.timeout"
    assert "lease_seconds" in err.problem and "60s" in err.problem


def test_timeout_just_shorter_than_lease_loads(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        replace(VALID, "timeout = {connect = 2, read = 20}", "timeout = {connect = 10, read = 49}"),
    )
    assert load_config(path).systems["sink"].timeout.read == 49


def test_system_without_plugin(tmp_path: Path) -> None:
    path = write(tmp_path, replace(VALID, 'plugin = "http_json"\nbase_url', "base_url"))
    err = config_error(path)
    assert err.key == "systems.sink.plugin"


def test_invalid_toml(tmp_path: Path) -> None:
    path = write(tmp_path, VALID + "\n[limits\nqueue_bound = 1\n")
    err = config_error(path)
    assert err.key == ""
    assert "not valid TOML" in err.problem
    assert "line" in err.problem  # where the mistake is


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_bytes(b'[gateway]\nnode_id = "n\xe0"\n')
    err = config_error(path)
    assert "not valid TOML" in err.problem


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    err = config_error(path)
    assert str(err) == f"{path}: file not found"


def test_config_from_dict_names_the_given_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        config_from_dict({"limits": {"queue_bound": -1}}, tmp_path / "x.toml")
    assert info.value.key == "limits.queue_bound"
    assert str(info.value).startswith(f"{tmp_path / 'x.toml'}: limits.queue_bound: ")


# -- a connector's own keys -------------------------------------------------------------------


def _with_bogus_key(tmp_path: Path) -> Config:
    text = replace(VALID, 'path = "/receive"', 'path = "/receive"\nbogus = 1')
    return load_config(write(tmp_path, text))


def test_connector_refuses_its_unknown_key_when_built(tmp_path: Path) -> None:
    config = _with_bogus_key(tmp_path)  # the core does not know the connector's keys...
    with pytest.raises(PluginError) as info:  # ...the connector does, when it is built
        build_plugins().build_connector(config.systems["sink"])
    assert "systems.sink.bogus" in str(info.value)
    assert "unknown key" in str(info.value)


def test_connector_option_of_wrong_type_is_refused(tmp_path: Path) -> None:
    text = replace(VALID, 'path = "/receive"', 'path = "/receive"\nenvelope = "sometimes"')
    config = load_config(write(tmp_path, text))
    with pytest.raises(PluginError, match=r"systems\.sink\.envelope"):
        build_plugins().build_connector(config.systems["sink"])


def test_app_refuses_to_build_with_a_connector_unknown_key(tmp_path: Path) -> None:
    config = _with_bogus_key(tmp_path)
    with pytest.raises(PluginError) as info:
        create_app(config, plugins=build_plugins())
    text = str(info.value)
    assert "systems.sink.bogus" in text and str(tmp_path / "gateway.toml") in text
    assert "\n" not in text
