"""The post-office XML profile (FORMATS.md §3): XSD, list rendering, result parsing, answers."""

from __future__ import annotations

import copy
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.config import SystemConfig
from gateway.model import (
    BadRequest,
    Message,
    OutboundRequest,
    PermanentError,
    Receipt,
    RetryableError,
)
from gateway.pseudonym import pseudonym
from gateway.xmlsafe import parse_xml
from plugins.post_office import PostOfficeConnector
from plugins.post_office.payment_list import render_payment_list
from plugins.post_office.results import parse_results
from plugins.post_office.simulator import HeldList, PayerSettings, PayLine, build_results
from plugins.post_office.wire import explain_xsd_error, loi_body, xsd_errors
from plugins.vn_common.cccd import make_cccd

# FORMATS.md §3.1 and §3.2, verbatim
EXAMPLE_LIST = """\
<DanhSachChiTra xmlns="urn:vn:btxh:chitra:1" ky="2020-09" maXa="02053" lanGui="1"
                tongSoNguoi="2" tongSoTien="1485000" lapLuc="2020-08-24T10:00:00+07:00">
  <Dong soDinhDanh="006135001234" hoTen="Hoàng Thị Lan" loaiDoiTuong="5.5a"
        soTienThang="540000" soTienTruyLinh="540000" truyLinhTu="2020-08" truyLinhDen="2020-08"
        soTienChuaNhan="0" nhanTien="tai_nha" bienDong="tang"/>
  <Dong soDinhDanh="006080004321" hoTen="Lò Văn Pha" loaiDoiTuong="5.6"
        mucDoKhuyetTat="nang" soTienThang="405000" soTienTruyLinh="0" soTienChuaNhan="0"
        nhanTien="tai_diem" bienDong="khong_doi"/>
</DanhSachChiTra>
"""

EXAMPLE_RESULTS = """\
<KetQuaChiTra xmlns="urn:vn:btxh:chitra:1" ky="2020-09" maXa="02053">
  <Dong soDinhDanh="006135001234" trangThai="da_chi" soTien="1080000" ngayChi="2020-09-05" nhanTien="tai_nha"/>
  <Dong soDinhDanh="006080004321" trangThai="chua_chi" soTien="0" lyDo="vắng nhà"/>
</KetQuaChiTra>
"""  # noqa: E501 - verbatim from FORMATS.md

# the data of the §3.1 example, as the social-assistance plugin hands it over
EXAMPLE_PAYLOAD: dict[str, Any] = {
    "ky": "2020-09",
    "maXa": "02053",
    "lanGui": 1,
    "lapLuc": "2020-08-24T10:00:00+07:00",
    "lines": [
        {
            "soDinhDanh": "006135001234",
            "hoTen": "Hoàng Thị Lan",
            "loaiDoiTuong": "5.5a",
            "mucDoKhuyetTat": "",
            "soTienThang": 540000,
            "soTienTruyLinh": 540000,
            "truyLinhTu": "2020-08",
            "truyLinhDen": "2020-08",
            "soTienChuaNhan": 0,
            "nhanTien": "tai_nha",
            "bienDong": "tang",
        },
        {
            "soDinhDanh": "006080004321",
            "hoTen": "Lò Văn Pha",
            "loaiDoiTuong": "5.6",
            "mucDoKhuyetTat": "nang",
            "soTienThang": 405000,
            "soTienTruyLinh": 0,
            "soTienChuaNhan": 0,
            "nhanTien": "tai_diem",
            "bienDong": "khong_doi",
        },
    ],
}

PAID_LAN = (
    '<Dong soDinhDanh="006135001234" trangThai="da_chi" soTien="1080000" ngayChi="2020-09-05"/>'
)
RESULTS_HEAD = '<KetQuaChiTra xmlns="urn:vn:btxh:chitra:1" ky="2020-09" maXa="02053">'


