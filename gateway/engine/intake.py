"""Intake: turn what a source connector parsed into routed, durable messages.

Shared by ``POST /inbound/{system}`` and the poller. One call = one unit of the group
commit: the caller gets its per-item answer only after the transaction committed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway.config import Config
from gateway.engine.batcher import GroupCommitter
from gateway.log import get_logger, mask_text
from gateway.model import Message, ParseResult, Rejection
from gateway.plugins import Plugins
from gateway.routing import RouteTable
from gateway.store.store import IngestResult, IntakeItem, Store

log = get_logger("gateway.intake")


@dataclass(slots=True)
class IntakeAnswer:
    """The per-item answer of FORMATS.md §4."""

    accepted: list[dict[str, str]] = field(default_factory=list)
    duplicates: list[dict[str, str]] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    destinations: set[str] = field(default_factory=set)
    new_deliveries: int = 0

    def as_json(self) -> dict[str, Any]:
        return {"accepted": self.accepted, "duplicates": self.duplicates, "rejected": self.rejected}


class Intake:
    """Validates, routes and group-commits inbound messages."""

    def __init__(self, config: Config, store: Store, plugins: Plugins, routes: RouteTable) -> None:
        self.config = config
        self.store = store
        self.plugins = plugins
        self.routes = routes
        self.committer: GroupCommitter[IntakeItem, IngestResult] = GroupCommitter(
            store.ingest, max_batch=config.limits.intake_batch, name="intake-commit"
        )

    def item_for(self, message: Message, parent_delivery_id: int | None = None) -> IntakeItem:
        """Route a normalised message into an :class:`IntakeItem`."""
        routes = self.routes.destinations(message)
        deadlines = {dest: self.config.systems[dest].retry.deadline for _, dest in routes}
        return IntakeItem(message, routes, deadlines, parent_delivery_id)

    async def prepare(self, system: str, parsed: ParseResult) -> tuple[list[IntakeItem], list[Rejection]]:
        """Normalise, validate and transform parsed messages; route the good ones."""
        items: list[IntakeItem] = []
        rejected = list(parsed.rejected)
        for raw in parsed.messages:
            message = raw.normalised()
            message.source = system
            errors: list[str] = []
            if self.plugins.has_validators:
                try:
                    errors = await self.plugins.validate(message, system)
                except Exception as exc:  # noqa: BLE001 - a plugin that raises is contained
                    log.error("validator_failed", system=system, error=mask_text(repr(exc)))
                    errors = [f"validator plugin failed: {type(exc).__name__}"]
            if errors:
                rejected.append(Rejection(message.ref, tuple(mask_text(e) for e in errors)))
                continue
            if self.plugins.has_transforms:
                try:
                    message = (await self.plugins.transform(message, system)).normalised()
                    message.source = system
                except Exception as exc:  # noqa: BLE001
                    log.error("transform_failed", system=system, error=mask_text(repr(exc)))
                    rejected.append(Rejection(message.ref, (f"transform plugin failed: {type(exc).__name__}",)))
                    continue
            items.append(self.item_for(message))
        return items, rejected

    async def commit(self, items: list[IntakeItem], rejected: list[Rejection]) -> IntakeAnswer:
        """Make items durable (group commit) and build the answer."""
        answer = IntakeAnswer(rejected=[{"ref": r.ref, "errors": list(r.errors)} for r in rejected])
        if not items:
            return answer
        results = await self.committer.submit(items)
        for item, result in zip(items, results, strict=True):
            entry = {"ref": result.ref, "id": result.uid}
            if result.duplicate:
                answer.duplicates.append(entry)
            else:
                answer.accepted.append(entry)
                answer.destinations.update(dest for _, dest in item.routes)
                answer.new_deliveries += result.deliveries
        return answer
