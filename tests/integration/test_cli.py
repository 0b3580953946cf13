"""The ``gateway`` command line (DESIGN.md §7) against a real SQLite store.

These tests are synchronous: every command runs its own event loop (``asyncio.run``). Data is
prepared through the store's own API (ingest, claim, record), as the engine would."""

from __future__ import annotations

import asyncio
import csv
import json
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select

from gateway.cli import build_cli, main
from gateway.model import Message, Outcome
from gateway.store import Store
from gateway.store.store import AttemptRecord, ClaimedDelivery, IntakeItem
from gateway.store.tables import deliveries

CCCD = "006135001234"
# DESIGN.md §6: what every delivery-log export carries
LOG_COLUMNS = {
    "at",
    "delivery_id",
    "dossier_key",
    "source",
    "destination",
    "route",
    "attempt",
    "outcome",
    "http_status",
    "duration_ms",
    "bytes_sent",
    "bytes_received",
    "error_class",
    "error_message",
    "next_attempt_at",
    "node",
    "actor",
}
ROUTE = "src:message.received"

CONFIG = """\
[gateway]
database = "sqlite:///{db}"
node_id = "test"

[systems.src]
plugin = "http_json"
inbound_secret = "cli-test-secret-7c2e9a41b8d3f6051e4d"

[systems.dst]
plugin = "http_json"
base_url = "http://127.0.0.1:9"
path = "/receive"
timeout = {{connect = 1, read = 2}}

[[routes]]
from = "src"
event = "message.received"
to = ["dst"]
"""


@dataclass
class Prepared:
    config: Path
    db: Path
    ids: dict[str, int]  # delivery id by dossier (MaHoSo)


