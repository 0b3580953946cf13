"""Every write the gateway makes, as plain synchronous SQLAlchemy Core on one connection.

The same functions run in the SQLite writer thread and, through ``AsyncConnection.run_sync``,
on PostgreSQL (see :class:`gateway.store.Store`). Each is called inside a transaction the
store opened; none commits.

Many nodes on one PostgreSQL (READ COMMITTED) — what keeps the promises:

* **Intake order and dedupe.** A cycle first takes a transaction-scoped advisory lock for
  every dossier key and every (source, external id) it will store, all at once and in sorted
  order (:func:`lock_keys`). A second node ingesting the same dossier waits until the first
  commits, then reads the committed rows: it answers a duplicate as a duplicate, numbers the
  revision after the first, and its deliveries get higher ids. So, per dossier key, delivery
  ids are allocated in commit order: a node that can see a delivery can see every earlier
  one. Locking everything up front means a transaction waits for a lock only while it holds
  none of its own (no deadlock between nodes).
* **Claims.** ``FOR UPDATE SKIP LOCKED`` picks due rows no other node is taking; a delivery
  is claimable only while no earlier delivery of its dossier key to the same destination is
  pending or in flight. Because ids follow commit order (above), two nodes can never both
  see their own delivery of a dossier as the earliest active one: the second delivery stays
  blocked in every snapshot until the first is delivered or dead.
* **Outcomes.** A retry or dead outcome is applied only while the delivery's lease is still
  this node's (or released): a node that outlived its lease does not reset a delivery that
  another node has since taken over. A delivered outcome always counts.
"""

from __future__ import annotations

