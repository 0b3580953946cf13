"""Structured logs (structlog, JSON by default) with personal data masked.

Citizens' ID numbers (12 digits) become ``********1234`` and known name fields become
initials, in every log line, error message and export the gateway writes. The field names
are those of the wire formats (FORMATS.md); plugins may add more with
:func:`add_personal_fields`.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import unicodedata
from collections.abc import Mapping, MutableMapping
from datetime import datetime
from typing import Any, TextIO

import structlog

from gateway.model import VN_TZ

_ID_RE = re.compile(r"(?<!\d)(\d{8})(\d{4})(?!\d)")
NAME_FIELDS: set[str] = {"ChuHoSo", "TenNguoiNop", "hoTen", "HoTen", "TenDoiTuong"}
ID_FIELDS: set[str] = {"SoDinhDanh", "MaDoiTuong", "soDinhDanh", "CCCD"}


def add_personal_fields(names: set[str] | None = None, ids: set[str] | None = None) -> None:
    NAME_FIELDS.update(names or set())
    ID_FIELDS.update(ids or set())


def mask_id(value: str) -> str:
    """``006135001234`` -> ``********1234``."""
    return "*" * max(len(value) - 4, 0) + value[-4:]


def mask_name(value: str) -> str:
    """``Hoàng Thị Lan`` -> ``H. T. L.``"""
    parts = unicodedata.normalize("NFC", value).split()
    return " ".join(f"{p[0]}." for p in parts if p)


_FIELD_RE = re.compile(r'(?P<pre>"?(?P<key>[A-Za-z]+)"?\s*[:=]\s*")(?P<value>[^"]*)(?P<post>"|$)')


def _mask_field(m: re.Match[str]) -> str:
    key, value = m.group("key"), m.group("value")
    if key in NAME_FIELDS:
        value = mask_name(value)
    elif key in ID_FIELDS:
        value = mask_id(value)
    return m.group("pre") + value + m.group("post")


def mask_text(text: str) -> str:
    """Mask personal data in free text: every 12-digit run (a CCCD), and the values of the
    known name and ID fields where they appear as JSON pairs (``"hoTen": "…"``) or XML
    attributes (``hoTen="…"``) — destinations echo them in their error answers."""
    if '"' in text:
        text = _FIELD_RE.sub(_mask_field, text)
    return _ID_RE.sub(lambda m: "*" * 8 + m.group(2), text)


#: levels of a payload shown by :func:`mask_payload`; anything deeper is replaced by
#: :data:`TOO_DEEP` (a stored payload can never make a page or an API answer fail)
MASK_DEPTH = 40
TOO_DEEP = "…(nested too deeply to show)"


def mask_value(key: str, value: Any, _depth: int = 0) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and key in ID_FIELDS:
        value = str(value)
    if isinstance(value, str):
        if key in NAME_FIELDS:
            return mask_name(value)
        if key in ID_FIELDS:
            return mask_id(value)
        return mask_text(value)
    return mask_payload(value, _depth)


def mask_payload(value: Any, _depth: int = 0) -> Any:
    """A copy of a JSON value with personal data masked (for previews and logs), at most
    :data:`MASK_DEPTH` levels deep."""
    if isinstance(value, Mapping | list | tuple) and _depth >= MASK_DEPTH:
        return TOO_DEEP
    if isinstance(value, Mapping):
        return {k: mask_value(str(k), v, _depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask_payload(v, _depth + 1) for v in value]
    if isinstance(value, str):
        return mask_text(value)
    return value


def masked_json(text: str | bytes) -> Any:
    """A stored JSON payload, parsed and masked (:func:`mask_payload`); one nested deeper than
    the parser recurses is :data:`TOO_DEEP`. Raises ValueError when it is not JSON."""
    try:
        return mask_payload(json.loads(text))
    except RecursionError:
        return TOO_DEEP


def _mask_processor(
    _logger: Any, _name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key, value in list(event_dict.items()):
        event_dict[key] = mask_value(key, value)
    return event_dict


def _timestamp(
    _logger: Any, _name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """An aware ISO timestamp in Asia/Ho_Chi_Minh (the offices' time)."""
    event_dict["timestamp"] = datetime.now(VN_TZ).isoformat(timespec="milliseconds")
    return event_dict


def configure_logging(
    fmt: str = "json", level: int = logging.INFO, stream: TextIO | None = None
) -> None:
    """Configure structlog (idempotent). ``fmt`` is ``json`` or ``console``."""
    renderer: Any = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            _timestamp,
            structlog.processors.format_exc_info,
            _mask_processor,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=stream or sys.stderr),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str = "gateway") -> Any:
    """A structured logger (``log.info("event", key=value)``); mask personal data yourself."""
    return structlog.get_logger(name)
