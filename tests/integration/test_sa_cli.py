"""``gateway payments send|held|accept`` and ``gateway report monthly`` against a real SQLite
store (synchronous: every command runs its own event loop). Decisions are applied through the
social-assistance connector first, as the engine would."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sa_fixtures import decision_payload

from gateway.cli import build_cli
from gateway.cli.common import run, with_store
from gateway.config import SystemConfig, load_config
from gateway.store import Store
from plugins.social_assistance.connector import SocialAssistanceConnector
from plugins.social_assistance.storage import load_domain
from plugins.vn_common.cccd import make_cccd

CONFIG = """\
[gateway]
database = "sqlite:///{db}"
node_id = "cli"

[systems.social_assistance]
plugin = "social_assistance"

[systems.post_office]
plugin = "post_office"
base_url = "http://127.0.0.1:9"

[[routes]]
from = "social_assistance"
event = "payment.list"
to = ["post_office"]

[social_assistance]
payment_day = 24
"""
CCCDS = [make_cccd("006", 1935, True, 1), make_cccd("006", 1936, False, 2)]
CCCDS.append(make_cccd("006", 1935, False, 3))


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(CONFIG.format(db=tmp_path / "gw.db"), encoding="utf-8")
    config = load_config(path)
    rules = load_domain(config).rules
    base = {"ngayKy": "2020-08-10", "loaiDoiTuong": "5.5a"}
    payloads = [
        decision_payload(
            rules, so="215/QĐ-UBND", maHoSo="HS-A", soDinhDanh=CCCDS[0], hoTen="Hoàng Thị Lan",
            ngaySinh="1935-04-12", maXa="02053", **base,
        ),
        decision_payload(
            rules, so="217/QĐ-UBND", maHoSo="HS-C", soDinhDanh=CCCDS[2], hoTen="Ma Văn Sáu",
            ngaySinh="1935-06-01", maXa="02020", **base,
        ),
        decision_payload(
            rules, so="216/QĐ-UBND", maHoSo="HS-B", soDinhDanh=CCCDS[1], hoTen="Lò Văn Pha",
            ngaySinh="1936-03-02", maXa="02053", heSo="2.0", mucChuan="270000",
            soTienThang="600000", **base,
        ),
    ]  # fmt: skip

    async def seed(store: Store) -> list[str]:
        conn = SocialAssistanceConnector(SystemConfig(name="sa", plugin="social_assistance"))
        conn.attach(store, load_domain(config))
        return [(await conn.apply("decision.issued", p)).detail for p in payloads]

    details = run(with_store(config, seed))
    assert details[:2] == ["applied", "applied"] and details[2] != "applied"
    return path


def gw(cfg: Path, *args: str) -> Result:
    return CliRunner().invoke(build_cli(), [*args, "--config", str(cfg)])


def count(cfg: Path, sql: str) -> int:
    with sqlite3.connect(cfg.parent / "gw.db") as db:
        return int(db.execute(sql).fetchone()[0])


def lists_sent(cfg: Path) -> int:
    return count(cfg, "SELECT count(*) FROM sa_lists")


def test_send_prints_the_table_and_a_summary_then_nothing_new_then_resend(cfg: Path) -> None:
    dry = gw(cfg, "payments", "send", "--month", "2020-09", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "dry-run" in dry.output and "0 sent" in dry.output
    assert lists_sent(cfg) == 0 and count(cfg, "SELECT count(*) FROM messages") == 0

    first = gw(cfg, "payments", "send", "--month", "2020-09")
    assert first.exit_code == 0, first.output
    header = next(line for line in first.output.splitlines() if line.startswith("commune"))
    assert header.split() == ["commune", "people", "total", "VND", "lanGui", "status", "note"]
    rows = {line.split()[0]: line.split() for line in first.output.splitlines()}
    assert rows["02053"][1:2] == ["1"] and rows["02020"][1:2] == ["1"]  # the held one waits
    assert "sent" in rows["02053"] and "sent" in rows["02020"]
    assert "2 sent, 0 unchanged, 0 refused;" in first.output and "VND queued" in first.output
    assert lists_sent(cfg) == 2
    assert count(cfg, "SELECT count(*) FROM messages WHERE event = 'payment.list'") == 2
    assert count(cfg, "SELECT count(*) FROM deliveries") == 2
    assert CCCDS[0] not in first.output

    again = gw(cfg, "payments", "send", "--month", "2020-09")
    assert again.exit_code == 0, again.output
    assert "0 sent, 2 unchanged" in again.output and "nothing new" in again.output
    assert lists_sent(cfg) == 2

    one = gw(cfg, "payments", "send", "--month", "2020-09", "--resend", "--commune", "02053")
    assert one.exit_code == 0, one.output
    [line] = [x.split() for x in one.output.splitlines() if x.startswith("02053")]
    assert line[3:5] == ["2", "sent"]  # lanGui 2
    assert "02020" not in one.output and "1 sent" in one.output
    assert lists_sent(cfg) == 3
    assert count(cfg, "SELECT max(lan_gui) FROM sa_lists WHERE ma_xa = '02053'") == 2


def test_report_monthly_in_three_formats(cfg: Path) -> None:
    assert gw(cfg, "payments", "send", "--month", "2020-09").exit_code == 0
    as_json = gw(cfg, "report", "monthly", "--month", "2020-09", "--format", "json")
    assert as_json.exit_code == 0, as_json.output
    data = json.loads(as_json.output)
    assert data["ky"] == "2020-09" and data["beneficiaries"] == 2
    assert data["total_amount"] > 0 and isinstance(data["total_amount"], int)
    assert set(data["by_commune"]) == {"02053", "02020"}

    as_csv = gw(cfg, "report", "monthly", "--month", "2020-09", "--format", "csv")
    assert as_csv.exit_code == 0, as_csv.output
    rows = list(csv.DictReader(io.StringIO(as_csv.output)))
    assert list(rows[0]) == ["section", "key", "lines", "receiving", "amount"]
    totals = {r["key"]: r for r in rows if r["section"] == "total"}
    # a count of people is a count, not an amount; VND only in the amount column
    assert totals["beneficiaries"]["receiving"] == "2" and totals["beneficiaries"]["amount"] == ""
    assert totals["total_amount"]["amount"] == str(data["total_amount"])
    assert totals["total_amount"]["lines"] == totals["total_amount"]["receiving"] == ""
    assert totals["increases"]["lines"] == "2" and totals["increases"]["amount"] == ""

    as_table = gw(cfg, "report", "monthly", "--month", "2020-09", "--format", "table")
    assert as_table.exit_code == 0, as_table.output
    assert "beneficiaries" in as_table.output and "by_commune" in as_table.output
    lines = as_table.output.splitlines()
    heading = lines[0]
    amount_end, receiving_end = heading.index("amount") + 6, heading.index("receiving") + 9
    total_line = next(x for x in lines if " total_amount " in x)
    # thousands separators, right-aligned under their heading
    assert total_line.rstrip().endswith(f"{data['total_amount']:,}")
    assert len(total_line.rstrip()) == amount_end and data["total_amount"] >= 1000
    people = next(x for x in lines if " beneficiaries " in x)
    assert people.rstrip().endswith(" 2") and len(people.rstrip()) == receiving_end

    empty = gw(cfg, "report", "monthly", "--month", "2019-01", "--format", "table")
    assert empty.exit_code == 0, empty.output  # no lists that month: still a report
    assert "no payment list was built for 2019-01" in empty.output


def test_held_and_accept(cfg: Path) -> None:
    held = gw(cfg, "payments", "held")
    assert held.exit_code == 0, held.output
    assert "216/QĐ-UBND" in held.output and "600000" in held.output and "held" in held.output
    assert CCCDS[1] not in held.output and "Lò Văn Pha" not in held.output

    missing = gw(cfg, "payments", "accept", "999/QĐ-UBND", "--figure", "registry")
    assert missing.exit_code == 1 and "no single held decision" in missing.output
    bad = gw(cfg, "payments", "accept", "216/QĐ-UBND", "--figure", "mine")
    assert bad.exit_code == 2

    ok = gw(cfg, "payments", "accept", "216/QĐ-UBND", "--figure", "registry", "--actor", "an")
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output)["figure"] == "registry"
    assert count(cfg, "SELECT count(*) FROM audit_log WHERE action = 'sa_accept_figure'") == 1
    assert "216/QĐ-UBND" not in gw(cfg, "payments", "held").output
    again = gw(cfg, "payments", "accept", "216/QĐ-UBND", "--figure", "registry")
    assert again.exit_code == 1

    sent = gw(cfg, "payments", "send", "--month", "2020-09")
    assert sent.exit_code == 0, sent.output
    [line] = [x.split() for x in sent.output.splitlines() if x.startswith("02053")]
    assert line[1] == "2"  # the accepted decision is paid now


@pytest.mark.parametrize("month", ["2020-13", "2020-9x", "september"])
@pytest.mark.parametrize(
    "command", [["payments", "send"], ["report", "monthly"], ["payments", "send", "--dry-run"]]
)
def test_a_bad_month_is_a_clean_usage_error(cfg: Path, command: list[str], month: str) -> None:
    result = gw(cfg, *command, "--month", month)
    assert result.exit_code == 2, result.output
    assert "YYYY-MM" in result.output and "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert lists_sent(cfg) == 0


def test_a_bad_social_assistance_section_is_a_clean_error(cfg: Path) -> None:
    bad = cfg.parent / "bad.toml"
    bad.write_text(cfg.read_text(encoding="utf-8") + "colour = 1\n", encoding="utf-8")
    for command in (["payments", "send"], ["report", "monthly"]):
        result = gw(bad, *command, "--month", "2020-09")
        assert result.exit_code == 1, result.output
        assert "social_assistance.colour" in result.output and "Traceback" not in result.output