def payload(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(EXAMPLE_PAYLOAD)
    data.update(changes)
    return data


def results_doc(*lines: str) -> bytes:
    return (RESULTS_HEAD + "".join(lines) + "</KetQuaChiTra>").encode()


def connector() -> PostOfficeConnector:
    return PostOfficeConnector(
        SystemConfig(name="post_office", plugin="post_office", base_url="http://payer.test/api/")
    )


def assert_no_pii(text: str) -> None:
    for secret in ("006135001234", "006080004321", "Hoàng Thị Lan", "Lò Văn Pha"):
        assert secret not in text


# -- the XSD -----------------------------------------------------------------------------


@pytest.mark.parametrize("document", [EXAMPLE_LIST, EXAMPLE_RESULTS], ids=["list", "results"])
def test_formats_examples_validate(document: str) -> None:
    assert xsd_errors(parse_xml(document.encode())) == []


@pytest.mark.parametrize(
    ("old", "new", "attribute"),
    [
        ('ky="2020-09"', 'ky="2020-13"', "ky"),
        ('maXa="02053"', 'maXa="2053"', "maXa"),
        ('lanGui="1"', 'lanGui="0"', "lanGui"),
        ('tongSoTien="1485000"', 'tongSoTien="1485000.0"', "tongSoTien"),
        ('tongSoNguoi="2"', 'tongSoNguoi="-2"', "tongSoNguoi"),
        ('+07:00"', '"', "lapLuc"),
        ('soDinhDanh="006135001234"', 'soDinhDanh="00613500123"', "soDinhDanh"),
        ('hoTen="Lò Văn Pha"', 'hoTen=""', "hoTen"),
        ('loaiDoiTuong="5.5a"', 'loaiDoiTuong="5.9"', "loaiDoiTuong"),
        ('mucDoKhuyetTat="nang"', 'mucDoKhuyetTat=""', "mucDoKhuyetTat"),
        ('soTienThang="540000"', 'soTienThang="-540000"', "soTienThang"),
        ('soTienTruyLinh="540000"', 'soTienTruyLinh="0540000"', "soTienTruyLinh"),
        ('truyLinhTu="2020-08"', 'truyLinhTu="2020-8"', "truyLinhTu"),
        ('nhanTien="tai_nha"', 'nhanTien="buu_dien"', "nhanTien"),
        ('bienDong="tang"', 'bienDong="moi"', "bienDong"),
        ('bienDong="tang"', 'bienDong="tang" maXaCu="2053"', "maXaCu"),
        ('bienDong="tang"', 'bienDong="tang" ghiChu="x"', "ghiChu"),
        (' bienDong="tang"', "", "bienDong"),
    ],
)
def test_list_xsd_is_tight(old: str, new: str, attribute: str) -> None:
    assert old in EXAMPLE_LIST
    errors = xsd_errors(parse_xml(EXAMPLE_LIST.replace(old, new, 1).encode()))
    assert errors and attribute in errors[0]
    assert_no_pii(" ".join(errors))


@pytest.mark.parametrize(
    ("old", "new", "attribute"),
    [
        ('trangThai="da_chi"', 'trangThai="paid"', "trangThai"),
        ('soTien="1080000"', 'soTien="1080000.5"', "soTien"),
        ('ngayChi="2020-09-05"', 'ngayChi="2020-09-31"', "ngayChi"),
        ('lyDo="vắng nhà"', 'lyDo=""', "lyDo"),
        ('nhanTien="tai_nha"', 'nhanTien="tai_nha" loaiDoiTuong="5.0"', "loaiDoiTuong"),
    ],
)
def test_results_xsd_is_tight(old: str, new: str, attribute: str) -> None:
    errors = xsd_errors(parse_xml(EXAMPLE_RESULTS.replace(old, new, 1).encode()))
    assert errors and attribute in errors[0]


def test_xsd_errors_are_bilingual_and_masked() -> None:
    message = (
        "Element 'Dong', attribute 'soDinhDanh': [facet 'pattern'] The value '00613500123' "
        "is not accepted by the pattern '\\d{12}'."
    )
    text = explain_xsd_error(message)
    assert text.startswith("thuộc tính soDinhDanh không hợp lệ (attribute soDinhDanh is invalid")
    assert "00613500123" not in text and "*******0123" in text
    name = explain_xsd_error(
        "Element 'Dong', attribute 'hoTen': [facet 'pattern'] The value ' Lò Văn Pha' is not "
        "accepted by the pattern 'x'."
    )
    assert "Lò Văn Pha" not in name and "L." in name


# -- rendering the list ---------------------------------------------------------------------


def attribute_lists(document: bytes) -> list[list[tuple[str, str]]]:
    root = parse_xml(document)
    return [list(root.attrib.items())] + [list(line.attrib.items()) for line in root]


def test_render_reproduces_formats_example() -> None:
    rendered = render_payment_list(EXAMPLE_PAYLOAD)
    assert xsd_errors(parse_xml(rendered.body)) == []
    # same elements, same attributes, in the same order as FORMATS.md writes them
    assert attribute_lists(rendered.body) == attribute_lists(EXAMPLE_LIST.encode())
    assert parse_xml(rendered.body).tag == "{urn:vn:btxh:chitra:1}DanhSachChiTra"
    assert (rendered.so_dong, rendered.tong_so_tien, rendered.lan_gui) == (2, 1485000, 1)


def test_render_accepts_totals_that_add_up_and_digit_strings() -> None:
    data = payload(tongSoNguoi=2, tongSoTien=1485000)
    data["lines"][1]["soTienThang"] = "405000"
    assert render_payment_list(data).tong_so_tien == 1485000


@pytest.mark.parametrize(
    ("changes", "figures"),
    [
        ({"tongSoTien": 1500000}, ("1500000", "1485000")),
        ({"tongSoNguoi": 3}, ("3", "2")),
    ],
)
def test_render_refuses_totals_that_do_not_add_up(
    changes: dict[str, int], figures: tuple[str, str]
) -> None:
    with pytest.raises(PermanentError) as caught:
        render_payment_list(payload(**changes))
    reason = caught.value.reason
    assert reason.startswith("tổng không khớp: ")
    assert "(totals do not add up: " in reason
    assert all(figure in reason for figure in figures)


@pytest.mark.parametrize("bad", [540000.0, 540000.5, "540000.00", "1e5", -1, True, None, "-5"])
def test_render_refuses_money_that_is_not_whole_vnd(bad: object) -> None:
    data = payload()
    data["lines"][0]["soTienThang"] = bad
    with pytest.raises(PermanentError) as caught:
        render_payment_list(data)
    reason = caught.value.reason
    assert "dòng 1 (********1234)" in reason and "soTienThang" in reason
    assert_no_pii(reason)


def test_render_names_the_line_and_attribute_the_xsd_refuses() -> None:
    data = payload()
    data["lines"][1]["loaiDoiTuong"] = "5.9"
    data["lines"][1]["maXaCu"] = "123"
    with pytest.raises(PermanentError) as caught:
        render_payment_list(data)
    reason = caught.value.reason
    assert "dòng 2 (********4321)" in reason
    assert "loaiDoiTuong" in reason and "maXaCu" in reason
    assert_no_pii(reason)


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"lapLuc": "2020-08-24T10:00:00"}, "lapLuc"),
        ({"lapLuc": "24/08/2020"}, "lapLuc"),
        ({"ky": None}, "ky"),
        ({"lanGui": 0.5}, "lanGui"),
        ({"lines": "none"}, "lines"),
        ({"ky": "2020-9"}, "ky"),
    ],
)
def test_render_refuses_bad_list_fields(changes: dict[str, Any], needle: str) -> None:
    with pytest.raises(PermanentError, match=needle):
        render_payment_list(payload(**changes))


