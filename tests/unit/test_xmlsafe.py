"""gateway.xmlsafe: the hardened parser refuses hostile XML fast and says why."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from gateway.xmlsafe import XmlError, load_schema, parse_xml, schema_errors, to_bytes

DOCTYPE_MESSAGE = "DTD/DOCTYPE không được phép (DOCTYPE is not allowed)"

BILLION_LAUGHS = (
    b'<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
    + b"".join(
        b' <!ENTITY lol%d "%s">\n' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10)
        for i in range(1, 10)
    )
    + b"]>\n<lolz>&lol9;</lolz>"
)
EXTERNAL_ENTITY = (
    b'<?xml version="1.0"?>\n'
    b'<!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n<foo>&xxe;</foo>'
)
PARAMETER_ENTITY = (
    b'<?xml version="1.0"?>\n'
    b'<!DOCTYPE foo [<!ENTITY % ext SYSTEM "http://127.0.0.1:9/evil.dtd"> %ext;]>\n<foo/>'
)

SIMPLE_XSD = b"""<?xml version="1.0"?>
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="urn:t"
           xmlns="urn:t" elementFormDefault="qualified">
  <xs:element name="a">
    <xs:complexType>
      <xs:sequence><xs:element name="b" minOccurs="0" maxOccurs="unbounded">
        <xs:complexType><xs:attribute name="id" use="required">
          <xs:simpleType><xs:restriction base="xs:string"><xs:pattern value="\\d{12}"/>
          </xs:restriction></xs:simpleType></xs:attribute></xs:complexType>
      </xs:element></xs:sequence>
    </xs:complexType>
  </xs:element>
