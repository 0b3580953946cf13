"""The one hardened XML parser and XSD loader every plugin uses.

Inbound XML comes from systems the gateway does not control, over links an attacker may sit
on. :func:`parse_xml` refuses, before any expansion can happen:

* bodies larger than ``max_bytes`` (checked before parsing);
* any ``DOCTYPE`` (so no internal subset, no entity declarations: billion laughs and
  external entities such as ``file:///etc/passwd`` never get a chance to expand). The raw
  bytes are scanned for ``<!DOCTYPE`` in every encoding libxml2 detects by itself, before the
  parser sees them; a literal ``<!DOCTYPE`` inside a CDATA section is refused too, on purpose;
* nesting deeper than ``max_depth`` (libxml2 itself stops at 256 levels without
  ``huge_tree``; the limit is then checked by an iterative walk, never recursion);
* processing instructions are dropped, the network is never used, no DTD is loaded, and
  without ``huge_tree`` libxml2 refuses text or attribute values over ~10 MB.

Every refusal is an :class:`XmlError` whose message says what was wrong.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, cast

from lxml import etree

__all__ = [
    "ANSWER_MAX_BYTES",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_DEPTH",
    "XmlAnswer",
    "XmlError",
    "body_snippet",
    "error_answer",
    "load_schema",
    "parse_xml",
    "read_answer",
    "schema_errors",
    "to_bytes",
]

DEFAULT_MAX_BYTES = 10_485_760
DEFAULT_MAX_DEPTH = 64

_DOCTYPE_MESSAGE = "DTD/DOCTYPE không được phép (DOCTYPE is not allowed)"
#: "<!DOCTYPE" as it appears in the byte encodings libxml2 detects on its own
_DOCTYPE_MARKERS = tuple(
    "<!DOCTYPE".encode(enc) for enc in ("ascii", "utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be")
)
#: "{urn:vn:btxh:registry:1}QuyetDinh" -> "QuyetDinh"; leaves "\d{12}" and "{'nam', 'nu'}" alone
_NAMESPACE_NOISE = re.compile(r"\{[^{}\s']*[:/][^{}\s']*\}")
_POSITION_SUFFIX = re.compile(r",\s*line \d+, column \d+$")


class XmlError(ValueError):
    """An XML body that was refused; the message is readable and says why."""


def _depth_message(max_depth: int) -> str:
    return f"XML nested deeper than {max_depth} levels"


def _new_parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_pis=True,
    )


def _syntax_message(exc: etree.XMLSyntaxError, max_depth: int) -> str:
    text = str(exc.msg or exc).strip()
    if "Excessive depth" in text:  # libxml2's own hard limit (256 without huge_tree)
        return _depth_message(max_depth)
    text = " ".join(_POSITION_SUFFIX.sub("", text).split())
    line = exc.lineno or (exc.position[0] if exc.position else 0)
    return f"not well-formed XML: {text} (line {line})"


def parse_xml(
    data: bytes,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> etree._Element:
    """Parse untrusted XML bytes into their root element, or raise :class:`XmlError`."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise XmlError(f"XML must be bytes, not {type(data).__name__}")
    data = bytes(data)
    if len(data) > max_bytes:
        raise XmlError(f"body larger than {max_bytes} bytes ({len(data)} bytes)")
    if not data.strip():
        raise XmlError("not well-formed XML: the body is empty (line 1)")
    if any(marker in data for marker in _DOCTYPE_MARKERS):
        raise XmlError(_DOCTYPE_MESSAGE)
    return _parse_checked(data, max_depth)


def _parse_checked(data: bytes, max_depth: int) -> etree._Element:
    try:
        root = etree.fromstring(data, _new_parser())
    except etree.XMLSyntaxError as exc:
        raise XmlError(_syntax_message(exc, max_depth)) from None
    if _has_doctype(root):  # belt and braces: the byte scan above already refused it
        raise XmlError(_DOCTYPE_MESSAGE)
    if _depth(root) > max_depth:
        raise XmlError(_depth_message(max_depth))
    return root


