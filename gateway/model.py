"""The gateway's vocabulary: messages, outbound requests, receipts and error classes.

Nothing here knows about social assistance. A *message* is one business document taken in
from a source system (or emitted by a plugin); a *delivery* is that message on its way to one
destination; an *attempt* is one try of a delivery.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

import orjson

VN_TZ = ZoneInfo("Asia/Ho_Chi_Minh")

JSONValue = Any
"""A value that ``json.dumps`` accepts (the stored form of a message payload)."""


def now_vn() -> datetime:
    """The current time, aware, in Asia/Ho_Chi_Minh."""
    return datetime.now(VN_TZ)


_WHEN = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?([Zz]|[+-]\d{2}:\d{2})?)?",
    re.ASCII,
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
WHEN_EXAMPLES = "2020-08-03, 2020-08-03T08:15 or 2020-08-03T08:15:00+07:00"


def parse_when(text: str) -> float:
    """A date or time as a UTC epoch: ``2020-08-03`` (midnight), ``2020-08-03T08:15``,
    ``2020-08-03T08:15:30.5`` or RFC 3339 with an offset (``Z``, ``+07:00``); without an
    offset it is Asia/Ho_Chi_Minh time. Anything else (and impossible dates such as
    2020-02-30) raises :class:`ValueError`. Years 0001-9999 are all accepted, offsets included
    (no overflow at the ends of the calendar)."""
    m = _WHEN.fullmatch(text.strip())
    if m is None:
        raise ValueError(f"not a date or time like {WHEN_EXAMPLES}: {text!r}")
    year, month, day, hour, minute, second, frac, offset = m.groups()
    local = datetime(
        int(year),
        int(month),
        int(day),
        int(hour or 0),
        int(minute or 0),
        int(second or 0),
        int((frac or "0")[:6].ljust(6, "0")),
    )  # ValueError for month 13, 2020-02-30, hour 24, minute 99
    if offset is None:
        shift = VN_TZ.utcoffset(local) or timedelta(0)
    elif offset in "Zz":
        shift = timedelta(0)
    else:
        hours, minutes = int(offset[1:3]), int(offset[4:6])
        if hours > 23 or minutes > 59:
            raise ValueError(f"not a time offset: {offset!r}")
        shift = (1 if offset[0] == "+" else -1) * timedelta(hours=hours, minutes=minutes)
    return (local.replace(tzinfo=UTC) - _EPOCH - shift).total_seconds()


def nfc(value: JSONValue) -> JSONValue:
    """NFC-normalise every string inside a JSON value (keys included).

    Most payloads arrive already NFC: one C-level check of their JSON text spares the walk.
    """
    if isinstance(value, Mapping | list) and unicodedata.is_normalized("NFC", _any_text(value)):
        return value
    return _nfc_walk(value)


def _any_text(value: JSONValue) -> str:
    """Some JSON text holding every string of ``value`` (for an NFC check)."""
    try:
        return orjson.dumps(value, option=_ORJSON_OPTIONS).decode()
    except TypeError:  # what orjson refuses (a lone surrogate, int keys…): the stdlib's text
        return json.dumps(value, ensure_ascii=False)


def _nfc_walk(value: JSONValue) -> JSONValue:
    if isinstance(value, str):
        return unicodedata.normalize("NFC", value)
    if isinstance(value, Mapping):
        return {_nfc_walk(k): _nfc_walk(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_nfc_walk(v) for v in value]
    return value


#: one encoder for every canonical text (``json.dumps`` with options builds one per call)
_canonical_text = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode

#: orjson serialises only what the standard library would (subclasses, dates, dataclasses go
#: to ``default``, which is absent: TypeError), with keys sorted by code point
_ORJSON_OPTIONS = (
    orjson.OPT_SORT_KEYS
    | orjson.OPT_PASSTHROUGH_SUBCLASS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
)
#: for :func:`_maybe_different`: digits and ``-`` become ``0``, ``.eE`` become ``.``, and
#: ``[,:`` (what a number follows in compact JSON) become ``,``
_NUMBER_SHAPES = bytes.maketrans(b"0123456789-.eE[,:", b"00000000000...,,,")
_FLOAT_SHAPE = re.compile(rb",0+\.")
#: digits become ``0`` (a run of 19 is an integer orjson may read as a float)
_DIGITS = bytes.maketrans(b"123456789", b"000000000")
_LONG_RUN = b"0" * 19


def _maybe_different(out: bytes) -> bool:
    """Whether orjson's text might differ from the standard library's: it holds a float
    (orjson writes ``1e-05`` as ``0.00001`` and ``1e+16`` as ``1e16``; it always writes a
    ``.`` or an exponent, and in compact JSON a number starts the text or follows ``[``,
    ``,`` or ``:``) or NaN/Infinity (written ``null``). A string that merely looks so sends
    the value to the standard library, which is always right. (Translated first: a regular
    expression with a literal first character scans ten times faster than one without.)"""
    return b"null" in out or _FLOAT_SHAPE.search((b"," + out).translate(_NUMBER_SHAPES)) is not None


def _fast_canonical(value: JSONValue) -> bytes | None:
    """The canonical bytes by orjson (ten times faster), or None where they might differ from
    :data:`_canonical_text`'s by a byte (the canonical text is hashed for dedupe: it must
    never change)."""
    try:
        out = orjson.dumps(value, option=_ORJSON_OPTIONS)
    except TypeError:  # a lone surrogate, a non-str key, an int beyond 64 bits, a subclass…
        return None
    return None if _maybe_different(out) else out


def loads(text: str) -> JSONValue:
    """``json.loads(text)``, by orjson (twice as fast) where it reads the same: not where the
    text holds a run of 19 digits (orjson reads integers beyond 64 bits as floats) or
    anything orjson refuses (``NaN``, ``Infinity``, a lone surrogate escape, deep nesting),
    which the standard library reads (or refuses) as it always did."""
    if _LONG_RUN not in text.encode("utf-8", "surrogatepass").translate(_DIGITS):
        with contextlib.suppress(orjson.JSONDecodeError):
            return orjson.loads(text)
    return json.loads(text)


def canonical_json(value: JSONValue) -> bytes:
    """Deterministic JSON bytes: sorted keys, no spaces, UTF-8."""
    fast = _fast_canonical(value)
    return fast if fast is not None else _canonical_text(value).encode()


def content_hash(payload: JSONValue) -> str:
    """SHA-256 (hex) of the canonical JSON of a payload: the dedupe fingerprint."""
    return hashlib.sha256(canonical_json(payload)).hexdigest()


@dataclass(slots=True)
class Message:
    """One business document, parsed into its canonical JSON form.

    :param event: what happened, named by the emitting connector (``dossier.received``).
    :param external_id: the source's own id of the document (MaHoSo, decision number, ...);
        the ``ref`` of the inbound answer.
    :param payload: the canonical parsed content; destination connectors render from it.
    :param dossier_key: deliveries with the same key to the same destination go in order.
    :param procedure: optional procedure code (MaTTHC) that routes may filter on.
    :param source: the system the message came from; the core fills it in at intake.
    :param ref: what the inbound answer calls the item (defaults to ``external_id``).
    :param revision: 1 for the first content seen under this ``external_id`` from this
        source, 2 for the next different content, ...; the core fills it in at intake.
    """

    event: str
    external_id: str
    payload: JSONValue
    dossier_key: str = ""
    procedure: str | None = None
    source: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    ref: str = ""
    revision: int = 1
    _canonical: bytes | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.dossier_key:
            self.dossier_key = self.external_id
        if not self.ref:
            self.ref = self.external_id

    def normalised(self) -> Message:
        """A copy whose text is NFC-normalised (Vietnamese arrives as NFC and NFD).

        The canonical JSON is computed once here: already NFC (the usual case), it is the
        stored form as it stands, and one C-level check of it spares the walk."""
        canonical: bytes | None = None
        payload = self.payload
        fast = _fast_canonical(payload)
        if fast is not None:  # no lone surrogate in it: orjson refuses those
            if unicodedata.is_normalized("NFC", fast.decode()):
                canonical = fast
            else:
                payload = _nfc_walk(payload)
        else:
            text = _canonical_text(payload)
            if unicodedata.is_normalized("NFC", text):
                with contextlib.suppress(UnicodeEncodeError):  # a lone surrogate: refused later
                    canonical = text.encode()
            else:
                payload = _nfc_walk(payload)
        return Message(
            event=self.event,
            external_id=nfc(self.external_id),
            payload=payload,
            dossier_key=nfc(self.dossier_key),
            procedure=self.procedure,
            source=self.source,
            headers=dict(self.headers),
            ref=nfc(self.ref),
            revision=self.revision,
            _canonical=canonical,
        )

    def canonical_payload(self) -> bytes:
        """The payload as stored: canonical JSON (computed once)."""
        if self._canonical is None:
            self._canonical = canonical_json(self.payload)
        return self._canonical

    @property
    def content_hash(self) -> str:
        """SHA-256 of the canonical payload: with source and external id, the dedupe key."""
        return hashlib.sha256(self.canonical_payload()).hexdigest()


@dataclass(slots=True, frozen=True)
class Rejection:
    """One item of an inbound batch that was refused; the good items beside it go on."""

    ref: str
    errors: tuple[str, ...]


@dataclass(slots=True)
class ParseResult:
    """What a connector's ``parse`` returns: accepted messages and per-item rejections."""

    messages: list[Message] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)


