"""Cluster membership: heartbeats, fast take-over of a silent node, and the fence.

Every node joins with a new *generation* (:meth:`gateway.store.Store.join`) and beats every
``gateway.heartbeat_interval`` seconds (in ``node_heartbeats``, never behind its own write
cycle). Each beat also looks for nodes whose heartbeat is
older than ``gateway.node_timeout``: such a node is fenced — its in-flight deliveries go back
to pending and its schedules are freed, at once, not when its leases expire — and the others
claim that work on their next cycle. A SIGKILLed node's acknowledged deliveries are so taken
over within ``node_timeout + heartbeat_interval`` seconds of its last beat.

The fence: a node records attempt results and takes leases only in a cycle that confirms it
still holds its generation (:meth:`gateway.store.writes.Writer.cycle`), and sends nothing
unless its last confirmed beat is recent enough that nobody can have fenced it yet
(:meth:`Membership.may_act`). A node paused longer than the timeout (SIGSTOP, a frozen VM)
therefore neither records nor sends what it was doing when it resumes: it learns it was
fenced, drops that work (the others have it) and joins again under a new generation.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

from gateway.log import get_logger, mask_text
from gateway.store import Store

log = get_logger("gateway.cluster")

#: a confirmed beat is trusted for ``node_timeout`` minus this margin (clock skew between
#: nodes, and the time between reading the clock and the beat's commit)
SAFETY_SECONDS = 1.0


class Membership:
    """This node's place in the cluster (one per running gateway)."""

    def __init__(
        self,
        store: Store,
        *,
        timeout: float,
        interval: float,
        on_takeover: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self.node_id = store.node_id
        self.timeout = timeout
        self.interval = interval
        self.on_takeover = on_takeover
        self.generation: int | None = None
        self.takeovers = 0
        self.fenced_count = 0
        self._valid_until = 0.0  # monotonic: until when nobody can have fenced this node
        self._beat_lock = asyncio.Lock()
        self._kick = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    # -- lifecycle -------------------------------------------------------------------------------
    async def join(self) -> int:
        started = time.monotonic()
        self.generation = await self.store.join()
        self.confirmed(started)
        log.info("node_joined", node=self.node_id, generation=self.generation)
        return self.generation

    def start(self) -> None:
        self._stop.clear()
        self._task = asyncio.create_task(self._loop(), name="heartbeat")

    async def stop(self) -> None:
        """Stop beating; leave the cluster cleanly (a stopped node is not taken over)."""
        self._stop.set()
        self._kick.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.generation is not None:
            try:
                await self.store.leave(self.generation)
            except Exception as exc:
                log.warning("node_leave_failed", node=self.node_id, error=mask_text(str(exc)))

    # -- the fence -------------------------------------------------------------------------------
    def confirmed(self, started: float) -> None:
        """A beat that began at monotonic time ``started`` was committed with this node's
        generation: no other node can fence it before ``started + timeout``."""
        self._valid_until = max(self._valid_until, started + self.timeout - SAFETY_SECONDS)

    def fresh(self) -> bool:
        return time.monotonic() < self._valid_until

    async def may_act(self, generation: int | None) -> bool:
        """May work claimed under ``generation`` go on (be sent, be recorded)? At once when
        the last beat is recent; otherwise (the node was paused, or the store is slow) only
        after a beat confirms the generation is still this node's (waiting, while the store
        cannot answer, as long as the caller lets it)."""
        if generation is None or self.generation is None:
            return True
        if generation != self.generation:
            return False
        while not self.fresh():
            try:
                await self.beat(force=False)
            except Exception as exc:  # the store cannot say: wait (the caller bounds it)
                log.warning("heartbeat_failed", node=self.node_id, error=mask_text(str(exc)))
                await asyncio.sleep(min(self.interval, 1.0))
            if generation != self.generation:
                return False
        return generation == self.generation

    # -- the loop --------------------------------------------------------------------------------
    async def _loop(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._kick.wait(), timeout=self.interval)
            self._kick.clear()
            if self._stop.is_set():
                return
            try:
                await self.beat()
                await self.take_over()
            except Exception as exc:
                log.warning("heartbeat_failed", node=self.node_id, error=mask_text(str(exc)))

    async def beat(self, *, force: bool = True) -> None:
        """One heartbeat; a node that finds itself fenced drops its claim and joins again.
        ``force=False``: none if another beat confirmed the generation meanwhile."""
        async with self._beat_lock:
            if self.generation is None or (not force and self.fresh()):
                return
            started = time.monotonic()
            generation = self.generation
            if await self.store.heartbeat(generation):
                self.confirmed(started)
                return
            await self._rejoin(generation)

    async def fenced(self, generation: int | None) -> None:
        """A cycle found this node fenced: join again (once per lost generation)."""
        async with self._beat_lock:
            if generation is not None and generation == self.generation:
                await self._rejoin(generation)

    async def _rejoin(self, lost: int) -> None:
        self.fenced_count += 1
        self._valid_until = 0.0
        log.warning(
            "node_fenced",
            node=self.node_id,
            generation=lost,
            problem="this node was silent longer than node_timeout and another node took "
            "its deliveries and schedules over; what it had in flight is dropped, not recorded",
        )
        await self.store.recycle_connections()  # the fence ended this node's sessions
        started = time.monotonic()
        self.generation = await self.store.join()
        self.confirmed(started)
        log.info("node_joined", node=self.node_id, generation=self.generation)

    async def take_over(self) -> int:
        """Fence every node silent for longer than the timeout; return how many."""
        now = time.time()
        cutoff = now - self.timeout
        taken = 0
        for node_id, generation in await self.store.silent_nodes(cutoff):
            fenced = await self.store.fence(node_id, generation, cutoff, now)
            if fenced is None:
                continue
            taken += 1
            self.takeovers += 1
            log.warning(
                "node_taken_over",
                node=fenced.node_id,
                by=self.node_id,
                silent_s=round(fenced.silent_for, 2),
                deliveries=fenced.deliveries,
                schedules=fenced.schedules,
            )
        if taken and self.on_takeover is not None:
            self.on_takeover()
        return taken