def test_render_refuses_missing_required_line_field_and_control_characters() -> None:
    data = payload()
    del data["lines"][0]["bienDong"]
    with pytest.raises(PermanentError, match="bienDong"):
        render_payment_list(data)
    data = payload()
    data["lines"][1]["hoTen"] = "Lò Văn\x00Pha"
    with pytest.raises(PermanentError, match=r"dòng 2 \(\*+4321\)") as caught:
        render_payment_list(data)
    assert_no_pii(caught.value.reason)


def test_render_writes_old_commune_code_after_the_merger() -> None:
    data = payload(ky="2025-08", maXa="02020")
    for line in data["lines"]:
        line["maXaCu"] = "02053"
    root = parse_xml(render_payment_list(data).body)
    assert [line.get("maXaCu") for line in root] == ["02053", "02053"]
    assert list(root[0].attrib)[-1] == "maXaCu"


def test_render_of_an_empty_list() -> None:
    root = parse_xml(render_payment_list(payload(lines=[])).body)
    assert (root.get("tongSoNguoi"), root.get("tongSoTien"), len(root)) == ("0", "0", 0)


def big_payload(count: int) -> dict[str, Any]:
    lines = []
    for i in range(count):
        line = copy.deepcopy(EXAMPLE_PAYLOAD["lines"][i % 2])
        line["soDinhDanh"] = make_cccd("006", 1930 + i % 60, i % 3 == 0, i)
        lines.append(line)
    return payload(lines=lines)


