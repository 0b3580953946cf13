"""CLI manners: an unknown id is a non-zero exit status (through the real entry point), ``plugins
list`` without a configuration says so, ``--help`` names $GATEWAY_CONFIG, and a route whose
event its source never emits is a start-up warning naming the route."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from structlog.testing import capture_logs
from test_cli import Prepared, query
from test_cli import prepared as prepared

from gateway.cli import build_cli, main
from gateway.config import config_from_dict
from gateway.web.app import create_app


def exit_status(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """The process exit status of ``gateway ARGS`` (``main``, as the installed script)."""
    with pytest.raises(SystemExit) as done:
        main(list(args))
    out = capsys.readouterr()
    code = done.value.code
    return (code if isinstance(code, int) else 1), out.out + out.err


def test_unknown_ids_are_a_non_zero_exit(
    prepared: Prepared, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = str(prepared.config)
    code, out = exit_status(capsys, "deliveries", "retry", "99999", "--config", cfg)
    assert code == 1 and "no delivery with id 99999" in out
    code, out = exit_status(capsys, "deliveries", "show", "99999", "--config", cfg)
    assert code == 1 and "no delivery with id 99999" in out
    code, out = exit_status(capsys, "dossiers", "show", "HS-404", "--config", cfg)
    assert code == 1 and "no dossier 'HS-404'" in out


def test_retry_of_a_dead_and_an_unknown_id_queues_one_and_fails(prepared: Prepared) -> None:
    dead, delivered = prepared.ids["HS-4"], prepared.ids["HS-2"]
    args = ["deliveries", "retry", str(dead), str(delivered), "424242", "--actor", "lan"]
    result = CliRunner().invoke(build_cli(), [*args, "--config", str(prepared.config)])
    assert result.exit_code == 1
    assert f"queued again: 1 ({dead})" in result.stdout
    assert f"not dead, left alone: {delivered} (delivered)" in result.stderr
    assert "no delivery with id 424242" in result.stderr
    status = query(prepared.db, "SELECT status FROM deliveries WHERE id = ?", dead)
    assert status == [("pending",)]


def test_plugins_list_without_a_config_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no config/gateway.toml here
    monkeypatch.delenv("GATEWAY_CONFIG", raising=False)
    result = CliRunner().invoke(build_cli(), ["plugins", "list"])
    assert result.exit_code == 0, result.output
    assert "no configuration: config/gateway.toml does not exist" in result.stderr
    assert "$GATEWAY_CONFIG" in result.stderr
    assert "no configuration" not in result.stdout  # the table stays machine-readable
    # a config named by $GATEWAY_CONFIG that is missing is an error, not a silent default
    monkeypatch.setenv("GATEWAY_CONFIG", str(tmp_path / "missing.toml"))
    code = CliRunner().invoke(build_cli(), ["plugins", "list"]).exit_code
    assert code != 0


def test_help_mentions_gateway_config() -> None:
    top = CliRunner().invoke(build_cli(), ["--help"])
    assert top.exit_code == 0 and "$GATEWAY_CONFIG" in top.output
    assert "GATEWAY_CONFIG — the configuration file" in top.output
    sub = CliRunner().invoke(build_cli(), ["deliveries", "list", "--help"])
    assert sub.exit_code == 0 and "GATEWAY_CONFIG" in sub.output


def _config(tmp_path: Path, event: str) -> object:
    return config_from_dict(
        {
            "gateway": {"database": f"sqlite:///{tmp_path}/gw.db"},
            "systems": {
                "post_office": {
                    "plugin": "post_office",
                    "base_url": "http://127.0.0.1:9",
                    "inbound_secret": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822c",
                },
                "social_assistance": {"plugin": "social_assistance"},
                "free": {"plugin": "http_json", "base_url": "http://127.0.0.1:9"},
            },
            "routes": [
                {"from": "social_assistance", "event": "payment.list", "to": ["post_office"]},
                {"from": "post_office", "event": event, "to": ["social_assistance"]},
                # http_json does not declare its events: not judged
                {"from": "free", "event": "anything.at.all", "to": ["post_office"]},
            ],
        },
        tmp_path / "gateway.toml",
    )


def test_a_route_whose_event_is_never_emitted_is_a_start_up_warning(tmp_path: Path) -> None:
    with capture_logs() as logs:
        create_app(_config(tmp_path, "payment.result"))  # type: ignore[arg-type]
    warned = [e for e in logs if e["event"] == "route_event_never_emitted"]
    assert len(warned) == 1
    [w] = warned
    assert w["log_level"] == "warning"
    assert w["route"] == "post_office:payment.result" and w["emits"] == "payment.results"
    assert "'payment.result'" in w["hint"]
    with capture_logs() as logs:
        create_app(_config(tmp_path, "payment.results"))  # type: ignore[arg-type]
    assert not [e for e in logs if e["event"] == "route_event_never_emitted"]
