"""Intake: turn what a connector or a plugin produced into routed, durable messages.

The one way in, whoever sends: pushes (``POST /inbound/{system}``), polls, follow-ups a
destination's answer gave rise to, and messages plugins emit all go through
:meth:`Intake.prepare` (normalise, check the text, the validate and transform hooks, route)
and are stored by :func:`gateway.store.writes.ingest` under the same ordering locks
(:func:`gateway.store.writes.lock_keys` on PostgreSQL). The running gateway's entry is
:meth:`gateway.engine.worker.DeliveryEngine.submit` (one unit of the group commit: the caller
gets its per-item answer only after the transaction committed); a plugin that must store a
message in the same transaction as its own rows uses :func:`emit_in` (through
:mod:`gateway.api`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Connection

from gateway.config import Config
from gateway.log import get_logger, mask_text
from gateway.model import Message, ParseResult, Rejection
from gateway.plugins import Plugins
from gateway.routing import RouteTable
from gateway.store import writes
from gateway.store.store import IngestResult, IntakeItem

Submit = Callable[[list[IntakeItem]], Awaitable[list[IngestResult]]]

log = get_logger("gateway.intake")


@dataclass(slots=True)
class IntakeAnswer:
    """The per-item answer of FORMATS.md §4."""

    accepted: list[dict[str, str]] = field(default_factory=list)
    duplicates: list[dict[str, str]] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    new_deliveries: int = 0

    def as_json(self) -> dict[str, Any]:
        return {"accepted": self.accepted, "duplicates": self.duplicates, "rejected": self.rejected}


class Intake:
    """Validates, routes and group-commits inbound messages."""

    def __init__(self, config: Config, plugins: Plugins, routes: RouteTable | None = None) -> None:
        self.config = config
        self.plugins = plugins
        self.routes = routes if routes is not None else RouteTable(config.routes)
        self._submit: Submit | None = None

    def connect(self, submit: Submit) -> None:
        """Where committed items go: the delivery engine's write cycle."""
        self._submit = submit

    def item_for(self, message: Message, parent_delivery_id: int | None = None) -> IntakeItem:
        """Route a normalised message into an :class:`IntakeItem`."""
        routes = self.routes.destinations(message)
        deadlines = {dest: self.config.systems[dest].retry.deadline for _, dest in routes}
        return IntakeItem(message, routes, deadlines, parent_delivery_id)

    async def prepare(
        self, system: str, parsed: ParseResult, parent: int | None = None
    ) -> tuple[list[IntakeItem], list[Rejection]]:
        """Normalise, validate and transform parsed messages; route the good ones.

        :param system: the source: the pushing or polled system, the system whose answer gave
            rise to a follow-up, or the emitting plugin's name.
        :param parent: the delivery whose answer gave rise to these messages (follow-ups).
        """
        items: list[IntakeItem] = []
        rejected = list(parsed.rejected)
        for raw in parsed.messages:
            message = raw.normalised()
            message.source = system
            if not _is_valid_text(message):
                rejected.append(Rejection(_safe(message.ref), (INVALID_TEXT,)))
                continue
            errors: list[str] = []
            if self.plugins.has_validators:
                try:
                    errors = await self.plugins.validate(message, system)
                except Exception as exc:
                    log.error("validator_failed", system=system, error=mask_text(repr(exc)))
                    errors = [f"validator plugin failed: {type(exc).__name__}"]
            if errors:
                rejected.append(Rejection(message.ref, tuple(mask_text(e) for e in errors)))
                continue
            if self.plugins.has_transforms:
                try:
                    message = (await self.plugins.transform(message, system)).normalised()
                    message.source = system
                except Exception as exc:
                    log.error("transform_failed", system=system, error=mask_text(repr(exc)))
                    rejected.append(
                        Rejection(message.ref, (f"transform plugin failed: {type(exc).__name__}",))
                    )
                    continue
            items.append(self.item_for(message, parent))
        return items, rejected

    async def commit(self, items: list[IntakeItem], rejected: list[Rejection]) -> IntakeAnswer:
        """Make items durable (group commit) and build the answer."""
        answer = IntakeAnswer(
            rejected=[
                {"ref": _safe(r.ref), "errors": [_safe(e) for e in r.errors]} for r in rejected
            ]
        )
        if not items:
            return answer
        if self._submit is None:
            raise RuntimeError("intake is not connected to a delivery engine")
        results = await self._submit(items)
        for result in results:
            entry = {"ref": result.ref, "id": result.uid}
            if result.duplicate:
                answer.duplicates.append(entry)
            else:
                answer.accepted.append(entry)
                answer.new_deliveries += result.deliveries
        return answer


def emit_in(conn: Connection, items: Sequence[IntakeItem], now: float) -> list[IngestResult]:
    """Store prepared items inside the caller's transaction, with the same ordering and dedupe
    locks as the group commit (PostgreSQL advisory locks, taken before anything is read)."""
    if conn.dialect.name == "postgresql":
        writes.lock_keys(conn, items)
    return writes.ingest(conn, items, now)


INVALID_TEXT = (
    "văn bản chứa ký tự không hợp lệ (the text holds an invalid character: a lone UTF-16 surrogate)"
)


def _is_valid_text(message: Message) -> bool:
    """Whether every string of the message encodes as UTF-8 (JSON escapes can smuggle in lone
    surrogates that no store or destination can take)."""
    try:
        message.canonical_payload()
        (message.external_id + message.ref + message.dossier_key).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _safe(text: str) -> str:
    """Text that can be written back in an answer, whatever the sender put in it."""
    return text.encode("utf-8", "replace").decode("utf-8")
