"""Graceful shutdown of a ``gateway run`` child (SIGTERM), as the core issue promises:

* intake stops at once: while in-flight attempts finish, ``POST /inbound`` answers 503 with
  ``Retry-After`` (a client must be told to come back, not left guessing);
* attempts in flight finish within ``shutdown_grace`` and are recorded; leases are given back
  (nothing is left ``in_flight``); the process exits 0;
* attempts that outlast the grace period are cancelled, released, and sent again after the
  restart under the same ``Idempotency-Key``;
* nothing answered 202 is lost across the restart.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from conftest import wait_for

from gateway.signing import sign

from .reliability_kit import (
    SECRET,
    GatewayProcess,
    Pusher,
    Receiver,
    cli,
    db_rows,
    free_port,
    gateway_config,
    uid_of_key,
    write_config,
)

GRACE = 3.0


async def setup(
    tmp_path: Path, receiver: Receiver, *, grace: float = GRACE, read: float = 3.0
) -> tuple[GatewayProcess, Path]:
    port = free_port()
    data = gateway_config(
        tmp_path,
        port,
        {"dst": receiver.url},
        gateway={"shutdown_grace": grace, "lease_seconds": read + 10},
        system={"concurrency": 4, "timeout": {"connect": 1, "read": read}},
    )
    config = write_config(tmp_path, data)
    gw = GatewayProcess(config, port, "shutdown")
    await gw.start()
    return gw, config


async def push_batch(gw: GatewayProcess, n: int, prefix: str) -> set[str]:
    pusher = Pusher(gw.url)
    pusher.open()
    try:
        for i in range(n):
            await pusher.push([{"id": f"{prefix}{i}", "key": f"{prefix}{i}", "rev": 1}])
    finally:
        await pusher.stop()
    return set(pusher.acked.values())


async def try_intake(session: aiohttp.ClientSession, url: str, i: int) -> str:
    body = json.dumps({"data": [{"id": f"late{i}", "key": f"late{i}", "rev": 1}]}).encode()
    headers = {"Content-Type": "application/json", **sign(SECRET, body)}
    try:
        async with session.post(f"{url}/inbound/src", data=body, headers=headers) as r:
            await r.read()
            if r.status == 503 and r.headers.get("Retry-After"):
                return "503 with Retry-After"
            return f"HTTP {r.status}"
    except aiohttp.ClientConnectorError:
        return "connection refused"
    except (aiohttp.ClientError, OSError) as exc:
        return f"connection dropped ({type(exc).__name__})"


@pytest.mark.slow
async def test_sigterm_answers_intake_503_while_draining(tmp_path: Path, tally: Any) -> None:
    receiver = Receiver(stall=2.0)
    await receiver.start()
    gw, _ = await setup(tmp_path, receiver)
    outcomes: list[str] = []
    try:
        await push_batch(gw, 4, "T")
        await wait_for(lambda: receiver.in_progress == 4, what="four attempts in flight")
        # one connection opened before the signal (keep-alive), new ones after it
        async with aiohttp.ClientSession() as warm:
            assert await try_intake(warm, gw.url, -1) == "HTTP 202"
            gw.terminate()
            await asyncio.sleep(0.1)
            outcomes.append(await try_intake(warm, gw.url, 0))
            async with aiohttp.ClientSession() as fresh:
                i = 1
                # the drain: while the attempts in flight at SIGTERM are still running
                while receiver.in_progress and i < 40:
                    outcomes.append(await try_intake(fresh, gw.url, i))
                    i += 1
                    await asyncio.sleep(0.05)
        exit_code = await gw.wait_exit()
    finally:
        gw.kill()
        await receiver.stop()
    counts = {o: outcomes.count(o) for o in sorted(set(outcomes))}
    good = counts.get("503 with Retry-After", 0)
    tally.add(
        "Graceful shutdown: SIGTERM stops intake with 503",
        "intake requests sent during the drain, while the 4 attempts in flight at SIGTERM "
        "are still running (an open keep-alive connection, then new connections)",
        len(outcomes),
        "requests",
        ", ".join(f"{n} × {o}" for o, n in counts.items()),
        ok=good == len(outcomes) and exit_code == 0,
    )
    assert exit_code == 0, gw.tail()
    assert outcomes and good == len(outcomes), (
        f"while draining, intake must answer 503 with Retry-After; got {counts}"
    )


@pytest.mark.slow
async def test_sigterm_finishes_in_flight_and_releases_leases(tmp_path: Path, tally: Any) -> None:
    receiver = Receiver(stall=1.0)
    await receiver.start()
    gw, config = await setup(tmp_path, receiver)
    db = tmp_path / "gw.db"
    try:
        acked = await push_batch(gw, 20, "F")
        await wait_for(lambda: receiver.in_progress == 4, what="four attempts in flight")
        in_flight = {r.key for r in receiver.receipts if not r.status}
        signalled = time.monotonic()
        gw.terminate()
        exit_code = await gw.wait_exit()
        took = time.monotonic() - signalled
        states = dict(db_rows(db, "SELECT status, count(*) FROM deliveries GROUP BY status"))
        leased = db_rows(db, "SELECT count(*) FROM deliveries WHERE lease_owner IS NOT NULL")[0][0]
        finished = {
            k
            for (k,) in db_rows(
                db,
                "SELECT d.idempotency_key FROM deliveries d JOIN delivery_log l "
                "ON l.delivery_id = d.id WHERE l.outcome = 'delivered'",
            )
        }
        receiver.stall = 0.0
        await gw.start()

        def all_arrived() -> bool:
            return acked <= {uid_of_key(k) for k in receiver.keys_delivered()}

        await wait_for(all_arrived, timeout=30, what="everything after the restart")
        await asyncio.sleep(0.5)
        await gw.stop()
    finally:
        gw.kill()
        await receiver.stop()
    twice = [
        k for k in receiver.keys_delivered() if sum(r.key == k for r in receiver.delivered()) > 1
    ]
    verify = cli(config, "log", "verify")
    ok = (
        exit_code == 0
        and took <= GRACE + 1.5
        and in_flight <= finished
        and states.get("in_flight", 0) == 0
        and leased == 0
        and not twice
        and verify.returncode == 0
    )
    tally.add(
        "Graceful shutdown: in-flight attempts finish within the grace period; leases released",
        f"SIGTERM with 4 attempts in flight (receiver answers after 1 s; grace {GRACE:g} s) "
        "and 16 waiting, then restart",
        1,
        "SIGTERM",
        f"exit {exit_code} after {took:.1f} s; {len(in_flight & finished)}/{len(in_flight)} "
        f"in-flight attempts recorded delivered; after exit {states}, {leased} leases held; "
        f"{len(acked)} acknowledged all delivered after restart, {len(twice)} twice",
        ok=ok,
    )
    assert exit_code == 0, gw.tail()
    assert took <= GRACE + 1.5, f"took {took:.1f}s to stop (grace {GRACE}s)"
    assert in_flight <= finished, "attempts in flight at SIGTERM were not recorded as delivered"
    assert states.get("in_flight", 0) == 0 and leased == 0, (states, leased)
    assert not twice, f"delivered twice although they finished before exit: {twice}"
    assert verify.returncode == 0, verify.stdout


@pytest.mark.slow
async def test_sigterm_cancels_attempts_beyond_grace_and_resends_them(
    tmp_path: Path, tally: Any
) -> None:
    receiver = Receiver(stall=8.0)
    await receiver.start()
    grace = 1.0
    gw, _ = await setup(tmp_path, receiver, grace=grace, read=10.0)
    db = tmp_path / "gw.db"
    try:
        acked = await push_batch(gw, 6, "C")
        await wait_for(lambda: receiver.in_progress == 4, what="four attempts in flight")
        stuck = {r.key for r in receiver.receipts}
        signalled = time.monotonic()
        gw.terminate()
        exit_code = await gw.wait_exit()
        took = time.monotonic() - signalled
        states = dict(db_rows(db, "SELECT status, count(*) FROM deliveries GROUP BY status"))
        receiver.stall = 0.0
        await gw.start()

        def all_arrived() -> bool:
            return acked <= {uid_of_key(k) for k in receiver.keys_delivered()}

        await wait_for(all_arrived, timeout=30, what="everything after the restart")
        await gw.stop()
    finally:
        gw.kill()
        await receiver.stop()
    resent = {r.key for r in receiver.receipts if r.key in stuck and r.arrived > 0}
    keys_per_id: dict[str, set[str]] = {}
    for r in receiver.receipts:
        keys_per_id.setdefault(r.id, set()).add(r.key)
    mixed = {i: k for i, k in keys_per_id.items() if len(k) > 1}
    bound = 2 * grace + 2.0
    ok = exit_code == 0 and took <= bound and states.get("in_flight", 0) == 0 and not mixed
    tally.add(
        "Graceful shutdown: attempts beyond the grace period are cancelled and released",
        f"SIGTERM with 4 attempts stalled 8 s by the receiver (grace {grace:g} s), restart",
        1,
        "SIGTERM",
        f"exit {exit_code} after {took:.1f} s; after exit {states}; {len(stuck)} stalled "
        f"attempts sent again after restart, {len(mixed)} under another key",
        ok=ok,
    )
    assert exit_code == 0, gw.tail()
    assert took <= bound, f"took {took:.1f}s to stop with grace {grace}s"
    assert states.get("in_flight", 0) == 0, states
    assert stuck <= resent
    assert not mixed, mixed
