"""Parsing DongBoHoSoMC pushes (FORMATS.md §1.1) into messages and per-item rejections."""

from __future__ import annotations

import copy
import json
import unicodedata
from typing import Any

import pytest

from gateway.config import SystemConfig
from gateway.model import BadRequest, ParseResult
from plugins.one_stop_shop import OneStopShopConnector

# The example of FORMATS.md §1.1, byte for byte apart from the elided file URL.
FORMATS_EXAMPLE = """{"isUpdating": "False",
 "data": [{
   "MaHoSo": "000.00.12.H06-200803-0001",
   "MaTTHC": "1.001776",
   "TenTTHC": "Thực hiện, điều chỉnh, thôi hưởng trợ cấp xã hội hàng tháng, hỗ trợ kinh phí chăm sóc, nuôi dưỡng hàng tháng",
   "SoBienNhan": "0001/BN", "ChuHoSo": "Hoàng Thị Lan", "LoaiDoiTuong": "1",
   "MaDoiTuong": "006135001234", "SoDienThoai": "", "Email": "",
   "TrichYeuHoSo": "Đề nghị trợ cấp xã hội hàng tháng",
   "NgayTiepNhan": "20200803081500", "NgayHenTra": "20200824170000",
   "TrangThaiHoSo": "2", "HinhThuc": "0", "DonViXuLy": "UBND xã Ngọc Phái",
   "ThongTinNguoiNop": {"SoDinhDanh": "006135001234", "TenNguoiNop": "Hoàng Thị Lan",
       "NgaySinh": "19350412", "GioiTinh": "2", "MaTinh": "06", "MaHuyen": "064", "MaXa": "02053",
       "DiaChiChiTiet": "Thôn Bản Cuôn"},
   "DeNghiTroCap": {"LoaiDoiTuong": "5.5a", "MucDoKhuyetTat": "", "DiaChiNhanTien": "tai_nha"},
   "TaiLieuNop": [{"TepDinhKemId": "f1", "TenTepDinhKem": "Mẫu 1a.pdf", "IsDeleted": "False",
       "MaThanhPhanHoSo": "TP1", "DuongDanTaiTepTin": "https://motcua.example/f1"}]
 }]}"""  # noqa: E501 - the example as FORMATS.md prints it

CCCD = "006135001234"
NAME = "Hoàng Thị Lan"


def example_item() -> dict[str, Any]:
    item: dict[str, Any] = json.loads(FORMATS_EXAMPLE)["data"][0]
    return item


def body(*items: Any, updating: Any = "False") -> bytes:
    return json.dumps({"isUpdating": updating, "data": list(items)}, ensure_ascii=False).encode()


@pytest.fixture
def connector() -> OneStopShopConnector:
    system = SystemConfig(name="motcua", plugin="one_stop_shop", base_url="http://127.0.0.1:9")
    return OneStopShopConnector(system)


async def parse(connector: OneStopShopConnector, raw: bytes) -> ParseResult:
    return await connector.parse(raw, "application/json")


async def test_formats_example_parses_into_one_message(connector: OneStopShopConnector) -> None:
    result = await parse(connector, FORMATS_EXAMPLE.encode())

    assert result.rejected == []
    [message] = result.messages
    assert message.event == "dossier.received"
    assert message.external_id == "000.00.12.H06-200803-0001"
    assert message.ref == "000.00.12.H06-200803-0001"
    assert message.dossier_key == "000.00.12.H06-200803-0001"
    assert message.procedure == "1.001776"
    assert message.payload == {"isUpdating": False, "dossier": example_item()}


@pytest.mark.parametrize(
    ("flag", "expected"),
    [("True", True), ("False", False), ("true", True), (True, True), (False, False)],
)
async def test_is_updating_modes(
    connector: OneStopShopConnector, flag: Any, expected: bool
) -> None:
    result = await parse(connector, body(example_item(), updating=flag))
    assert result.messages[0].payload["isUpdating"] is expected