</xs:schema>
"""


@contextmanager
def fast(limit: float = 1.0) -> Iterator[None]:
    started = time.perf_counter()
    yield
    elapsed = time.perf_counter() - started
    assert elapsed < limit, f"took {elapsed:.2f}s"


def refused(data: bytes, **kwargs: int) -> str:
    with fast(), pytest.raises(XmlError) as info:
        parse_xml(data, **kwargs)
    return str(info.value)


def nested(depth: int) -> bytes:
    return b"<a>" * depth + b"</a>" * depth


# -- what is accepted ----------------------------------------------------------------------


def test_parses_a_plain_document_and_drops_processing_instructions() -> None:
    root = parse_xml(b'<?xml version="1.0"?><?evil x?><a xmlns="urn:t"><b id="1">t</b><?pi?></a>')
    assert root.tag == "{urn:t}a"
    assert root[0].get("id") == "1"
    assert b"<?evil" not in to_bytes(root)
    assert b"<?pi" not in to_bytes(root)


def test_keeps_vietnamese_text_and_character_references() -> None:
    root = parse_xml("<a t='Hoàng Thị Lan'>&amp;&#233;</a>".encode())
    assert root.get("t") == "Hoàng Thị Lan"
    assert root.text == "&é"


def test_depth_at_the_limit_is_accepted() -> None:
    assert parse_xml(nested(64)).tag == "a"
    assert parse_xml(nested(5), max_depth=5).tag == "a"


def test_accepts_bytearray_and_memoryview() -> None:
    assert parse_xml(bytearray(b"<a/>")).tag == "a"
    assert parse_xml(memoryview(b"<a/>")).tag == "a"


# -- hostile documents ---------------------------------------------------------------------


def test_refuses_a_plain_doctype() -> None:
    assert refused(b"<!DOCTYPE a><a/>") == DOCTYPE_MESSAGE


def test_refuses_billion_laughs_fast_without_expanding() -> None:
    assert refused(BILLION_LAUGHS) == DOCTYPE_MESSAGE


def test_refuses_external_entity_and_never_reads_the_file() -> None:
    message = refused(EXTERNAL_ENTITY)
    assert message == DOCTYPE_MESSAGE
    assert "root:" not in message


def test_refuses_parameter_entities_without_network() -> None:
    assert refused(PARAMETER_ENTITY) == DOCTYPE_MESSAGE


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
def test_refuses_doctype_in_utf16(encoding: str) -> None:
    text = '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE a [<!ENTITY x "y">]><a>&x;</a>'
    assert refused(text.encode(encoding)) == DOCTYPE_MESSAGE


def test_refuses_undeclared_entities_as_not_well_formed() -> None:
    message = refused(b"<a>&xxe;</a>")
    assert message.startswith("not well-formed XML:")
    assert "xxe" in message
    assert message.endswith("(line 1)")


def test_refuses_10000_deep_nesting_fast_without_recursion_errors() -> None:
    assert refused(nested(10_000)) == "XML nested deeper than 64 levels"


def test_refuses_one_level_over_the_limit() -> None:
    assert refused(nested(65)) == "XML nested deeper than 64 levels"
    assert refused(nested(6), max_depth=5) == "XML nested deeper than 5 levels"


def test_refuses_a_50_mb_body_before_parsing() -> None:
    body = b"<a>" + b"x" * (50 * 1024 * 1024) + b"</a>"
    message = refused(body)
    assert message.startswith("body larger than 10485760 bytes")


def test_refuses_a_body_over_a_custom_limit() -> None:
    assert refused(b"<a>" + b"x" * 100 + b"</a>", max_bytes=50).startswith(
        "body larger than 50 bytes"
    )


def test_refuses_a_huge_attribute_even_when_the_size_limit_allows_it() -> None:
    body = b'<a x="' + b"y" * 10_000_001 + b'"/>'
    message = refused(body, max_bytes=20_000_000)
    assert message.startswith("not well-formed XML:")


def test_many_attributes_parse_quickly() -> None:
    body = b"<a " + b" ".join(b'a%d="1"' % i for i in range(50_000)) + b"/>"
    with fast():
        assert parse_xml(body).get("a49999") == "1"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "the body is empty"),
        (b"   ", "the body is empty"),
        (b"not xml", "Start tag expected"),
        (b"<a><b></a>", "Opening and ending tag mismatch"),
        (b"<a/><b/>", "Extra content at the end of the document"),
        (b"<a>\n<b>\n</a>", "(line 3)"),
    ],
)
def test_not_well_formed_messages_are_readable(data: bytes, expected: str) -> None:
    message = refused(data)
    assert message.startswith("not well-formed XML:")
    assert expected in message
    assert ", column" not in message


def test_xml_error_is_a_value_error() -> None:
    assert issubclass(XmlError, ValueError)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_raise_only_xml_error(data: bytes) -> None:
    with suppress(XmlError):
        parse_xml(data)


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=200))
def test_round_trip_of_arbitrary_attribute_text(value: str) -> None:
    element = etree.Element("a")
    try:
        element.set("v", value)
    except ValueError:
        return  # control characters cannot be carried by XML at all
    assert parse_xml(to_bytes(element)).get("v") == value


# -- schemas -------------------------------------------------------------------------------


@pytest.fixture
def xsd_path(tmp_path: Path) -> Path:
    path = tmp_path / "t.xsd"
    path.write_bytes(SIMPLE_XSD)
    return path


def test_schema_is_cached_per_path(xsd_path: Path) -> None:
    assert load_schema(xsd_path) is load_schema(str(xsd_path))


def test_schema_errors_are_line_numbered_without_namespace_noise(xsd_path: Path) -> None:
    schema = load_schema(xsd_path)
    good = parse_xml(b'<a xmlns="urn:t"><b id="006135001234"/></a>')
    assert schema_errors(schema, good) == []
    bad = parse_xml(b'<a xmlns="urn:t">\n<b id="12"/>\n<c/></a>')
    errors = schema_errors(schema, bad)
    assert len(errors) == 2
    assert errors[0].startswith("line 2: Element 'b', attribute 'id': [facet 'pattern']")
    assert "\\d{12}" in errors[0]  # the pattern's quantifier is not mistaken for a namespace
    assert errors[1].startswith("line 3: Element 'c'")
    assert all("{urn:t}" not in e for e in errors)


def test_schema_errors_of_a_sub_element(xsd_path: Path) -> None:
    schema = load_schema(xsd_path)
    root = parse_xml(b'<w><a xmlns="urn:t"><b id="1"/></a></w>')
    errors = schema_errors(schema, root[0])
    assert errors and "attribute 'id'" in errors[0]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b'<!DOCTYPE xs:schema [<!ENTITY x "y">]><xs:schema/>', "DOCTYPE is not allowed"),
        (b"<xs:schema", "not well-formed XML"),
        (b'<schema xmlns="urn:not-xsd"/>', "not a valid XSD"),
    ],
)
def test_unsafe_or_broken_schemas_are_refused(
    tmp_path: Path, content: bytes, expected: str
) -> None:
    path = tmp_path / f"bad-{abs(hash(content))}.xsd"
    path.write_bytes(content)
    with pytest.raises(XmlError, match=expected):
        load_schema(path)


def test_missing_schema_file(tmp_path: Path) -> None:
    with pytest.raises(XmlError, match="cannot read XSD"):
        load_schema(tmp_path / "nope.xsd")


def test_to_bytes_is_utf8_with_declaration() -> None:
    element = etree.Element("a", t="Ngọc Phái")
    data = to_bytes(element)
    assert data.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    assert "Ngọc Phái".encode() in data
