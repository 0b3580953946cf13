"""A recording HTTP receiver for tests and benchmarks: a real aiohttp server on loopback
whose behaviour is scripted per request (fail N times, answer a status, stall, reset)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass(slots=True)
class Received:
    path: str
    idempotency_key: str
    body: bytes
    headers: dict[str, str]

    def json(self) -> Any:
        return json.loads(self.body)


Behaviour = Callable[[web.Request, int], "str | int | tuple[int, dict[str, str]] | None"]
"""Given the request and how many times its Idempotency-Key was seen (1 = first), return
``None`` to accept (200), an int status, ``(status, headers)``, ``"reset"`` to drop the
connection, or ``"stall"`` to never answer."""


@dataclass
class Sink:
    behaviour: Behaviour | None = None
    received: list[Received] = field(default_factory=list)
    accepted: list[Received] = field(default_factory=list)
    seen: Counter[str] = field(default_factory=Counter)
    dedupe: bool = True
    _closing: asyncio.Event = field(default_factory=asyncio.Event)

    def app(self) -> web.Application:
        app = web.Application(client_max_size=50 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        app.on_shutdown.append(self._release_stalls)
        return app

    async def _release_stalls(self, _app: web.Application) -> None:
        self._closing.set()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        key = request.headers.get("Idempotency-Key", "")
        self.seen[key] += 1
        item = Received(request.path, key, body, dict(request.headers))
        self.received.append(item)
        action = self.behaviour(request, self.seen[key]) if self.behaviour else None
        if action == "reset":
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError
        if action == "stall":
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), timeout=3600)
            raise asyncio.CancelledError
        if isinstance(action, tuple):
            return web.Response(status=action[0], headers=action[1], text="scripted")
        if isinstance(action, int):
            return web.Response(status=action, text=f"scripted {action}")
        if not (
            self.dedupe
            and self.seen[key] > 1
            and any(a.idempotency_key == key for a in self.accepted)
        ):
            self.accepted.append(item)
        return web.json_response({"ok": True})

    def keys_accepted(self) -> list[str]:
        return [a.idempotency_key for a in self.accepted]