def test_two_thousand_lines_render_and_validate_well_under_a_second() -> None:
    data = big_payload(2000)
    render_payment_list(payload())  # load the XSD outside the timing
    started = time.perf_counter()
    rendered = render_payment_list(data)
    elapsed = time.perf_counter() - started
    assert elapsed < 0.5, f"{elapsed:.3f}s"
    root = parse_xml(rendered.body)
    assert xsd_errors(root) == []
    assert root.get("tongSoNguoi") == "2000" and len(root) == 2000
    assert rendered.tong_so_tien == 1000 * 1080000 + 1000 * 405000


money = st.integers(min_value=0, max_value=50_000_000)
line_strategy = st.fixed_dictionaries(
    {
        "soDinhDanh": st.integers(0, 999_999).map(lambda n: make_cccd("006", 1950, False, n)),
        "hoTen": st.sampled_from(["Hoàng Thị Lan", "Lò Văn Pha", "Đàm Thị Mến"]),
        "loaiDoiTuong": st.sampled_from(["5.1", "5.4", "5.5a", "5.6", "cs"]),
        "soTienThang": money,
        "soTienTruyLinh": money,
        "soTienChuaNhan": money,
        "nhanTien": st.sampled_from(["tai_diem", "tai_nha"]),
        "bienDong": st.sampled_from(["tang", "giam", "khong_doi", "tam_dung"]),
    }
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(line_strategy, max_size=15), lan_gui=st.integers(1, 9))
def test_any_sound_payload_renders_valid_and_results_parse_back(
    lines: list[dict[str, Any]], lan_gui: int
) -> None:
    rendered = render_payment_list(payload(lines=lines, lanGui=lan_gui))
    root = parse_xml(rendered.body)
    assert xsd_errors(root) == []
    due = [
        sum(line[k] for k in ("soTienThang", "soTienTruyLinh", "soTienChuaNhan")) for line in lines
    ]
    assert root.get("tongSoTien") == str(sum(due))
    # what the simulated payer answers for it is accepted by the connector, line for line
    held = HeldList(
        "2020-09",
        "02053",
        lan_gui,
        [
            PayLine(x["soDinhDanh"], x["loaiDoiTuong"], d, x["nhanTien"])
            for x, d in zip(lines, due, strict=True)
        ],
        sum(due),
    )
    sim = PayerSettings(0.0, 0.3, 0.1, 1.0, None, None, seed=lan_gui)
    body, count = build_results(held, sim)
    assert xsd_errors(parse_xml(body)) == []
    result = parse_results(body)
    # a person listed twice under the same category is answered twice: the second is refused
    keys = {(x["soDinhDanh"], x["loaiDoiTuong"]) for x, d in zip(lines, due, strict=True) if d}
    assert len(result.messages) == len(keys)
    assert len(result.messages) + len(result.rejected) == count


def test_unpaid_every_counts_lines_over_every_list_taken() -> None:
    """The demo's payer: every 3rd line with money due is unpaid, counted across lists, so
    two lists of two lines give exactly one unpaid line (the 3rd), whatever the seed."""
    people = [make_cccd("006", 1940 + i, True, i) for i in range(4)]
    first = HeldList(
        "2020-09",
        "02053",
        1,
        [PayLine(p, "5.5a", 540_000, "tai_nha") for p in people[:2]],
        1_080_000,
    )
    second = HeldList(
        "2020-09",
        "02020",
        1,
        [PayLine(p, "5.5a", 540_000, "tai_nha") for p in people[2:]],
        1_080_000,
    )
    for seed in range(5):
        sim = PayerSettings(0.0, 0.0, 0.1, 1.0, None, None, seed=seed, unpaid_every=3)
        body1, n1 = build_results(first, sim)
        body2, n2 = build_results(second, sim, settled_before=n1)
        states = [
            m.payload["trangThai"] for body in (body1, body2) for m in parse_results(body).messages
        ]
        assert (n1, n2) == (2, 2)
        assert states == ["da_chi", "da_chi", "chua_chi", "da_chi"]
    off = PayerSettings(0.0, 0.0, 0.1, 1.0, None, None, seed=0)
    body, _ = build_results(second, off, settled_before=2)
    assert {m.payload["trangThai"] for m in parse_results(body).messages} == {"da_chi"}