import functools
import hashlib
import json
import sqlite3
import time
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import (
    BigInteger,
    Select,
    bindparam,
    insert,
    literal_column,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.expression import ColumnClause

from gateway.model import DeliveryStatus, Outcome
from gateway.store import cluster
from gateway.store.records import (
    GENESIS,
    AttemptRecord,
    ClaimedDelivery,
    CycleResult,
    IngestResult,
    IntakeItem,
    idempotency_key,
    log_hash,
    work_after,
)
from gateway.store.tables import (
    audit_log,
    breakers,
    deliveries,
    delivery_log,
    messages,
    poll_cursors,
)

ACTIVE = (DeliveryStatus.PENDING.value, DeliveryStatus.IN_FLIGHT.value)
DEFAULT_DEADLINE = 259_200.0
#: written as literals: the planner sees which statuses the ordering check looks for
ACTIVE_LITERALS: list[ColumnClause[Any]] = [literal_column(f"'{s}'") for s in ACTIVE]
#: PostgreSQL LISTEN/NOTIFY channel: "<node id>|<destination>,<destination>..."
NOTIFY_CHANNEL = "gateway_work"

ChainHead = tuple[int, str]


class Writer:
    """Write operations of one node (its id names its leases and its delivery-log chain).

    The head of the node's log chain is cached between transactions: only this node appends
    to its chain. The cache moves forward only when the store reports a commit
    (:meth:`committed`), so a rolled-back transaction never leaves it ahead of the table.
    Two nodes configured with the same id would both append to one chain: the unique
    (chain, seq) constraint refuses the second row and the store raises
    :class:`gateway.store.records.DuplicateNodeId`.

    ``shared`` (PostgreSQL): other nodes write the same tables, so claims skip locked rows and
    intake takes advisory locks (see the module's notes). ``notify``: announce committed work
    on :data:`NOTIFY_CHANNEL` so idle nodes wake without polling.
    """

    def __init__(self, node_id: str, *, skip_locked: bool, notify: bool = False) -> None:
        self.node_id = node_id
        self.skip_locked = skip_locked
        self.notify = notify
        #: this node's generation in the ``nodes`` table (its fencing token), once it joined;
        #: None: no membership (a store used on its own), nothing is fenced
        self.generation: int | None = None
        self._head: ChainHead | None = None
        self._pending_head: ChainHead | None = None

    def committed(self) -> None:
        if self._pending_head is not None:
            self._head = self._pending_head
            self._pending_head = None

    def rolled_back(self) -> None:
        self._pending_head = None
        self._head = None  # re-read from the table next time

    # -- the engine's cycle ----------------------------------------------------------------------
    def cycle(
        self,
        conn: Connection,
        items: Sequence[IntakeItem],
        records: Sequence[AttemptRecord],
        wanted: dict[str, int],
        lease_seconds: float,
        now: float,
    ) -> CycleResult:
        fenced: list[AttemptRecord] = []
        held = False
        if self.generation is not None and (records or wanted):
            # the fence: results are recorded and leases taken only while this node still
            # holds its generation (a node silent for too long has lost it, and its work)
            held = cluster.hold(conn, self.node_id, self.generation)
            if not held:
                fenced, records, wanted = list(records), [], {}
            elif any(r.delivery.generation not in (None, self.generation) for r in records):
                mine = (None, self.generation)
                fenced = [r for r in records if r.delivery.generation not in mine]
                records = [r for r in records if r.delivery.generation in mine]
        if self.skip_locked:
            lock_keys(conn, [*items, *(f for r in records for f in r.follow_ups)])
        ingested = ingest(conn, items, now) if items else []
        follow = self.record(conn, records, now) if records else []
        claimed = {
            dest: self.claim(conn, dest, n, lease_seconds, now) for dest, n in wanted.items()
        }
        if self.notify:
            self.announce(conn, work_after(items, records))
        return CycleResult(ingested, follow, claimed, fenced, held)

    def announce(self, conn: Connection, destinations: Iterable[str]) -> None:
        """NOTIFY other nodes (delivered at commit) that these destinations have work."""
        names = sorted(set(destinations))
        if names:
            payload = f"{self.node_id}|{','.join(names)}"
            conn.execute(
                text("SELECT pg_notify(:channel, :payload)"),
                {"channel": NOTIFY_CHANNEL, "payload": payload[:7900]},
            )

    def claim(
        self, conn: Connection, destination: str, limit: int, lease_seconds: float, now: float
    ) -> list[ClaimedDelivery]:
        """Lease up to ``limit`` due deliveries for ``destination``, oldest first, skipping any
        whose earlier sibling (same dossier, same destination) is still pending or in flight.

        The statements are built once (:func:`_claim_statements`): building them per call cost
        ten times the SQL itself, and a cycle claims for every woken lane."""
        lease, fetch = _claim_statements(self.skip_locked)
        ids = (
            conn.execute(
                lease,
                {
                    "c_dest": destination,
                    "c_now": now,
                    "c_limit": limit,
                    "c_owner": self.node_id,
                    "c_expires": now + lease_seconds,
                },
            )
            .scalars()
            .all()
        )
        if not ids:
            return []
        if conn.dialect.name == "sqlite":
            claimed = _fetch_claimed_sqlite(conn, list(ids))
        else:
            claimed = [ClaimedDelivery(*row) for row in conn.execute(fetch, {"c_ids": list(ids)})]
        for delivery in claimed:  # the fencing token the lease was taken under
            delivery.generation = self.generation
        return claimed

    def record(
        self, conn: Connection, records: Sequence[AttemptRecord], now: float
    ) -> list[IngestResult]:
        """Log attempts (hash-chained), apply their outcomes, ingest their follow-ups."""
        self.append_log(conn, [log_row(r, self.node_id, now) for r in records])
        apply_outcomes(conn, records, now, self.node_id)
        follow = [f for r in records for f in r.follow_ups]
        return ingest(conn, follow, now) if follow else []

    # -- operator actions --------------------------------------------------------------------------
    def retry_dead(
        self, conn: Connection, ids: Sequence[int] | None, actor: str, now: float, extend: float
    ) -> list[int]:
        query = claimed_select().where(deliveries.c.status == DeliveryStatus.DEAD.value)
        if ids is not None:
            query = query.where(deliveries.c.id.in_(list(ids)))
        rows = [
            ClaimedDelivery(**r._mapping) for r in conn.execute(query.order_by(deliveries.c.id))
        ]
        if not rows:
            return []
        conn.execute(
            update(deliveries)
            .where(deliveries.c.id.in_([r.id for r in rows]))
            .values(
                status=DeliveryStatus.PENDING.value,
                next_attempt_at=now,
                deadline_at=now + extend,
                updated_at=now,
            )
        )
        replays = [
            log_row(
                AttemptRecord(delivery=r, outcome=Outcome.DEAD, started_at=now, duration_ms=0.0),
                self.node_id,
                now,
                outcome="replayed",
                actor=actor,
                attempt=r.attempts,
            )
            for r in rows
        ]
        self.append_log(conn, replays)
        audit(conn, [(actor, "retry", f"delivery:{r.id}", "") for r in rows], now)
        return [r.id for r in rows]

    def append_log(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        head = self._pending_head or self._head
        if head is None:
            found = conn.execute(
                select(delivery_log.c.seq, delivery_log.c.hash)
                .where(delivery_log.c.chain == self.node_id)
                .order_by(delivery_log.c.seq.desc())
                .limit(1)
            ).first()
            head = (found.seq, found.hash) if found else (0, GENESIS)
        seq, prev = head
        for row in rows:
            seq += 1
            row["chain"] = self.node_id
            row["seq"] = seq
            row["prev_hash"] = prev
            row["hash"] = prev = log_hash(prev, row)
        execute_many(conn, _insert_statements()[2], rows)
        self._pending_head = (seq, prev)


#: SQLite's dialect with named parameters: the hot statements' text, compiled once
_SQLITE_NAMED = sqlite.dialect(paramstyle="named")


@functools.cache
def _driver_sql(statement: Any, keys: tuple[str, ...]) -> tuple[str, dict[str, Any]]:
    """``statement`` as SQLite text for rows with ``keys``, and the values of the parameters
    it holds besides them (literals such as a status)."""
    compiled = statement.compile(dialect=_SQLITE_NAMED, column_keys=list(keys))
    constants = {k: v for k, v in compiled.params.items() if k not in keys}
    return str(compiled), constants


def execute_many(conn: Connection, statement: Any, rows: list[dict[str, Any]]) -> None:
    """``conn.execute(statement, rows)`` for the per-cycle inserts and updates. On SQLite the
    statement's text is compiled once and the rows go to the driver as they are
    (``exec_driver_sql``: same transaction, same error wrapping): SQLAlchemy's per-row
    parameter processing cost as much CPU as SQLite's own work (py-spy, real route)."""
    if not rows:
        return
    if conn.dialect.name != "sqlite":
        conn.execute(statement, rows)
        return
    sql, constants = _driver_sql(statement, tuple(rows[0]))
    conn.exec_driver_sql(sql, [{**constants, **row} for row in rows] if constants else rows)


@functools.cache
def _claimed_sqlite_text() -> str:
    """The claimed rows' SELECT as SQLite text, the ids as one JSON array (one statement
    text whatever their number: an expanding ``IN`` is rendered anew on every call)."""
    select_text = str(claimed_select().compile(dialect=_SQLITE_NAMED))
    d = deliveries.name
    return f"{select_text}\nWHERE {d}.id IN (SELECT value FROM json_each(:ids)) ORDER BY {d}.id"


def _fetch_claimed_sqlite(conn: Connection, ids: list[int]) -> list[ClaimedDelivery]:
    """The claimed rows on SQLite as plain tuples from the driver (in the cycle's transaction):
    building SQLAlchemy rows for 2 KB payloads was most of a claim's time (py-spy). A driver
    error is wrapped as SQLAlchemy would wrap it, so the store classifies it as before."""
    sql = _claimed_sqlite_text()
    raw = conn.connection.dbapi_connection
    if raw is None:  # an invalidated connection: the store's error handling takes it from here
        raise DBAPIError.instance(
            sql, None, sqlite3.OperationalError("no connection"), sqlite3.Error
        )
    try:
        rows = raw.execute(sql, {"ids": json.dumps(ids)}).fetchall()
    except sqlite3.Error as exc:
        raise DBAPIError.instance(sql, None, exc, sqlite3.Error) from exc
    return [ClaimedDelivery(*row) for row in rows]


def claimed_select() -> Select[Any]:
    d, m = deliveries, messages
    return select(
        d.c.id,
        d.c.destination,
        d.c.route,
        d.c.dossier_key,
        d.c.attempts,
        d.c.created_at,
        d.c.deadline_at,
        d.c.idempotency_key,
        m.c.uid.label("message_uid"),
        m.c.source,
        m.c.event,
        m.c.external_id,
        m.c.ref,
        m.c.procedure,
        m.c.revision,
        m.c.payload,
    ).join(m, m.c.id == d.c.message_id)


def log_row(
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


def apply_outcomes(
    conn: Connection, records: Sequence[AttemptRecord], now: float, node_id: str
) -> None:
    by_outcome: dict[Outcome, list[dict[str, Any]]] = {}
    for r in records:
        by_outcome.setdefault(r.outcome, []).append(
            {
                "b_id": r.delivery.id,
                "b_attempts": r.attempt,
                "b_status": r.http_status,
                "b_error": r.error_message,
                "b_next": r.next_attempt_at if r.next_attempt_at is not None else now,
                "b_now": now,
                "b_node": node_id,
            }
        )
    statements = _outcome_statements()
    for outcome, params in by_outcome.items():
        execute_many(conn, statements[outcome], params)


@functools.cache
def _outcome_statements() -> dict[Outcome, Any]:
    """One ``UPDATE`` per outcome, with bind parameters (built once, as the claims)."""
    d = deliveries
    not_done = d.c.status != DeliveryStatus.DELIVERED.value
    # a retry or dead outcome must not undo another node's take-over of an expired lease
    still_ours = or_(d.c.lease_owner == bindparam("b_node"), d.c.lease_owner.is_(None))
    common: dict[str, Any] = {
        "attempts": bindparam("b_attempts"),
        "last_status": bindparam("b_status"),
        "last_error": bindparam("b_error"),
        "updated_at": bindparam("b_now"),
        "lease_owner": None,
        "lease_expires_at": None,
    }
    status_for: dict[Outcome, dict[str, Any]] = {
        Outcome.DELIVERED: {
            "status": DeliveryStatus.DELIVERED.value,
            "delivered_at": bindparam("b_now"),
        },
        Outcome.RETRY: {
            "status": DeliveryStatus.PENDING.value,
            "next_attempt_at": bindparam("b_next"),
        },
        Outcome.DEAD: {"status": DeliveryStatus.DEAD.value},
    }
    statements: dict[Outcome, Any] = {}
    for outcome, values in status_for.items():
        conds = [d.c.id == bindparam("b_id"), not_done]
        if outcome is not Outcome.DELIVERED:
            conds.append(still_ours)
        statements[outcome] = update(d).where(*conds).values(**common, **values)
    return statements


def _lock_id(kind: str, *parts: str) -> int:
    digest = hashlib.blake2b("\x1f".join((kind, *parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def lock_keys(conn: Connection, items: Sequence[IntakeItem]) -> None:
    """PostgreSQL: take the transaction's advisory locks for these items' dossier keys and
    dedupe keys, in one statement and in sorted order (so two nodes never deadlock)."""
    keys: set[int] = set()
    for it in items:
        msg = it.message
        keys.add(_lock_id("dossier", msg.dossier_key))
        keys.add(_lock_id("message", msg.source, msg.external_id))
    if not keys:
        return
    conn.execute(
        text(
            "SELECT pg_advisory_xact_lock(k) "
            "FROM unnest(:keys) WITH ORDINALITY AS t(k, n) ORDER BY n"
        ).bindparams(bindparam("keys", type_=ARRAY(BigInteger))),
        {"keys": sorted(keys)},
    ).all()


def ingest(conn: Connection, items: Sequence[IntakeItem], now: float) -> list[IngestResult]:
    """Store messages and their deliveries; a message seen before (same source, external id
    and content hash) is answered as a duplicate with its first id."""
    if not items:
        return []
    known, revisions = _known(conn, items)
    results: list[IngestResult] = []
    new_rows: list[dict[str, Any]] = []
    new_items: list[IntakeItem] = []
    for it in items:
        msg = it.message
        digest = msg.content_hash
        dedupe_key = (msg.source, msg.external_id, digest)
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
                "uid": uid,
                "source": msg.source,
                "event": msg.event,
                "external_id": msg.external_id,
                "ref": msg.ref,
                "dossier_key": msg.dossier_key,
                "procedure": msg.procedure,
                "revision": msg.revision,
                "content_hash": digest,
                "payload": msg.canonical_payload().decode(),
                "received_at": now,
                "parent_delivery_id": it.parent_delivery_id,
            }
        )
        new_items.append(it)
        results.append(IngestResult(msg.ref, uid, False, len(it.routes)))
    if new_rows:
        _insert_new(conn, new_rows, new_items, now)
    return results


def _known(
    conn: Connection, items: Sequence[IntakeItem]
) -> tuple[dict[tuple[str, str, str], str], dict[tuple[str, str], int]]:
    """Messages already stored under the items' (source, external id): for dedupe and revisions."""
    by_source: dict[str, set[str]] = {}
    for it in items:
        by_source.setdefault(it.message.source, set()).add(it.message.external_id)
    known: dict[tuple[str, str, str], str] = {}
    revisions: dict[tuple[str, str], int] = {}
    query = _known_statement()
    for source, ext_ids in by_source.items():
        rows = conn.execute(query, {"k_source": source, "k_ids": list(ext_ids)})
        for row in rows:
            known[(row.source, row.external_id, row.content_hash)] = row.uid
            key = (row.source, row.external_id)
            revisions[key] = revisions.get(key, 0) + 1
    return known, revisions


@functools.cache
def _known_statement() -> Any:
    m = messages
    return select(m.c.source, m.c.external_id, m.c.content_hash, m.c.uid).where(
        m.c.source == bindparam("k_source"),
        m.c.external_id.in_(bindparam("k_ids", expanding=True)),
    )


@functools.cache
def _insert_statements() -> tuple[Any, Any, Any]:
    """messages, deliveries (naming their message by its uid: no ids need to come back from
    the messages insert, which keeps it a plain executemany), delivery_log: built once."""
    m = messages
    message_id = select(m.c.id).where(m.c.uid == bindparam("m_uid")).scalar_subquery()
    return insert(m), insert(deliveries).values(message_id=message_id), insert(delivery_log)


def _insert_new(
    conn: Connection, rows: list[dict[str, Any]], items: list[IntakeItem], now: float
) -> None:
    insert_messages, insert_deliveries, _ = _insert_statements()
    execute_many(conn, insert_messages, rows)
    delivery_rows = [
        {
            "m_uid": row["uid"],
            "destination": dest,
            "route": route,
            "dossier_key": it.message.dossier_key,
            "status": DeliveryStatus.PENDING.value,
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
            "updated_at": now,
            "deadline_at": now + it.deadlines.get(dest, DEFAULT_DEADLINE),
            "idempotency_key": idempotency_key(row["uid"], dest),
        }
        for row, it in zip(rows, items, strict=True)
        for route, dest in it.routes
    ]
    if delivery_rows:
        execute_many(conn, insert_deliveries, delivery_rows)


def release(conn: Connection, where: Any) -> int:
    result = conn.execute(
        update(deliveries)
        .where(where)
        .values(status=DeliveryStatus.PENDING.value, lease_owner=None, lease_expires_at=None)
    )
    return int(result.rowcount or 0)


def audit(
    conn: Connection, entries: Sequence[tuple[str, str, str, str]], now: float | None = None
) -> None:
    at = time.time() if now is None else now
    conn.execute(
        insert(audit_log),
        [
            {"at": at, "actor": a, "action": act, "target": t, "detail": d}
            for a, act, t, d in entries
        ],
    )


def upsert(conn: Connection, table: Any, key: str, key_value: str, values: dict[str, Any]) -> None:
    """Insert the row whose ``key`` is ``key_value`` or update it, in one statement (two nodes
    may write the same row at once: ``INSERT … ON CONFLICT DO UPDATE`` on both databases)."""
    dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    stmt = dialect_insert(table).values(**{key: key_value, **values})
    conn.execute(stmt.on_conflict_do_update(index_elements=[table.c[key]], set_=values))


def save_breaker(
    conn: Connection, destination: str, state: str, failures: int, opened_at: float | None
) -> None:
    upsert(
        conn,
        breakers,
        "destination",
        destination,
        {"state": state, "failures": failures, "opened_at": opened_at, "updated_at": time.time()},
    )


def set_cursor(conn: Connection, system: str, cursor: str | None) -> None:
    upsert(conn, poll_cursors, "system", system, {"cursor": cursor, "updated_at": time.time()})


def prune_log(conn: Connection, before: float) -> int:
    result = conn.execute(delivery_log.delete().where(delivery_log.c.at < before))
    return int(result.rowcount or 0)


@functools.cache
def _claim_statements(skip_locked: bool) -> tuple[Any, Any]:
    """The lease UPDATE and the claimed-rows SELECT, with bind parameters (built once)."""
    d, e = deliveries, deliveries.alias("earlier")
    earlier = select(e.c.id).where(
        e.c.dossier_key == d.c.dossier_key,
        e.c.destination == d.c.destination,
        e.c.id < d.c.id,
        e.c.status.in_(ACTIVE_LITERALS),
    )
    if skip_locked:
        # PostgreSQL: OFFSET 0 keeps this a per-candidate subplan probing ix_deliveries_order
        # by dossier key. As an anti-join, the planner (on a young table without statistics)
        # may rescan every active delivery of the destination for each candidate.
        earlier = earlier.offset(0)
    due: Select[Any] = (
        select(d.c.id)
        .where(
            d.c.destination == bindparam("c_dest"),
            d.c.status == DeliveryStatus.PENDING.value,
            d.c.next_attempt_at <= bindparam("c_now"),
            ~earlier.exists(),
        )
        .order_by(d.c.id)
        .limit(bindparam("c_limit"))
    )
    if skip_locked:
        due = due.with_for_update(skip_locked=True, of=d)
    lease = (
        update(d)
        .where(d.c.id.in_(due.scalar_subquery()))
        .values(
            status=DeliveryStatus.IN_FLIGHT.value,
            lease_owner=bindparam("c_owner"),
            lease_expires_at=bindparam("c_expires"),
            updated_at=bindparam("c_now"),
        )
        .returning(d.c.id)
    )
    fetch = claimed_select().where(d.c.id.in_(bindparam("c_ids", expanding=True))).order_by(d.c.id)
    return lease, fetch
