"""The delivery engine: one write cycle, per-destination lanes, attempts.

Everything the engine writes goes through :meth:`DeliveryEngine._cycle_loop`: each cycle takes
all queued intake units, all finished attempts and the leases the lanes have room for, and
writes them in one transaction (:meth:`gateway.store.Store.cycle`) — one fsync, however much
it carries. Under load cycles grow; idle, a request is committed at once.

Each destination is a *lane* with its own concurrency limit, rate limit, timeouts and circuit
breaker (bulkheads): a slow or dead commune link only ever occupies its own lane's slots.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from gateway.config import Config, SystemConfig
from gateway.connector import Connector
from gateway.engine.breaker import BreakerState, CircuitBreaker
from gateway.engine.cluster import Membership
from gateway.engine.intake import Intake, IntakeAnswer
from gateway.engine.retry import RetrySchedule
from gateway.log import get_logger, mask_text
from gateway.metrics import BREAKER_VALUES, Metrics
from gateway.model import (
    GatewayError,
    Message,
    Outcome,
    ParseResult,
    PermanentError,
    Receipt,
    RetryableError,
)
from gateway.plugins import Plugins
from gateway.store.records import work_after
from gateway.store.store import AttemptRecord, ClaimedDelivery, IngestResult, IntakeItem, Store

log = get_logger("gateway.worker")

SWEEP_SECONDS = 5.0
RECLAIM_SECONDS = 10.0
PRUNE_SECONDS = 3600.0
MAX_INTAKE_PER_CYCLE = 1000
MAX_RESULTS_PER_CYCLE = 2000
STORE_RETRY_SECONDS = 0.5


class IntakeRefused(Exception):
    """The engine takes nothing now (shutting down, queue over its bound): send again later."""

    def __init__(self, code: str, reason: str, *, retry_after: int) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.retry_after = retry_after


@dataclass(slots=True)
class Lane:
    """One destination's bulkhead."""

    name: str
    system: SystemConfig
    connector: Connector
    breaker: CircuitBreaker
    schedule: RetrySchedule
    in_flight: int = 0
    wake_at: float = 0.0
    last_start: float = 0.0
    last_error: str | None = None
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    retry_times: list[float] = field(default_factory=list)
    #: the lane's labelled metric children (a ``.labels()`` lookup per attempt adds up)
    in_flight_gauge: Any = None
    attempt_histogram: Any = None

    @property
    def free(self) -> int:
        return max(0, self.system.concurrency - self.in_flight)

    def schedule_wake(self, at: float) -> None:
        """Remember a retry that is due at ``at``, so the lane wakes for it on time."""
        heapq.heappush(self.retry_times, at)
        self.wake_at = min(self.wake_at, at) if self.wake_at else at

    def idle_until(self, now: float) -> None:
        """Nothing more is due now: sleep until the next known retry or the next sweep."""
        while self.retry_times and self.retry_times[0] <= now:
            heapq.heappop(self.retry_times)
        nxt = self.retry_times[0] if self.retry_times else now + SWEEP_SECONDS
        self.wake_at = min(nxt, now + SWEEP_SECONDS)

    async def pace(self) -> None:
        """Honour the optional rate limit (requests per second)."""
        rate = self.system.rate_limit
        if not rate:
            return
        now = time.monotonic()
        start = max(now, self.last_start + 1.0 / rate)
        self.last_start = start
        if start > now:
            await asyncio.sleep(start - now)


