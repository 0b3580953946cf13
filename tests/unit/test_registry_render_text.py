"""The registry's ``HoSoTroCap`` written as text is byte for byte what lxml serialises from
the tree the connector used to build, for any field values; whatever XML cannot carry, or
the XSD refuses, still reads as before (the tree builder's errors)."""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.model import PermanentError
from gateway.xmlsafe import to_bytes
from plugins.district_registry.render import (
    _checked_bytes,
    _ho_so_nodes,
    _ho_so_text,
    _ho_so_tree,
    build_ho_so,
    ho_so_bytes,
)
from plugins.one_stop_shop.inbound import parse_push

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from real_flow import Corpus


@pytest.fixture(scope="module")
def dossiers() -> list[dict[str, Any]]:
    corpus = Corpus()
    corpus.prepare("text", 20)
    return [parse_push(body).messages[0].payload["dossier"] for _, body in corpus.bodies["text"]]


def test_the_generated_dossiers_write_as_lxml_serialises_them(
    dossiers: list[dict[str, Any]],
) -> None:
    for revision, dossier in enumerate(dossiers, 1):
        nodes = _ho_so_nodes(dossier, revision)
        assert _ho_so_text(nodes) == to_bytes(_ho_so_tree(nodes))
        assert ho_so_bytes(dossier, revision) == _checked_bytes(build_ho_so(dossier, revision))


TEXT = st.text(
    st.sampled_from(list("aZ09 &<>\"'\n\r\t\x00\x01\x1f\x7f\u2028\ufffe\uffff\U0001fffe"))
    | st.characters(),
    max_size=10,
)


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(
        [
            ("ThongTinNguoiNop", "TenNguoiNop"),
            ("ThongTinNguoiNop", "DiaChiChiTiet"),
            ("DeNghiTroCap", "MucDoKhuyetTat"),
            (None, "MaHoSo"),
            (None, "MaTTHC"),
        ]
    ),
    TEXT,
)
def test_any_value_writes_as_lxml_serialises_it_or_is_refused_the_same_way(
    where: tuple[str | None, str], value: str
) -> None:
    base = {
        "MaHoSo": "000.00.12.H06-200803-0001",
        "MaTTHC": "1.001776",
        "NgayTiepNhan": "20200803081500",
        "NgayHenTra": "20200824170000",
        "ThongTinNguoiNop": {
            "SoDinhDanh": "006135001234",
            "TenNguoiNop": "Hoàng Thị Lan",
            "NgaySinh": "19350412",
            "GioiTinh": "2",
            "MaTinh": "06",
            "MaHuyen": "064",
            "MaXa": "02053",
            "DiaChiChiTiet": "Thôn Bản Cuôn",
        },
        "DeNghiTroCap": {"LoaiDoiTuong": "5.5a", "MucDoKhuyetTat": "", "DiaChiNhanTien": "tai_nha"},
        "TaiLieuNop": [{"TenTepDinhKem": "Mẫu 1a.pdf", "DuongDanTaiTepTin": "https://x.vn/f1"}],
    }
    dossier = copy.deepcopy(base)
    parent, key = where
    (dossier[parent] if parent else dossier)[key] = value
    try:
        nodes = _ho_so_nodes(dossier, 1)
    except PermanentError:
        return  # refused before any XML is written, by both
    try:
        want: bytes | str = to_bytes(_ho_so_tree(nodes))
    except ValueError:
        want = "refused"
    got = _ho_so_text(nodes)
    assert (got if got is not None else "refused") == want
    try:
        old: bytes | str = _checked_bytes(build_ho_so(dossier, 1))
    except (PermanentError, ValueError) as exc:
        old = f"{type(exc).__name__}: {exc}"
    try:
        new: bytes | str = ho_so_bytes(dossier, 1)
    except (PermanentError, ValueError) as exc:
        new = f"{type(exc).__name__}: {exc}"
    assert new == old, json.dumps(value)
