"""The registry connector reads its usual answers without building a tree: the same reading
as the hardened parser's, and anything unusual still goes through the parser."""

from __future__ import annotations

import pytest

from gateway.xmlsafe import parse_xml
from plugins.district_registry.connector import _PLAIN_ANSWER, _answer
from plugins.district_registry.wire import element, q, to_bytes

NS = 'xmlns="urn:vn:btxh:registry:1"'


def _by_parser(body: bytes) -> tuple[str, dict[str, str], str]:
    root = parse_xml(body, max_bytes=1_048_576, max_depth=8)
    name = next(n for n in ("BienNhan", "Loi", "TiepNhan") if root.tag == q(n))
    return name, {str(k): str(v) for k, v in root.attrib.items()}, (root.text or "").strip()


PLAIN = [
    f'<?xml version="1.0" encoding="UTF-8"?>\n<BienNhan {NS} maHoSo="000.00.12.H06-200803-0001"'
    ' soBienNhan="BN-0000001"/>'.encode(),
    to_bytes(element("BienNhan", {"maHoSo": "M-1", "soBienNhan": "17"})),  # the simulator's
    to_bytes(element("TiepNhan", {"ky": "2020-08", "maXa": "02053", "soDong": "3"})),
    f"<BienNhan {NS}/>".encode(),
    f'<BienNhan {NS} maHoSo="a b;c=d"/>\n'.encode(),
]
UNUSUAL = [
    f'<BienNhan {NS} maHoSo="a" maHoSo="b"/>'.encode(),  # refused by the parser
    f'<BienNhan {NS} maHoSo="&amp;"/>'.encode(),
    f'<BienNhan {NS} maHoSo="Hoàng"/>'.encode(),
    f"<!DOCTYPE x><BienNhan {NS}/>".encode(),
    f'<Loi {NS} ma="xsd">bad</Loi>'.encode(),
    f'<?xml version="1.0" encoding="ISO-8859-1"?><BienNhan {NS} maHoSo="a"/>'.encode(),
    b'<BienNhan xmlns="urn:other" maHoSo="a"/>',
    f'<BienNhan {NS} maHoSo="a"></BienNhan>'.encode(),
]


@pytest.mark.parametrize("body", PLAIN)
def test_a_plain_answer_reads_as_the_parser_reads_it(body: bytes) -> None:
    assert _PLAIN_ANSWER.fullmatch(body)
    assert _answer(body) == _by_parser(body)


@pytest.mark.parametrize("body", UNUSUAL)
def test_anything_else_goes_to_the_parser(body: bytes) -> None:
    got = _answer(body)
    try:
        want: object = _by_parser(body)
    except Exception as exc:  # refused: the connector says why, as a string
        assert isinstance(got, str) and got
        assert type(exc).__name__ in ("XmlError", "StopIteration")
        return
    assert got == want
