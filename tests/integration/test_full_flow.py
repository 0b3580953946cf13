"""The whole flow through real loopback servers: the one-stop-shop simulator pushes dossiers,
the gateway sends them to the registry simulator, which appraises and pushes decisions back;
the desk gets its progress (TrangThai 4) and its result (TrangThaiHoSo 10)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from conftest import wait_for
from loopback import (
    FAST_SYSTEM,
    free_port,
    gateway_section,
    local_urls,
    running_flow,
    simulated_systems,
)

from gateway.config import Config, config_from_dict
from gateway.store.records import DeliveryFilter
from gateway.web.keys import STORE

SECRETS = {
    "motcua": "s-motcua-7c2e9a41b8d3f6051e4d",
    "registry": "s-registry-7c2e9a41b8d3f6051e4d",
    "post_office": "s-post-7c2e9a41b8d3f6051e4d",
}


def flow_config(tmp_path: Path, gw: int, ports: dict[str, int]) -> Config:
    return config_from_dict(
        {
            "gateway": gateway_section(tmp_path, gw, "flow"),
            "systems": simulated_systems(local_urls(ports), SECRETS, FAST_SYSTEM),
            "routes": [
                {
                    "from": "motcua",
                    "event": "dossier.received",
                    "procedure": "1.001776",
                    "to": ["registry"],
                },
                {"from": "registry", "event": "dossier.accepted", "to": ["motcua"]},
                {"from": "registry", "event": "dossier.refused", "to": ["motcua"]},
                {"from": "registry", "event": "decision.issued", "to": ["motcua"]},
            ],
        },
        tmp_path / "gateway.toml",
    )


@pytest.fixture
async def flow(tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    gw = free_port()
    ports = {name: free_port() for name in SECRETS}
    extra = {
        "motcua": {"rate": 4.0, "count": 12},
        "registry": {"appraisal_delay": 0.3, "refuse_rate": 0.0},
        "post_office": {},
    }
    async with running_flow(flow_config(tmp_path, gw, ports), gw, ports, SECRETS, extra) as app:
        yield {"app": app, "ports": ports}


async def sim_state(port: int) -> dict[str, Any]:
    async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{port}/_sim/state") as r:
        state: dict[str, Any] = await r.json()
        return state


async def test_dossier_to_registry_to_decision_to_result(flow: dict[str, Any]) -> None:
    ports = flow["ports"]

    async def desk_has_results() -> bool:
        state = await sim_state(ports["motcua"])
        created = state["dossiers"]["created"] - state["dossiers"]["other_procedure"]
        return (
            created == 12 - state["dossiers"]["other_procedure"]
            and len(state["results"]) >= created > 0
        )

    await wait_for(
        desk_has_results, timeout=40, what="every dossier of 1.001776 has its result at the desk"
    )
    desk = await sim_state(ports["motcua"])
    for mahoso, decisions in desk["results"].items():
        assert decisions and decisions[0].endswith("/QĐ-UBND"), (mahoso, decisions)
        assert "4" in desk["progress"][mahoso]  # received by the registry, reported first
    registry = await sim_state(ports["registry"])
    assert registry["dossiers"] >= len(desk["results"])
    store = flow["app"][STORE]
    rows = await store.list_deliveries(DeliveryFilter(), limit=1000)
    assert rows and all(r["status"] in ("delivered", "pending", "in_flight") for r in rows)
    assert not [r for r in rows if r["status"] == "dead"]
    checked, problems = await store.verify_log()
    assert checked > 0 and problems == []