async def test_is_updating_missing_means_a_new_dossier(connector: OneStopShopConnector) -> None:
    raw = json.dumps({"data": [example_item()]}, ensure_ascii=False).encode()
    result = await parse(connector, raw)
    assert result.messages[0].payload["isUpdating"] is False


async def test_is_updating_garbage_is_a_bad_request(connector: OneStopShopConnector) -> None:
    with pytest.raises(BadRequest, match="isUpdating"):
        await parse(connector, body(example_item(), updating="maybe"))


async def test_bad_cccd_item_is_rejected_and_the_good_one_beside_it_accepted(
    connector: OneStopShopConnector,
) -> None:
    bad = example_item()
    bad["MaHoSo"] = "000.00.12.H06-200803-0002"
    bad["MaDoiTuong"] = "00613500123"  # 11 digits

    result = await parse(connector, body(example_item(), bad))

    assert [m.ref for m in result.messages] == ["000.00.12.H06-200803-0001"]
    [rejection] = result.rejected
    assert rejection.ref == "000.00.12.H06-200803-0002"
    assert rejection.errors == ("MaDoiTuong: CCCD phải có 12 chữ số (a CCCD has 12 digits)",)


def _set(path: str, value: Any) -> dict[str, Any]:
    item = example_item()
    *parents, last = path.split(".")
    target = item
    for key in parents:
        target = target[key]
    if value is _DELETE:
        del target[last]
    else:
        target[last] = value
    return item


_DELETE = object()

CASES: list[tuple[str, Any, str]] = [
    ("MaHoSo", _DELETE, "MaHoSo: bắt buộc (required)"),
    ("MaTTHC", "", "MaTTHC: bắt buộc (required)"),
    (
        "NgayTiepNhan",
        "2020-08-03",
        "NgayTiepNhan: phải có dạng yyyyMMddHHmmss (must be yyyyMMddHHmmss)",
    ),
    (
        "NgayTiepNhan",
        "20201303081500",
        "NgayTiepNhan: phải có dạng yyyyMMddHHmmss (must be yyyyMMddHHmmss)",
    ),
    (
        "NgayHenTra",
        "24/08/2020",
        "NgayHenTra: phải có dạng yyyyMMddHHmmss (must be yyyyMMddHHmmss)",
    ),
    (
        "TrangThaiHoSo",
        "11",
        "TrangThaiHoSo: phải là mã trạng thái từ 1 đến 10 (must be a status code 1 to 10)",
    ),
    (
        "TrangThaiHoSo",
        "0",
        "TrangThaiHoSo: phải là mã trạng thái từ 1 đến 10 (must be a status code 1 to 10)",
    ),
    (
        "ThongTinNguoiNop.GioiTinh",
        "3",
        "ThongTinNguoiNop.GioiTinh: phải là 1 (nam) hoặc 2 (nữ) (must be 1 male or 2 female)",
    ),
    (
        "ThongTinNguoiNop.NgaySinh",
        "1935-04-12",
        "ThongTinNguoiNop.NgaySinh: phải có dạng yyyyMMdd (must be yyyyMMdd)",
    ),
    (
        "ThongTinNguoiNop.SoDinhDanh",
        "0061350012",
        "ThongTinNguoiNop.SoDinhDanh: CCCD phải có 12 chữ số (a CCCD has 12 digits)",
    ),
    (
        "ThongTinNguoiNop.NgaySinh",
        "19360412",
        "ThongTinNguoiNop.SoDinhDanh: CCCD không khớp năm sinh 1936 (the CCCD encodes birth year 1935)",  # noqa: E501 - exact text
    ),
    ("ThongTinNguoiNop.MaXa", "2053", "ThongTinNguoiNop.MaXa: phải có 5 chữ số (must be 5 digits)"),
    ("ThongTinNguoiNop.TenNguoiNop", " ", "ThongTinNguoiNop.TenNguoiNop: bắt buộc (required)"),
    (
        "DeNghiTroCap.LoaiDoiTuong",
        "5.9",
        "DeNghiTroCap.LoaiDoiTuong: nhóm đối tượng không hợp lệ (unknown category; expected one of 5.1 5.2 5.3 5.4 5.5a 5.5b 5.5c 5.5d 5.6 5.7 5.8 cs)",  # noqa: E501 - exact text
    ),
    (
        "DeNghiTroCap.MucDoKhuyetTat",
        "nhe",
        'DeNghiTroCap.MucDoKhuyetTat: phải là "", nang hoặc dac_biet_nang (must be "", nang or dac_biet_nang)',  # noqa: E501 - exact text
    ),
    (
        "DeNghiTroCap.DiaChiNhanTien",
        "chuyen_khoan",
        "DeNghiTroCap.DiaChiNhanTien: phải là tai_diem hoặc tai_nha (must be tai_diem or tai_nha)",
    ),
    ("DeNghiTroCap.DiaChiNhanTien", _DELETE, "DeNghiTroCap.DiaChiNhanTien: bắt buộc (required)"),
    ("DeNghiTroCap", "5.5a", "DeNghiTroCap: phải là đối tượng JSON (must be a JSON object)"),
    ("DeNghiTroCap", _DELETE, "DeNghiTroCap: bắt buộc (required)"),
    ("ThongTinNguoiNop", _DELETE, "ThongTinNguoiNop: bắt buộc (required)"),
    ("TaiLieuNop", "f1", "TaiLieuNop: phải là danh sách (must be a list)"),
]


