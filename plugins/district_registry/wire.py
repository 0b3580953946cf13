"""The registry's XML profile (FORMATS.md §2): namespace, schema, building and error wording.

Shared by the connector and the simulator so both speak exactly the same format.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable, Mapping
from pathlib import Path

from lxml import etree

from gateway.xmlsafe import load_schema, schema_errors, to_bytes
from plugins.vn_common.cccd import CccdError, mask_cccd, validate_cccd

NS = "urn:vn:btxh:registry:1"
SCHEMA_PATH = Path(__file__).parent / "schemas" / "registry.xsd"
CONTENT_TYPE = "application/xml"

#: attributes that carry personal data: masked in every error message
PII_ATTRIBUTES = ("soDinhDanh", "hoTen")

_ATTRIBUTE_ERROR = re.compile(
    r"^Element '(?P<el>[^']+)', attribute '(?P<attr>[^']+)': (?P<detail>.*)$"
)
_MISSING = re.compile(
    r"^Element '(?P<el>[^']+)': The attribute '(?P<attr>[^']+)' is required but missing\.?$"
)
_NOT_ALLOWED = "is not allowed"
_LINE_PREFIX = re.compile(r"^line (?P<line>\d+): (?P<msg>.*)$", re.S)
_MAX_DETAIL = 300


def q(local: str) -> str:
    """The Clark name of an element of the registry namespace: ``{urn:...}QuyetDinh``."""
    return f"{{{NS}}}{local}"


def local_name(element: etree._Element) -> str:
    return etree.QName(element).localname


@functools.cache
def schema() -> etree.XMLSchema:
    """The registry XSD, compiled once per process (:func:`gateway.xmlsafe.load_schema`
    resolves the path on every call: three ``lstat`` calls per rendered document)."""
    return load_schema(SCHEMA_PATH)


def nfc(text: str) -> str:
    return text if text.isascii() else unicodedata.normalize("NFC", text)


def initials(name: str) -> str:
    """``Hoàng Thị Lan`` -> ``H.T.L.``: what an error message may say about a person."""
    return "".join(f"{part[0]}." for part in name.split() if part)


def mask_value(attribute: str, value: str) -> str:
    """A personal attribute's value as it may appear in logs and errors."""
    if attribute == "soDinhDanh":
        return mask_cccd(value)
    if attribute == "hoTen":
        return initials(value)
    return value


def element(
    tag: str,
    attributes: Mapping[str, str | None],
    *,
    text: str | None = None,
    parent: etree._Element | None = None,
) -> etree._Element:
    """Build an element of the registry namespace; ``None`` attributes are left out.

    Raises ``ValueError`` (from lxml) when a value holds characters XML cannot carry.
    """
    attrib = {name: nfc(value) for name, value in attributes.items() if value is not None}
    if parent is None:
        node = etree.Element(q(tag), attrib, nsmap={None: NS})  # type: ignore[dict-item]  # lxml-stubs reject the default-namespace key
    else:
        node = etree.SubElement(parent, q(tag), attrib)
    if text is not None:
        node.text = nfc(text)
    return node


def loi(ma: str, text: str) -> bytes:
    """An error answer: ``<Loi ma="...">text</Loi>``."""
    return to_bytes(element("Loi", {"ma": ma}, text=text[:2000]))


def _personal_values(root: etree._Element) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for node in root.iter():
        if not isinstance(node.tag, str):
            continue
        for attribute in PII_ATTRIBUTES:
            value = node.get(attribute)
            if value:
                found.append((value, mask_value(attribute, value)))
    # longest first, so a value that contains another is replaced whole
    return sorted(found, key=lambda pair: len(pair[0]), reverse=True)


def _masked(text: str, personal: Iterable[tuple[str, str]]) -> str:
    for value, masked in personal:
        text = text.replace(value, masked)
    if len(text) > _MAX_DETAIL:
        text = text[:_MAX_DETAIL] + "…"
    return text


def _translate(raw: str, root: etree._Element, personal: list[tuple[str, str]]) -> str:
    match = _LINE_PREFIX.match(raw)
    line, message = (match["line"], match["msg"]) if match else ("?", raw)
    if missing := _MISSING.match(message):
        attr, el = missing["attr"], missing["el"]
        return f"{attr}: thiếu thuộc tính bắt buộc của {el} (required attribute is missing)"
    if bad := _ATTRIBUTE_ERROR.match(message):
        attr, el, detail = bad["attr"], bad["el"], bad["detail"]
        if _NOT_ALLOWED in detail:
            return f"{attr}: thuộc tính không được phép trong {el} (attribute not allowed)"
        if attr == "soDinhDanh":
            cccd_error = _cccd_problem(root, line)
            if cccd_error:
                return f"{attr}: {cccd_error}"
        return f"{attr}: giá trị không hợp lệ ({_masked(detail, personal)})"
    return f"dòng {line}: tài liệu không đúng lược đồ (line {line}: {_masked(message, personal)})"


def _cccd_problem(root: etree._Element, line: str) -> str | None:
    """Why a soDinhDanh failed the pattern, in validate_cccd's words (the node on ``line``
    when the document came from bytes, else the first bad one)."""
    problems: list[tuple[bool, str]] = []
    for node in root.iter():
        value = node.get("soDinhDanh") if isinstance(node.tag, str) else None
        if value is None:
            continue
        try:
            validate_cccd(value)
        except CccdError as exc:
            problems.append((str(node.sourceline) == line, str(exc)))
    problems.sort(key=lambda item: not item[0])
    return problems[0][1] if problems else None


def readable_schema_errors(root: etree._Element) -> list[str]:
    """Validate against the registry XSD; errors are Vietnamese first, name the attribute
    and never show an unmasked CCCD or full name."""
    raw = schema_errors(schema(), root)
    if not raw:
        return []
    personal = _personal_values(root)
    errors: list[str] = []
    for entry in raw:
        text = _translate(entry, root, personal)
        if text not in errors:  # lxml repeats list-type errors; say each once
            errors.append(text)
    return errors
