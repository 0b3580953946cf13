"""Query parameters shared by the admin API and the dashboard: filters and cursors."""

from __future__ import annotations

from collections.abc import Mapping

from gateway.model import WHEN_EXAMPLES, DeliveryStatus, Outcome, parse_when
from gateway.store import DeliveryFilter, LogFilter
from gateway.web.admin.present import MAX_ID

OUTCOMES = (Outcome.DELIVERED.value, Outcome.RETRY.value, Outcome.DEAD.value, "replayed")
STATUSES = tuple(s.value for s in DeliveryStatus)
DEFAULT_LIMIT = 50
MAX_LIMIT = 500


class BadParam(ValueError):
    """A query parameter that cannot be used; ``str()`` says which and why."""


def _text(query: Mapping[str, str], name: str) -> str | None:
    value = query.get(name, "").strip()
    return value or None


def _choice(query: Mapping[str, str], name: str, allowed: tuple[str, ...]) -> str | None:
    value = _text(query, name)
    if value is not None and value not in allowed:
        raise BadParam(f"{name} must be one of {', '.join(allowed)}, not {value!r}")
    return value


def whole_number(value: str, name: str, lo: int = 1, hi: int = MAX_ID) -> int:
    if not value.isascii() or not value.isdigit() or not lo <= int(value) <= hi:
        raise BadParam(f"{name} must be a whole number from {lo} to {hi}, not {value!r}")
    return int(value)


def limit(query: Mapping[str, str]) -> int:
    value = _text(query, "limit")
    return DEFAULT_LIMIT if value is None else whole_number(value, "limit", 1, MAX_LIMIT)


def before_id(query: Mapping[str, str]) -> int | None:
    """The cursor: only rows with an id below it (``next_cursor`` of the previous page)."""
    value = _text(query, "before_id")
    return None if value is None else whole_number(value, "before_id")


def when(query: Mapping[str, str], name: str) -> float | None:
    value = _text(query, name)
    if value is None:
        return None
    try:
        return parse_when(value)
    except ValueError:
        raise BadParam(
            f"{name} must be a date or time like {WHEN_EXAMPLES}, not {value!r}"
        ) from None


def log_filter(query: Mapping[str, str]) -> LogFilter:
    return LogFilter(
        system=_text(query, "system"),
        outcome=_choice(query, "outcome", OUTCOMES),
        dossier=_text(query, "dossier"),
        since=when(query, "since"),
        until=when(query, "until"),
    )


def delivery_filter(query: Mapping[str, str]) -> DeliveryFilter:
    return DeliveryFilter(
        status=_choice(query, "status", STATUSES),
        destination=_text(query, "destination"),
        dossier=_text(query, "dossier"),
    )
