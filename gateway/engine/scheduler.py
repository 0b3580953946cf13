"""Scheduled work — pollers and plugin jobs — run once per cluster (DESIGN.md §5).

Every node schedules the same jobs; each *run* happens on one node only. A job's row in the
store (``schedules``) says when it is next due and which node runs it now: when it is due,
the nodes race to set themselves as its owner in a transaction that also confirms their own
generation (:func:`gateway.store.cluster.claim_run`); the one that wins runs it, then sets
the next run ``interval`` seconds after the run ended and frees the row. The others wait for
that time. If the running node dies, the node that takes its work over (see
:mod:`gateway.engine.cluster`) frees the row and the run happens on another node.

The API a plugin uses (through the app's scheduler, ``app[SCHEDULER]``)::

    scheduler.schedule("my_plugin:cleanup", 3600.0, cleanup)   # cleanup: async () -> None

A job that raises is logged and runs again at its next interval. A run stopped by the node's
shutdown is given back unfinished: the job is due again at once (on another node).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from gateway.engine.cluster import Membership
from gateway.log import get_logger, mask_text
from gateway.store import Store

log = get_logger("gateway.scheduler")

JobFn = Callable[[], Awaitable[None]]
#: the longest a node waits before looking at a job's row again (picks up a run another node
#: freed, or an interval changed by a restart of the others)
MAX_WAIT_SECONDS = 60.0


@dataclass(slots=True)
class Job:
    name: str
    interval: float
    fn: JobFn
    runs: int = 0
    failures: int = 0
    last_error: str | None = None


class Scheduler:
    """Runs each scheduled job every ``interval`` seconds, on one node of the cluster."""

    def __init__(self, store: Store, membership: Membership, *, check_every: float) -> None:
        self.store = store
        self.membership = membership
        self.check_every = check_every
        self.jobs: dict[str, Job] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._running = False

    def schedule(self, name: str, interval: float, fn: JobFn) -> Job:
        """Run ``fn()`` every ``interval`` seconds (counted from the end of a run), once per
        cluster. Before :meth:`start` or after; a name scheduled twice is an error."""
        if not name or len(name) > 200:
            raise ValueError(f"a job name is 1 to 200 characters, not {name!r}")
        if not interval > 0:
            raise ValueError(f"job {name!r}: the interval must be > 0 seconds, not {interval!r}")
        if name in self.jobs:
            raise ValueError(f"job {name!r} is scheduled twice")
        job = Job(name, float(interval), fn)
        self.jobs[name] = job
        if self._running:
            self._spawn(job)
        return job

    def start(self) -> None:
        self._running = True
        for job in self.jobs.values():
            self._spawn(job)

    async def stop(self) -> None:
        self._running = False
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    def _spawn(self, job: Job) -> None:
        self._tasks[job.name] = asyncio.create_task(self._loop(job), name=f"job:{job.name}")

    async def _loop(self, job: Job) -> None:
        while True:
            try:
                wait = await self._turn(job)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the store is unavailable: look again soon
                log.warning("schedule_check_failed", job=job.name, error=mask_text(str(exc)))
                wait = self.check_every
            await asyncio.sleep(max(0.0, wait))

    async def _turn(self, job: Job) -> float:
        """Run the job if it is due and this node wins it; return how long to wait next."""
        row = await self.store.schedule_row(job.name)
        now = time.time()
        if row is not None:
            if row["owner"] is not None:  # another node (or this one's last life) runs it
                return self.check_every
            if row["next_run_at"] > now:
                return min(float(row["next_run_at"]) - now, MAX_WAIT_SECONDS)
        generation = self.membership.generation
        if generation is None or not await self.store.claim_run(job.name, generation, now):
            return self.check_every
        return await self._run(job, generation, now)

    async def _run(self, job: Job, generation: int, started: float) -> float:
        error: str | None = None
        try:
            await job.fn()
        except asyncio.CancelledError:
            # stopped with the node: the run did not happen, it is due again at once
            with contextlib.suppress(Exception):
                await asyncio.shield(self.store.release_run(job.name, generation))
            raise
        except Exception as exc:
            error = mask_text(repr(exc))[:2000]
            job.failures += 1
            log.error("job_failed", job=job.name, error=error)
        job.runs += 1
        job.last_error = error
        ended = time.time()
        finished = await asyncio.shield(
            self.store.finish_run(job.name, generation, started, ended + job.interval, error)
        )
        if not finished:
            log.warning(
                "job_run_fenced",
                job=job.name,
                node=self.store.node_id,
                problem="this node was taken over while the job ran: another node may run it too",
            )
        return job.interval
