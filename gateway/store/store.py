"""Queries of the delivery engine, the CLI and the admin API, over SQLAlchemy Core.

All writes go through short transactions. On SQLite they are serialised in-process (one
writer connection, ``BEGIN IMMEDIATE``) so concurrent requests never meet ``SQLITE_BUSY``;
intake and attempt results are batched by the engine into one transaction each (group
commit), so durability costs one fsync per batch, not per dossier.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Select,
    and_,
    bindparam,
    event,
    exists,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from gateway.model import DeliveryStatus, Message, Outcome, canonical_json
from gateway.store import migrate
from gateway.store.tables import audit_log, breakers, deliveries, delivery_log, messages, poll_cursors

GENESIS = "0" * 64
ACTIVE = (DeliveryStatus.PENDING.value, DeliveryStatus.IN_FLIGHT.value)


class StoreUnavailable(Exception):
    """The store cannot take writes now (locked too long, disk full, unreachable)."""


@dataclass(slots=True)
class IntakeItem:
    """A message on its way into the store with the destinations its routes name."""

    message: Message
    routes: list[tuple[str, str]]
    deadlines: dict[str, float]
    parent_delivery_id: int | None = None


@dataclass(slots=True)
class IngestResult:
    ref: str
    uid: str
    duplicate: bool
    deliveries: int


@dataclass(slots=True)
class ClaimedDelivery:
    """A delivery leased to this node, with what is needed to render and send it."""

    id: int
    destination: str
    route: str
    dossier_key: str
    attempts: int
    created_at: float
    deadline_at: float
    idempotency_key: str
    message_uid: str
    source: str
    event: str
    external_id: str
    ref: str
    procedure: str | None
    revision: int
    payload: str

    def message(self) -> Message:
        return Message(
            event=self.event,
            external_id=self.external_id,
            payload=json.loads(self.payload),
            dossier_key=self.dossier_key,
            procedure=self.procedure,
            source=self.source,
            ref=self.ref,
            revision=self.revision,
        )


@dataclass(slots=True)
class AttemptRecord:
    """The outcome of one attempt, to be logged and applied to its delivery."""

    delivery: ClaimedDelivery
    outcome: Outcome
    started_at: float
    duration_ms: float
    http_status: int | None = None
    bytes_sent: int = 0
    bytes_received: int = 0
    error_class: str | None = None
    error_message: str | None = None
    next_attempt_at: float | None = None
    follow_ups: list[IntakeItem] = field(default_factory=list)

    @property
    def attempt(self) -> int:
        return self.delivery.attempts + 1


@dataclass(slots=True, frozen=True)
class LogFilter:
    system: str | None = None
    outcome: str | None = None
    dossier: str | None = None
    since: float | None = None
    until: float | None = None
    delivery_id: int | None = None


@dataclass(slots=True, frozen=True)
class DeliveryFilter:
    status: str | None = None
    destination: str | None = None
    dossier: str | None = None


def _log_hash(prev: str, row: dict[str, Any]) -> str:
    fields = (
        prev, row["chain"], row["seq"], repr(float(row["at"])), row["delivery_id"],
        row["dossier_key"], row["source"], row["destination"], row["route"], row["attempt"],
        row["outcome"], row["http_status"], repr(float(row["duration_ms"])), row["bytes_sent"],
        row["bytes_received"], row["error_class"], row["error_message"],
        None if row["next_attempt_at"] is None else repr(float(row["next_attempt_at"])),
        row["node"], row["actor"],
    )
    return hashlib.sha256(canonical_json(list(fields))).hexdigest()


def idempotency_key(message_uid: str, destination: str) -> str:
    """Stable per message x destination: every resend carries the same key."""
    return f"{message_uid}-{hashlib.sha256(destination.encode()).hexdigest()[:16]}"


def _to_async_url(url: str) -> str:
    if url.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + url[len("sqlite:///"):]
    if url.startswith("postgresql://"):
        return "postgresql+asyncpg://" + url[len("postgresql://"):]
    return url


class Store:
    """The gateway's database. Open with :meth:`open`, close with :meth:`close`."""

    def __init__(self, url: str, *, node_id: str = "node", base_dir: Path | None = None) -> None:
        self.url = _to_async_url(url)
        parsed = make_url(self.url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        if self.is_sqlite and parsed.database and parsed.database != ":memory:":
            db = Path(parsed.database)
            if not db.is_absolute() and base_dir is not None:
                db = base_dir / db
            db.parent.mkdir(parents=True, exist_ok=True)
            self.url = str(parsed.set(database=str(db)))
        self.node_id = node_id
        self._writer: AsyncEngine | None = None
        self._reader: AsyncEngine | None = None
        self._write_lock = asyncio.Lock()

    # -- lifecycle -----------------------------------------------------------------------------
    async def open(self) -> None:
        if self.is_sqlite:
            self._writer = create_async_engine(self.url, pool_size=1, max_overflow=0)
            self._reader = create_async_engine(self.url, pool_size=4, max_overflow=4)
            _sqlite_pragmas(self._writer, immediate=True)
            _sqlite_pragmas(self._reader, immediate=False)
        else:
            self._writer = create_async_engine(self.url, pool_size=10, max_overflow=10)
            self._reader = self._writer

    async def close(self) -> None:
        for engine in {id(e): e for e in (self._writer, self._reader) if e is not None}.values():
            await engine.dispose()
        self._writer = self._reader = None

    @property
    def writer(self) -> AsyncEngine:
        if self._writer is None:
            raise RuntimeError("store is not open: call await store.open() first")
        return self._writer

    @property
    def reader(self) -> AsyncEngine:
        if self._reader is None:
            raise RuntimeError("store is not open: call await store.open() first")
        return self._reader

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """One write transaction; database trouble becomes :class:`StoreUnavailable`."""
        async with self._write_lock:
            try:
                async with self.writer.begin() as conn:
                    yield conn
            except OperationalError as exc:
                raise StoreUnavailable(_db_reason(exc)) from exc
            except DBAPIError as exc:
                if exc.connection_invalidated:
                    raise StoreUnavailable(_db_reason(exc)) from exc
                raise

    async def upgrade(self, extra_dirs: list[str] | None = None) -> None:
        async with self.write() as conn:
            await conn.run_sync(migrate.upgrade, extra_dirs)

    async def pending_migrations(self, extra_dirs: list[str] | None = None) -> set[str]:
        async with self.reader.connect() as conn:
            return await conn.run_sync(migrate.pending, extra_dirs)

    async def ping(self) -> None:
        async with self.reader.connect() as conn:
            await conn.execute(select(1))

    # -- intake ------------------------------------------------------------------------------
    async def ingest(self, items: Sequence[IntakeItem], now: float | None = None) -> list[IngestResult]:
        """Store messages and their deliveries in one transaction (dedupe included)."""
        async with self.write() as conn:
            return await _ingest(conn, items, time.time() if now is None else now)

    # -- delivery ----------------------------------------------------------------------------
    async def claim(
        self, destination: str, limit: int, lease_seconds: float, now: float | None = None
    ) -> list[ClaimedDelivery]:
        """Lease up to ``limit`` due deliveries for ``destination``, oldest first, skipping any
        whose earlier sibling (same dossier, same destination) is still pending or in flight."""
        now = time.time() if now is None else now
        d, e = deliveries, deliveries.alias("earlier")
        blocked = exists().where(
            e.c.dossier_key == d.c.dossier_key,
            e.c.destination == d.c.destination,
            e.c.id < d.c.id,
            e.c.status.in_(ACTIVE),
        )
        due: Select[Any] = (
            select(d.c.id)
            .where(
                d.c.destination == destination,
                d.c.status == DeliveryStatus.PENDING.value,
                d.c.next_attempt_at <= now,
                ~blocked,
            )
            .order_by(d.c.id)
            .limit(limit)
        )
        if not self.is_sqlite:
            due = due.with_for_update(skip_locked=True, of=d)
        async with self.write() as conn:
            ids = (
                await conn.execute(
                    update(d)
                    .where(d.c.id.in_(due.scalar_subquery()))
                    .values(
                        status=DeliveryStatus.IN_FLIGHT.value,
                        lease_owner=self.node_id,
                        lease_expires_at=now + lease_seconds,
                        updated_at=now,
                    )
                    .returning(d.c.id)
                )
            ).scalars().all()
            if not ids:
                return []
            rows = await conn.execute(_claimed_select().where(d.c.id.in_(ids)).order_by(d.c.id))
            return [ClaimedDelivery(**row._mapping) for row in rows]

    async def record(self, records: Sequence[AttemptRecord], now: float | None = None) -> list[IngestResult]:
        """Log attempts (hash-chained) and apply their outcomes, follow-ups included, in one
        transaction. Returns the follow-ups' ingest results."""
        now = time.time() if now is None else now
        async with self.write() as conn:
            await self._append_log(conn, [_log_row(r, self.node_id, now) for r in records])
            await _apply_outcomes(conn, records, now)
            follow = [f for r in records for f in r.follow_ups]
            return await _ingest(conn, follow, now) if follow else []

    async def release_leases(self, ids: Iterable[int] | None = None) -> int:
        """Give this node's in-flight deliveries back (at shutdown or start-up)."""
        conds = [deliveries.c.status == DeliveryStatus.IN_FLIGHT.value, deliveries.c.lease_owner == self.node_id]
        if ids is not None:
            conds.append(deliveries.c.id.in_(list(ids)))
        return await self._release(and_(*conds))

    async def reclaim_expired(self, now: float | None = None) -> int:
        """Any node's leases that expired (a crashed node) become pending again."""
        now = time.time() if now is None else now
        return await self._release(
            and_(
                deliveries.c.status == DeliveryStatus.IN_FLIGHT.value,
                deliveries.c.lease_expires_at < now,
            )
        )

    async def _release(self, where: Any) -> int:
        async with self.write() as conn:
            result = await conn.execute(
                update(deliveries)
                .where(where)
                .values(status=DeliveryStatus.PENDING.value, lease_owner=None, lease_expires_at=None)
            )
            return int(result.rowcount or 0)

    async def queue_depth(self) -> int:
        async with self.reader.connect() as conn:
            return int(
                (await conn.execute(
                    select(func.count()).select_from(deliveries).where(deliveries.c.status.in_(ACTIVE))
                )).scalar_one()
            )

    async def next_due(self) -> dict[str, float]:
        """Earliest ``next_attempt_at`` of pending deliveries, per destination."""
        async with self.reader.connect() as conn:
            rows = await conn.execute(
                select(deliveries.c.destination, func.min(deliveries.c.next_attempt_at))
                .where(deliveries.c.status == DeliveryStatus.PENDING.value)
                .group_by(deliveries.c.destination)
            )
            return {dest: float(at) for dest, at in rows}

    async def destination_depths(self) -> dict[str, dict[str, int]]:
        """Counts of deliveries by destination and status."""
        async with self.reader.connect() as conn:
            rows = await conn.execute(
                select(deliveries.c.destination, deliveries.c.status, func.count())
                .group_by(deliveries.c.destination, deliveries.c.status)
            )
            out: dict[str, dict[str, int]] = {}
            for dest, status, count in rows:
                out.setdefault(dest, {})[status] = int(count)
            return out

    # -- operator actions ----------------------------------------------------------------------
    async def retry_dead(
        self, ids: Sequence[int] | None, actor: str, now: float | None = None, *, extend: float = 259_200.0
    ) -> list[int]:
        """Put dead deliveries back in the queue (given ids, or all when ``ids`` is None).

        Each replay is written to the delivery log (outcome ``replayed``, with the actor) and
        to the audit log. The deadline is extended by ``extend`` seconds from now.
        """
        now = time.time() if now is None else now
        async with self.write() as conn:
            query = _claimed_select().where(deliveries.c.status == DeliveryStatus.DEAD.value)
            if ids is not None:
                query = query.where(deliveries.c.id.in_(list(ids)))
            rows = [ClaimedDelivery(**r._mapping) for r in await conn.execute(query.order_by(deliveries.c.id))]
            if not rows:
                return []
            await conn.execute(
                update(deliveries)
                .where(deliveries.c.id.in_([r.id for r in rows]))
                .values(
                    status=DeliveryStatus.PENDING.value,
                    next_attempt_at=now,
                    deadline_at=now + extend,
                    updated_at=now,
                )
            )
            log_rows = [
                _log_row(
                    AttemptRecord(delivery=r, outcome=Outcome.DEAD, started_at=now, duration_ms=0.0),
                    self.node_id, now, outcome="replayed", actor=actor, attempt=r.attempts,
                )
                for r in rows
            ]
            await self._append_log(conn, log_rows)
            await conn.execute(
                insert(audit_log),
                [{"at": now, "actor": actor, "action": "retry", "target": f"delivery:{r.id}", "detail": ""} for r in rows],
            )
            return [r.id for r in rows]

    async def audit(self, actor: str, action: str, target: str, detail: str = "") -> None:
        async with self.write() as conn:
            await conn.execute(
                insert(audit_log).values(at=time.time(), actor=actor, action=action, target=target, detail=detail)
            )

    # -- breaker state ---------------------------------------------------------------------------
    async def save_breaker(self, destination: str, state: str, failures: int, opened_at: float | None) -> None:
        now = time.time()
        async with self.write() as conn:
            result = await conn.execute(
                update(breakers)
                .where(breakers.c.destination == destination)
                .values(state=state, failures=failures, opened_at=opened_at, updated_at=now)
            )
            if not result.rowcount:
                await conn.execute(
                    insert(breakers).values(
                        destination=destination, state=state, failures=failures, opened_at=opened_at, updated_at=now
                    )
                )

    async def load_breakers(self) -> dict[str, tuple[str, int, float | None]]:
        async with self.reader.connect() as conn:
            rows = await conn.execute(select(breakers))
            return {r.destination: (r.state, r.failures, r.opened_at) for r in rows}

    # -- poll cursors ----------------------------------------------------------------------------
    async def get_cursor(self, system: str) -> str | None:
        async with self.reader.connect() as conn:
            value = (await conn.execute(select(poll_cursors.c.cursor).where(poll_cursors.c.system == system))).scalar()
            return None if value is None else str(value)

    async def set_cursor(self, system: str, cursor: str | None) -> None:
        now = time.time()
        async with self.write() as conn:
            result = await conn.execute(
                update(poll_cursors).where(poll_cursors.c.system == system).values(cursor=cursor, updated_at=now)
            )
            if not result.rowcount:
                await conn.execute(insert(poll_cursors).values(system=system, cursor=cursor, updated_at=now))

    # -- reading ---------------------------------------------------------------------------------
    async def get_delivery(self, delivery_id: int) -> dict[str, Any] | None:
        async with self.reader.connect() as conn:
            row = (
                await conn.execute(
                    select(deliveries, messages.c.uid.label("message_uid"), messages.c.source,
                           messages.c.event, messages.c.ref, messages.c.payload)
                    .join(messages, messages.c.id == deliveries.c.message_id)
                    .where(deliveries.c.id == delivery_id)
                )
            ).first()
            return None if row is None else dict(row._mapping)

    async def list_deliveries(
        self, flt: DeliveryFilter, *, limit: int = 50, before_id: int | None = None
    ) -> list[dict[str, Any]]:
        d = deliveries
        query = (
            select(d, messages.c.source, messages.c.event, messages.c.ref)
            .join(messages, messages.c.id == d.c.message_id)
            .order_by(d.c.id.desc())
            .limit(limit)
        )
        if flt.status:
            query = query.where(d.c.status == flt.status)
        if flt.destination:
            query = query.where(d.c.destination == flt.destination)
        if flt.dossier:
            query = query.where(d.c.dossier_key == flt.dossier)
        if before_id is not None:
            query = query.where(d.c.id < before_id)
        async with self.reader.connect() as conn:
            return [dict(r._mapping) for r in await conn.execute(query)]

    def _log_query(self, flt: LogFilter) -> Select[Any]:
        q = select(delivery_log)
        if flt.system:
            q = q.where(or_(delivery_log.c.destination == flt.system, delivery_log.c.source == flt.system))
        if flt.outcome:
            q = q.where(delivery_log.c.outcome == flt.outcome)
        if flt.dossier:
            q = q.where(delivery_log.c.dossier_key == flt.dossier)
        if flt.since is not None:
            q = q.where(delivery_log.c.at >= flt.since)
        if flt.until is not None:
            q = q.where(delivery_log.c.at < flt.until)
        if flt.delivery_id is not None:
            q = q.where(delivery_log.c.delivery_id == flt.delivery_id)
        return q

    async def list_log(
        self, flt: LogFilter, *, limit: int = 50, before_id: int | None = None
    ) -> list[dict[str, Any]]:
        q = self._log_query(flt).order_by(delivery_log.c.id.desc()).limit(limit)
        if before_id is not None:
            q = q.where(delivery_log.c.id < before_id)
        async with self.reader.connect() as conn:
            return [dict(r._mapping) for r in await conn.execute(q)]

    async def iter_log(self, flt: LogFilter, batch: int = 2000) -> AsyncIterator[list[dict[str, Any]]]:
        """The filtered log in id order, in batches (for exports of any size)."""
        after = 0
        while True:
            q = self._log_query(flt).where(delivery_log.c.id > after).order_by(delivery_log.c.id).limit(batch)
            async with self.reader.connect() as conn:
                rows = [dict(r._mapping) for r in await conn.execute(q)]
            if not rows:
                return
            yield rows
            after = rows[-1]["id"]

    async def count_log(self, flt: LogFilter) -> int:
        q = select(func.count()).select_from(self._log_query(flt).subquery())
        async with self.reader.connect() as conn:
            return int((await conn.execute(q)).scalar_one())

    async def dossier_timeline(self, dossier_key: str) -> dict[str, Any]:
        """Every message and attempt for one dossier key, across systems, in time order."""
        async with self.reader.connect() as conn:
            msgs = [
                dict(r._mapping)
                for r in await conn.execute(
                    select(messages.c.id, messages.c.uid, messages.c.source, messages.c.event,
                           messages.c.ref, messages.c.revision, messages.c.received_at)
                    .where(messages.c.dossier_key == dossier_key)
                    .order_by(messages.c.id)
                )
            ]
            dels = [
                dict(r._mapping)
                for r in await conn.execute(
                    select(deliveries).where(deliveries.c.dossier_key == dossier_key).order_by(deliveries.c.id)
                )
            ]
            log = [
                dict(r._mapping)
                for r in await conn.execute(
                    select(delivery_log).where(delivery_log.c.dossier_key == dossier_key).order_by(delivery_log.c.id)
                )
            ]
        return {"dossier_key": dossier_key, "messages": msgs, "deliveries": dels, "attempts": log}

    async def verify_log(self) -> tuple[int, list[str]]:
        """Walk every chain; return (rows checked, problems found)."""
        problems: list[str] = []
        checked = 0
        heads: dict[str, tuple[int, str]] = {}
        after = 0
        while True:
            async with self.reader.connect() as conn:
                rows = [
                    dict(r._mapping)
                    for r in await conn.execute(
                        select(delivery_log).where(delivery_log.c.id > after).order_by(delivery_log.c.id).limit(5000)
                    )
                ]
            if not rows:
                break
            for row in rows:
                checked += 1
                seq, prev = heads.get(row["chain"], (0, GENESIS))
                if row["seq"] != seq + 1:
                    problems.append(f"row {row['id']}: chain {row['chain']} jumps from seq {seq} to {row['seq']}")
                if row["prev_hash"] != prev:
                    problems.append(f"row {row['id']}: prev_hash does not match the previous row of its chain")
                if _log_hash(row["prev_hash"], row) != row["hash"]:
                    problems.append(f"row {row['id']}: hash does not match its content (edited?)")
                heads[row["chain"]] = (row["seq"], row["hash"])
            after = rows[-1]["id"]
        return checked, problems

    async def prune_log(self, before: float) -> int:
        """Retention: delete log rows older than ``before`` (explicit setting only). The chain
        is verified from the first remaining row of each chain onwards."""
        async with self.write() as conn:
            result = await conn.execute(delivery_log.delete().where(delivery_log.c.at < before))
            return int(result.rowcount or 0)

    # -- internals -----------------------------------------------------------------------------
    async def _append_log(self, conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        chain = rows[0]["chain"]
        head = (
            await conn.execute(
                select(delivery_log.c.seq, delivery_log.c.hash)
                .where(delivery_log.c.chain == chain)
                .order_by(delivery_log.c.seq.desc())
                .limit(1)
            )
        ).first()
        seq, prev = (head.seq, head.hash) if head else (0, GENESIS)
        for row in rows:
            seq += 1
            row["seq"] = seq
            row["prev_hash"] = prev
            row["hash"] = prev = _log_hash(prev, row)
        await conn.execute(insert(delivery_log), rows)


def _claimed_select() -> Select[Any]:
    d, m = deliveries, messages
    return select(
        d.c.id, d.c.destination, d.c.route, d.c.dossier_key, d.c.attempts, d.c.created_at,
        d.c.deadline_at, d.c.idempotency_key, m.c.uid.label("message_uid"), m.c.source,
        m.c.event, m.c.external_id, m.c.ref, m.c.procedure, m.c.revision, m.c.payload,
    ).join(m, m.c.id == d.c.message_id)


def _log_row(
    r: AttemptRecord,
    node: str,
    now: float,
    *,
    outcome: str | None = None,
    actor: str | None = None,
    attempt: int | None = None,
) -> dict[str, Any]:
    dlv = r.delivery
    return {
        "chain": node,
        "at": now,
        "delivery_id": dlv.id,
        "dossier_key": dlv.dossier_key,
        "source": dlv.source,
        "destination": dlv.destination,
        "route": dlv.route,
        "attempt": r.attempt if attempt is None else attempt,
        "outcome": outcome or r.outcome.value,
        "http_status": r.http_status,
        "duration_ms": round(r.duration_ms, 3),
        "bytes_sent": r.bytes_sent,
        "bytes_received": r.bytes_received,
        "error_class": r.error_class,
        "error_message": r.error_message,
        "next_attempt_at": r.next_attempt_at,
        "node": node,
        "actor": actor,
    }


async def _apply_outcomes(conn: AsyncConnection, records: Sequence[AttemptRecord], now: float) -> None:
    d = deliveries
    not_done = d.c.status != DeliveryStatus.DELIVERED.value
    by_outcome: dict[Outcome, list[dict[str, Any]]] = {}
    for r in records:
        by_outcome.setdefault(r.outcome, []).append(
            {
                "b_id": r.delivery.id,
                "b_attempts": r.attempt,
                "b_status": r.http_status,
                "b_error": r.error_message,
                "b_next": r.next_attempt_at if r.next_attempt_at is not None else now,
            }
        )
    common = {
        "attempts": bindparam("b_attempts"),
        "last_status": bindparam("b_status"),
        "last_error": bindparam("b_error"),
        "updated_at": now,
        "lease_owner": None,
        "lease_expires_at": None,
    }
    status_for = {
        Outcome.DELIVERED: {"status": DeliveryStatus.DELIVERED.value, "delivered_at": now},
        Outcome.RETRY: {"status": DeliveryStatus.PENDING.value, "next_attempt_at": bindparam("b_next")},
        Outcome.DEAD: {"status": DeliveryStatus.DEAD.value},
    }
    for outcome, params in by_outcome.items():
        stmt = update(d).where(d.c.id == bindparam("b_id"), not_done).values(**common, **status_for[outcome])
        await conn.execute(stmt, params)


async def _ingest(conn: AsyncConnection, items: Sequence[IntakeItem], now: float) -> list[IngestResult]:
    if not items:
        return []
    m = messages
    by_source: dict[str, set[str]] = {}
    for it in items:
        by_source.setdefault(it.message.source, set()).add(it.message.external_id)
    known: dict[tuple[str, str, str], str] = {}
    revisions: dict[tuple[str, str], int] = {}
    for source, ext_ids in by_source.items():
        rows = await conn.execute(
            select(m.c.source, m.c.external_id, m.c.content_hash, m.c.uid)
            .where(m.c.source == source, m.c.external_id.in_(list(ext_ids)))
        )
        for row in rows:
            known[(row.source, row.external_id, row.content_hash)] = row.uid
            key = (row.source, row.external_id)
            revisions[key] = revisions.get(key, 0) + 1

    results: list[IngestResult] = []
    new_rows: list[dict[str, Any]] = []
    new_items: list[IntakeItem] = []
    for it in items:
        msg = it.message
        h = msg.content_hash
        dedupe_key = (msg.source, msg.external_id, h)
        if dedupe_key in known:
            results.append(IngestResult(msg.ref, known[dedupe_key], True, 0))
            continue
        rev_key = (msg.source, msg.external_id)
        revisions[rev_key] = revisions.get(rev_key, 0) + 1
        msg.revision = revisions[rev_key]
        uid = uuid.uuid4().hex
        known[dedupe_key] = uid
        new_rows.append(
            {
                "uid": uid, "source": msg.source, "event": msg.event, "external_id": msg.external_id,
                "ref": msg.ref, "dossier_key": msg.dossier_key, "procedure": msg.procedure,
                "revision": msg.revision, "content_hash": h,
                "payload": canonical_json(msg.payload).decode(), "received_at": now,
                "parent_delivery_id": it.parent_delivery_id,
            }
        )
        new_items.append(it)
        results.append(IngestResult(msg.ref, uid, False, len(it.routes)))
    if not new_rows:
        return results
    ids = (
        await conn.execute(insert(m).returning(m.c.id, sort_by_parameter_order=True), new_rows)
    ).scalars().all()
    delivery_rows = [
        {
            "message_id": mid, "destination": dest, "route": route, "dossier_key": it.message.dossier_key,
            "status": DeliveryStatus.PENDING.value, "attempts": 0, "next_attempt_at": now,
            "created_at": now, "updated_at": now, "deadline_at": now + it.deadlines.get(dest, 259_200.0),
            "idempotency_key": idempotency_key(row["uid"], dest),
        }
        for mid, row, it in zip(ids, new_rows, new_items, strict=True)
        for route, dest in it.routes
    ]
    if delivery_rows:
        await conn.execute(insert(deliveries), delivery_rows)
    return results


def _sqlite_pragmas(engine: AsyncEngine, *, immediate: bool) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA busy_timeout=5000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _db_reason(exc: DBAPIError) -> str:
    text = str(exc.orig) if exc.orig is not None else str(exc)
    if "locked" in text:
        return "the database is locked by another process"
    if "full" in text or "No space" in text:
        return "the disk is full"
    return text.splitlines()[0][:200]
