"""What goes into and comes out of the store: plain dataclasses, no SQL."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from gateway.model import Message, Outcome, canonical_json

GENESIS = "0" * 64


class StoreUnavailable(Exception):
    """The store cannot take writes now (locked too long, disk full, unreachable)."""


class DuplicateNodeId(RuntimeError):
    """Another running node uses this node's ``gateway.node_id`` (both append to one
    delivery-log chain and one set of leases): a configuration error, never retried away."""


@dataclass(slots=True)
class IntakeItem:
    """A message on its way into the store with the destinations its routes name."""

    message: Message
    routes: list[tuple[str, str]]
    deadlines: dict[str, float]
    parent_delivery_id: int | None = None


@dataclass(slots=True)
class IngestResult:
    ref: str
    uid: str
    duplicate: bool
    deliveries: int


@dataclass(slots=True)
class ClaimedDelivery:
    """A delivery leased to this node, with what is needed to render and send it."""

    id: int
    destination: str
    route: str
    dossier_key: str
    attempts: int
    created_at: float
    deadline_at: float
    idempotency_key: str
    message_uid: str
    source: str
    event: str
    external_id: str
    ref: str
    procedure: str | None
    revision: int
    payload: str
    #: the claiming node's generation (its fencing token) when it took the lease
    generation: int | None = None

    def message(self) -> Message:
        """The stored message; its canonical JSON is the stored text as it is (a connector
        that sends the payload unchanged need not serialise it again)."""
        return Message(
            event=self.event,
            external_id=self.external_id,
            payload=json.loads(self.payload),
            dossier_key=self.dossier_key,
            procedure=self.procedure,
            source=self.source,
            ref=self.ref,
            revision=self.revision,
            _canonical=self.payload.encode(),
        )


@dataclass(slots=True)
class AttemptRecord:
    """The outcome of one attempt, to be logged and applied to its delivery."""

    delivery: ClaimedDelivery
    outcome: Outcome
    started_at: float
    duration_ms: float
    http_status: int | None = None
    bytes_sent: int = 0
    bytes_received: int = 0
    error_class: str | None = None
    error_message: str | None = None
    next_attempt_at: float | None = None
    follow_ups: list[IntakeItem] = field(default_factory=list)

    @property
    def attempt(self) -> int:
        return self.delivery.attempts + 1


@dataclass(slots=True)
class CycleResult:
    """What one write cycle committed."""

    ingested: list[IngestResult]
    follow_ups: list[IngestResult]
    claimed: dict[str, list[ClaimedDelivery]]
    #: attempt results not recorded: the node no longer holds the generation they were
    #: claimed under (it was silent too long and another node took its deliveries over)
    fenced: list[AttemptRecord] = field(default_factory=list)
    #: the cycle confirmed (and held until its commit) the node's generation
    held: bool = False


@dataclass(slots=True, frozen=True)
class LogFilter:
    system: str | None = None
    outcome: str | None = None
    dossier: str | None = None
    since: float | None = None
    until: float | None = None
    delivery_id: int | None = None


@dataclass(slots=True, frozen=True)
class DeliveryFilter:
    status: str | None = None
    destination: str | None = None
    dossier: str | None = None


def log_hash(prev: str, row: dict[str, Any]) -> str:
    """The hash of one delivery-log row, chained to the previous row's hash."""
    fields = (
        prev,
        row["chain"],
        row["seq"],
        repr(float(row["at"])),
        row["delivery_id"],
        row["dossier_key"],
        row["source"],
        row["destination"],
        row["route"],
        row["attempt"],
        row["outcome"],
        row["http_status"],
        repr(float(row["duration_ms"])),
        row["bytes_sent"],
        row["bytes_received"],
        row["error_class"],
        row["error_message"],
        None if row["next_attempt_at"] is None else repr(float(row["next_attempt_at"])),
        row["node"],
        row["actor"],
    )
    return hashlib.sha256(canonical_json(list(fields))).hexdigest()


def idempotency_key(message_uid: str, destination: str) -> str:
    """Stable per message x destination: every resend carries the same key."""
    return f"{message_uid}-{hashlib.sha256(destination.encode()).hexdigest()[:16]}"


def work_after(items: Sequence[IntakeItem], records: Sequence[AttemptRecord]) -> set[str]:
    """Destinations that a cycle's intake and attempt outcomes may give claimable work: those
    of new deliveries and follow-ups, and those whose delivery finished (the dossier's next
    one may now go)."""
    dests = {dest for item in items for _, dest in item.routes}
    for r in records:
        if r.outcome is not Outcome.RETRY:
            dests.add(r.delivery.destination)
        dests.update(dest for f in r.follow_ups for _, dest in f.routes)
    return dests