def write_config(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(CONFIG.format(db=tmp_path / "cli.db") + extra, encoding="utf-8")
    return path


def message(ref: str) -> Message:
    return Message(
        event="message.received",
        external_id=ref,
        source="src",
        payload={
            "id": ref,
            "ChuHoSo": "Hoàng Thị Lan",
            "ThongTinNguoiNop": {"SoDinhDanh": CCCD},
            "TrichYeu": f"đề nghị trợ cấp, CCCD {CCCD}",
        },
    )


async def _prepare(db: Path) -> dict[str, int]:
    """HS-1: 503 then 422 → dead; HS-2: delivered; HS-3: pending; HS-4: dead at once."""
    store = Store(f"sqlite:///{db}", node_id="test")
    await store.open()
    try:
        await store.upgrade()

        async def ingest(*refs: str) -> None:
            await store.ingest(
                [IntakeItem(message(r), [(ROUTE, "dst")], {"dst": 3600.0}) for r in refs]
            )

        def record(
            claimed: ClaimedDelivery, outcome: Outcome, status: int, error: str | None
        ) -> AttemptRecord:
            now = time.time()
            return AttemptRecord(
                delivery=claimed,
                outcome=outcome,
                started_at=now,
                duration_ms=12.5,
                http_status=status,
                bytes_sent=100,
                error_class=None if error is None else "PermanentError",
                error_message=error,
                next_attempt_at=now if outcome is Outcome.RETRY else None,
            )

        await ingest("HS-1", "HS-2", "HS-4")
        first = {c.external_id: c for c in await store.claim("dst", 10, 60)}
        await store.record(
            [
                record(first["HS-1"], Outcome.RETRY, 503, "HTTP 503: bận"),
                record(first["HS-2"], Outcome.DELIVERED, 200, None),
                record(first["HS-4"], Outcome.DEAD, 400, "HTTP 400: thiếu trường"),
            ]
        )
        [again] = await store.claim("dst", 10, 60)
        # an unmasked CCCD in an error: every output of the CLI must mask it
        await store.record([record(again, Outcome.DEAD, 422, f"HTTP 422: SoDinhDanh {CCCD} sai")])
        await ingest("HS-3")
        async with store.reader.connect() as conn:
            rows = (await conn.execute(select(deliveries.c.id, deliveries.c.dossier_key))).all()
        return {key: id_ for id_, key in rows}
    finally:
        await store.close()


@pytest.fixture
def prepared(tmp_path: Path) -> Prepared:
    db = tmp_path / "cli.db"
    config = write_config(tmp_path)
    ids = asyncio.run(_prepare(db))
    return Prepared(config, db, ids)


def gateway(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(build_cli(), list(args), input=input, catch_exceptions=False)


def query(db: Path, sql: str, *params: object) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as conn:
        return list(conn.execute(sql, params))


# -- db -----------------------------------------------------------------------------------------


def test_db_upgrade_creates_and_reports_up_to_date(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    result = gateway("db", "upgrade", "--config", str(config))
    assert result.exit_code == 0, result.output
    assert "up to date" in result.stdout
    tables = {r[0] for r in query(tmp_path / "cli.db", "SELECT name FROM sqlite_master")}
    assert {"messages", "deliveries", "delivery_log", "audit_log"} <= tables
    again = gateway("db", "upgrade", "--config", str(config))
    assert again.exit_code == 0 and "up to date" in again.stdout


# -- deliveries list / show ---------------------------------------------------------------------


def test_deliveries_list_table(prepared: Prepared) -> None:
    result = gateway("deliveries", "list", "--config", str(prepared.config))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split()[:4] == ["id", "status", "destination", "dossier_key"]
    assert set(lines[1]) <= {"-", " "}
    body = "\n".join(lines[2:])
    for ref, status in (
        ("HS-1", "dead"),
        ("HS-2", "delivered"),
        ("HS-3", "pending"),
        ("HS-4", "dead"),
    ):
        row = next(line for line in lines[2:] if ref in line.split())
        assert status in row.split(), row
    assert CCCD not in result.output and "********1234" in body
    assert len(lines) == 2 + 4


def test_deliveries_list_json_and_status_filter(prepared: Prepared) -> None:
    result = gateway("deliveries", "list", "--json", "--config", str(prepared.config))
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert {r["dossier_key"]: r["status"] for r in rows} == {
        "HS-1": "dead",
        "HS-2": "delivered",
        "HS-3": "pending",
        "HS-4": "dead",
    }
    assert [r["id"] for r in rows] == sorted((r["id"] for r in rows), reverse=True)  # newest first
    assert all("payload" not in r for r in rows)
    assert CCCD not in result.stdout

    dead = gateway(
        "deliveries", "list", "--status", "dead", "--json", "--config", str(prepared.config)
    )
    assert dead.exit_code == 0, dead.output
    assert sorted(r["dossier_key"] for r in json.loads(dead.stdout)) == ["HS-1", "HS-4"]

    table = gateway("deliveries", "list", "--status", "delivered", "--config", str(prepared.config))
    assert [line.split()[2] for line in table.stdout.splitlines()[2:]] == ["dst"]


def test_deliveries_list_refuses_an_unknown_status(prepared: Prepared) -> None:
    result = gateway("deliveries", "list", "--status", "lost", "--config", str(prepared.config))
    assert result.exit_code == 2
    assert "lost" in result.output


def test_deliveries_show_lists_attempts(prepared: Prepared) -> None:
    delivery_id = prepared.ids["HS-1"]
    result = gateway("deliveries", "show", str(delivery_id), "--config", str(prepared.config))
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert f"id: {delivery_id}" in out and "status: dead" in out and "dossier_key: HS-1" in out
    attempts = [line.split() for line in out.splitlines() if line.split()[:1] in (["1"], ["2"])]
    assert [(a[0], a[3], a[4]) for a in attempts] == [
        ("1", "retry_scheduled", "503"),
        ("2", "dead", "422"),
    ]


def test_deliveries_show_json_masks_the_payload(prepared: Prepared) -> None:
    result = gateway(
        "deliveries", "show", str(prepared.ids["HS-2"]), "--json", "--config", str(prepared.config)
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    payload = doc["delivery"]["payload"]
    assert payload["ThongTinNguoiNop"]["SoDinhDanh"] == "********1234"
    assert payload["ChuHoSo"] == "H. T. L."
    assert payload["TrichYeu"] == "đề nghị trợ cấp, CCCD ********1234"
    assert [a["outcome"] for a in doc["attempts"]] == ["delivered"]
    assert CCCD not in result.stdout and "Hoàng" not in result.stdout


@pytest.mark.parametrize("as_json", [False, True])
def test_deliveries_show_never_prints_a_full_cccd(prepared: Prepared, as_json: bool) -> None:
    # HS-1's last error (and its log row) carries a CCCD; list, export and dossiers show mask
    # it, and so must show, in both forms
    args = ["deliveries", "show", str(prepared.ids["HS-1"]), "--config", str(prepared.config)]
    result = gateway(*args, *(["--json"] if as_json else []))
    assert result.exit_code == 0, result.output
    assert CCCD not in result.output
    assert "********1234" in result.output


def test_deliveries_show_unknown_id_fails_readably(prepared: Prepared) -> None:
    result = CliRunner().invoke(
        build_cli(), ["deliveries", "show", "9999", "--config", str(prepared.config)]
    )
    assert result.exit_code != 0
    assert "no delivery with id 9999" in result.output
    assert "Traceback" not in result.output


# -- deliveries retry ---------------------------------------------------------------------------


def test_deliveries_retry_one_is_logged_with_the_actor(prepared: Prepared) -> None:
    delivery_id = prepared.ids["HS-1"]
    result = gateway(
        "deliveries", "retry", str(delivery_id), "--actor", "lan", "--config", str(prepared.config)
    )
    assert result.exit_code == 0, result.output
    assert f"queued again: 1 ({delivery_id})" in result.stdout
    status = {k: s for k, s in query(prepared.db, "SELECT dossier_key, status FROM deliveries")}
    assert status == {"HS-1": "pending", "HS-2": "delivered", "HS-3": "pending", "HS-4": "dead"}
    replayed = query(
        prepared.db,
        "SELECT outcome, actor, attempt FROM delivery_log WHERE delivery_id = ? ORDER BY id",
        delivery_id,
    )
    assert replayed[-1] == ("replayed", "cli:lan", 2)
    audit = query(prepared.db, "SELECT actor, action, target FROM audit_log")
    assert audit == [("cli:lan", "retry", f"delivery:{delivery_id}")]
    verify = gateway("log", "verify", "--config", str(prepared.config))
    assert verify.exit_code == 0, verify.output


def test_deliveries_retry_a_delivery_that_is_not_dead_leaves_it_alone(prepared: Prepared) -> None:
    delivered = prepared.ids["HS-2"]
    result = gateway(
        "deliveries", "retry", str(delivered), "--actor", "lan", "--config", str(prepared.config)
    )
    assert result.exit_code == 0
    assert "queued again: 0" in result.stdout
    assert str(delivered) in result.stderr
    assert query(prepared.db, "SELECT status FROM deliveries WHERE id = ?", delivered) == [
        ("delivered",)
    ]
    assert query(prepared.db, "SELECT count(*) FROM audit_log") == [(0,)]


def test_deliveries_retry_all_dead(prepared: Prepared) -> None:
    result = gateway(
        "deliveries",
        "retry",
        "--all-dead",
        "--yes",
        "--actor",
        "ops",
        "--config",
        str(prepared.config),
    )
    assert result.exit_code == 0, result.output
    assert "queued again: 2" in result.stdout
    assert query(prepared.db, "SELECT count(*) FROM deliveries WHERE status = 'dead'") == [(0,)]
    targets = sorted(str(t) for (t,) in query(prepared.db, "SELECT target FROM audit_log"))
    assert targets == sorted(f"delivery:{prepared.ids[k]}" for k in ("HS-1", "HS-4"))
    actors = {
        a
        for (a,) in query(prepared.db, "SELECT actor FROM delivery_log WHERE outcome = 'replayed'")
    }
    assert actors == {"cli:ops"}


def test_deliveries_retry_all_dead_asks_first(prepared: Prepared) -> None:
    result = CliRunner().invoke(
        build_cli(),
        ["deliveries", "retry", "--all-dead", "--config", str(prepared.config)],
        input="n\n",
    )
    assert result.exit_code != 0
    assert query(prepared.db, "SELECT count(*) FROM deliveries WHERE status = 'dead'") == [(2,)]


def test_deliveries_retry_needs_ids_or_all_dead(prepared: Prepared) -> None:
    result = CliRunner().invoke(
        build_cli(), ["deliveries", "retry", "--config", str(prepared.config)]
    )
    assert result.exit_code == 2
    assert "--all-dead" in result.output


# -- deliveries export --------------------------------------------------------------------------


def test_deliveries_export_writes_masked_csv(prepared: Prepared, tmp_path: Path) -> None:
    out = tmp_path / "log.csv"
    result = gateway("deliveries", "export", "--out", str(out), "--config", str(prepared.config))
    assert result.exit_code == 0, result.output
    assert "exported 4 attempts" in result.stderr
    with out.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames is not None
        assert set(reader.fieldnames) >= LOG_COLUMNS, reader.fieldnames
        rows = list(reader)
    assert [(r["dossier_key"], r["outcome"]) for r in rows] == [
        ("HS-1", "retry_scheduled"),
        ("HS-2", "delivered"),
        ("HS-4", "dead"),
        ("HS-1", "dead"),
    ]
    text = out.read_text(encoding="utf-8")
    assert CCCD not in text
    assert rows[3]["error_message"] == "HTTP 422: SoDinhDanh ********1234 sai"


def test_deliveries_export_filters_by_outcome(prepared: Prepared, tmp_path: Path) -> None:
    out = tmp_path / "dead.csv"
    result = gateway(
        "deliveries",
        "export",
        "--outcome",
        "dead",
        "--out",
        str(out),
        "--config",
        str(prepared.config),
    )
    assert result.exit_code == 0, result.output
    with out.open(encoding="utf-8", newline="") as handle:
        assert sorted(r["dossier_key"] for r in csv.DictReader(handle)) == ["HS-1", "HS-4"]


# -- dossiers show ------------------------------------------------------------------------------


def test_dossiers_show_timeline(prepared: Prepared) -> None:
    result = gateway("dossiers", "show", "HS-1", "--config", str(prepared.config))
    assert result.exit_code == 0, result.output
    out = result.stdout
    lines = out.splitlines()
    received = next(
        i
        for i, line in enumerate(lines)
        if "received  message.received from src (revision 1)" in line
    )
    first = next(i for i, line in enumerate(lines) if "#1 → dst: retry_scheduled HTTP 503" in line)
    second = next(i for i, line in enumerate(lines) if "#2 → dst: dead HTTP 422" in line)
    assert received < first < second  # in time order
    assert "deliveries now: dst: dead" in out
    assert CCCD not in out and "********1234" in out


def test_dossiers_show_json(prepared: Prepared) -> None:
    result = gateway("dossiers", "show", "HS-2", "--json", "--config", str(prepared.config))
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["dossier_key"] == "HS-2"
    assert [m["source"] for m in doc["messages"]] == ["src"]
    assert [d["status"] for d in doc["deliveries"]] == ["delivered"]


def test_dossiers_show_unknown_dossier_fails_readably(prepared: Prepared) -> None:
    result = CliRunner().invoke(
        build_cli(), ["dossiers", "show", "HS-404", "--config", str(prepared.config)]
    )
    assert result.exit_code != 0
    assert "no dossier 'HS-404'" in result.output


# -- log verify ---------------------------------------------------------------------------------


def test_log_verify_ok_then_detects_an_edited_row(prepared: Prepared) -> None:
    ok = gateway("log", "verify", "--config", str(prepared.config))
    assert ok.exit_code == 0, ok.output
    assert "ok: 4 rows, chain intact" in ok.stdout

    [(row_id,)] = query(
        prepared.db, "SELECT id FROM delivery_log WHERE outcome = 'dead' AND dossier_key = 'HS-4'"
    )
    with sqlite3.connect(prepared.db) as conn:
        conn.execute(
            "UPDATE delivery_log SET error_message = 'nothing wrong here' WHERE id = ?", (row_id,)
        )
    broken = CliRunner().invoke(build_cli(), ["log", "verify", "--config", str(prepared.config)])
    assert broken.exit_code == 1
    assert f"BROKEN row {row_id}: hash does not match" in broken.stdout
    assert "1 problems in 4 rows" in broken.stderr


def test_log_verify_detects_a_deleted_row(prepared: Prepared) -> None:
    [(row_id,)] = query(prepared.db, "SELECT id FROM delivery_log WHERE dossier_key = 'HS-2'")
    with sqlite3.connect(prepared.db) as conn:
        conn.execute("DELETE FROM delivery_log WHERE id = ?", (row_id,))
    broken = CliRunner().invoke(build_cli(), ["log", "verify", "--config", str(prepared.config)])
    assert broken.exit_code == 1
    assert "BROKEN" in broken.stdout and "jumps from seq" in broken.stdout


# -- a bad config -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args", [["deliveries", "list"], ["db", "upgrade"], ["log", "verify"], ["plugins", "check"]]
)
def test_bad_config_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    bad = write_config(tmp_path, '\n[limits]\nqueue_bound = "many"\n')
    with pytest.raises(SystemExit) as info:
        main([*args, "--config", str(bad)])
    assert info.value.code == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"error: {bad}: limits.queue_bound: ")


def test_missing_config_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "absent.toml"
    with pytest.raises(SystemExit) as info:
        main(["deliveries", "list", "--config", str(missing)])
    assert info.value.code == 2
    assert capsys.readouterr().err.strip() == f"error: {missing}: file not found"


# -- plugins ------------------------------------------------------------------------------------


def test_plugins_list_shows_http_json_with_its_origin(prepared: Prepared) -> None:
    result = gateway("plugins", "list", "--config", str(prepared.config))
    assert result.exit_code == 0, result.output
    row = next(line for line in result.stdout.splitlines() if line.startswith("http_json"))
    assert "entry point plugins.http_json" in row
    assert "src, dst" in row

    as_json = gateway("plugins", "list", "--json", "--config", str(prepared.config))
    doc = json.loads(as_json.stdout)
    http_json = next(p for p in doc["plugins"] if p["name"] == "http_json")
    assert http_json["origin"] == "entry point plugins.http_json"
    assert http_json["connectors"] == "http_json"
    assert doc["errors"] == []


def test_plugins_check_ok(prepared: Prepared) -> None:
    result = gateway("plugins", "check", "--config", str(prepared.config))
    assert result.exit_code == 0, result.output
    assert "ok   system src: connector 'http_json'" in result.stdout
    assert "ok   system dst: connector 'http_json'" in result.stdout


def test_plugins_check_fails_for_a_missing_plugin(tmp_path: Path) -> None:
    config = write_config(tmp_path, '\n[systems.payer]\nplugin = "no_such_plugin"\n')
    result = CliRunner().invoke(build_cli(), ["plugins", "check", "--config", str(config)])
    assert result.exit_code == 1
    assert "FAIL system payer: no connector plugin named 'no_such_plugin'" in result.stdout
    assert "ok   system src" in result.stdout


def test_plugins_check_fails_for_a_connector_unknown_key(tmp_path: Path) -> None:
    config = write_config(tmp_path, '\n[systems.extra]\nplugin = "http_json"\nbogus = 1\n')
    result = CliRunner().invoke(build_cli(), ["plugins", "check", "--config", str(config)])
    assert result.exit_code == 1
    assert "FAIL system extra:" in result.stdout and "systems.extra.bogus" in result.stdout


def test_plugins_check_reports_a_broken_dropin(tmp_path: Path) -> None:
    dropins = tmp_path / "dropins"
    dropins.mkdir()
    (dropins / "cli_broken_dropin.py").write_text("raise ImportError('missing dependency xyz')\n")
    config = write_config(tmp_path)
    text = config.read_text().replace(
        'node_id = "test"', 'node_id = "test"\nplugins_dir = "dropins"'
    )
    config.write_text(text)
    try:
        result = CliRunner().invoke(build_cli(), ["plugins", "check", "--config", str(config)])
    finally:
        sys.modules.pop("gateway_dropin_cli_broken_dropin", None)
    assert result.exit_code == 1
    assert "FAIL load cli_broken_dropin: ImportError: missing dependency xyz" in result.stdout


def test_the_command_process_loads_no_drawing_library() -> None:
    """structlog imports rich (and rich pygments) when installed; the gateway's process keeps
    them out (gateway/cli/entry.py): memory and start-up time of every node."""
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "gateway.cli", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    loaded = {line.rsplit("|", 1)[-1].strip() for line in out.stderr.splitlines() if "|" in line}
    assert "gateway.cli.app" in loaded and "structlog" in loaded
    assert not {"pygments", "rich.console", "rich.traceback"} & loaded
