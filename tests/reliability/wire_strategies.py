"""Hypothesis strategies for the three wire formats (FORMATS.md): valid, nearly valid, hostile.

* ``motcua`` — DongBoHoSoMC JSON pushes (§1.1); valid dossiers come from the one-stop-shop
  plugin's own generator, seeded by hypothesis;
* ``registry`` — QuyetDinh / DanhSachQuyetDinh XML (§2.2);
* ``post_office`` — KetQuaChiTra XML (§3.2).

Each strategy draws a :class:`Case`: the body, its Content-Type and what the gateway must do
with it (``valid`` cases must be accepted item by item; the others may be refused, but only
with 400, 413 or 415, or as rejected items, never with a 5xx, never slowly).
Enumerations are read from the connectors' XSDs, so the strategies follow the schemas.
"""

from __future__ import annotations

import copy
import json
import random
import unicodedata
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

from hypothesis import strategies as st
from lxml import etree

from plugins.one_stop_shop.generator import COMMUNES, DossierGenerator
from plugins.vn_common.cccd import make_cccd
from plugins.vn_common.names import make_name

ROOT = Path(__file__).resolve().parents[2]
REGISTRY_NS = "urn:vn:btxh:registry:1"
CHITRA_NS = "urn:vn:btxh:chitra:1"
XS = {"xs": "http://www.w3.org/2001/XMLSchema"}


@dataclass(frozen=True, slots=True)
class Case:
    kind: str  # valid | nearly | hostile
    body: bytes
    content_type: str
    refs: tuple[str, ...] = ()  # for valid cases: the refs the answer must accept
    note: str = ""

    def __repr__(self) -> str:  # hypothesis prints failing examples: keep them short
        return f"Case({self.kind}, {self.note}, {len(self.body)} bytes: {self.body[:300]!r})"


@cache
def enumerations(xsd: str) -> dict[str, tuple[str, ...]]:
    tree = etree.parse(str(ROOT / xsd))
    return {
        str(t.get("name")): tuple(str(e.get("value")) for e in t.iterfind(".//xs:enumeration", XS))
        for t in tree.iterfind(".//xs:simpleType[@name]", XS)
    }


def registry_enum(name: str) -> tuple[str, ...]:
    return enumerations("plugins/district_registry/schemas/registry.xsd")[name]


def chitra_enum(name: str) -> tuple[str, ...]:
    return enumerations("plugins/post_office/schemas/chitra.xsd")[name]


# -- building blocks ---------------------------------------------------------------------------
VIETNAMESE = (
    "aăâbcdđeêghiklmnoôơpqrstuưvxyàảãáạằẳẵắặầẩẫấậèẻẽéẹềểễếệìỉĩíịòỏõóọồổỗốộờởỡớợùủũúụừửữứựỳỷỹýỵ"
)
safe_text = (
    st.text(
        alphabet=st.sampled_from(VIETNAMESE + VIETNAMESE.upper() + " 0123456789,.-/()"),
        min_size=1,
        max_size=60,
    )
    .map(str.strip)
    .filter(bool)
)
communes = st.sampled_from(sorted(COMMUNES))
months = st.builds(lambda y, m: f"{y:04d}-{m:02d}", st.integers(2015, 2030), st.integers(1, 12))
#: characters that make parsers and normalisers work: controls, marks, bidi, odd spaces,
#: surrogate-free astral characters, and NFD forms of Vietnamese letters
awkward_text = st.text(
    alphabet=st.one_of(
        st.characters(codec="utf-8"),
        st.sampled_from(
            list("\u0300\u0301\u0303\u0309\u0323\u200b\u200e\u202e\ufeff\u00a0\x00\x1f\x7f")
        ),
        st.sampled_from(list(unicodedata.normalize("NFD", "Hoàng Thị Lan Đàm Lường Nguyễn"))),
    ),
    max_size=200,
)


