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

Environment: ``BENCH_BROKER`` (redis URL), ``BENCH_SINK`` (``host:port``).
"""

from __future__ import annotations

import http.client
import os
import sys
import threading

from celery import Celery

BROKER = os.environ.get("BENCH_BROKER", "redis://127.0.0.1:6379/0")
SINK = os.environ.get("BENCH_SINK", "127.0.0.1:8000")

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


def _post(body: bytes) -> int:
    conn = getattr(_local, "conn", None)
    if conn is None:
        host, port = SINK.rsplit(":", 1)
        conn = _local.conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request("POST", "/receive", body=body, headers={"Content-Type": "application/json"})
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


def front(port: int) -> None:
    from aiohttp import web

    async def inbound(request: web.Request) -> web.Response:
        body = await request.text()
        forward.delay(body)  # LPUSH to Redis; returns once Redis has it (in memory)
        return web.json_response({"accepted": 1}, status=202)

    web_app = web.Application(client_max_size=10 * 1024 * 1024)
    web_app.router.add_post("/inbound/{system}", inbound)
    web.run_app(web_app, host="127.0.0.1", port=port, print=None, access_log=None)


if __name__ == "__main__":
    front(int(sys.argv[2]))
