"""The fast JSON paths read and write exactly what the standard library does.

The canonical JSON is hashed for dedupe (a re-sent dossier must hash the same across versions)
and the stored payload is read back for every attempt, so orjson is used only where its bytes
and values are the standard library's; these properties check that over arbitrary JSON values,
including the ones orjson writes differently (exponent floats, NaN) or reads differently
(integers beyond 64 bits).
"""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.model import Message, canonical_json, loads, nfc
from plugins.one_stop_shop.inbound import decode_push, parse_document, parse_push
from plugins.one_stop_shop.validation import validate_dossier

STDLIB = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode

#: text with what makes canonical JSON and NFC hard: combining marks, Vietnamese in NFC and
#: NFD, astral characters, control characters, quotes, backslashes, U+2028
ALPHABET = st.sampled_from(
    list('aAzZ09 "\\/\n\t\x00\x1f\x7f\u2028\ufffe')
    + list("ăâđêôơưĂÂĐÊÔƠƯàảãáạ")
    + ["\u0300", "\u0301", "\u0303", "\u0309", "\u0323", "\u0306", "\u031b"]
    + ["\U0001f600", "\U00010000", "\uffff", "Å", "\u212b", "\u037e"]
)
TEXT = st.text(ALPHABET, max_size=12) | st.text(max_size=8)
NUMBERS = (
    st.integers()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from([1e16, 1e-5, 1e15, 0.0001, -0.0, 123456789012345680.0, 1e300])
)
SCALARS = st.none() | st.booleans() | NUMBERS | TEXT


def json_values(scalars: st.SearchStrategy[Any] = SCALARS) -> st.SearchStrategy[Any]:
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
        max_leaves=20,
    )


@settings(max_examples=600, deadline=None)
@given(json_values())
def test_canonical_json_is_the_standard_librarys_byte_for_byte(value: Any) -> None:
    try:
        expected = STDLIB(value).encode()
    except UnicodeEncodeError:  # a lone surrogate: refused by both
        return
    assert canonical_json(value) == expected


@settings(max_examples=300, deadline=None)
@given(json_values())
def test_normalised_message_stores_the_standard_librarys_canonical_text(value: Any) -> None:
    message = Message(event="e", external_id="x", payload=value).normalised()
    walked = nfc(value)
    assert message.payload == walked or message.payload != message.payload  # NaN != NaN
    try:
        expected = STDLIB(walked).encode()
    except UnicodeEncodeError:
        return
    assert message.canonical_payload() == expected


@settings(max_examples=600, deadline=None)
@given(json_values())
def test_loads_reads_what_json_loads_reads(value: Any) -> None:
    try:
        text = STDLIB(value)
        text.encode()
    except UnicodeEncodeError:
        return
    got, want = loads(text), json.loads(text)
    assert json.dumps(got, sort_keys=True) == json.dumps(want, sort_keys=True)
    assert type(got) is type(want)


def test_loads_keeps_long_integers_as_integers() -> None:
    assert loads('{"n": 123456789012345678901234567890}') == {"n": 123456789012345678901234567890}
    assert loads("[NaN]")[0] != loads("[NaN]")[0]


@settings(max_examples=600, deadline=None)
@given(st.dictionaries(TEXT, json_values(), max_size=5), st.booleans())
def test_a_plain_push_reads_as_the_normalised_standard_reading(
    item: dict[str, Any], nfd: bool
) -> None:
    """Normalising the whole text and reading it with orjson gives exactly the standard
    library's reading with every key and value normalised (what the per-item walk did)."""
    document = {"data": [item]}
    try:
        text = json.dumps(document, ensure_ascii=False)
        text.encode()
    except UnicodeEncodeError:
        return
    if nfd:
        text = unicodedata.normalize("NFD", text)
    body = text.encode()
    got, plain = decode_push(body)
    want = nfc(json.loads(text)) if plain else json.loads(text)  # else parse_document walks
    assert json.dumps(got, sort_keys=True) == json.dumps(want, sort_keys=True)
    special = re.search(r"[0-9]{19}|NaN|Infinity|[\\\ufffe\uffff]", text)
    if not special:
        assert plain  # the usual push takes the fast path
    if plain:
        assert "\\" not in text
        for value in _strings(got):
            assert unicodedata.is_normalized("NFC", value)
            assert not any(ord(c) < 0x20 or c in "\ufffe\uffff" for c in value)


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (k, *_strings(v))]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


DOSSIER = {
    "MaHoSo": "000.00.12.H06-200803-0001",
    "MaTTHC": "1.001731",  # funeral support: the basic fields only
    "ChuHoSo": "Hoàng Thị Lan",
    "NgayTiepNhan": "20200803081500",
    "TrangThaiHoSo": "2",
    "TaiLieuNop": [
        {"TenTepDinhKem": "Mẫu 1a.pdf", "DuongDanTaiTepTin": "https://motcua.example/tep/f1"}
    ],
}


def test_an_escaped_control_character_is_still_refused() -> None:
    """The fast path skips the per-field control-character scan only for plain pushes: an
    escaped one (``\\u000b``) goes the standard way and is refused by name."""
    item = {**DOSSIER, "ChuHoSo": "Hoàng\u000bThị Lan"}
    body = json.dumps({"data": [item]}, ensure_ascii=False).encode()
    assert b"\\u000b" in body
    result = parse_push(body)
    assert not result.messages
    assert any("ChuHoSo" in e and "điều khiển" in e for e in result.rejected[0].errors)


def test_a_plain_nfd_push_is_stored_in_nfc_exactly_as_before() -> None:
    body = unicodedata.normalize("NFD", json.dumps({"data": [DOSSIER]}, ensure_ascii=False))
    fast = parse_push(body.encode())
    slow = parse_document(json.loads(body))  # the per-item walk
    assert [m.payload for m in fast.messages] == [m.payload for m in slow.messages]
    assert fast.messages[0].payload["dossier"]["ChuHoSo"] == "Hoàng Thị Lan"
    assert validate_dossier(fast.messages[0].payload["dossier"], plain=True) == []


@settings(max_examples=300, deadline=None)
@given(st.text(ALPHABET, max_size=60))
def test_plain_validation_finds_what_the_full_scan_finds(name: str) -> None:
    """On any push, the errors with the fast path are the errors without it."""
    item = {**DOSSIER, "ChuHoSo": name, "TrichYeuHoSo": name[::-1]}
    try:
        body = json.dumps({"data": [item]}, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        return
    fast = parse_push(body)
    slow = parse_document(json.loads(body))
    assert [r.errors for r in fast.rejected] == [r.errors for r in slow.rejected]
    assert [m.payload for m in fast.messages] == [m.payload for m in slow.messages]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.none() | st.booleans() | NUMBERS | TEXT, max_size=20))
def test_a_log_rows_fields_hash_as_they_always_did(fields: list[Any]) -> None:
    """The delivery log's hash chain: rows written by earlier versions must verify."""
    from gateway.store.records import _fields_json

    try:
        expected = STDLIB(fields).encode()
    except UnicodeEncodeError:
        return
    assert _fields_json(fields) == expected
