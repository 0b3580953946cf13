"""Group commit: callers submit work and wait; one task writes everything that queued up
while the previous transaction was committing, in one transaction.

Under load this turns N concurrent requests into ~1 fsync; with no load a request is
committed at once (no timer, no added latency).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

In = TypeVar("In")
Out = TypeVar("Out")


class GroupCommitter(Generic[In, Out]):
    """Batches lists of items for ``commit(items) -> results`` (one result per item)."""

    def __init__(
        self,
        commit: Callable[[list[In]], Awaitable[Sequence[Out]]],
        *,
        max_batch: int = 500,
        name: str = "group-commit",
    ) -> None:
        self._commit = commit
        self._max_batch = max_batch
        self._queue: asyncio.Queue[tuple[list[In], asyncio.Future[list[Out]]]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._name = name
        self.batches = 0
        self.items = 0

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=self._name)

    async def stop(self) -> None:
        """Commit what is queued, then stop."""
        if self._task is None:
            return
        await self._queue.join()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def submit(self, items: list[In]) -> list[Out]:
        """Queue items; return their results once committed (or raise the commit's error)."""
        if self._task is None:
            raise RuntimeError(f"{self._name} is not running")
        future: asyncio.Future[list[Out]] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((items, future))
        return await future

    async def _run(self) -> None:
        while True:
            first = await self._queue.get()
            group = [first]
            size = len(first[0])
            while size < self._max_batch and not self._queue.empty():
                nxt = self._queue.get_nowait()
                group.append(nxt)
                size += len(nxt[0])
            await self._commit_group(group)
            for _ in group:
                self._queue.task_done()

    async def _commit_group(self, group: list[tuple[list[In], asyncio.Future[list[Out]]]]) -> None:
        items = [item for chunk, _ in group for item in chunk]
        try:
            results = list(await self._commit(items)) if items else []
        except Exception as exc:  # noqa: BLE001 - the error belongs to the callers
            for _, fut in group:
                if not fut.done():
                    fut.set_exception(exc)
            return
        self.batches += 1
        self.items += len(items)
        pos = 0
        for chunk, fut in group:
            if not fut.done():
                fut.set_result(results[pos : pos + len(chunk)])
            pos += len(chunk)