@pytest.mark.parametrize(("path", "value", "error"), CASES)
async def test_each_rule_has_a_readable_error_naming_the_field(
    connector: OneStopShopConnector, path: str, value: Any, error: str
) -> None:
    result = await parse(connector, body(_set(path, value)))

    assert result.messages == []
    [rejection] = result.rejected
    assert rejection.errors == (error,)
    assert CCCD not in " ".join(rejection.errors)
    assert NAME not in " ".join(rejection.errors)


async def test_sex_that_disagrees_with_the_cccd(connector: OneStopShopConnector) -> None:
    result = await parse(connector, body(_set("ThongTinNguoiNop.GioiTinh", "1")))
    assert result.rejected[0].errors == (
        "ThongTinNguoiNop.SoDinhDanh: CCCD không khớp giới tính (the CCCD encodes the other sex)",
    )


async def test_category_5_6_needs_a_disability_level(connector: OneStopShopConnector) -> None:
    item = _set("DeNghiTroCap.LoaiDoiTuong", "5.6")
    result = await parse(connector, body(item))
    assert result.rejected[0].errors == (
        "DeNghiTroCap.MucDoKhuyetTat: bắt buộc với nhóm 5.6 (required for category 5.6)",
    )
    item["DeNghiTroCap"]["MucDoKhuyetTat"] = "dac_biet_nang"
    assert (await parse(connector, body(item))).rejected == []


async def test_status_and_sex_codes_sent_as_numbers_are_compared_as_strings(
    connector: OneStopShopConnector,
) -> None:
    item = _set("TrangThaiHoSo", 2)
    item["ThongTinNguoiNop"]["GioiTinh"] = 2
    result = await parse(connector, body(item))
    assert result.rejected == []


async def test_several_errors_are_all_reported(connector: OneStopShopConnector) -> None:
    item = _set("TrangThaiHoSo", "99")
    item["DeNghiTroCap"]["LoaiDoiTuong"] = "x"
    result = await parse(connector, body(item))
    errors = result.rejected[0].errors
    assert len(errors) == 2
    assert errors[0].startswith("TrangThaiHoSo:")
    assert errors[1].startswith("DeNghiTroCap.LoaiDoiTuong:")


async def test_item_without_mahoso_is_named_by_its_position(
    connector: OneStopShopConnector,
) -> None:
    result = await parse(connector, body(example_item(), _set("MaHoSo", _DELETE), "not a dossier"))
    assert [r.ref for r in result.rejected] == ["data[1]", "data[2]"]
    assert result.rejected[1].errors == ("data[2]: phải là đối tượng JSON (must be a JSON object)",)