@st.composite
def person(draw: st.DrawFn) -> dict[str, Any]:
    female = draw(st.booleans())
    birth = draw(st.dates(date(1915, 1, 1), date(2019, 12, 31)))
    serial = draw(st.integers(0, 999_999))
    rng = random.Random(draw(st.integers(0, 2**32)))
    return {
        "soDinhDanh": make_cccd(
            draw(st.sampled_from(["006", "001", "079", "096"])), birth.year, female, serial
        ),
        "hoTen": make_name(rng, female=female),
        "ngaySinh": birth.isoformat(),
        "gioiTinh": "nu" if female else "nam",
    }


def xml_bytes(root: etree._Element) -> bytes:
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def element(ns: str, tag: str, attrs: dict[str, str]) -> etree._Element:
    node = etree.Element(f"{{{ns}}}{tag}", nsmap={None: ns})  # type: ignore[dict-item]  # the default namespace
    for k, v in attrs.items():
        node.set(k, v)
    return node


# -- registry: QuyetDinh ------------------------------------------------------------------------
@st.composite
def decision_attrs(draw: st.DrawFn) -> dict[str, str]:
    who = draw(person())
    loai = draw(st.sampled_from(registry_enum("LoaiQuyetDinh")))
    signed = draw(st.dates(date(2018, 1, 1), date(2026, 12, 31)))
    attrs = {
        "so": f"{draw(st.integers(1, 10**6))}/QĐ-UBND",
        "ngayKy": signed.isoformat(),
        "loai": loai,
        "maHoSo": f"000.00.12.H06-{signed:%y%m%d}-{draw(st.integers(1, 9999)):04d}",
        "soDinhDanh": who["soDinhDanh"],
        "hoTen": who["hoTen"],
        "ngaySinh": who["ngaySinh"],
        "maXa": draw(communes),
        "tuThang": draw(months),
    }
    if draw(st.booleans()):
        attrs["gioiTinh"] = who["gioiTinh"]
    if loai in ("huong", "dieu_chinh") or draw(st.booleans()):
        level = draw(st.integers(0, 2_000_000))
        cents = draw(st.integers(0, 10_000))
        attrs |= {
            "loaiDoiTuong": draw(st.sampled_from(registry_enum("LoaiDoiTuong"))),
            "heSo": f"{cents // 100}.{cents % 100:02d}"
            if draw(st.booleans())
            else str(cents // 100),
            "mucChuan": str(level),
            "soTienThang": str(draw(st.integers(0, 10**9))),
        }
    for name, value in (
        ("nhanTien", st.sampled_from(registry_enum("NhanTien"))),
        ("mucDoKhuyetTat", st.sampled_from(registry_enum("MucDoKhuyetTat"))),
        ("truyLinh", st.sampled_from(["true", "false", "1", "0"])),
        ("soCon", st.integers(1, 12).map(str)),
        ("lyDo", safe_text),
        ("ngaySinhNguoiDuocChamSoc", st.dates(date(2015, 1, 1), date(2026, 1, 1)).map(str)),
    ):
        if draw(st.integers(0, 3)) == 0:
            attrs[name] = draw(value)
    return attrs


def decision_document(decisions: list[dict[str, str]], batch: bool) -> bytes:
    if not batch and len(decisions) == 1:
        return xml_bytes(element(REGISTRY_NS, "QuyetDinh", decisions[0]))
    root = element(REGISTRY_NS, "DanhSachQuyetDinh", {})
    for attrs in decisions:
        child = etree.SubElement(root, f"{{{REGISTRY_NS}}}QuyetDinh")
        for k, v in attrs.items():
            child.set(k, v)
    return xml_bytes(root)


@st.composite
def registry_valid(draw: st.DrawFn) -> Case:
    decisions = draw(st.lists(decision_attrs(), min_size=1, max_size=4))
    body = decision_document(decisions, batch=draw(st.booleans()))
    return Case("valid", body, "application/xml", tuple(d["so"] for d in decisions), "decisions")


# -- post office: KetQuaChiTra ------------------------------------------------------------------
@st.composite
def result_line(draw: st.DrawFn) -> dict[str, str]:
    who = draw(person())
    paid = draw(st.booleans())
    attrs = {"soDinhDanh": who["soDinhDanh"], "trangThai": "da_chi" if paid else "chua_chi"}
    if paid:
        attrs["soTien"] = str(draw(st.integers(1, 50_000_000)))
        attrs["ngayChi"] = draw(st.dates(date(2020, 1, 1), date(2026, 12, 31))).isoformat()
        if draw(st.booleans()):
            attrs["nhanTien"] = draw(st.sampled_from(chitra_enum("NhanTien")))
    else:
        attrs["soTien"] = "0"
        if draw(st.booleans()):
            attrs["lyDo"] = draw(safe_text)
    if draw(st.integers(0, 3)) == 0:
        attrs["loaiDoiTuong"] = draw(st.sampled_from(chitra_enum("LoaiDoiTuong")))
    return attrs


def results_document(ky: str, ma_xa: str, lines: list[dict[str, str]]) -> bytes:
    root = element(CHITRA_NS, "KetQuaChiTra", {"ky": ky, "maXa": ma_xa})
    for attrs in lines:
        child = etree.SubElement(root, f"{{{CHITRA_NS}}}Dong")
        for k, v in attrs.items():
            child.set(k, v)
    return xml_bytes(root)


@st.composite
def post_office_valid(draw: st.DrawFn) -> Case:
    lines = draw(
        st.lists(result_line(), min_size=1, max_size=6, unique_by=lambda a: a["soDinhDanh"])
    )
    body = results_document(draw(months), draw(communes), lines)
    return Case("valid", body, "application/xml", tuple(a["soDinhDanh"] for a in lines), "results")


# -- motcua: DongBoHoSoMC -----------------------------------------------------------------------
@st.composite
def dossiers(draw: st.DrawFn) -> list[dict[str, Any]]:
    gen = DossierGenerator(seed=draw(st.integers(0, 2**32)), other_procedure_rate=0.1)
    items = [gen.new_dossier() for _ in range(draw(st.integers(1, 3)))]
    return [gen.wire_form(i) for i in items]


def push_body(items: list[Any], updating: Any = "False") -> bytes:
    return json.dumps({"isUpdating": updating, "data": items}, ensure_ascii=False).encode()


@st.composite
def motcua_valid(draw: st.DrawFn) -> Case:
    items = draw(dossiers())
    refs = tuple(unicodedata.normalize("NFC", i["MaHoSo"]) for i in items)
    return Case("valid", push_body(items), "application/json", refs, "dossiers")


# -- nearly valid: one to three small mutations ------------------------------------------------
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | awkward_text,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(awkward_text, children, max_size=3)
    ),
    max_leaves=8,
)
bad_stamps = st.sampled_from(
    [
        "",
        "2020",
        "20201301000000",
        "20200230120000",
        "20200803256100",
        "２０２００８０３０８１５００",
        "2020-08-03T08:15:00",
        "-1",
        "99999999999999",
        "2020080308150",
    ]
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


def _parent(doc: Any, path: tuple[Any, ...]) -> Any:
    for step in path[:-1]:
        doc = doc[step]
    return doc


@st.composite
def mutated_json(draw: st.DrawFn, doc: Any) -> Any:
    doc = copy.deepcopy(doc)
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(doc)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent, last = _parent(doc, path), path[-1]
        action = draw(st.sampled_from(["drop", "replace", "stamp", "digit", "long", "add", "nfd"]))
        if action == "drop":
            del parent[last]
        elif action == "replace":
            parent[last] = draw(json_values)
        elif action == "stamp":
            parent[last] = draw(bad_stamps)
        elif action == "digit" and isinstance(parent[last], str) and parent[last]:
            s = parent[last]
            i = draw(st.integers(0, len(s) - 1))
            parent[last] = s[:i] + draw(st.sampled_from(list("0912x "))) + s[i + 1 :]
        elif action == "long":
            parent[last] = draw(st.sampled_from(["x", "Đ", "9"])) * draw(st.integers(200, 300_000))
        elif action == "add" and isinstance(parent, dict):
            parent[draw(awkward_text)] = draw(json_values)
        elif action == "nfd" and isinstance(parent[last], str):
            parent[last] = unicodedata.normalize("NFD", parent[last]) + draw(awkward_text)
    return doc


@st.composite
def motcua_nearly(draw: st.DrawFn) -> Case:
    doc = {"isUpdating": "False", "data": draw(dossiers())}
    if draw(st.integers(0, 4)) == 0:
        doc["isUpdating"] = draw(
            st.sampled_from(["True", "true", " TRUE ", "yes", 1, None, True, [], "Fa\u0301lse"])
        )
    mutated = draw(mutated_json(doc))
    return Case(
        "nearly",
        json.dumps(mutated, ensure_ascii=draw(st.booleans())).encode(),
        "application/json",
        note="mutated push",
    )


@st.composite
def mutated_attrs(draw: st.DrawFn, attrs: dict[str, str]) -> dict[str, str]:
    attrs = dict(attrs)
    for _ in range(draw(st.integers(1, 3))):
        name = draw(st.sampled_from([*sorted(attrs), "unknown", "xmlns:x"]))
        action = draw(st.sampled_from(["drop", "text", "digit", "long", "date"]))
        if action == "drop":
            attrs.pop(name, None)
        elif action == "text":
            attrs[name] = draw(awkward_text.map(lambda s: "".join(c for c in s if _xml_ok(c))))
        elif action == "digit" and attrs.get(name):
            s = attrs[name]
            i = draw(st.integers(0, len(s) - 1))
            attrs[name] = s[:i] + draw(st.sampled_from(list("0912x -."))) + s[i + 1 :]
        elif action == "long":
            attrs[name] = "9" * draw(st.integers(13, 100_000))
        elif action == "date":
            attrs[name] = draw(
                st.sampled_from(
                    [
                        "2020-02-30",
                        "2020-13-01",
                        "0000-01-01",
                        "2020-8-3",
                        "2020-08-03Z",
                        "+2020-01-01",
                        "",
                    ]
                )
            )
    return {k: v for k, v in attrs.items() if k != "xmlns:x"}


def _xml_ok(c: str) -> bool:
    o = ord(c)
    return o in (0x9, 0xA, 0xD) or 0x20 <= o <= 0xD7FF or 0xE000 <= o <= 0xFFFD or o >= 0x10000


@st.composite
def registry_nearly(draw: st.DrawFn) -> Case:
    decisions = [
        draw(mutated_attrs(d)) for d in draw(st.lists(decision_attrs(), min_size=1, max_size=3))
    ]
    body = decision_document(decisions, batch=draw(st.booleans()))
    return Case("nearly", draw(structural(body)), "application/xml", note="mutated decisions")


@st.composite
def post_office_nearly(draw: st.DrawFn) -> Case:
    lines = [draw(mutated_attrs(a)) for a in draw(st.lists(result_line(), min_size=1, max_size=4))]
    head = draw(st.sampled_from(["2020-09", "2020-9", "2020-13", "", "২০২০-০৯"]))
    ma_xa = draw(st.sampled_from(["02053", "2053", "0205a", ""]))
    body = results_document(head, ma_xa, lines)
    return Case("nearly", draw(structural(body)), "application/xml", note="mutated results")


@st.composite
def structural(draw: st.DrawFn, body: bytes) -> bytes:
    """Maybe break the document's structure a little: namespace, root, children, text."""
    change = draw(
        st.sampled_from(["none", "none", "namespace", "child", "text", "truncate", "latin1"])
    )
    if change == "namespace":
        return body.replace(b"urn:vn:btxh:", b"urn:vn:other:", 1)
    if change == "child":
        return body.replace(
            b"/>", b"><Extra>1</Extra></Dong>" if b"Dong" in body else b"><x/></QuyetDinh>", 1
        )
    if change == "text":
        return body.replace(
            b"/>", b">text inside</Dong>" if b"Dong" in body else b">text</QuyetDinh>", 1
        )
    if change == "truncate":
        return body[: draw(st.integers(0, max(0, len(body) - 1)))]
    if change == "latin1":
        return body.decode("utf-8").encode("latin-1", "replace")
    return body


# -- hostile ------------------------------------------------------------------------------------
_LAUGHS = [b'<!ENTITY lol0 "lol">'] + [
    f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">'.encode() for i in range(1, 10)
]
BILLION_LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE QuyetDinh [' + b"".join(_LAUGHS) + b"]>"
    b'<QuyetDinh xmlns="urn:vn:btxh:registry:1" so="&lol9;"/>'
)
HOSTILE_XML: list[tuple[str, bytes]] = [
    ("billion laughs", BILLION_LAUGHS),
    (
        "external entity",
        b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b'<QuyetDinh xmlns="urn:vn:btxh:registry:1" so="&x;"/>',
    ),
    ("external DTD", b'<!DOCTYPE QuyetDinh SYSTEM "http://127.0.0.1:9/evil.dtd"><QuyetDinh/>'),
    ("parameter entity", b'<!DOCTYPE d [<!ENTITY % p SYSTEM "file:///etc/hosts"> %p;]><d/>'),
    (
        "xinclude",
        b'<QuyetDinh xmlns:xi="http://www.w3.org/2001/XInclude">'
        b'<xi:include href="file:///etc/passwd" parse="text"/></QuyetDinh>',
    ),
    ("doctype in utf-16", '<!DOCTYPE d [<!ENTITY a "b">]><d>&a;</d>'.encode("utf-16")),
    (
        "doctype in CDATA",
        b'<QuyetDinh xmlns="urn:vn:btxh:registry:1"><![CDATA[<!DOCTYPE x>]]></QuyetDinh>',
    ),
    (
        "processing instruction",
        b'<?xml-stylesheet href="file:///etc/passwd"?>'
        b'<KetQuaChiTra xmlns="urn:vn:btxh:chitra:1" ky="2020-09" maXa="02053"/>',
    ),
    ("undeclared entity", b'<QuyetDinh so="&undefined;"/>'),
    ("char refs of controls", b'<QuyetDinh so="&#0;&#1;&#xFFFE;"/>'),
    ("empty", b""),
    ("whitespace", b"   \n\t "),
    ("bom only", b"\xef\xbb\xbf"),
    ("nul bytes", b"<QuyetDinh\x00 so='1'/>"),
    ("invalid utf-8", b'<QuyetDinh so="\xff\xfe\xc3\x28"/>'),
    ("encoding lie", b'<?xml version="1.0" encoding="UTF-32"?><QuyetDinh/>'),
    ("unknown encoding", b'<?xml version="1.0" encoding="x-evil"?><QuyetDinh/>'),
    ("json to xml", b'{"data": []}'),
    (
        "namespace bomb",
        b"<a " + b" ".join(f'xmlns:n{i}="urn:{i}"'.encode() for i in range(5000)) + b"/>",
    ),
    (
        "many attributes",
        b"<QuyetDinh " + b" ".join(f'a{i}="{i}"'.encode() for i in range(20000)) + b"/>",
    ),
    ("unclosed", b"<DanhSachQuyetDinh xmlns='urn:vn:btxh:registry:1'><QuyetDinh "),
]


@st.composite
def deep_xml(draw: st.DrawFn) -> bytes:
    depth = draw(st.sampled_from([65, 100, 257, 5000, 100_000]))
    ns = draw(st.sampled_from([REGISTRY_NS, CHITRA_NS]))
    return f'<a xmlns="{ns}">'.encode() + b"<a>" * depth + b"</a>" * depth + b"</a>"


@st.composite
def huge_attribute(draw: st.DrawFn) -> bytes:
    size = draw(st.sampled_from([100_000, 2_000_000, 9_000_000, 10_485_761]))
    return b'<QuyetDinh xmlns="urn:vn:btxh:registry:1" hoTen="' + b"A" * size + b'"/>'


@st.composite
def hostile_xml(draw: st.DrawFn) -> Case:
    choice = draw(st.integers(0, len(HOSTILE_XML) + 2))
    if choice < len(HOSTILE_XML):
        note, body = HOSTILE_XML[choice]
    elif choice == len(HOSTILE_XML):
        note, body = "deep nesting", draw(deep_xml())
    elif choice == len(HOSTILE_XML) + 1:
        note, body = "huge attribute", draw(huge_attribute())
    else:
        note, body = "random bytes", draw(st.binary(max_size=3000))
    ctype = draw(
        st.sampled_from(
            [
                "application/xml",
                "application/xml",
                "text/xml",
                "application/xml; charset=latin-1",
                "application/json",
                "",
            ]
        )
    )
    return Case("hostile", body, ctype, note=note)


HOSTILE_JSON: list[tuple[str, bytes]] = [
    ("NaN and Infinity", b'{"isUpdating": "False", "data": [{"MaHoSo": NaN, "MaTTHC": Infinity}]}'),
    (
        "huge number",
        b'{"isUpdating": "False", "data": [{"MaHoSo": 1e999999, "x": ' + b"9" * 50_000 + b"}]}",
    ),
    (
        "lone surrogate",
        b'{"isUpdating": "False", "data": [{"MaHoSo": "\\ud800", "ChuHoSo": "\\udfff"}]}',
    ),
    (
        "duplicate keys",
        b'{"data": [], "data": [{"MaHoSo": "A"}], "isUpdating": "False", "isUpdating": "True"}',
    ),
    ("bom", b'\xef\xbb\xbf{"isUpdating": "False", "data": []}'),
    ("utf-16", '{"isUpdating": "False", "data": []}'.encode("utf-16")),
    ("nul in key", b'{"data": [{"\\u0000": "\\u0000"}]}'),
    ("top-level scalar", b'"data"'),
    ("top-level null", b"null"),
    ("empty", b""),
    ("xml to json", b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>'),
    (
        "many items",
        b'{"isUpdating": "False", "data": [' + b",".join([b'{"MaHoSo": "X"}'] * 20_000) + b"]}",
    ),
    (
        "many keys",
        b'{"data": [{' + b",".join(f'"k{i}": {i}'.encode() for i in range(50_000)) + b"}]}",
    ),
    ("trailing garbage", b'{"isUpdating": "False", "data": []} trailing'),
    ("invalid utf-8", b'{"data": [{"MaHoSo": "\xff\xfe"}]}'),
]


@st.composite
def deep_json(draw: st.DrawFn) -> bytes:
    depth = draw(st.sampled_from([50, 400, 800, 990, 2000, 100_000]))
    where = draw(st.sampled_from(["top", "item", "field"]))
    nest = b"[" * depth + b"]" * depth
    if where == "top":
        return nest
    if where == "item":
        return b'{"isUpdating": "False", "data": [' + nest + b"]}"
    return b'{"isUpdating": "False", "data": [{"MaHoSo": "HS-1", "TaiLieuNop": ' + nest + b"}]}"


@st.composite
def hostile_json(draw: st.DrawFn) -> Case:
    choice = draw(st.integers(0, len(HOSTILE_JSON) + 1))
    if choice < len(HOSTILE_JSON):
        note, body = HOSTILE_JSON[choice]
    elif choice == len(HOSTILE_JSON):
        note, body = "deep nesting", draw(deep_json())
    else:
        note, body = "random bytes", draw(st.binary(max_size=3000))
    ctype = draw(
        st.sampled_from(
            [
                "application/json",
                "application/json",
                "application/json; charset=latin-1",
                "text/plain",
                "",
            ]
        )
    )
    return Case("hostile", body, ctype, note=note)


STRATEGIES: dict[str, dict[str, st.SearchStrategy[Case]]] = {
    "motcua": {"valid": motcua_valid(), "nearly": motcua_nearly(), "hostile": hostile_json()},
    "registry": {"valid": registry_valid(), "nearly": registry_nearly(), "hostile": hostile_xml()},
    "post_office": {
        "valid": post_office_valid(),
        "nearly": post_office_nearly(),
        "hostile": hostile_xml(),
    },
}
