"""Dossiers pushed (or polled) from the one-stop-shop: DongBoHoSoMC bodies -> messages.

A body that cannot be read at all is a :class:`BadRequest` (the gateway answers 400); a bad
item becomes a :class:`Rejection` and never blocks the good items beside it.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Mapping
from typing import Any

import orjson

from gateway.model import BadRequest, Message, ParseResult, Rejection, nfc
from plugins.one_stop_shop.validation import NOT_OBJECT, validate_dossier
from plugins.one_stop_shop.wire import parse_timestamp

EVENT_DOSSIER_RECEIVED = "dossier.received"


#: digits become ``0``: a run of 19 may be an integer beyond 64 bits, which orjson would read
#: as a float (the standard library reads those)
_DIGITS = bytes.maketrans(b"123456789", b"000000000")
_LONG_RUN = b"0" * 19


def decode_document(body: bytes) -> dict[str, Any]:
    """The JSON object of a push; BadRequest (with a readable reason) when it is not one."""
    return decode_push(body)[0]


def decode_push(body: bytes) -> tuple[dict[str, Any], bool]:
    """``(document, plain)``; BadRequest when it is not a push. ``plain``: every string in
    the document is NFC and free of characters XML cannot carry.

    The usual push has no backslash: its strings are then exactly the text between its
    quotes (a JSON parser refuses raw control characters there), and JSON's structure
    characters never compose with a neighbour under NFC, so the text normalised as a whole is
    the document with every key and value normalised — one C call instead of a walk — and
    orjson reads it (twice as fast as ``json``). Anything else (escapes, integers beyond 64
    bits, ``NaN``, a syntax error) is read by the standard library exactly as before, then
    normalised and checked string by string.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("nội dung không phải văn bản UTF-8 (the body is not UTF-8 text)") from None
    if (
        "\\" not in text
        and "\ufffe" not in text
        and "\uffff" not in text
        and _LONG_RUN not in body.translate(_DIGITS)
    ):
        try:
            document = orjson.loads(unicodedata.normalize("NFC", text))
        except orjson.JSONDecodeError:
            pass
        else:
            return _checked(document), True
    return _checked(_loads(text)), False


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadRequest(
            f"nội dung không phải JSON hợp lệ (the body is not valid JSON: {exc.msg} "
            f"at line {exc.lineno} column {exc.colno})"
        ) from None
    except ValueError as exc:  # e.g. an integer longer than Python converts (4,300 digits)
        raise BadRequest(
            f"nội dung không phải JSON hợp lệ (the body is not valid JSON: {exc})"
        ) from None


def _checked(document: Any) -> dict[str, Any]:
    if not isinstance(document, dict) or not isinstance(document.get("data"), list):
        raise BadRequest(
            'nội dung phải là đối tượng JSON có danh sách "data" '
            '(the body must be a JSON object with a "data" list)'
        )
    return document


def is_updating(value: Any) -> bool:
    """``isUpdating``: the protocol sends ``"True"`` / ``"False"``; booleans are accepted."""
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise BadRequest(
        'isUpdating phải là "True" hoặc "False" (isUpdating must be "True" or "False")'
    )


def parse_document(document: Mapping[str, Any], plain: bool = False) -> ParseResult:
    """Messages for the good items of a decoded push, rejections for the bad ones
    (``plain``: every string is already NFC and free of control characters, see
    :func:`decode_push`)."""
    updating = is_updating(document.get("isUpdating"))
    result = ParseResult()
    for i, raw in enumerate(document["data"]):
        if not isinstance(raw, Mapping):
            ref = f"data[{i}]"
            result.rejected.append(Rejection(ref=ref, errors=(f"{ref}: {NOT_OBJECT}",)))
            continue
        item: dict[str, Any] = dict(raw) if plain else nfc(dict(raw))
        ma_ho_so = item.get("MaHoSo")
        ref = ma_ho_so.strip() if isinstance(ma_ho_so, str) and ma_ho_so.strip() else f"data[{i}]"
        errors = validate_dossier(item, plain=plain)
        if errors:
            result.rejected.append(Rejection(ref=ref, errors=tuple(errors)))
            continue
        result.messages.append(
            Message(
                event=EVENT_DOSSIER_RECEIVED,
                external_id=ref,
                ref=ref,
                dossier_key=ref,
                procedure=str(item["MaTTHC"]).strip(),
                payload={"isUpdating": updating, "dossier": item},
            )
        )
    return result


def parse_push(body: bytes) -> ParseResult:
    """Decode and parse a pushed body (FORMATS.md §1.1)."""
    return parse_document(*decode_push(body))


def next_cursor(document: Mapping[str, Any], cursor: str | None) -> str | None:
    """The poll cursor after a page: the server's ``cursor`` when it sends one, else the
    latest NgayTiepNhan seen (``yyyyMMddHHmmss`` sorts as text), else unchanged."""
    given = document.get("cursor")
    if isinstance(given, str | int) and not isinstance(given, bool) and str(given):
        return str(given)
    latest = cursor
    for item in document.get("data", []):
        stamp = item.get("NgayTiepNhan") if isinstance(item, Mapping) else None
        if not isinstance(stamp, str):
            continue
        try:
            parse_timestamp(stamp)
        except ValueError:
            continue
        if latest is None or stamp > latest:
            latest = stamp
    return latest