class DeliveryEngine:
    def __init__(
        self,
        config: Config,
        store: Store,
        plugins: Plugins,
        connectors: dict[str, Connector],
        intake: Intake,
        metrics: Metrics,
        session: aiohttp.ClientSession,
    ) -> None:
        self.config = config
        self.store = store
        self.plugins = plugins
        self.intake = intake
        self.metrics = metrics
        self.session = session
        self.lanes = {
            name: Lane(
                name=name,
                system=system,
                connector=connectors[name],
                breaker=CircuitBreaker(system.breaker),
                schedule=RetrySchedule(system.retry),
            )
            for name, system in config.systems.items()
        }
        for lane in self.lanes.values():
            lane.in_flight_gauge = metrics.in_flight.labels(lane.name)
            lane.attempt_histogram = metrics.attempt_seconds.labels(lane.name)
        self.queue_depth = 0
        self.draining = False
        self._drained = False
        self.cycles = 0
        self._intake_q: list[tuple[list[IntakeItem], asyncio.Future[list[IngestResult]]]] = []
        self._result_q: list[AttemptRecord] = []
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._background_tasks: set[asyncio.Task[Any]] = set()
        self._stopping = False
        self.membership = Membership(
            store,
            timeout=config.gateway.node_timeout,
            interval=config.gateway.heartbeat_interval,
            on_takeover=self.wake,
        )
        self.fenced_attempts = 0

    # -- lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        released = await self.store.release_leases()
        if released:
            log.info("leases_released_at_start", count=released, node=self.store.node_id)
        await self.membership.join()
        for name, (state, failures, opened_at) in (await self.store.load_breakers()).items():
            if name in self.lanes:
                self.lanes[name].breaker.restore(state, failures, opened_at)
        self.queue_depth = await self.store.queue_depth()
        self.metrics.queue_depth.set(self.queue_depth)
        await self._load_due()
        for lane in self.lanes.values():
            self.metrics.breaker.labels(lane.name).set(BREAKER_VALUES[lane.breaker.state.value])
        self._tasks = [
            asyncio.create_task(self._cycle_loop(), name="write-cycle"),
            asyncio.create_task(self._housekeeping_loop(), name="housekeeping"),
        ]
        self.membership.start()
        if self.config.gateway.notify and not self.store.is_sqlite:
            self._tasks.append(
                asyncio.create_task(self.store.listen(self.wake, self._stop), name="listen")
            )

    async def drain(self, grace: float) -> None:
        """Stop taking work (intake answers 503, nothing new is claimed) and give in-flight
        attempts up to ``grace`` seconds to finish; their results are still recorded."""
        self.draining = True
        self._drained = True
        self._wake.set()
        attempts = [t for lane in self.lanes.values() for t in lane.tasks]
        if attempts:
            await asyncio.wait(attempts, timeout=grace)

    async def stop(self, grace: float | None = None) -> None:
        """Stop claiming, let in-flight attempts finish within ``grace`` seconds (none more
        after :meth:`drain`) and record them, cancel the rest and give their leases back."""
        if grace is None:
            grace = 0.0 if self._drained else self.config.gateway.shutdown_grace
        self.draining = True
        attempts = [t for lane in self.lanes.values() for t in lane.tasks]
        if attempts:
            _, still = await asyncio.wait(attempts, timeout=grace)
            for task in still:
                task.cancel()
            if still:
                await asyncio.wait(still)
                log.warning("attempts_cancelled_at_shutdown", count=len(still))
        # the loops finish their current store call and exit: cancelling one inside a
        # transaction would abandon a connection that still holds the write lock
        self._stopping = True
        self._stop.set()
        self._wake.set()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._background_tasks:
            await asyncio.gather(*self._background_tasks, return_exceptions=True)
        await self.store.release_leases()
        await self.membership.stop()
        for lane in self.lanes.values():
            try:
                await lane.connector.close()
            except Exception as exc:
                log.warning("connector_close_failed", system=lane.name, error=repr(exc))

    def wake(self, destinations: Iterable[str] | None = None) -> None:
        """Tell the engine there may be new work for these destinations (None: all)."""
        names = self.lanes.keys() if destinations is None else destinations
        for name in names:
            lane = self.lanes.get(name)
            if lane is not None:
                lane.wake_at = 0.0
        self._wake.set()

    def accepted(self, count: int) -> None:
        """Count ``count`` more deliveries waiting (negative: finished)."""
        self.queue_depth += count
        self.metrics.queue_depth.set(self.queue_depth)

    # -- intake ----------------------------------------------------------------------------------
    def check_open(self) -> None:
        """Raise :class:`IntakeRefused` while the gateway is shutting down."""
        if self.draining:
            raise IntakeRefused(
                "shutting_down", "the gateway is shutting down; send again later", retry_after=5
            )

    def check_room(self) -> None:
        """Raise :class:`IntakeRefused` while the queue is over its bound (back-pressure)."""
        bound = self.config.limits.queue_bound
        if self.queue_depth >= bound:
            raise IntakeRefused(
                "queue_full",
                f"{self.queue_depth} deliveries are waiting (bound {bound}); send again later",
                retry_after=30,
            )

    async def submit(
        self, source: str, parsed: ParseResult, parent: int | None = None
    ) -> IntakeAnswer:
        """The one intake: prepare (validate and transform hooks), route, commit in the next
        write cycle (group commit, ordering locks) and count, for pushes, polls and plugins.

        :param source: the system (or emitting plugin) the messages come from.
        :param parsed: what its connector parsed (or the plugin built).
        :param parent: the delivery whose answer gave rise to these messages, if any.
        :returns: the per-item answer, once the items are durable.
        :raises gateway.store.StoreUnavailable: nothing was stored.
        """
        items, rejected = await self.intake.prepare(source, parsed, parent)
        answer = await self.intake.commit(items, rejected)
        self.accepted(answer.new_deliveries)  # the cycle that stored them also leased them
        return answer

    async def submit_intake(self, items: list[IntakeItem]) -> list[IngestResult]:
        """Queue messages for the next write cycle; return once they are committed."""
        if self._stopping:
            raise RuntimeError("the engine is stopped")
        future: asyncio.Future[list[IngestResult]] = asyncio.get_running_loop().create_future()
        self._intake_q.append((items, future))
        self._wake.set()
        return await future

    async def follow_ups(
        self, source: str, messages: list[Message], parent_delivery_id: int
    ) -> list[IntakeItem]:
        """Messages an answer gave rise to, prepared like any intake (validate and transform
        hooks, routing) from ``source`` (the answering system); they are committed with the
        attempt's record. A rejected one is logged with its reasons (never silent)."""
        if not messages:
            return []
        items, rejected = await self.intake.prepare(
            source, ParseResult(messages=list(messages)), parent_delivery_id
        )
        for r in rejected:
            log.error(
                "follow_up_rejected",
                source=source,
                delivery=parent_delivery_id,
                ref=mask_text(r.ref),
                errors=[mask_text(e) for e in r.errors],
            )
        return items

    # -- the write cycle -------------------------------------------------------------------------
    async def _cycle_loop(self) -> None:
        poll = self.config.gateway.poll_interval
        while True:
            if not (self._intake_q or self._result_q):
                if self._stopping:
                    return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=poll)
            self._wake.clear()
            await self._cycle(time.time())

    def _take_intake(self) -> list[tuple[list[IntakeItem], asyncio.Future[list[IngestResult]]]]:
        units, size = [], 0
        while self._intake_q and size < MAX_INTAKE_PER_CYCLE:
            unit = self._intake_q.pop(0)
            units.append(unit)
            size += len(unit[0])
        return units

    def _wanted(self, now: float) -> dict[str, int]:
        if self.draining:
            return {}
        wanted: dict[str, int] = {}
        for lane in self.lanes.values():
            if lane.wake_at > now or lane.free == 0:
                continue
            n = lane.breaker.capacity(lane.free, now)
            if n == 0:
                lane.wake_at = now + max(
                    lane.breaker.retry_in(now), self.config.gateway.poll_interval
                )
            else:
                wanted[lane.name] = n
        return wanted

    async def _cycle(self, now: float) -> None:
        units = self._take_intake()
        records = self._result_q[:MAX_RESULTS_PER_CYCLE]
        del self._result_q[:MAX_RESULTS_PER_CYCLE]
        items = [item for chunk, _ in units for item in chunk]
        # the claims come after the intake and the outcomes in the same transaction: a new
        # delivery, or a dossier's next one, is leased in this cycle, not the next (a lane
        # that gets fewer than it asked for has seen all there is: it sleeps until woken)
        for name in work_after(items, records):
            lane = self.lanes.get(name)
            if lane is not None:
                lane.wake_at = 0.0
        wanted = self._wanted(now)
        if not (units or records or wanted):
            return
        generation = self.membership.generation
        try:
            result = await self.store.cycle(
                items, records, wanted, self.config.gateway.lease_seconds, now
            )
        except Exception as exc:
            log.error("write_cycle_failed", error=mask_text(str(exc)))
            for _, fut in units:
                if not fut.done():
                    fut.set_exception(exc)
            self._result_q[:0] = records  # recorded in a later cycle
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=STORE_RETRY_SECONDS)
            return
        self.cycles += 1
        if generation is not None and (records or wanted) and not result.held:
            # fenced: another node took this node's work over while it was silent
            self._background(asyncio.create_task(self.membership.fenced(generation)))
        if result.fenced:
            self._dropped(result.fenced)
            dropped = {id(r) for r in result.fenced}
            records = [r for r in records if id(r) not in dropped]
        pos = 0
        for chunk, fut in units:
            if not fut.done():
                fut.set_result(result.ingested[pos : pos + len(chunk)])
            pos += len(chunk)
        self._after_records(records, result.follow_ups)
        for name, deliveries in result.claimed.items():
            lane = self.lanes[name]
            if len(deliveries) < wanted[name]:
                lane.idle_until(now)
            lane.breaker.started(len(deliveries))
            for delivery in deliveries:
                self._start_attempt(lane, delivery)

    def _after_records(self, records: list[AttemptRecord], follow: list[IngestResult]) -> None:
        if not records:
            return
        finished = 0
        for r in records:
            dest = r.delivery.destination
            self.metrics.deliveries.labels(dest, r.outcome.value).inc()
            lane = self.lanes.get(dest)
            if lane is not None:
                lane.attempt_histogram.observe(r.duration_ms / 1000)
            if r.outcome is Outcome.DEAD:
                self.metrics.dead.labels(dest).inc()
            if r.outcome is not Outcome.RETRY:
                finished += 1
            elif r.next_attempt_at is not None and dest in self.lanes:
                self.lanes[dest].schedule_wake(r.next_attempt_at)
        self.accepted(sum(res.deliveries for res in follow) - finished)
        if self.plugins.has_outcome_observers:
            self._background(asyncio.create_task(self._observe(records)))

    def _dropped(self, records: list[AttemptRecord]) -> None:
        self.fenced_attempts += len(records)
        log.warning(
            "attempts_fenced",
            node=self.store.node_id,
            count=len(records),
            deliveries=[r.delivery.id for r in records][:100],
            problem="claimed under a generation this node lost (it was silent too long): "
            "not recorded; the node that took them over delivers them",
        )

    # -- attempts --------------------------------------------------------------------------------
    def _start_attempt(self, lane: Lane, delivery: ClaimedDelivery) -> None:
        lane.in_flight += 1
        lane.in_flight_gauge.set(lane.in_flight)
        task = asyncio.create_task(self._attempt(lane, delivery), name=f"attempt-{delivery.id}")
        lane.tasks.add(task)
        task.add_done_callback(lane.tasks.discard)

    def attempt_limit(self, lane: Lane) -> float:
        """Wall-clock limit of one attempt (render + send, however many calls a connector
        makes): three times connect + read, and always well inside the lease, so a hanging
        plugin frees its slot and no other node takes the delivery while it still runs."""
        t = lane.system.timeout
        return min(3 * (t.connect + t.read), 0.8 * self.config.gateway.lease_seconds)

    async def _attempt(self, lane: Lane, delivery: ClaimedDelivery) -> None:
        started = time.time()
        t0 = time.perf_counter()
        sent = 0
        connector = lane.connector  # one connector for the whole attempt (reloads swap it)
        limit = self.attempt_limit(lane)
        try:
            async with asyncio.timeout(limit):
                request = await connector.render(delivery.message())
                request.headers["Idempotency-Key"] = delivery.idempotency_key
                sent = request.size
                await lane.pace()
                if not await self.membership.may_act(delivery.generation):
                    self._fenced_attempt(lane, delivery)
                    return
                receipt = await connector.send(self.session, request)
            follow = (
                await self.follow_ups(lane.name, receipt.follow_ups, delivery.id)
                if receipt.follow_ups
                else []
            )
            record = self._delivered(lane, delivery, receipt, started, t0, sent, follow)
        except TimeoutError:
            timed_out = RetryableError(
                f"the attempt did not finish within {limit:g} s (connector {lane.system.plugin!r})"
            )
            record = self._failed(lane, delivery, timed_out, started, t0, sent)
        except asyncio.CancelledError:
            lane.in_flight -= 1
            raise
        except GatewayError as exc:
            follow = (
                await self.follow_ups(lane.name, exc.follow_ups, delivery.id)
                if exc.follow_ups
                else []
            )
            record = self._failed(lane, delivery, exc, started, t0, sent, follow)
        except Exception as exc:
            log.error(
                "connector_raised",
                destination=lane.name,
                delivery=delivery.id,
                error=mask_text(repr(exc)),
            )
            err = PermanentError(
                f"plugin error in connector {lane.system.plugin!r}: {type(exc).__name__}: {exc}"
            )
            record = self._failed(lane, delivery, err, started, t0, sent)
        lane.in_flight -= 1
        lane.in_flight_gauge.set(lane.in_flight)
        self._result_q.append(record)
        self._wake.set()

    def _fenced_attempt(self, lane: Lane, delivery: ClaimedDelivery) -> None:
        """Not sent: this node lost the delivery's generation (another node has it now)."""
        lane.in_flight -= 1
        lane.in_flight_gauge.set(lane.in_flight)
        self.fenced_attempts += 1
        log.warning(
            "attempt_fenced",
            node=self.store.node_id,
            destination=lane.name,
            delivery=delivery.id,
            problem="not sent: this node was silent too long and the delivery was taken over",
        )
        self._wake.set()

    def _delivered(
        self,
        lane: Lane,
        d: ClaimedDelivery,
        receipt: Receipt,
        started: float,
        t0: float,
        sent: int,
        follow_ups: list[IntakeItem],
    ) -> AttemptRecord:
        if lane.breaker.success():
            self._breaker_changed(lane)
        return AttemptRecord(
            delivery=d,
            outcome=Outcome.DELIVERED,
            started_at=started,
            duration_ms=(time.perf_counter() - t0) * 1000,
            http_status=receipt.status or None,
            bytes_sent=sent,
            bytes_received=receipt.bytes_received,
            error_message=mask_text(receipt.detail) if receipt.detail else None,
            follow_ups=follow_ups,
        )

    def _failed(
        self,
        lane: Lane,
        d: ClaimedDelivery,
        exc: GatewayError,
        started: float,
        t0: float,
        sent: int,
        follow_ups: list[IntakeItem] | None = None,
    ) -> AttemptRecord:
        now = time.time()
        attempt = d.attempts + 1
        reason = mask_text(exc.reason)[:2000]
        next_at: float | None = None
        if isinstance(exc, RetryableError):
            if lane.breaker.failure(now):
                self._breaker_changed(lane)
            next_at = lane.schedule.next_attempt_at(attempt, now, d.deadline_at, exc.retry_after)
            if next_at is None:
                reason = f"deadline passed after {attempt} attempts; last error: {reason}"
        elif lane.breaker.success():  # the system answered: the link is healthy
            self._breaker_changed(lane)
        lane.last_error = reason
        return AttemptRecord(
            delivery=d,
            outcome=Outcome.RETRY if next_at is not None else Outcome.DEAD,
            started_at=started,
            duration_ms=(time.perf_counter() - t0) * 1000,
            http_status=exc.status,
            bytes_sent=sent,
            error_class=type(exc).__name__,
            error_message=reason,
            next_attempt_at=next_at,
            follow_ups=follow_ups or [],
        )

    def _breaker_changed(self, lane: Lane) -> None:
        b = lane.breaker
        self.metrics.breaker.labels(lane.name).set(BREAKER_VALUES[b.state.value])
        if b.state is BreakerState.OPEN:
            log.warning("breaker_opened", destination=lane.name, failures=b.failures)
        else:
            log.info("breaker_state", destination=lane.name, state=b.state.value)
        self._background(
            asyncio.create_task(
                self.store.save_breaker(lane.name, b.state.value, b.failures, b.opened_at)
            )
        )

    def _background(self, task: asyncio.Task[Any]) -> None:
        """Keep a reference (awaited at stop); log its failure."""
        self._background_tasks.add(task)

        def done(t: asyncio.Task[Any]) -> None:
            self._background_tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                log.warning("background_task_failed", error=repr(t.exception()))

        task.add_done_callback(done)

    async def _observe(self, records: list[AttemptRecord]) -> None:
        for r in records:
            try:
                await self.plugins.delivery_outcome(
                    r.delivery.id,
                    r.delivery.destination,
                    r.delivery.dossier_key,
                    r.outcome.value,
                    r.error_message if r.outcome is not Outcome.DELIVERED else None,
                )
            except Exception as exc:
                log.warning("outcome_observer_failed", error=mask_text(repr(exc)))

    # -- housekeeping ----------------------------------------------------------------------------
    async def _load_due(self) -> None:
        """Learn when stored retries are due (after a restart, or scheduled by other nodes)."""
        now = time.time()
        for dest, at in (await self.store.next_due()).items():
            lane = self.lanes.get(dest)
            if lane is not None and at > now:
                lane.schedule_wake(at)

    async def _prune(self) -> None:
        """Retention (only when ``log_retention_days`` is set): drop old delivery-log rows."""
        days = self.config.gateway.log_retention_days
        if days:
            pruned = await self.store.prune_log(time.time() - days * 86_400)
            if pruned:
                log.info("delivery_log_pruned", rows=pruned, older_than_days=days)

    async def _housekeeping_loop(self) -> None:
        # a dead node's leases are taken over at most a quarter lease after they expire
        reclaim_every = min(RECLAIM_SECONDS, self.config.gateway.lease_seconds / 4)
        sweep = min(SWEEP_SECONDS, reclaim_every)
        last_reclaim = time.monotonic()
        last_prune = 0.0
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=sweep)
            if self._stopping:
                return
            try:
                if time.monotonic() - last_reclaim >= reclaim_every:
                    last_reclaim = time.monotonic()
                    if await self.store.reclaim_expired():
                        self.wake()
                self.queue_depth = await self.store.queue_depth()
                self.metrics.queue_depth.set(self.queue_depth)
                await self._load_due()
                await self._share_breakers()
                if time.monotonic() - last_prune >= PRUNE_SECONDS:
                    last_prune = time.monotonic()
                    await self._prune()
            except Exception as exc:
                log.warning("housekeeping_failed", error=mask_text(str(exc)))

    async def _share_breakers(self) -> None:
        """Adopt what other nodes saved (several nodes on one PostgreSQL): a breaker another
        node opened is respected here until its ``reset_after`` passes, and one another node
        closed after this node opened its own (a trial succeeded there) closes here too.
        Failure counts stay per node; only the opening and the closing are shared."""
        now = time.time()
        for name, (state, failures, opened_at, saved_at) in (
            await self.store.breaker_states()
        ).items():
            lane = self.lanes.get(name)
            if lane is None:
                continue
            b = lane.breaker
            if state == BreakerState.OPEN.value and opened_at is not None:
                fresh = now - opened_at < b.policy.reset_after
                newer = b.state is BreakerState.CLOSED or (
                    b.state is BreakerState.OPEN and (b.opened_at or 0.0) < opened_at
                )
                if not (fresh and newer):
                    continue
                b.restore(state, max(failures, b.failures), opened_at)
            elif state == BreakerState.CLOSED.value and b.state is not BreakerState.CLOSED:
                if b.opened_at is None or saved_at <= b.opened_at:
                    continue
                b.success()
            else:
                continue
            log.info("breaker_shared", destination=name, state=b.state.value)
            self.metrics.breaker.labels(name).set(BREAKER_VALUES[b.state.value])
