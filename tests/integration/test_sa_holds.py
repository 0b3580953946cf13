"""Decisions held for an operator, as the office's store keeps them (FORMATS.md §2.2): a 5.4
on a host checked as the whole benefit (and released, audited, when its host arrives after
it), a grant starting before the rules allow held with both months, and every acceptance
audited with the month, the commune and the money. Real SQLite store; decisions applied
through the social-assistance connector; ``payments held|accept`` through the CLI."""

from __future__ import annotations

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
node_id = "holds"

[systems.social_assistance]
plugin = "social_assistance"

[social_assistance]
payment_day = 24
"""
PARENT = make_cccd("006", 1980, True, 54)


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(CONFIG.format(db=tmp_path / "gw.db"), encoding="utf-8")
    return path


def apply(cfg: Path, *payloads: dict[str, str]) -> list[str]:
    config = load_config(cfg)

    async def go(store: Store) -> list[str]:
        sa = SocialAssistanceConnector(SystemConfig(name="sa", plugin="social_assistance"))
        sa.attach(store, load_domain(config))
        return [(await sa.apply("decision.issued", p)).detail for p in payloads]

    out: list[str] = run(with_store(config, go))
    return out


def payload(cfg: Path, **attrs: str) -> dict[str, str]:
    rules = load_domain(load_config(cfg)).rules
    base = {
        "maHoSo": "HS-P", "soDinhDanh": PARENT, "hoTen": "Hà Thị Mai", "ngaySinh": "1980-05-05",
        "maXa": "02020",
    }  # fmt: skip
    return decision_payload(rules, **(base | attrs))


def host(cfg: Path) -> dict[str, str]:
    return payload(
        cfg, so="10/QĐ-UBND", ngayKy="2025-08-05", loaiDoiTuong="5.6", mucDoKhuyetTat="nang"
    )


def single_parent(cfg: Path, amount: str, coefficient: str) -> dict[str, str]:
    return payload(
        cfg, so="20/QĐ-UBND", ngayKy="2025-09-05", loai="dieu_chinh", loaiDoiTuong="5.4",
        soCon="2", heSo=coefficient, mucChuan="500000", soTienThang=amount, tuThang="2025-09",
    )  # fmt: skip


def audit(cfg: Path, action: str) -> list[tuple[str, str, str]]:
    with sqlite3.connect(cfg.parent / "gw.db") as db:
        rows = db.execute(
            "SELECT actor, target, detail FROM audit_log WHERE action = ? ORDER BY id", (action,)
        ).fetchall()
    return [(str(a), str(t), str(d)) for a, t, d in rows]


def gw(cfg: Path, *args: str) -> Result:
    return CliRunner().invoke(build_cli(), [*args, "--config", str(cfg)])


def test_5_4_stating_the_whole_benefit_on_its_host_is_applied(cfg: Path) -> None:
    assert apply(cfg, host(cfg), single_parent(cfg, "1750000", "3.5")) == ["applied", "applied"]


def test_5_4_priced_alone_on_a_host_is_held_against_the_whole(cfg: Path) -> None:
    details = apply(cfg, host(cfg), single_parent(cfg, "1000000", "2.0"))
    assert details == ["applied", "held: registry 1,000,000 VND vs rules 1,750,000 VND"]


def test_a_5_4_that_arrives_before_its_host_is_released_when_the_host_arrives(
    cfg: Path,
) -> None:
    first = apply(cfg, single_parent(cfg, "1750000", "3.5"))
    assert first == ["held: registry 1,750,000 VND vs rules 1,000,000 VND"]  # no host known yet
    assert apply(cfg, host(cfg)) == ["applied"]
    with sqlite3.connect(cfg.parent / "gw.db") as db:
        states = db.execute("SELECT so, state FROM sa_decisions ORDER BY id").fetchall()
    assert states == [("20/QĐ-UBND", "applied"), ("10/QĐ-UBND", "applied")]
    [(actor, target, detail)] = audit(cfg, "sa_release_held")
    assert (actor, target) == ("system", "HS-P 20/QĐ-UBND")
    assert detail == "ky=2025-09; maXa=02020; 1 line; 1,750,000 VND a month; the rules now agree"


def test_an_early_grant_is_held_with_both_months_then_accepted_and_audited(cfg: Path) -> None:
    early = payload(cfg, so="7/QĐ-UBND", ngayKy="2020-08-20", tuThang="2020-06", loaiDoiTuong="5.8")
    assert apply(cfg, early) == ["held: starts 2020-06, before 2020-08 the rules allow"]
    held = gw(cfg, "payments", "held")
    assert held.exit_code == 0, held.output
    header, _, row = held.output.splitlines()[:3]
    assert header.split()[-2:] == ["registry_month", "rules_month"]
    assert row.split()[-2:] == ["2020-06", "2020-08"] and "7/QĐ-UBND" in row
    ok = gw(cfg, "payments", "accept", "7/QĐ-UBND", "--figure", "registry", "--actor", "chi.hoa")
    assert ok.exit_code == 0, ok.output
    [(actor, target, detail)] = audit(cfg, "sa_accept_figure")
    assert (actor, target) == ("chi.hoa", "HS-P 7/QĐ-UBND")
    assert detail == (
        "figure=registry; ky=2020-06; maXa=02020; 1 line; 405,000 VND a month as decided; "
        "starts 2020-06 (registry), 2020-08 (rules)"
    )
    assert gw(cfg, "payments", "held").output.count("7/QĐ-UBND") == 0