async def test_nfd_input_comes_out_nfc(connector: OneStopShopConnector) -> None:
    nfd = unicodedata.normalize("NFD", json.dumps(example_item(), ensure_ascii=False))
    assert nfd != unicodedata.normalize("NFC", nfd)

    result = await parse(connector, body(json.loads(nfd)))

    [message] = result.messages
    assert message.payload["dossier"] == example_item()
    assert message.payload["dossier"]["ChuHoSo"] == NAME
    assert unicodedata.is_normalized("NFC", json.dumps(message.payload, ensure_ascii=False))


async def test_other_procedure_is_accepted_with_the_basic_fields(
    connector: OneStopShopConnector,
) -> None:
    item = example_item()
    item.update(MaHoSo="000.00.12.H06-200803-0003", MaTTHC="1.001731")
    item["TenTTHC"] = "Hỗ trợ chi phí mai táng"
    del item["DeNghiTroCap"], item["ThongTinNguoiNop"]

    result = await parse(connector, body(item))

    [message] = result.messages
    assert message.procedure == "1.001731"
    assert message.payload["dossier"] == item


async def test_other_procedure_still_checks_the_parts_it_sends(
    connector: OneStopShopConnector,
) -> None:
    item = _set("ThongTinNguoiNop.SoDinhDanh", "123")
    item["MaTTHC"] = "1.001731"
    result = await parse(connector, body(item))
    assert result.rejected[0].errors == (
        "ThongTinNguoiNop.SoDinhDanh: CCCD phải có 12 chữ số (a CCCD has 12 digits)",
    )


async def test_organisation_applicant_is_not_checked_as_a_cccd(
    connector: OneStopShopConnector,
) -> None:
    item = example_item()
    item.update(LoaiDoiTuong="2", MaDoiTuong="4700123456")  # a tax code
    assert (await parse(connector, body(item))).rejected == []


async def test_payload_keeps_the_item_unchanged(connector: OneStopShopConnector) -> None:
    item = example_item()
    item["TruongLa"] = {"giữ": "nguyên"}  # fields the profile does not know travel on
    result = await parse(connector, body(copy.deepcopy(item)))
    assert result.messages[0].payload["dossier"] == item


async def test_empty_data_list_is_an_empty_result(connector: OneStopShopConnector) -> None:
    result = await parse(connector, body())
    assert result.messages == [] and result.rejected == []


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"<xml/>", "body is not valid JSON"),
        (b'{"data": ', "body is not valid JSON"),
        (b"\xff\xfe", "not UTF-8"),
        (b"[]", 'a JSON object with a "data" list'),
        (b'{"isUpdating": "False"}', 'a JSON object with a "data" list'),
        (b'{"data": {"MaHoSo": "x"}}', 'a JSON object with a "data" list'),
        (b'"data"', 'a JSON object with a "data" list'),
    ],
)
async def test_unreadable_bodies_are_bad_requests(
    connector: OneStopShopConnector, raw: bytes, reason: str
) -> None:
    with pytest.raises(BadRequest) as info:
        await parse(connector, raw)
    assert reason in str(info.value)
    assert str(info.value).startswith("nội dung")  # Vietnamese first


async def test_text_longer_than_the_registry_takes_is_refused_at_intake(
    connector: OneStopShopConnector,
) -> None:
    long_name = example_item()
    long_name["ThongTinNguoiNop"]["TenNguoiNop"] = "Hoàng " * 50
    long_address = example_item()
    long_address["MaHoSo"] = "000.00.12.H06-200803-0002"
    long_address["ThongTinNguoiNop"]["DiaChiChiTiet"] = "x" * 2001
    result = await parse(connector, body(long_name, long_address))
    assert result.messages == []
    errors = [e for r in result.rejected for e in r.errors]
    assert any("TenNguoiNop" in e and "200" in e for e in errors)
    assert any("DiaChiChiTiet" in e and "2000" in e for e in errors)
