"""How store rows are shown by the admin API and the dashboard: times in Asia/Ho_Chi_Minh,
personal data masked (names to initials, CCCDs to ``********1234``) for every role.

Masking is not role-dependent on purpose: the gateway is a conduit, not the system of record;
a clerk who needs a citizen's full name or ID number reads it in the one-stop-shop or the
registry, where access is controlled and logged per dossier.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from gateway.log import mask_text, masked_json
from gateway.model import VN_TZ
from gateway.web.exports import LOG_COLUMNS

MAX_ID = 2**63 - 1
PREVIEW_CHARS = 4000
DELIVERY_FIELDS = (
    "id",
    "status",
    "destination",
    "route",
    "dossier_key",
    "source",
    "event",
    "ref",
    "attempts",
    "last_status",
    "last_error",
    "idempotency_key",
    "created_at",
    "updated_at",
    "next_attempt_at",
    "deadline_at",
    "delivered_at",
)
_TIMES = {
    "at",
    "next_attempt_at",
    "created_at",
    "updated_at",
    "deadline_at",
    "delivered_at",
    "received_at",
}


#: free-text and key fields masked on the way out; keys too, so that a key stored before
#: keys were pseudonymised (``02053:006135001234``) never shows a CCCD either
_MASKED = {"error_message", "last_error", "ref", "detail", "dossier_key", "external_id"}


def iso(epoch: float | None) -> str | None:
    """A store time (UTC epoch) as ISO 8601 with the +07:00 offset."""
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, VN_TZ).isoformat(timespec="milliseconds")


def masked(text: str | None) -> str | None:
    return None if text is None else mask_text(text)


def _shown(row: dict[str, Any], fields: tuple[str, ...] | list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in fields:
        value = row.get(key)
        if key in _TIMES:
            value = iso(value)
        elif isinstance(value, str) and key in _MASKED:
            value = mask_text(value)
        out[key] = value
    return out


def log_item(row: dict[str, Any]) -> dict[str, Any]:
    """One delivery-log row: the CSV export's columns, ISO times, masked error."""
    return _shown(row, LOG_COLUMNS)


def delivery_item(row: dict[str, Any]) -> dict[str, Any]:
    return _shown(row, DELIVERY_FIELDS)


def message_item(row: dict[str, Any]) -> dict[str, Any]:
    return _shown(row, ("id", "uid", "source", "event", "ref", "revision", "received_at"))


def audit_item(row: dict[str, Any]) -> dict[str, Any]:
    return _shown(row, ("id", "at", "actor", "action", "target", "detail"))


def payload_preview(payload: str | None, limit: int = PREVIEW_CHARS) -> str:
    """The stored message body, masked and pretty-printed, cut at ``limit`` characters."""
    if not payload:
        return ""
    try:
        text = json.dumps(masked_json(payload), ensure_ascii=False, indent=2)
    except ValueError:
        text = mask_text(payload)
    return text if len(text) <= limit else text[:limit] + "\n…"


def payload_revealed(payload: str | None) -> str:
    """The stored message body in full (an operator's audited reveal of one record)."""
    if not payload:
        return ""
    try:
        return json.dumps(json.loads(payload), ensure_ascii=False, indent=2)
    except (ValueError, RecursionError):  # not JSON, or nested too deeply to re-indent
        return payload


def timeline_events(timeline: dict[str, Any]) -> list[dict[str, Any]]:
    """Messages received and attempts made for one dossier, in causal order.

    Mostly time order; but a message a destination's answer produced (a registry's refusal,
    a decision's acknowledgement: ``parent_delivery_id``) comes after the send that caused
    it, whatever the clocks say (it is stored in the same transaction as that attempt).
    """
    attempts = timeline["attempts"]
    answered: dict[int, tuple[float, int]] = {}  # delivery id -> (time, index) of its answer
    for i, a in enumerate(attempts):
        if a["outcome"] == "delivered":
            answered[a["delivery_id"]] = (a["at"], i)
    events: list[dict[str, Any]] = []
    for m in timeline["messages"]:
        parent = m.get("parent_delivery_id")
        at, after = m["received_at"], -1
        if parent is not None and parent in answered:
            cause_at, after = answered[parent]
            at = max(at, cause_at)
        events.append(
            {
                "at": m["received_at"],
                "sort": (at, after, 1),
                "kind": "received",
                "source": m["source"],
                "event": m["event"],
                "revision": m["revision"],
                "ref": mask_text(m["ref"]),
                "caused_by": parent,
            }
        )
    events += [
        {
            "at": a["at"],
            "sort": (a["at"], i, 0),
            "kind": "attempt",
            "destination": a["destination"],
            "attempt": a["attempt"],
            "outcome": a["outcome"],
            "http_status": a["http_status"],
            "duration_ms": a["duration_ms"],
            "error": masked(a["error_message"]),
            "delivery_id": a["delivery_id"],
            "actor": a["actor"],
        }
        for i, a in enumerate(attempts)
    ]
    events.sort(key=lambda e: e["sort"])
    return events
