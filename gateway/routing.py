"""The route table: which destinations a message goes to (DESIGN.md §9)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from gateway.config import RouteConfig
from gateway.model import Message


@dataclass(frozen=True, slots=True)
class Route:
    source: str
    event: str
    procedure: str | None
    destinations: tuple[str, ...]

    @property
    def name(self) -> str:
        proc = f"[{self.procedure}]" if self.procedure else ""
        return f"{self.source}:{self.event}{proc}"

    def matches(self, message: Message) -> bool:
        return (
            message.source == self.source
            and message.event == self.event
            and (self.procedure is None or message.procedure == self.procedure)
        )


class RouteTable:
    """Routes from config. A message may match several routes; each destination once."""

    def __init__(self, routes: list[RouteConfig]) -> None:
        self.routes = [Route(r.from_, r.event, r.procedure, tuple(r.to)) for r in routes]
        self._by_key: dict[tuple[str, str], list[Route]] = {}
        for route in self.routes:
            self._by_key.setdefault((route.source, route.event), []).append(route)

    def destinations(self, message: Message) -> list[tuple[str, str]]:
        """``[(route name, destination), ...]`` for a message (empty: stored, not routed)."""
        seen: set[str] = set()
        out: list[tuple[str, str]] = []
        for route in self._by_key.get((message.source, message.event), ()):
            if not route.matches(message):
                continue
            for dest in route.destinations:
                if dest not in seen:
                    seen.add(dest)
                    out.append((route.name, dest))
        return out


def unemitted(routes: Iterable[Route], connectors: Mapping[str, Any]) -> list[tuple[Route, str]]:
    """Routes whose event their source system's connector never emits, each with what it
    does emit. A connector that does not declare ``emits`` (None) is not judged."""
    found = []
    for route in routes:
        emits = getattr(connectors.get(route.source), "emits", None)
        if emits is not None and route.event not in emits:
            found.append((route, ", ".join(emits) or "nothing"))
    return found
