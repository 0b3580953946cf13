"""What the desk accepts, the registry's XML can carry (plugins/district_registry/schemas/
registry.xsd): accepted at intake must never mean dead-lettered later. The long reliability
run found two such values: a document link ``01tps://…`` (``duongDan``, ``xs:anyURI``) and a
dossier id with a space (``maHoSo``, pattern ``\\S+``)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from plugins.one_stop_shop.validation import link_problem, validate_dossier
from plugins.vn_common.cccd import CccdError, validate_cccd

XS = "http://www.w3.org/2001/XMLSchema"
REGISTRY_XSD = (
    Path(__file__).resolve().parents[2] / "plugins/district_registry/schemas/registry.xsd"
)


def _registry_type(name: str) -> etree.XMLSchema:
    """One of the registry's own simple types, on one element."""
    source = etree.parse(str(REGISTRY_XSD))
    (simple,) = source.xpath(f"//xs:simpleType[@name='{name}']", namespaces={"xs": XS})
    schema = etree.Element(f"{{{XS}}}schema", nsmap={"xs": XS})
    schema.append(copy.deepcopy(simple))
    etree.SubElement(schema, f"{{{XS}}}element", name="v", type=name)
    return etree.XMLSchema(schema)


DUONG_DAN = _registry_type("DuongDan")
MA_HO_SO = _registry_type("MaHoSo")


def registry_takes(value: str, schema: etree.XMLSchema = DUONG_DAN) -> bool:
    element = etree.Element("v")
    element.text = value
    return schema.validate(etree.ElementTree(element))


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


def desk_takes_dossier_id(value: str) -> bool:
    item = {"MaHoSo": value, "MaTTHC": "2.000286", "NgayTiepNhan": "20200803081500"}
    return not any(e.startswith("MaHoSo") for e in validate_dossier(item))


@pytest.mark.parametrize("value", ["0 0.00.12.H06-200803-0001", "A\tB", "A\n", " A", "A "])
def test_a_dossier_id_with_a_space_is_refused_at_the_desk(value: str) -> None:
    assert not desk_takes_dossier_id(value)
    assert not registry_takes(value, MA_HO_SO)


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=70))
def test_whatever_dossier_id_the_desk_accepts_the_registry_takes(value: str) -> None:
    if desk_takes_dossier_id(value):
        assert registry_takes(value, MA_HO_SO), repr(value)


@pytest.mark.parametrize(
    "value",
    ["001099012345\n", "٠٠١٠٩٩٠١٢٣٤٥", "00109901234５"],  # a trailing newline, other digits
)
def test_a_cccd_is_twelve_ascii_digits_and_nothing_after(value: str) -> None:
    """Python's ``$`` matches before a final newline and its ``\\d`` takes any script's
    digits: the registry's CCCD type takes neither."""
    with pytest.raises(CccdError):
        validate_cccd(value)
    assert validate_cccd("001099012345") == "001099012345"


@pytest.mark.parametrize("value", ["0²", "٠١", "01\n"])
def test_admin_unit_codes_are_ascii_digits(value: str) -> None:
    item = {
        "MaHoSo": "H06-1",
        "MaTTHC": "2.000286",
        "NgayTiepNhan": "20200803081500",
        "ThongTinNguoiNop": {"MaTinh": value},
    }
    assert any(e.startswith("ThongTinNguoiNop.MaTinh") for e in validate_dossier(item))
