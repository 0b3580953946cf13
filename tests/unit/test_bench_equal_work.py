"""The peers of ``tests/bench/peers.py --real`` do the gateway's work, not less: Node-RED's
function node and the Celery task build the same ``HoSoTroCap`` the gateway's
``district_registry`` connector renders (canonical XML compared), valid against the XSD."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from lxml import etree

from plugins.district_registry.render import render_message
from plugins.district_registry.wire import schema
from plugins.one_stop_shop.inbound import parse_push

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))

from real_flow import Corpus  # noqa: E402


def _canonical(xml: bytes) -> bytes:
    return etree.tostring(etree.fromstring(xml), method="c14n")


@pytest.fixture(scope="module")
def pushes() -> list[tuple[str, bytes]]:
    corpus = Corpus()
    corpus.prepare("equal", 8)  # half of them in NFD, as the generator sends them
    return corpus.bodies["equal"]


def _gateway_xml(body: bytes) -> bytes:
    message = parse_push(body).messages[0].normalised()
    return render_message(message, "http://registry").body


@pytest.mark.skipif(shutil.which("node") is None, reason="no Node.js")
def test_the_node_red_function_builds_the_gateways_document(
    pushes: list[tuple[str, bytes]],
) -> None:
    flow = json.loads((BENCH / "node_red" / "flow_real.json").read_text(encoding="utf-8"))
    code = next(node["func"] for node in flow if node["type"] == "function")
    for _, body in pushes:
        script = (
            f"const msg = {{payload: {body.decode()}}};"
            f"const out = (function (msg) {{ {code} }})(msg);"
            "process.stdout.write(out[0].payload);"
        )
        xml = subprocess.run(["node", "-e", script], capture_output=True, check=True).stdout
        assert schema().validate(etree.fromstring(xml))
        assert _canonical(xml) == _canonical(_gateway_xml(body))


def test_the_celery_task_builds_the_gateways_document(pushes: list[tuple[str, bytes]]) -> None:
    forwarder = pytest.importorskip("celery_forwarder")  # needs the bench extra (celery)
    for _, body in pushes:
        item = forwarder._nfc(json.loads(body))["data"][0]
        xml = forwarder.ho_so_tro_cap(item)
        assert _canonical(xml) == _canonical(_gateway_xml(body))