@dataclass(slots=True)
class OutboundRequest:
    """An HTTP request rendered by a destination connector (the core adds Idempotency-Key)."""

    method: str
    url: str
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    #: connector-private facts for classifying the answer (never sent)
    context: dict[str, Any] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return len(self.body)


@dataclass(slots=True)
class Receipt:
    """A delivery that the destination took (or already had).

    :param status: the HTTP status (0 when the transport was not HTTP).
    :param detail: a short human summary for the delivery log (masked of personal data).
    :param follow_ups: messages the answer gives rise to (for example ``dossier.accepted``);
        the core routes them in the same transaction that marks the delivery done.
    """

    status: int
    detail: str = ""
    bytes_received: int = 0
    follow_ups: list[Message] = field(default_factory=list)


class Outcome(StrEnum):
    """The outcome of one attempt, as written in the delivery log."""

    DELIVERED = "delivered"
    RETRY = "retry_scheduled"
    DEAD = "dead"


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    IN_FLIGHT = "in_flight"
    DELIVERED = "delivered"
    DEAD = "dead"


class GatewayError(Exception):
    """Base of the errors a connector raises to tell the engine what happened."""

    def __init__(
        self,
        reason: str,
        *,
        status: int | None = None,
        follow_ups: list[Message] | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.follow_ups = follow_ups or []


class RetryableError(GatewayError):
    """Worth trying again later: timeouts, resets, 5xx, 408, 429 (with ``retry_after``)."""

    def __init__(
        self,
        reason: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        follow_ups: list[Message] | None = None,
    ) -> None:
        super().__init__(reason, status=status, follow_ups=follow_ups)
        self.retry_after = retry_after


class PermanentError(GatewayError):
    """Will never succeed as it is: validation errors, 4xx other than 408/429.

    The delivery is dead-lettered at once with the reason; ``follow_ups`` are still routed
    (a registry refusal goes back to the one-stop-shop as "supplement requested").
    """


class BadRequest(Exception):
    """An inbound body that cannot be read at all (not JSON/XML, not the expected shape)."""


def too_deep(values: list[Any], limit: int) -> bool:
    """Whether any of ``values`` nests lists/objects deeper than ``limit``: level by level,
    no recursion, no allocation per scalar (parsed JSON holds plain ``dict`` and ``list``)."""
    level = [v for v in values if type(v) is dict or type(v) is list]
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            return True
        below: list[Any] = []
        add = below.append
        for value in level:
            for child in value.values() if type(value) is dict else value:
                kind = type(child)
                if kind is dict or kind is list:
                    add(child)
        level = below
    return False


def without_too_deep(parsed: ParseResult, limit: int) -> ParseResult:
    """``parsed`` with every message nested deeper than ``limit`` turned into a rejection (for
    polled pages, where one bad item must not hold back the others)."""
    deep = [m for m in parsed.messages if too_deep([m.payload], limit)]
    if not deep:
        return parsed
    gone = {id(m) for m in deep}  # by identity: comparing deep payloads would recurse
    return ParseResult(
        messages=[m for m in parsed.messages if id(m) not in gone],
        rejected=[
            *parsed.rejected,
            *(Rejection(m.ref, (f"nested deeper than {limit} levels",)) for m in deep),
        ],
    )