def _depth(root: etree._Element) -> int:
    """The nesting depth of elements under ``root`` (root = 1), without recursion."""
    deepest = 0
    stack: list[tuple[etree._Element, int]] = [(root, 1)]
    while stack:
        element, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in element if isinstance(child.tag, str))
    return deepest


def _has_doctype(element: etree._Element) -> bool:
    docinfo = element.getroottree().docinfo
    return docinfo.internalDTD is not None or docinfo.externalDTD is not None


@lru_cache(maxsize=64)
def _load_schema_cached(path: str) -> etree.XMLSchema:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise XmlError(f"cannot read XSD {path}: {exc.strerror}") from None
    if any(marker in data for marker in _DOCTYPE_MARKERS):
        raise XmlError(f"{path}: {_DOCTYPE_MESSAGE}")
    try:
        doc = etree.fromstring(data, _new_parser(), base_url=path)
    except etree.XMLSyntaxError as exc:
        raise XmlError(f"{path}: {_syntax_message(exc, DEFAULT_MAX_DEPTH)}") from None
    try:
        return etree.XMLSchema(doc)
    except etree.XMLSchemaParseError as exc:
        raise XmlError(f"{path}: not a valid XSD: {exc}") from None


def load_schema(path: str | Path) -> etree.XMLSchema:
    """Load an XSD (parsed with the same safe settings), cached per resolved path."""
    return _load_schema_cached(str(Path(path).resolve()))


def _clean(message: str) -> str:
    return _NAMESPACE_NOISE.sub("", message).strip()


def schema_errors(schema: etree.XMLSchema, element: etree._Element) -> list[str]:
    """Validate ``element`` (a root or any sub-element) and return readable errors.

    Each error is ``"line N: message"`` with lxml's ``{namespace}`` prefixes removed; an
    empty list means the element is valid.
    """
    if schema.validate(element):
        return []
    # lxml-stubs do not declare the error log iterable; it yields _LogEntry objects
    entries = cast(Iterable[Any], schema.error_log)
    return [f"line {entry.line}: {_clean(str(entry.message))}" for entry in entries]


def to_bytes(element: etree._Element) -> bytes:
    """Serialise an element as UTF-8 with an XML declaration."""
    return etree.tostring(element, xml_declaration=True, encoding="UTF-8")


# -- short answers of the systems the gateway sends to ---------------------------------------
#: an answer to a delivery is a receipt or an error, small; a larger body is not read as XML
ANSWER_MAX_BYTES = 1_048_576


@dataclass(frozen=True, slots=True)
class XmlAnswer:
    """A system's short XML answer to a request: its root element's Clark name, attributes and
    text (stripped)."""

    tag: str
    attributes: dict[str, str]
    text: str


def read_answer(body: bytes, *, max_bytes: int = ANSWER_MAX_BYTES) -> XmlAnswer | str:
    """The answer's root element, or why it cannot be read (never raises: an unreadable answer
    is something to record, not a crash). Answers are flat: eight levels at most."""
    try:
        root = parse_xml(body, max_bytes=max_bytes, max_depth=8)
    except XmlError as exc:
        return str(exc)
    attributes = {str(k): str(v) for k, v in root.attrib.items()}
    return XmlAnswer(str(root.tag), attributes, (root.text or "").strip())


def error_answer(answer: XmlAnswer | str, tag: str) -> tuple[str, str] | None:
    """``(code, reason)`` of an error answer whose element is ``tag`` (its ``ma`` attribute and
    its text, whitespace collapsed, cut at 64 and 500 characters); None if it is not one."""
    if not isinstance(answer, XmlAnswer) or answer.tag != tag:
        return None
    reason = " ".join(answer.text.split())
    if len(reason) > 500:
        reason = reason[:500] + "…"
    return answer.attributes.get("ma", "")[:64], reason


def body_snippet(body: bytes, limit: int) -> str:
    """The first ``limit`` bytes of a body as one line of text (for an unreadable answer)."""
    return " ".join(body[:limit].decode("utf-8", "replace").split())