# -- parsing results -----------------------------------------------------------------------


def test_parse_formats_example() -> None:
    result = parse_results(EXAMPLE_RESULTS.encode())
    assert result.rejected == []
    paid, unpaid = result.messages
    person = pseudonym("006135001234")
    assert person.startswith("********1234-") and len(person) == 12 + 1 + 16
    assert paid == Message(
        event="payment.results",
        external_id=f"2020-09:02053:{person}:",
        ref=person,
        dossier_key=f"02053:{person}",
        payload={
            "ky": "2020-09",
            "maXa": "02053",
            "soDinhDanh": "006135001234",
            "trangThai": "da_chi",
            "soTien": 1080000,
            "ngayChi": "2020-09-05",
            "nhanTien": "tai_nha",
        },
    )
    assert unpaid.payload == {
        "ky": "2020-09",
        "maXa": "02053",
        "soDinhDanh": "006080004321",
        "trangThai": "chua_chi",
        "soTien": 0,
        "lyDo": "vắng nhà",
    }


def test_parse_result_for_a_carer_line_names_its_category() -> None:
    result = parse_results(
        results_doc(
            PAID_LAN,
            '<Dong soDinhDanh="006135001234" trangThai="da_chi" soTien="500000" '
            'ngayChi="2020-09-05" loaiDoiTuong="cs"/>',
        )
    )
    person = pseudonym("006135001234")
    assert [m.external_id for m in result.messages] == [
        f"2020-09:02053:{person}:",
        f"2020-09:02053:{person}:cs",
    ]


def test_parse_rejects_bad_lines_and_accepts_the_others() -> None:
    result = parse_results(
        results_doc(
            PAID_LAN,
            '<Dong soDinhDanh="00608000432" trangThai="paid" soTien="1"/>',
            '<Dong soDinhDanh="006080004321" trangThai="da_chi" soTien="0"/>',
            '<Dong soDinhDanh="006080009999" trangThai="chua_chi" soTien="5000" lyDo="vắng nhà"/>',
            '<Dong soDinhDanh="000080004321" trangThai="chua_chi" soTien="0"/>',
            '<Dong soDinhDanh="006135001234" trangThai="chua_chi" soTien="0"/>',
            '<Dong trangThai="chua_chi" soTien="0"/>',
            '<Dong soDinhDanh="006080001111" trangThai="chua_chi" soTien="0" lyDo="ốm nằm viện"/>',
        )
    )
    assert [m.ref for m in result.messages] == [
        pseudonym("006135001234"),
        pseudonym("006080001111"),
    ]
    rejected = {r.ref: r.errors for r in result.rejected}
    assert list(rejected) == [
        "dong-2",
        "dong-3:********4321",
        "dong-4:********9999",
        "dong-5:********4321",
        "dong-6:********1234",
        "dong-7",
    ]
    assert any("soDinhDanh" in e for e in rejected["dong-2"])
    assert any("trangThai" in e for e in rejected["dong-2"])
    assert any("soTien > 0" in e for e in rejected["dong-3:********4321"])
    assert any("ngayChi" in e for e in rejected["dong-3:********4321"])
    assert any("soTien = 0" in e for e in rejected["dong-4:********9999"])
    assert any("mã tỉnh 000" in e for e in rejected["dong-5:********4321"])
    assert any("duplicate line" in e for e in rejected["dong-6:********1234"])
    assert any("thiếu thuộc tính soDinhDanh" in e for e in rejected["dong-7"])
    for errors in rejected.values():
        for error in errors:
            assert error.startswith("dòng ") and "(" in error
            assert_no_pii(error)
            assert "00608000432" not in error


