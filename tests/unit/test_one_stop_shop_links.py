"""A document link the desk accepts is one the registry's XML can carry (``duongDan``,
``xs:anyURI`` in plugins/district_registry/schemas/registry.xsd): accepted at intake must
never mean dead-lettered later (the long reliability run found ``01tps://…`` doing that)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from plugins.one_stop_shop.validation import link_problem

XS = "http://www.w3.org/2001/XMLSchema"
REGISTRY_XSD = (
    Path(__file__).resolve().parents[2] / "plugins/district_registry/schemas/registry.xsd"
)


def _duong_dan_schema() -> etree.XMLSchema:
    """The registry's own DuongDan type, on one element."""
    source = etree.parse(str(REGISTRY_XSD))
    (simple,) = source.xpath("//xs:simpleType[@name='DuongDan']", namespaces={"xs": XS})
    schema = etree.Element(f"{{{XS}}}schema", nsmap={"xs": XS})
    schema.append(copy.deepcopy(simple))
    etree.SubElement(schema, f"{{{XS}}}element", name="v", type="DuongDan")
    return etree.XMLSchema(schema)


DUONG_DAN = _duong_dan_schema()


def registry_takes(link: str) -> bool:
    element = etree.Element("v")
    element.text = link
    return DUONG_DAN.validate(etree.ElementTree(element))


@pytest.mark.parametrize(
    "link",
    [
        "https://motcua.backan.gov.vn/tep/000.00.12.H06-200803-0001-f1",
        "http://10.0.0.5:8080/tep/don%20de%20nghi.pdf",
        "https://motcua.backan.gov.vn/tệp/đơn đề nghị.pdf",
        "https://[fd00::1]/tep/1?x=1#trang-2",
    ],
)
def test_real_links_are_taken_by_both(link: str) -> None:
    assert link_problem(link) is None and registry_takes(link)


@pytest.mark.parametrize(
    "link",
    [
        "01tps://motcua.backan.gov.vn/tep/1",  # found by the long run
        "https://motcua/tep/%zz",
        "https://motcua/tep/1#a#b",
        "https://motcua/tep?x=[1]",
        "tep/1.pdf",
        "ftp://motcua/tep/1",
        "https://",
    ],
)
def test_links_the_registry_cannot_carry_are_refused_at_the_desk(link: str) -> None:
    assert link_problem(link) is not None


TRICKY = st.sampled_from([*"%#[]:@/?=&;,+$!*'()~._-|\\^`{}<>\" ", "%2", "%20", "đ", "ệ"])
PIECE = st.one_of(TRICKY, st.text(alphabet=st.characters(codec="utf-8"), max_size=3))


@settings(max_examples=600, deadline=None)
@given(
    scheme=st.sampled_from(["https", "http", "HTTPS", "01tps", "h", ""]),
    host=st.sampled_from(["motcua.backan.gov.vn", "10.0.0.5:8080", "[fd00::1]", "", "[::1"]),
    path=st.lists(PIECE, max_size=12).map("".join),
)
def test_whatever_the_desk_accepts_the_registry_takes(scheme: str, host: str, path: str) -> None:
    link = f"{scheme}://{host}/{path}"
    if link_problem(link) is None:
        assert registry_takes(link), link
