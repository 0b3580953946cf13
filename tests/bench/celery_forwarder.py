"""The Celery 5 + Redis peer: what a province would write instead of the gateway.

* the **front** (``python celery_forwarder.py front PORT``): an aiohttp app; ``POST
  /inbound/{system}`` enqueues the body as a task (``forward.delay``) and answers 202 once
  Redis took it;
* the **worker** (``celery -A celery_forwarder worker ...``, started by ``peers.py``): runs
  ``forward``, which POSTs the body to the sink over a kept-alive ``http.client`` connection
  per thread; ``acks_late`` (the message is acknowledged after the POST), retried
  (``autoretry_for``) on connection errors, timeouts and 5xx with exponential backoff.

Redis is Debian's ``redis-server`` with its default persistence (RDB snapshots
``save 3600 1 300 100 60 10000``, no AOF), as a province would install it.

With ``BENCH_TASK=real`` (``peers.py --real``) the front enqueues ``convert`` instead: the
worker reads the DongBoHoSoMC push (FORMATS.md §1.1), NFC-normalises it, builds the registry's
``HoSoTroCap`` (§2.1) with lxml, checks it against the registry's XSD (the schema compiled once
per worker process) and POSTs it to ``/ho-so``, expecting ``201 <BienNhan>``: the gateway's
real job, written as a Celery task would be.

Environment: ``BENCH_BROKER`` (redis URL), ``BENCH_SINK`` (``host:port``), ``BENCH_TASK``.
"""

from __future__ import annotations

import http.client
import json
import os
import sys
import threading
import unicodedata
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from celery import Celery

BROKER = os.environ.get("BENCH_BROKER", "redis://127.0.0.1:6379/0")
SINK = os.environ.get("BENCH_SINK", "127.0.0.1:8000")
TASK = os.environ.get("BENCH_TASK", "forward")
ROOT = Path(__file__).resolve().parents[2]
XSD = ROOT / "plugins" / "district_registry" / "schemas" / "registry.xsd"
NS = "urn:vn:btxh:registry:1"

app = Celery("forwarder", broker=BROKER)
app.conf.update(
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    task_ignore_result=True,
    worker_prefetch_multiplier=4,
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
    # an unacknowledged task (its worker died) is handed out again after 10 s; swept every 1 s
    broker_transport_options={
        "visibility_timeout": 10,
        "unacked_restore_interval": 1,
        "unacked_restore_throttle": 1,
    },
)


class SinkError(Exception):
    """The sink answered 5xx: worth retrying."""


_local = threading.local()


def _post(body: bytes, path: str = "/receive", ctype: str = "application/json") -> int:
    conn = getattr(_local, "conn", None)
    if conn is None:
        host, port = SINK.rsplit(":", 1)
        conn = _local.conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": ctype})
        resp = conn.getresponse()
        resp.read()
        return resp.status
    except BaseException:
        conn.close()
        _local.conn = None
        raise


@app.task(
    name="forward",
    acks_late=True,
    autoretry_for=(OSError, http.client.HTTPException, SinkError),
    retry_backoff=1,
    retry_backoff_max=30,
    retry_jitter=True,
    max_retries=None,
)
def forward(body: str) -> None:
    status = _post(body.encode())
    if status >= 500:
        raise SinkError(f"sink answered {status}")
    if status >= 400:
        raise ValueError(f"sink refused: {status}")  # permanent: not retried


@cache
def _schema() -> Any:
    from lxml import etree

    return etree.XMLSchema(etree.parse(str(XSD)))


def _nfc(value: Any) -> Any:
    if isinstance(value, str):
        return unicodedata.normalize("NFC", value)
    if isinstance(value, dict):
        return {k: _nfc(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nfc(v) for v in value]
    return value


def ho_so_tro_cap(item: dict[str, Any]) -> bytes:
    """One DongBoHoSoMC item -> an XSD-checked ``HoSoTroCap`` (ValueError when it is not)."""
    from lxml import etree

    def q(tag: str) -> str:
        return f"{{{NS}}}{tag}"

    def day(text: str) -> str:
        return datetime.strptime(text[:8], "%Y%m%d").date().isoformat()

    person, request = item["ThongTinNguoiNop"], item["DeNghiTroCap"]
    received = datetime.strptime(item["NgayTiepNhan"], "%Y%m%d%H%M%S")
    root = etree.Element(q("HoSoTroCap"), nsmap={None: NS})  # type: ignore[dict-item]
    root.set("maHoSo", item["MaHoSo"].strip())
    root.set("lanCapNhat", "1")
    root.set("maTTHC", item["MaTTHC"].strip())
    root.set("ngayTiepNhan", received.isoformat() + "+07:00")
    if item.get("NgayHenTra"):
        root.set("ngayHenTra", day(item["NgayHenTra"]))
    who = etree.SubElement(root, q("DoiTuong"))
    who.set("soDinhDanh", person["SoDinhDanh"].strip())
    who.set("hoTen", person["TenNguoiNop"].strip())
    who.set("ngaySinh", day(person["NgaySinh"]))
    if person.get("GioiTinh"):
        who.set("gioiTinh", {"1": "nam", "2": "nu"}[person["GioiTinh"]])
    where = etree.SubElement(who, q("DiaChi"))
    for key, attr in (("MaTinh", "maTinh"), ("MaHuyen", "maHuyen"), ("MaXa", "maXa")):
        where.set(attr, person[key].strip())
    where.text = person.get("DiaChiChiTiet") or ""
    asked = etree.SubElement(root, q("DeNghi"))
    asked.set("loaiDoiTuong", request["LoaiDoiTuong"].strip())
    asked.set("mucDoKhuyetTat", (request.get("MucDoKhuyetTat") or "").strip())
    if request.get("DiaChiNhanTien"):
        asked.set("nhanTien", request["DiaChiNhanTien"].strip())
    for doc in item.get("TaiLieuNop") or []:
        if str(doc.get("IsDeleted", "")).strip().lower() == "true":
            continue
        part = etree.SubElement(root, q("TaiLieu"))
        part.set("ten", doc["TenTepDinhKem"].strip())
        part.set("duongDan", doc["DuongDanTaiTepTin"].strip())
    schema = _schema()
    if not schema.validate(root):
        raise ValueError(f"HoSoTroCap refused by the XSD: {schema.error_log.last_error}")
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


@app.task(
    name="convert",
    acks_late=True,
    autoretry_for=(OSError, http.client.HTTPException, SinkError),
    retry_backoff=1,
    retry_backoff_max=30,
    retry_jitter=True,
    max_retries=None,
)
def convert(body: str) -> None:
    document = _nfc(json.loads(body))
    for item in document["data"]:
        status = _post(ho_so_tro_cap(item), "/ho-so", "application/xml")
        if status >= 500:
            raise SinkError(f"sink answered {status}")
        if status >= 400:
            raise ValueError(f"registry refused: {status}")  # permanent: not retried


def front(port: int) -> None:
    from aiohttp import web

    async def inbound(request: web.Request) -> web.Response:
        body = await request.text()
        task.delay(body)  # LPUSH to Redis; returns once Redis has it (in memory)
        return web.json_response({"accepted": 1}, status=202)

    task = convert if TASK == "real" else forward
    web_app = web.Application(client_max_size=10 * 1024 * 1024)
    web_app.router.add_post("/inbound/{system}", inbound)
    web.run_app(web_app, host="127.0.0.1", port=port, print=None, access_log=None)


if __name__ == "__main__":
    front(int(sys.argv[2]))
