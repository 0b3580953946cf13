"""Structured logs (structlog, JSON by default) with personal data masked.

Citizens' ID numbers (12 digits, also written in groups like ``006 135 001 234``, and the
old 9-digit ID cards) become ``********1234``, known name fields become initials, birth dates
keep only their year, addresses become ``***``, phone numbers keep their last three digits and
e-mail addresses their first letter and domain — in every log line, error message, page,
API answer, CLI output and export the gateway writes, whoever reads it (an operator or
admin may *reveal* one record, audited: ``gateway.web.admin``). The field names are those of
the wire formats (FORMATS.md), as JSON pairs, XML attributes (either quote) or XML elements;
plugins may add more with :func:`add_personal_fields`.
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
#: a CCCD written in groups (``006 135 001 234``, ``0061.3500.1234``, ``006-135-001234``)
_GROUPED_ID_RE = re.compile(r"(?<![0-9A-Za-z])[0-9](?:[ .\-]?[0-9]){11}(?![0-9A-Za-z]|[ .\-][0-9])")
#: an amount next to its field name (``soTien="108000000"``): not an old ID number
_AMOUNT_RE = re.compile(
    r"""(?<![A-Za-z])["']?[A-Za-z]*(?:[Tt]ien|[Aa]mount|[Tt]otal|[Mm]uc)["']?\s*[:=]\s*["']?\d+"""
)
#: an old 9-digit ID card number (CMND) standing alone
_OLD_ID_RE = re.compile(r"(?<![0-9A-Za-z])\d{9}(?![0-9A-Za-z])")
_OLD_ID_OR_AMOUNT = re.compile(f"(?P<amount>{_AMOUNT_RE.pattern})|(?P<old>{_OLD_ID_RE.pattern})")
_PHONE_RE = re.compile(
    r"(?<![0-9A-Za-z+])(?:\+84[ .]?|0)\d{2,3}[ .]?\d{3}[ .]?\d{3,4}(?![0-9A-Za-z])"
)
_EMAIL_RE = re.compile(r"(?<![\w.+-])([\w.+-])[\w.+-]*@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)")
NAME_FIELDS: set[str] = {"ChuHoSo", "TenNguoiNop", "hoTen", "HoTen", "TenDoiTuong"}
ID_FIELDS: set[str] = {"SoDinhDanh", "MaDoiTuong", "soDinhDanh", "CCCD", "SoCMND", "soCMND", "CMND"}
BIRTH_FIELDS: set[str] = {"NgaySinh", "ngaySinh", "ngaySinhNguoiDuocChamSoc"}
ADDRESS_FIELDS: set[str] = {"DiaChi", "diaChi", "DiaChiChiTiet", "diaChiChiTiet", "DiaChiThuongTru"}
PHONE_FIELDS: set[str] = {"SoDienThoai", "soDienThoai", "DienThoai", "dienThoai"}
EMAIL_FIELDS: set[str] = {"Email", "email", "ThuDienTu", "thuDienTu"}


def add_personal_fields(
    names: set[str] | None = None,
    ids: set[str] | None = None,
    *,
    birth_dates: set[str] | None = None,
    addresses: set[str] | None = None,
    phones: set[str] | None = None,
    emails: set[str] | None = None,
) -> None:
    NAME_FIELDS.update(names or set())
    ID_FIELDS.update(ids or set())
    BIRTH_FIELDS.update(birth_dates or set())
    ADDRESS_FIELDS.update(addresses or set())
    PHONE_FIELDS.update(phones or set())
    EMAIL_FIELDS.update(emails or set())


def mask_birth_date(value: str) -> str:
    """``19350412`` -> ``1935****``; ``1935-04-12`` -> ``1935-**-**`` (the year stays)."""
    return value[:4] + re.sub(r"[0-9]", "*", value[4:])


def mask_address(value: str) -> str:
    return "***" if value.strip() else value


def mask_phone(value: str) -> str:
    """``0912345678`` -> ``*******678``."""
    digits = [c for c in value if c.isdigit()]
    return "*" * max(len(digits) - 3, 0) + "".join(digits[-3:]) if digits else value


def mask_email(value: str) -> str:
    """``lan.hoang@example.vn`` -> ``l***@example.vn``."""
    local, at, domain = value.partition("@")
    return f"{local[:1]}***@{domain}" if at else ("***" if value else value)


def _masker(key: str) -> Any:
    if key in NAME_FIELDS:
        return mask_name
    if key in ID_FIELDS:
        return mask_id
    if key in BIRTH_FIELDS:
        return mask_birth_date
    if key in ADDRESS_FIELDS:
        return mask_address
    if key in PHONE_FIELDS:
        return mask_phone
    if key in EMAIL_FIELDS:
        return mask_email
    return None


def mask_id(value: str) -> str:
    """``006135001234`` -> ``********1234``."""
    return "*" * max(len(value) - 4, 0) + value[-4:]


def mask_name(value: str) -> str:
    """``Hoàng Thị Lan`` -> ``H. T. L.``"""
    parts = unicodedata.normalize("NFC", value).split()
    return " ".join(f"{p[0]}." for p in parts if p)


_FIELD_RE = re.compile(
    r"""(?P<pre>(?<![A-Za-z])["']?(?P<key>[A-Za-z]+)["']?\s*[:=]\s*(?P<q>["']))"""
    r"""(?P<value>(?:(?!(?P=q))[\s\S])*)(?P<post>(?P=q)|$)"""
)
#: ``<hoTen>…</hoTen>``, ``<ns:DiaChi maXa="…">…</ns:DiaChi>``
_ELEMENT_RE = re.compile(
    r"(?P<pre><(?:[A-Za-z_][\w.-]*:)?(?P<key>[A-Za-z]+)(?:\s[^<>]*)?>)(?P<value>[^<]*)"
    r"(?P<post></)"
)


def _mask_field(m: re.Match[str]) -> str:
    value = m.group("value")
    masker = _masker(m.group("key"))
    if masker is not None:
        value = masker(value)
    return m.group("pre") + value + m.group("post")


def _mask_old_id(m: re.Match[str]) -> str:
    if m.group("amount") is not None:
        return m.group(0)
    old = m.group("old")
    return "*" * 5 + old[-4:]


def _mask_grouped(m: re.Match[str]) -> str:
    digits = [c for c in m.group(0) if c.isdigit()]
    return "*" * 8 + "".join(digits[-4:])


def mask_text(text: str) -> str:
    """Mask personal data in free text: every CCCD (12 digits, also in groups), old 9-digit
    ID number, phone number and e-mail address, and the values of the known personal fields
    where they appear as JSON pairs (``"hoTen": "…"``), XML attributes (``hoTen="…"`` or
    ``hoTen='…'``) or XML elements (``<hoTen>…</hoTen>``) — destinations echo them in their
    error answers."""
    if '"' in text or "'" in text:
        text = _FIELD_RE.sub(_mask_field, text)
    if "</" in text:
        text = _ELEMENT_RE.sub(_mask_field, text)
    text = _ID_RE.sub(lambda m: "*" * 8 + m.group(2), text)
    text = _GROUPED_ID_RE.sub(_mask_grouped, text)
    text = _PHONE_RE.sub(lambda m: mask_phone(m.group(0)), text)
    text = _OLD_ID_OR_AMOUNT.sub(_mask_old_id, text)
    if "@" in text:
        text = _EMAIL_RE.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", text)
    return text


#: levels of a payload shown by :func:`mask_payload`; anything deeper is replaced by
#: :data:`TOO_DEEP` (a stored payload can never make a page or an API answer fail)
MASK_DEPTH = 40
TOO_DEEP = "…(nested too deeply to show)"


def mask_value(key: str, value: Any, _depth: int = 0) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and key in ID_FIELDS:
        value = str(value)
    if isinstance(value, str):
        masker = _masker(key)
        return masker(value) if masker is not None else mask_text(value)
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
