"""The store: lifecycle, the write path, and (from :class:`ReadQueries`) the read queries.

Writes are plain synchronous SQLAlchemy Core functions (:mod:`gateway.store.writes`) run in a
transaction by :meth:`Store.write`:

* SQLite — in one dedicated writer thread on a ``pysqlite`` connection (WAL,
  ``synchronous=FULL``, ``BEGIN IMMEDIATE``): one thread hop per transaction, and the SQL work
  happens off the event loop;
* PostgreSQL — through ``AsyncConnection.run_sync`` on the asyncpg engine
  (``postgresql+asyncpg://…``; READ COMMITTED). Several nodes may share one database: how
  they keep order, dedupe and leases straight is in :mod:`gateway.store.writes`.

The engine batches everything it has queued into one transaction per cycle (group commit), so
durability costs one fsync per cycle, not per dossier. Reads use a separate async engine
(SQLite) or the same pool (PostgreSQL).

One node serialises its own writes (an :class:`asyncio.Lock`): the delivery-log chain head is
cached per node and must move in commit order. Nodes do not wait for each other except on
the rows and advisory locks that the writes name.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import and_, create_engine, event, select
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from gateway.log import get_logger
from gateway.model import DeliveryStatus
from gateway.store import cluster, migrate, writes
from gateway.store import keys as store_keys
from gateway.store.reads import ReadQueries
from gateway.store.records import (
    AttemptRecord,
    ClaimedDelivery,
    CycleResult,
    DeliveryFilter,
    DuplicateNodeId,
    IngestResult,
    IntakeItem,
    LogFilter,
    StoreUnavailable,
)
from gateway.store.tables import deliveries

log = get_logger("gateway.store")

__all__ = [  # the records are re-exported: callers import them from here too
    "AttemptRecord",
    "ClaimedDelivery",
    "DeliveryFilter",
    "DuplicateNodeId",
    "IngestResult",
    "IntakeItem",
    "LogFilter",
    "NoDatabase",
    "Store",
    "StoreUnavailable",
]

T = TypeVar("T")
DEFAULT_REPLAY_DEADLINE = 259_200.0
#: PostgreSQL session settings of every gateway connection: a write that waits longer than
#: this for a lock fails (intake answers 503, the engine retries); a node cut off mid-
#: transaction has its locks freed by the server
PG_SETTINGS = {
    "lock_timeout": "10s",
    "idle_in_transaction_session_timeout": "60s",
    "plan_cache_mode": "force_custom_plan",
}
#: SQLSTATE classes and codes after which a write may succeed if tried again
_TRANSIENT_SQLSTATES = ("08", "40", "53", "55P03", "57", "58", "25P03")
LISTEN_RETRY_SECONDS = 2.0
#: how long a SQLite write waits for another process's write lock before "database is locked"
SQLITE_BUSY_TIMEOUT_MS = 5000


class NoDatabase(Exception):
    """A read-only command was pointed at a SQLite database that does not exist."""


#: the database, its write-ahead log and shared-memory index: every beneficiary in clear
SQLITE_SIDE_FILES = ("", "-wal", "-shm", "-journal")


def _private_sqlite_file(db: Path) -> None:
    """Make the database's folder (0700 when created here) and file (0600) private *before*
    SQLite opens it: SQLite creates ``-wal``, ``-shm`` and ``-journal`` with the mode of the
    database file, so there is no moment where any of them is readable by others. Files an
    older version left readable are narrowed to 0600 too."""
    if not db.parent.exists():
        db.parent.mkdir(parents=True, mode=0o700, exist_ok=True)
        db.parent.chmod(0o700)  # mkdir's mode is filtered by the umask
    fd = os.open(db, os.O_RDWR | os.O_CREAT, 0o600)
    os.close(fd)
    for suffix in SQLITE_SIDE_FILES:
        path = db.with_name(db.name + suffix)
        with contextlib.suppress(FileNotFoundError, PermissionError):
            if path.stat().st_mode & 0o077:
                path.chmod(0o600)


def _async_url(url: str) -> str:
    if url.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + url[len("sqlite:///") :]
    if url.startswith("postgresql://"):
        return "postgresql+asyncpg://" + url[len("postgresql://") :]
    return url


class Store(ReadQueries):
    """The gateway's database. Open with :meth:`open`, close with :meth:`close`."""

    def __init__(
        self,
        url: str,
        *,
        node_id: str = "node",
        base_dir: Path | None = None,
        create: bool = True,
    ) -> None:
        """``base_dir``: the folder a relative SQLite path is resolved against (the config
        file's). ``create=False`` (read-only commands): a SQLite file that does not exist is
        :class:`NoDatabase`, never created."""
        parsed = make_url(_async_url(url))
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        self.path: Path | None = None
        if self.is_sqlite and parsed.database and parsed.database != ":memory:":
            db = Path(parsed.database)
            if not db.is_absolute() and base_dir is not None:
                db = Path(os.path.normpath(base_dir / db))
            if not create and not db.is_file():
                raise NoDatabase(
                    f"no database at {db} (gateway.database {url!r}): a read-only command "
                    "never creates one; check --config, or run `gateway db upgrade` first"
                )
            _private_sqlite_file(db)
            self.path = db
            parsed = parsed.set(database=str(db))
        self.url = parsed.render_as_string(hide_password=False)
        self.node_id = node_id
        self.writes = writes.Writer(node_id, skip_locked=not self.is_sqlite)
        self._reader: AsyncEngine | None = None
        self._async_writer: AsyncEngine | None = None
        self._sync_writer: Engine | None = None
        self._thread: ThreadPoolExecutor | None = None
        self._lock = asyncio.Lock()
        #: SQLite: the one write connection (the writer engine's pool holds exactly one), its
        #: open transaction, and the last job given to the writer thread
        self._conn: Connection | None = None
        self._tx: Any = None
        self._last_job: concurrent.futures.Future[Any] | None = None

    # -- lifecycle -------------------------------------------------------------------------------
    async def open(self) -> None:
        if self.is_sqlite:
            sync_url = make_url(self.url).set(drivername="sqlite")
            self._sync_writer = create_engine(sync_url, pool_size=1, max_overflow=0)
            _sqlite_pragmas(self._sync_writer, begin="BEGIN IMMEDIATE")
            self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-writer")
            self._reader = create_async_engine(self.url, pool_size=4, max_overflow=4)
            _sqlite_pragmas(self._reader.sync_engine, begin="BEGIN")
        else:
            settings = {**PG_SETTINGS, "application_name": cluster.application_name(self.node_id)}
            self._async_writer = create_async_engine(
                self.url,
                pool_size=10,
                max_overflow=10,
                connect_args={"server_settings": settings, "timeout": 10},
            )
            self._reader = self._async_writer

    async def close(self) -> None:
        if self._reader is not None:
            await self._reader.dispose()
        if self._async_writer is not None and self._async_writer is not self._reader:
            await self._async_writer.dispose()
        if self._sync_writer is not None and self._thread is not None:
            await self._in_thread(self._drop)
            await self._in_thread(self._sync_writer.dispose)
            self._thread.shutdown(wait=True)
        self._reader = self._async_writer = self._sync_writer = None
        self._thread = None

    @property
    def reader(self) -> AsyncEngine:
        if self._reader is None:
            raise RuntimeError("store is not open: call await store.open() first")
        return self._reader

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        """Run the sync ``fn(connection, *args)`` on the read engine (a read transaction)."""
        async with self.reader.connect() as conn:
            return await conn.run_sync(fn, *args)

    async def write(self, fn: Callable[..., T], *args: Any, inline: bool = False) -> T:
        """Run ``fn(connection, *args)`` in one write transaction and return its result.

        Database trouble (locked, disk full, unreachable) becomes :class:`StoreUnavailable`;
        nothing of a failed transaction is kept.

        ``inline`` (SQLite; for short, frequent transactions such as the engine's cycle): only
        ``BEGIN IMMEDIATE`` (which may wait for another process's lock) and ``COMMIT`` (the
        fsync) run in the writer thread; ``fn``'s statements run on the calling event loop.
        A write in the thread hands the GIL back and forth with a busy event loop at every
        SQLite step (each wait up to the interpreter's switch interval, 5 ms): measured, that
        tripled a cycle's time under load. Inline, a cycle costs two hand-offs.
        """
        async with self._lock:
            try:
                if self._sync_writer is not None and self._thread is not None:
                    if inline:
                        result = await self._run_inline(fn, args)
                    else:
                        result = await self._in_thread(self._run_sync, fn, args)
                elif self._async_writer is not None:
                    async with self._async_writer.begin() as conn:
                        result = await conn.run_sync(fn, *args)
                else:
                    raise RuntimeError("store is not open: call await store.open() first")
            except IntegrityError as exc:
                self.writes.rolled_back()
                if _chain_conflict(exc):
                    problem = (
                        f"another running node also uses node_id {self.node_id!r}: "
                        "give every node its own gateway.node_id"
                    )
                    log.critical("duplicate_node_id", node=self.node_id, problem=problem)
                    raise DuplicateNodeId(problem) from exc
                raise
            except OperationalError as exc:
                self.writes.rolled_back()
                raise StoreUnavailable(_db_reason(exc)) from exc
            except DBAPIError as exc:
                self.writes.rolled_back()
                if exc.connection_invalidated or _transient(exc):
                    raise StoreUnavailable(_db_reason(exc)) from exc
                raise
            except OSError as exc:  # the database server cannot be reached (PostgreSQL)
                self.writes.rolled_back()
                raise StoreUnavailable(f"cannot reach the database: {exc}") from exc
            except BaseException:
                self.writes.rolled_back()
                raise
            self.writes.committed()
            return result

    async def write_aside(self, fn: Callable[..., T], *args: Any) -> T:
        """Like :meth:`write`, for the small membership transactions (a heartbeat, a fence)
        that touch neither the delivery log nor the queue. PostgreSQL: on a connection of its
        own, not behind this node's write lock, so that a cycle waiting for another node's
        locks (a paused node's) never holds up the heartbeat that keeps this node alive, nor
        the fence that frees those locks. SQLite (one writer): through :meth:`write`."""
        if self._async_writer is None:
            return await self.write(fn, *args)
        try:
            async with self._async_writer.begin() as conn:
                return await conn.run_sync(fn, *args)
        except OperationalError as exc:
            raise StoreUnavailable(_db_reason(exc)) from exc
        except DBAPIError as exc:
            if exc.connection_invalidated or _transient(exc):
                raise StoreUnavailable(_db_reason(exc)) from exc
            raise
        except OSError as exc:
            raise StoreUnavailable(f"cannot reach the database: {exc}") from exc

    def _in_thread(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """Give ``fn`` to the writer thread (one worker: jobs run in the order given)."""
        if self._thread is None:
            raise RuntimeError("store is not open: call await store.open() first")
        job = self._thread.submit(fn, *args)
        self._last_job = job
        return asyncio.wrap_future(job)

    def _run_sync(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        """In the writer thread: the whole transaction."""
        conn = self._begin()
        try:
            result = fn(conn, *args)
        except BaseException:
            self._end(False)
            raise
        self._end(True)
        return result

    async def _run_inline(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        """``fn`` on this loop, between a ``BEGIN`` and a ``COMMIT`` that may wait (thread).

        Every step is awaited shielded: a cancelled caller leaves the thread to finish what
        it was given, and the next write queues behind it (never touches the connection
        while the thread still holds it)."""
        conn = self._begin_at_once()
        if conn is None:
            begun = self._in_thread(self._begin)
            try:
                conn = await asyncio.shield(begun)
            except asyncio.CancelledError:
                self._in_thread(self._end, False)  # after the BEGIN: one FIFO worker
                raise
        try:
            result = fn(conn, *args)
        except BaseException:
            await asyncio.shield(self._in_thread(self._end, False))
            raise
        await asyncio.shield(self._in_thread(self._end, True))
        return result

    def _begin_at_once(self) -> Connection | None:
        """``BEGIN IMMEDIATE`` here and now, if the writer thread is idle and no other process
        holds the write lock (busy timeout 0); None otherwise (then the thread waits for it)."""
        if self._last_job is not None and not self._last_job.done():
            return None
        try:
            conn = self._connection()
            raw = conn.connection.dbapi_connection
            if raw is None:  # the connection was invalidated: let the thread begin afresh
                raise RuntimeError("the writer connection is closed")
            raw.execute("PRAGMA busy_timeout=0")
            try:
                self._tx = conn.begin()
            finally:
                raw.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        except Exception:
            self._drop()
            return None
        return conn

    def _connection(self) -> Connection:
        if self._conn is None:
            if self._sync_writer is None:
                raise RuntimeError("store is not open: call await store.open() first")
            self._conn = self._sync_writer.connect()
        return self._conn

    def _begin(self) -> Connection:
        """``BEGIN IMMEDIATE`` (waits up to the busy timeout for another process's lock)."""
        conn = self._connection()
        try:
            self._tx = conn.begin()
        except BaseException:
            self._drop()
            raise
        return conn

    def _end(self, commit: bool) -> None:
        """``COMMIT`` (the fsync) or roll back; a failure leaves no connection behind."""
        transaction, self._tx = self._tx, None
        if transaction is None:
            return
        try:
            if commit:
                transaction.commit()
            else:
                transaction.rollback()
        except BaseException:
            self._drop()
            raise

    def _drop(self) -> None:
        conn, self._conn, self._tx = self._conn, None, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    async def upgrade(self, extra_dirs: list[str] | None = None) -> None:
        await self.write(migrate.upgrade, extra_dirs)

    async def pending_migrations(self, extra_dirs: list[str] | None = None) -> set[str]:
        async with self.reader.connect() as conn:
            return await conn.run_sync(migrate.pending, extra_dirs)

    async def ping(self) -> None:
        async with self.reader.connect() as conn:
            await conn.execute(select(1))

    # -- waking other nodes (PostgreSQL LISTEN/NOTIFY) ---------------------------------------
    async def listen(
        self, on_work: Callable[[list[str] | None], None], stop: asyncio.Event
    ) -> None:
        """Call ``on_work(destinations)`` whenever another node commits work for them, until
        ``stop`` is set. From the first call on, this node's own cycles announce their work
        too. A lost connection is re-opened every few seconds; ``on_work(None)`` (everything)
        follows each (re)connection, since announcements made meanwhile were missed. Polling
        goes on regardless: this only makes idle nodes react sooner. Not on SQLite (one node).
        """
        if self.is_sqlite:
            return
        import asyncpg  # type: ignore[import-untyped]

        self.writes.notify = True
        dsn = make_url(self.url).set(drivername="postgresql").render_as_string(False)
        while not stop.is_set():
            try:
                conn = await asyncpg.connect(dsn, timeout=10)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("listen_failed", node=self.node_id, error=str(exc)[:200])
            else:
                try:
                    await self._listen_on(conn, on_work, stop)
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                    log.warning("listen_failed", node=self.node_id, error=str(exc)[:200])
                finally:
                    conn.terminate()
            if not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=LISTEN_RETRY_SECONDS)

    async def _listen_on(
        self, conn: Any, on_work: Callable[[list[str] | None], None], stop: asyncio.Event
    ) -> None:
        lost = asyncio.Event()

        def received(_conn: object, _pid: int, _channel: str, payload: str) -> None:
            node, _, names = payload.partition("|")
            if node != self.node_id:
                on_work([n for n in names.split(",") if n])

        conn.add_termination_listener(lambda _conn: lost.set())
        await conn.add_listener(writes.NOTIFY_CHANNEL, received)
        on_work(None)
        waits = [asyncio.ensure_future(e.wait()) for e in (stop, lost)]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()
        if not stop.is_set():
            log.warning("listen_connection_lost", node=self.node_id)

    # -- the engine's writes -----------------------------------------------------------------------
    async def cycle(
        self,
        items: Sequence[IntakeItem],
        records: Sequence[AttemptRecord],
        wanted: dict[str, int],
        lease_seconds: float,
        now: float | None = None,
    ) -> CycleResult:
        """One transaction for everything the engine has queued: new messages and their
        deliveries, attempt results (log rows, outcomes, follow-ups), then fresh leases (which
        so see this cycle's outcomes: a dossier's next delivery can go in the same cycle)."""
        now = time.time() if now is None else now
        return await self.write(
            self.writes.cycle, items, records, wanted, lease_seconds, now, inline=True
        )

    async def ingest(
        self, items: Sequence[IntakeItem], now: float | None = None
    ) -> list[IngestResult]:
        return (await self.cycle(items, [], {}, 0.0, now)).ingested

    async def claim(
        self, destination: str, limit: int, lease_seconds: float, now: float | None = None
    ) -> list[ClaimedDelivery]:
        result = await self.cycle([], [], {destination: limit}, lease_seconds, now)
        return result.claimed[destination]

    async def record(
        self, records: Sequence[AttemptRecord], now: float | None = None
    ) -> list[IngestResult]:
        return (await self.cycle([], records, {}, 0.0, now)).follow_ups

    async def release_leases(self, ids: Iterable[int] | None = None) -> int:
        """Give this node's in-flight deliveries back (at shutdown or start-up)."""
        conds = [
            deliveries.c.status == DeliveryStatus.IN_FLIGHT.value,
            deliveries.c.lease_owner == self.node_id,
        ]
        if ids is not None:
            conds.append(deliveries.c.id.in_(list(ids)))
        return await self.write(writes.release, and_(*conds))

    async def reclaim_expired(self, now: float | None = None) -> int:
        """Any node's leases that expired (a crashed node) become pending again."""
        now = time.time() if now is None else now
        expired = and_(
            deliveries.c.status == DeliveryStatus.IN_FLIGHT.value,
            deliveries.c.lease_expires_at < now,
        )
        return await self.write(writes.release, expired)

    # -- cluster membership and schedules (see :mod:`gateway.store.cluster`) ----------------------
    async def join(self, now: float | None = None) -> int:
        """Join the cluster under a new generation (this node's fencing token): what this
        node id still held is given back. Later cycles record attempts and take leases only
        while the node still holds that generation."""
        now = time.time() if now is None else now
        generation = await self.write(cluster.join, self.node_id, now)
        self.writes.generation = generation
        return generation

    async def recycle_connections(self) -> None:
        """PostgreSQL: drop the pooled connections (after a fence ended this node's sessions,
        so that the next transactions do not each find a dead one first)."""
        if self._async_writer is not None:
            await self._async_writer.dispose()

    async def heartbeat(self, generation: int, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        return await self.write_aside(cluster.heartbeat, self.node_id, generation, now)

    async def leave(self, generation: int, now: float | None = None) -> None:
        now = time.time() if now is None else now
        await self.write(cluster.leave, self.node_id, generation, now)

    async def silent_nodes(self, cutoff: float) -> list[tuple[str, int]]:
        async with self.reader.connect() as conn:
            return await conn.run_sync(cluster.silent_nodes, self.node_id, cutoff)

    async def fence(
        self, node_id: str, generation: int, cutoff: float, now: float | None = None
    ) -> cluster.Fenced | None:
        now = time.time() if now is None else now
        return await self.write_aside(cluster.fence, node_id, generation, cutoff, self.node_id, now)

    async def claim_run(self, name: str, generation: int, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        return await self.write(cluster.claim_run, name, self.node_id, generation, now)

    async def finish_run(
        self,
        name: str,
        generation: int,
        started: float,
        next_run_at: float,
        error: str | None = None,
    ) -> bool:
        return await self.write(
            cluster.finish_run, name, self.node_id, generation, started, next_run_at, error
        )

    async def release_run(self, name: str, generation: int) -> bool:
        return await self.write(cluster.release_run, name, self.node_id, generation)

    async def schedule_row(self, name: str) -> dict[str, Any] | None:
        async with self.reader.connect() as conn:
            return await conn.run_sync(cluster.schedule_row, name)

    # -- operator actions ------------------------------------------------------------------------
    async def retry_dead(
        self,
        ids: Sequence[int] | None,
        actor: str,
        now: float | None = None,
        *,
        extend: float = DEFAULT_REPLAY_DEADLINE,
    ) -> list[int]:
        """Put dead deliveries back in the queue (given ids, or all when ``ids`` is None).

        Each replay is written to the delivery log (outcome ``replayed``, with the actor) and
        to the audit log. The deadline is extended by ``extend`` seconds from now.
        """
        now = time.time() if now is None else now
        return await self.write(self.writes.retry_dead, ids, actor, now, extend)

    # -- sessions and keys every node shares -------------------------------------------------
    async def revoke_session(self, sid: str, expires_at: float, actor: str = "") -> None:
        """A signed-out session: refused by every node, across restarts, until it expires."""
        await self.write(store_keys.revoke_session, sid, expires_at, actor, time.time())

    async def session_revoked(self, sid: str) -> bool:
        return await store_keys.session_revoked(self.reader, sid)

    async def read_key(self, name: str) -> str | None:
        """The key ``name`` if it was ever made (never makes one)."""
        return await store_keys.read_key(self.reader, name)

    async def ensure_key(self, name: str) -> str:
        """The database's random key ``name`` (made on first use; the same on every node)."""
        return await self.write(store_keys.ensure_key, name, time.time())

    async def audit(self, actor: str, action: str, target: str, detail: str = "") -> None:
        await self.write(writes.audit, [(actor, action, target, detail)])

    async def save_breaker(
        self, destination: str, state: str, failures: int, opened_at: float | None
    ) -> None:
        await self.write(writes.save_breaker, destination, state, failures, opened_at)

    async def set_cursor(self, system: str, cursor: str | None) -> None:
        await self.write(writes.set_cursor, system, cursor)

    async def prune_log(self, before: float) -> int:
        """Retention: delete log rows older than ``before`` (explicit setting only)."""
        return await self.write(writes.prune_log, before)


def _sqlite_pragmas(engine: Engine, *, begin: str) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql(begin)


def _chain_conflict(exc: IntegrityError) -> bool:
    text = str(exc.orig)
    return "uq_delivery_log_chain_seq" in text or "delivery_log.chain, delivery_log.seq" in text


def _transient(exc: DBAPIError) -> bool:
    state = getattr(exc.orig, "sqlstate", None) or ""
    return bool(state) and state.startswith(_TRANSIENT_SQLSTATES)


def _db_reason(exc: DBAPIError) -> str:
    text = str(exc.orig) if exc.orig is not None else str(exc)
    if "locked" in text:
        return "the database is locked by another process"
    if "full" in text or "No space" in text:
        return "the disk is full"
    return text.splitlines()[0][:200]