HOSTILE = {
    "not xml": b"{'json': true}",
    "empty": b"",
    "billion laughs": b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;">]>
<KetQuaChiTra xmlns="urn:vn:btxh:chitra:1" ky="2020-09" maXa="&lol2;"/>""",
    "external entity": b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<KetQuaChiTra xmlns="urn:vn:btxh:chitra:1" ky="2020-09" maXa="02053">
<Dong soDinhDanh="006135001234" trangThai="chua_chi" soTien="0" lyDo="&x;"/></KetQuaChiTra>""",
    "deep": RESULTS_HEAD.encode() + b"<a>" * 200 + b"</a>" * 200 + b"</KetQuaChiTra>",
    "wrong root": EXAMPLE_LIST.encode(),
    "no namespace": b'<KetQuaChiTra ky="2020-09" maXa="02053"/>',
    "bad month": b'<KetQuaChiTra xmlns="urn:vn:btxh:chitra:1" ky="2020-13" maXa="02053"/>',
    "missing commune": b'<KetQuaChiTra xmlns="urn:vn:btxh:chitra:1" ky="2020-09"/>',
    "stray element": results_doc("<Tong soTien='1'/>"),
    "stray text": results_doc("paid everyone"),
}


@pytest.mark.parametrize("body", list(HOSTILE.values()), ids=list(HOSTILE))
def test_parse_refuses_unreadable_or_hostile_documents(body: bytes) -> None:
    with pytest.raises(BadRequest) as caught:
        parse_results(body)
    reason = str(caught.value)
    assert "(" in reason and reason.strip()
    assert "root:" not in reason  # nothing of /etc/passwd


# -- the connector: render and classify -------------------------------------------------------


async def test_connector_renders_a_post_to_the_list_endpoint() -> None:
    request = await connector().render(Message("payment.list", "2020-09:02053:1", EXAMPLE_PAYLOAD))
    assert request.method == "POST"
    assert request.url == "http://payer.test/api/danh-sach-chi-tra"
    assert request.headers == {"Content-Type": "application/xml"}
    assert "Idempotency-Key" not in request.headers
    assert request.context["ky"] == "2020-09" and request.context["maXa"] == "02053"
    assert request.context["lanGui"] == 1
    assert xsd_errors(parse_xml(request.body)) == []


async def test_connector_refuses_other_events() -> None:
    with pytest.raises(PermanentError, match=r"decision\.issued"):
        await connector().render(Message("decision.issued", "215/QĐ-UBND", {}))


async def test_connector_parse_uses_the_results_reader() -> None:
    result = await connector().parse(EXAMPLE_RESULTS.encode(), "application/xml")
    assert len(result.messages) == 2


def sent_request() -> OutboundRequest:
    context = {"ky": "2020-09", "maXa": "02053", "lanGui": 1, "soDong": 2}
    return OutboundRequest("POST", "http://payer.test/danh-sach-chi-tra", context=context)


def test_classify_200_reads_the_receipt() -> None:
    body = b'<TiepNhan xmlns="urn:vn:btxh:chitra:1" ky="2020-09" maXa="02053" soDong="2"/>'
    receipt = connector().classify_response(200, body, {}, sent_request())
    assert isinstance(receipt, Receipt) and receipt.status == 200
    assert receipt.detail.startswith(
        "bưu điện đã tiếp nhận 2 dòng / the post office received 2 lines"
    )


def test_classify_409_is_delivered() -> None:
    receipt = connector().classify_response(409, loi_body("da_nhan", "x"), {}, sent_request())
    assert receipt.status == 409
    assert "already received" in receipt.detail and "lanGui=1" in receipt.detail


def test_classify_400_is_a_gateway_bug() -> None:
    body = loi_body("xsd", "thuộc tính soDinhDanh 006135001234 không hợp lệ")
    with pytest.raises(PermanentError) as caught:
        connector().classify_response(400, body, {}, sent_request())
    assert "invalid document (gateway bug)" in caught.value.reason
    assert caught.value.status == 400
    assert_no_pii(caught.value.reason)


def test_classify_422_carries_the_payers_reason() -> None:
    body = loi_body("tong", "tổng không khớp")
    with pytest.raises(PermanentError) as caught:
        connector().classify_response(422, body, {}, sent_request())
    assert "tong: tổng không khớp" in caught.value.reason


@pytest.mark.parametrize(
    ("status", "error"), [(503, RetryableError), (408, RetryableError), (404, PermanentError)]
)
def test_classify_other_statuses_as_http(status: int, error: type[Exception]) -> None:
    with pytest.raises(error):
        connector().classify_response(status, b"", {"Retry-After": "7"}, sent_request())


def test_classify_429_keeps_retry_after() -> None:
    with pytest.raises(RetryableError) as caught:
        connector().classify_response(429, b"", {"Retry-After": "7"}, sent_request())
    assert caught.value.retry_after == 7.0
