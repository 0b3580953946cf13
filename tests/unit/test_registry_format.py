"""The registry's XML profile (FORMATS.md §2): XSD, rendering, decisions, answers."""

from __future__ import annotations

import copy
import time
import unicodedata
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from lxml import etree

from gateway.config import SystemConfig
from gateway.model import BadRequest, Message, OutboundRequest, PermanentError, RetryableError
from gateway.xmlsafe import parse_xml
from plugins.district_registry import sim_rules
from plugins.district_registry.connector import RegistryConnector
from plugins.district_registry.wire import NS, readable_schema_errors
from plugins.vn_common.cccd import make_cccd

# -- FORMATS.md examples, verbatim ---------------------------------------------------------

HO_SO_EXAMPLE = """\
<HoSoTroCap xmlns="urn:vn:btxh:registry:1" maHoSo="000.00.12.H06-200803-0001" lanCapNhat="1"
            maTTHC="1.001776" ngayTiepNhan="2020-08-03T08:15:00+07:00" ngayHenTra="2020-08-24">
  <DoiTuong soDinhDanh="006135001234" hoTen="Hoàng Thị Lan" ngaySinh="1935-04-12" gioiTinh="nu">
    <DiaChi maTinh="06" maHuyen="064" maXa="02053">Thôn Bản Cuôn</DiaChi>
  </DoiTuong>
  <DeNghi loaiDoiTuong="5.5a" mucDoKhuyetTat="" nhanTien="tai_nha"/>
  <TaiLieu ten="Mẫu 1a.pdf" duongDan="https://…/f1"/>
</HoSoTroCap>
"""

QUYET_DINH_EXAMPLE = """\
<QuyetDinh xmlns="urn:vn:btxh:registry:1" so="215/QĐ-UBND" ngayKy="2020-08-20"
           loai="huong" maHoSo="000.00.12.H06-200803-0001" soDinhDanh="006135001234"
           hoTen="Hoàng Thị Lan" ngaySinh="1935-04-12" maXa="02053" loaiDoiTuong="5.5a" heSo="2.0"
           mucChuan="270000" soTienThang="540000" tuThang="2020-08" nhanTien="tai_nha"/>
"""

DE_NGHI_TAM_DUNG_EXAMPLE = """\
<DeNghiTamDung xmlns="urn:vn:btxh:registry:1" ky="2020-11" maXa="02053">
  <DoiTuong soDinhDanh="006080004321" hoTen="Lò Văn Pha" cacThangChuaNhan="2020-09 2020-10 2020-11"/>
</DeNghiTamDung>
"""  # noqa: E501 - verbatim from FORMATS.md

# The answers are shown with "…" in FORMATS.md; these fill in concrete values.
ANSWER_EXAMPLES = [
    '<BienNhan xmlns="urn:vn:btxh:registry:1" maHoSo="000.00.12.H06-200803-0001" '
    'soBienNhan="BN-000001"/>',
    '<Loi xmlns="urn:vn:btxh:registry:1" ma="xsd">lanCapNhat: not a positive integer</Loi>',
    '<Loi xmlns="urn:vn:btxh:registry:1" ma="tuoi">Đối tượng chưa đủ 60 tuổi</Loi>',
    '<TiepNhan xmlns="urn:vn:btxh:registry:1" ky="2020-11" maXa="02053" soDong="1"/>',
]

# FORMATS.md §1.1, the one DongBoHoSoMC item
DOSSIER: dict[str, Any] = {
    "MaHoSo": "000.00.12.H06-200803-0001",
    "MaTTHC": "1.001776",
    "TenTTHC": "Thực hiện, điều chỉnh, thôi hưởng trợ cấp xã hội hàng tháng, hỗ trợ kinh phí "
    "chăm sóc, nuôi dưỡng hàng tháng",
    "SoBienNhan": "0001/BN",
    "ChuHoSo": "Hoàng Thị Lan",
    "LoaiDoiTuong": "1",
    "MaDoiTuong": "006135001234",
    "SoDienThoai": "",
    "Email": "",
    "TrichYeuHoSo": "Đề nghị trợ cấp xã hội hàng tháng",
    "NgayTiepNhan": "20200803081500",
    "NgayHenTra": "20200824170000",
    "TrangThaiHoSo": "2",
    "HinhThuc": "0",
    "DonViXuLy": "UBND xã Ngọc Phái",
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
    "TaiLieuNop": [
        {
            "TepDinhKemId": "f1",
            "TenTepDinhKem": "Mẫu 1a.pdf",
            "IsDeleted": "False",
            "MaThanhPhanHoSo": "TP1",
            "DuongDanTaiTepTin": "https://…/f1",
        }
    ],
}

CCCD = "006135001234"
FULL_NAME = "Hoàng Thị Lan"


def dossier(**changes: Any) -> dict[str, Any]:
    """A deep copy of the §1.1 dossier; ``ThongTinNguoiNop__X=...`` changes a nested field."""
    data = copy.deepcopy(DOSSIER)
    for key, value in changes.items():
        if "__" in key:
            outer, inner = key.split("__")
            data[outer][inner] = value
        else:
            data[key] = value
    return data


def dossier_message(data: dict[str, Any] | None = None, revision: int = 1) -> Message:
    return Message(
        event="dossier.received",
        external_id=(data or DOSSIER)["MaHoSo"],
        payload={"isUpdating": revision > 1, "dossier": data or DOSSIER},
        revision=revision,
    )


def quyet_dinh(**attributes: str | None) -> str:
    base = {
        "so": "215/QĐ-UBND",
        "ngayKy": "2020-08-20",
        "loai": "huong",
        "maHoSo": "000.00.12.H06-200803-0001",
        "soDinhDanh": CCCD,
        "hoTen": FULL_NAME,
        "ngaySinh": "1935-04-12",
        "maXa": "02053",
        "loaiDoiTuong": "5.5a",
        "heSo": "2.0",
        "mucChuan": "270000",
        "soTienThang": "540000",
        "tuThang": "2020-08",
    }
    base.update(attributes)
    text = " ".join(f'{k}="{v}"' for k, v in base.items() if v is not None)
    return f"<QuyetDinh {text}/>"


def batch(*decisions: str) -> bytes:
    return f'<DanhSachQuyetDinh xmlns="{NS}">{"".join(decisions)}</DanhSachQuyetDinh>'.encode()


def single(decision: str) -> bytes:
    return decision.replace("<QuyetDinh ", f'<QuyetDinh xmlns="{NS}" ', 1).encode()


@pytest.fixture
def connector() -> RegistryConnector:
    return RegistryConnector(
        SystemConfig(name="registry", plugin="district_registry", base_url="http://reg.test/api/")
    )


def canonical(element: etree._Element) -> tuple[Any, ...]:
    """Tag, attributes, stripped text and children: equality ignoring layout."""
    return (
        element.tag,
        dict(element.attrib),
        (element.text or "").strip(),
        tuple(canonical(child) for child in element if isinstance(child.tag, str)),
    )


def assert_no_pii(texts: Any) -> None:
    blob = repr(texts)
    assert CCCD not in blob
    assert FULL_NAME not in blob


# -- the XSD -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "example",
    [HO_SO_EXAMPLE, QUYET_DINH_EXAMPLE, DE_NGHI_TAM_DUNG_EXAMPLE, *ANSWER_EXAMPLES],
    ids=["HoSoTroCap", "QuyetDinh", "DeNghiTamDung", "BienNhan", "Loi-xsd", "Loi-422", "TiepNhan"],
)
def test_every_formats_example_validates(example: str) -> None:
    assert readable_schema_errors(parse_xml(example.encode())) == []


def test_a_batch_of_the_example_decision_validates() -> None:
    body = QUYET_DINH_EXAMPLE.replace(' xmlns="urn:vn:btxh:registry:1"', "")
    assert readable_schema_errors(parse_xml(batch(body, body))) == []


@pytest.mark.parametrize(
    ("old", "new", "attribute"),
    [
        ('lanCapNhat="1"', 'lanCapNhat="0"', "lanCapNhat"),
        ("2020-08-03T08:15:00+07:00", "2020-08-03T08:15:00", "ngayTiepNhan"),  # no offset
        ('ngayHenTra="2020-08-24"', 'ngayHenTra="24/08/2020"', "ngayHenTra"),
        ('ngaySinh="1935-04-12"', 'ngaySinh="1935-13-12"', "ngaySinh"),
        ('ngaySinh="1935-04-12"', 'ngaySinh="1935-04-12+07:00"', "ngaySinh"),
        ("2020-08-03T08:15:00+07:00", "2020-08-03T08:15+07:00", "ngayTiepNhan"),
        ('gioiTinh="nu"', 'gioiTinh="f"', "gioiTinh"),
        ('maXa="02053"', 'maXa="2053"', "maXa"),
        ('loaiDoiTuong="5.5a"', 'loaiDoiTuong="5.5e"', "loaiDoiTuong"),
        ('mucDoKhuyetTat=""', 'mucDoKhuyetTat="nhe"', "mucDoKhuyetTat"),
        ('nhanTien="tai_nha"', 'nhanTien="chuyen_khoan"', "nhanTien"),
        ('maTTHC="1.001776" ', "", "maTTHC"),
    ],
)
def test_the_xsd_is_tight_on_applications(old: str, new: str, attribute: str) -> None:
    assert old in HO_SO_EXAMPLE
    errors = readable_schema_errors(parse_xml(HO_SO_EXAMPLE.replace(old, new).encode()))
    assert errors
    assert errors[0].startswith(f"{attribute}: ")


@pytest.mark.parametrize(
    ("attributes", "attribute"),
    [
        ({"tuThang": "2020-13"}, "tuThang"),
        ({"tuThang": "2020-8"}, "tuThang"),
        ({"ngayKy": "2020-08-20Z"}, "ngayKy"),
        ({"ngaySinhNguoiDuocChamSoc": "2021-05"}, "ngaySinhNguoiDuocChamSoc"),
        ({"mucChuan": "270000.5"}, "mucChuan"),
        ({"soTienThang": "-1"}, "soTienThang"),
        ({"loai": "cham_dut"}, "loai"),
        ({"heSo": "abc"}, "heSo"),
        ({"truyLinh": "co"}, "truyLinh"),
        ({"soCon": "0"}, "soCon"),
        ({"maXa": None}, "maXa"),
        ({"ngaySinh": None}, "ngaySinh"),
        ({"tuThang": None}, "tuThang"),
        ({"extra": "1"}, "extra"),
    ],
)
def test_the_xsd_is_tight_on_decisions(attributes: dict[str, str | None], attribute: str) -> None:
    errors = readable_schema_errors(parse_xml(single(quyet_dinh(**attributes))))
    assert errors
    assert errors[0].startswith(f"{attribute}: ")


def test_suspension_candidates_need_at_least_one_month() -> None:
    doc = DE_NGHI_TAM_DUNG_EXAMPLE.replace("2020-09 2020-10 2020-11", "")
    errors = readable_schema_errors(parse_xml(doc.encode()))
    assert errors == [errors[0]] or len(set(errors)) == len(errors)
    assert errors[0].startswith("cacThangChuaNhan: ")


def test_schema_errors_mask_personal_data() -> None:
    doc = HO_SO_EXAMPLE.replace('hoTen="Hoàng Thị Lan"', f'hoTen="{"Lan " * 100}"')
    doc = doc.replace("006135001234", "00613500123")
    errors = readable_schema_errors(parse_xml(doc.encode()))
    assert "soDinhDanh: CCCD phải có 12 chữ số (a CCCD has 12 digits)" in errors
    assert any(e.startswith("hoTen: giá trị không hợp lệ") for e in errors)
    assert all("00613500123" not in e and "Lan Lan" not in e for e in errors)


# -- rendering HoSoTroCap ------------------------------------------------------------------


async def test_round_trip_dossier_renders_the_formats_example(
    connector: RegistryConnector,
) -> None:
    request = await connector.render(dossier_message())
    assert request.method == "POST"
    assert request.url == "http://reg.test/api/ho-so"
    assert request.headers == {"Content-Type": "application/xml"}
    assert "Idempotency-Key" not in request.headers  # the core adds it
    assert request.body.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    rendered = parse_xml(request.body)
    assert readable_schema_errors(rendered) == []
    assert canonical(rendered) == canonical(parse_xml(HO_SO_EXAMPLE.encode()))
    assert request.context == {
        "kind": "ho-so",
        "maHoSo": "000.00.12.H06-200803-0001",
        "lanCapNhat": 1,
    }


async def test_revision_becomes_lan_cap_nhat(connector: RegistryConnector) -> None:
    request = await connector.render(dossier_message(revision=3))
    assert parse_xml(request.body).get("lanCapNhat") == "3"
    assert request.context["lanCapNhat"] == 3


async def test_conversions(connector: RegistryConnector) -> None:
    data = dossier(
        NgayTiepNhan="20201231235959",
        NgayHenTra="20210115",
        ThongTinNguoiNop__GioiTinh="1",
        ThongTinNguoiNop__SoDinhDanh="006080004321",
        ThongTinNguoiNop__NgaySinh="19800101",
        DeNghiTroCap={"LoaiDoiTuong": "5.6", "MucDoKhuyetTat": "nang", "DiaChiNhanTien": ""},
        TaiLieuNop=[
            {"TenTepDinhKem": "a.pdf", "IsDeleted": "True", "DuongDanTaiTepTin": "https://x/a"},
            {"TenTepDinhKem": "b.pdf", "IsDeleted": "False", "DuongDanTaiTepTin": "https://x/b"},
            {"TenTepDinhKem": "c.pdf", "DuongDanTaiTepTin": "https://x/c"},
        ],
    )
    root = parse_xml((await connector.render(dossier_message(data))).body)
    assert root.get("ngayTiepNhan") == "2020-12-31T23:59:59+07:00"
    assert root.get("ngayHenTra") == "2021-01-15"
    person = root.find(f"{{{NS}}}DoiTuong")
    assert person is not None
    assert person.get("gioiTinh") == "nam"
    assert person.get("ngaySinh") == "1980-01-01"
    de_nghi = root.find(f"{{{NS}}}DeNghi")
    assert de_nghi is not None
    assert dict(de_nghi.attrib) == {"loaiDoiTuong": "5.6", "mucDoKhuyetTat": "nang"}
    files = [t.get("ten") for t in root.iter(f"{{{NS}}}TaiLieu")]
    assert files == ["b.pdf", "c.pdf"]


async def test_optional_fields_are_left_out(connector: RegistryConnector) -> None:
    data = dossier(NgayHenTra="", TaiLieuNop=[], ThongTinNguoiNop__GioiTinh="")
    root = parse_xml((await connector.render(dossier_message(data))).body)
    assert root.get("ngayHenTra") is None
    assert root.find(f"{{{NS}}}DoiTuong").get("gioiTinh") is None  # type: ignore[union-attr]
    assert root.find(f"{{{NS}}}TaiLieu") is None
    assert readable_schema_errors(root) == []


async def test_decomposed_vietnamese_is_sent_as_nfc(connector: RegistryConnector) -> None:
    nfd = unicodedata.normalize("NFD", "Hoàng Thị Lan")
    data = dossier(ThongTinNguoiNop__TenNguoiNop=nfd)
    body = (await connector.render(dossier_message(data))).body
    assert "Hoàng Thị Lan".encode() in body


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"MaHoSo": ""}, "MaHoSo"),
        ({"NgayTiepNhan": "2020-08-03"}, "NgayTiepNhan"),
        ({"NgayHenTra": "20201340"}, "NgayHenTra"),
        ({"ThongTinNguoiNop": None}, "ThongTinNguoiNop"),
        ({"ThongTinNguoiNop__NgaySinh": "12/04/1935"}, "ThongTinNguoiNop.NgaySinh"),
        ({"ThongTinNguoiNop__MaXa": ""}, "ThongTinNguoiNop.MaXa"),
        ({"ThongTinNguoiNop__GioiTinh": "3"}, "ThongTinNguoiNop.GioiTinh"),
        ({"DeNghiTroCap": {}}, "DeNghiTroCap.LoaiDoiTuong"),
        ({"TaiLieuNop": "f1"}, "TaiLieuNop"),
    ],
)
async def test_unrenderable_dossiers_are_permanent_and_name_the_field(
    connector: RegistryConnector, changes: dict[str, Any], named: str
) -> None:
    with pytest.raises(PermanentError) as info:
        await connector.render(dossier_message(dossier(**changes)))
    assert info.value.reason.startswith(f"{named}: ")
    assert_no_pii(info.value.reason)


async def test_xsd_failure_before_sending_is_permanent_and_masked(
    connector: RegistryConnector,
) -> None:
    data = dossier(ThongTinNguoiNop__SoDinhDanh="00613500123")
    with pytest.raises(PermanentError) as info:
        await connector.render(dossier_message(data))
    assert info.value.reason == "XSD: soDinhDanh: CCCD phải có 12 chữ số (a CCCD has 12 digits)"


async def test_control_characters_are_permanent(connector: RegistryConnector) -> None:
    data = dossier(ThongTinNguoiNop__DiaChiChiTiet="Thôn\x00Bản")
    with pytest.raises(PermanentError, match="XML"):
        await connector.render(dossier_message(data))


async def test_other_events_are_permanent_naming_the_event(connector: RegistryConnector) -> None:
    with pytest.raises(PermanentError, match=r"payment\.list"):
        await connector.render(Message(event="payment.list", external_id="x", payload={}))


# -- rendering DeNghiTamDung ---------------------------------------------------------------


async def test_suspension_candidates_render_the_formats_example(
    connector: RegistryConnector,
) -> None:
    message = Message(
        event="payment.suspension_candidates",
        external_id="2020-11/02053",
        payload={
            "ky": "2020-11",
            "maXa": "02053",
            "doiTuong": [
                {
                    "soDinhDanh": "006080004321",
                    "hoTen": "Lò Văn Pha",
                    "cacThangChuaNhan": ["2020-09", "2020-10", "2020-11"],
                }
            ],
        },
    )
    request = await connector.render(message)
    assert request.url == "http://reg.test/api/de-nghi-tam-dung"
    assert request.headers == {"Content-Type": "application/xml"}
    assert request.context == {
        "kind": "de-nghi-tam-dung",
        "ky": "2020-11",
        "maXa": "02053",
        "soDong": 1,
    }
    expected = parse_xml(DE_NGHI_TAM_DUNG_EXAMPLE.encode())
    assert canonical(parse_xml(request.body)) == canonical(expected)


async def test_empty_suspension_list_is_permanent(connector: RegistryConnector) -> None:
    message = Message(
        event="payment.suspension_candidates",
        external_id="x",
        payload={"ky": "2020-11", "maXa": "02053", "doiTuong": []},
    )
    with pytest.raises(PermanentError, match="doiTuong"):
        await connector.render(message)


# -- parsing decisions ---------------------------------------------------------------------


async def test_parse_the_formats_decision(connector: RegistryConnector) -> None:
    result = await connector.parse(QUYET_DINH_EXAMPLE.encode(), "application/xml")
    assert result.rejected == []
    [message] = result.messages
    assert message.event == "decision.issued"
    assert message.external_id == message.ref == "215/QĐ-UBND"
    assert message.dossier_key == "000.00.12.H06-200803-0001"
    assert message.payload == {
        "so": "215/QĐ-UBND",
        "ngayKy": "2020-08-20",
        "loai": "huong",
        "maHoSo": "000.00.12.H06-200803-0001",
        "soDinhDanh": "006135001234",
        "hoTen": "Hoàng Thị Lan",
        "ngaySinh": "1935-04-12",
        "maXa": "02053",
        "loaiDoiTuong": "5.5a",
        "heSo": "2.0",
        "mucChuan": "270000",
        "soTienThang": "540000",
        "tuThang": "2020-08",
        "nhanTien": "tai_nha",
    }


async def test_nhan_tien_defaults_to_tai_diem(connector: RegistryConnector) -> None:
    result = await connector.parse(single(quyet_dinh()), "application/xml")
    assert result.messages[0].payload["nhanTien"] == "tai_diem"


async def test_batch_with_one_bad_cccd_beside_a_good_one(connector: RegistryConnector) -> None:
    good = quyet_dinh(so="215/QĐ-UBND")
    bad = quyet_dinh(so="216/QĐ-UBND", soDinhDanh="00613500123", maHoSo="B")
    result = await connector.parse(batch(good, bad), "application/xml")
    assert [m.ref for m in result.messages] == ["215/QĐ-UBND"]
    [rejection] = result.rejected
    assert rejection.ref == "216/QĐ-UBND"
    assert rejection.errors == ("soDinhDanh: CCCD phải có 12 chữ số (a CCCD has 12 digits)",)


async def test_cccd_must_agree_with_birth_date_and_sex(connector: RegistryConnector) -> None:
    result = await connector.parse(
        batch(
            quyet_dinh(so="1/QĐ", ngaySinh="1936-04-12"),
            quyet_dinh(so="2/QĐ", gioiTinh="nam"),
            quyet_dinh(so="3/QĐ", gioiTinh="nu"),
        ),
        "application/xml",
    )
    assert [m.ref for m in result.messages] == ["3/QĐ"]
    errors = {r.ref: r.errors for r in result.rejected}
    assert errors["1/QĐ"] == (
        "soDinhDanh: CCCD không khớp năm sinh 1936 (the CCCD encodes birth year 1935)",
    )
    assert errors["2/QĐ"] == (
        "soDinhDanh: CCCD không khớp giới tính (the CCCD encodes the other sex)",
    )
    assert_no_pii(result.rejected)


@pytest.mark.parametrize("loai", ["huong", "dieu_chinh"])
async def test_grants_and_adjustments_need_amounts(connector: RegistryConnector, loai: str) -> None:
    decision = quyet_dinh(loai=loai, loaiDoiTuong=None, heSo=None, mucChuan=None, soTienThang=None)
    result = await connector.parse(single(decision), "application/xml")
    [rejection] = result.rejected
    assert [e.split(":")[0] for e in rejection.errors] == [
        "loaiDoiTuong",
        "heSo",
        "mucChuan",
        "soTienThang",
    ]
    assert all(f"(required when loai is {loai})" in e for e in rejection.errors)


@pytest.mark.parametrize(
    ("loai", "extra"),
    [
        ("tam_dung", {"lyDo": "Không nhận trợ cấp 3 tháng liên tục"}),
        ("tiep_tuc", {"truyLinh": "true"}),
        ("thoi_huong", {"lyDo": "Chuyển khỏi địa bàn"}),
    ],
)
async def test_suspend_resume_stop_need_only_who_which_and_from(
    connector: RegistryConnector, loai: str, extra: dict[str, str]
) -> None:
    decision = quyet_dinh(
        loai=loai, loaiDoiTuong=None, heSo=None, mucChuan=None, soTienThang=None, **extra
    )
    result = await connector.parse(single(decision), "application/xml")
    assert result.rejected == []
    payload = result.messages[0].payload
    assert payload["loai"] == loai
    assert "heSo" not in payload
    assert all(payload[k] == v for k, v in extra.items())


async def test_optional_attributes_pass_through_as_strings(connector: RegistryConnector) -> None:
    cs_carer = make_cccd("006", 1970, True, 5)
    decision = quyet_dinh(
        soDinhDanh=cs_carer,
        ngaySinh="1970-02-02",
        gioiTinh="nu",
        loaiDoiTuong="cs",
        heSo="1.5",
        mucChuan="360000",
        soTienThang="540000",
        ngaySinhNguoiDuocChamSoc="2021-05-01",
        ngayKy="2021-08-01",
        tuThang="2021-08",
    )
    result = await connector.parse(single(decision), "text/xml")
    assert result.messages[0].payload["ngaySinhNguoiDuocChamSoc"] == "2021-05-01"
    assert all(isinstance(v, str) for v in result.messages[0].payload.values())


async def test_rejection_without_a_number_is_question_mark(connector: RegistryConnector) -> None:
    result = await connector.parse(single(quyet_dinh(so=None)), "application/xml")
    [rejection] = result.rejected
    assert rejection.ref == "?"
    assert rejection.errors[0].startswith("so: thiếu thuộc tính bắt buộc")


async def test_xsd_errors_never_show_personal_data(connector: RegistryConnector) -> None:
    decision = quyet_dinh(hoTen=FULL_NAME * 20, soDinhDanh="0061350012345", ngaySinh="x")
    result = await connector.parse(single(decision), "application/xml")
    assert result.rejected
    assert_no_pii(result.rejected)
    assert "0061350012345" not in repr(result.rejected)


async def test_unexpected_element_in_a_batch_is_rejected_alone(
    connector: RegistryConnector,
) -> None:
    result = await connector.parse(batch(quyet_dinh(), '<Khac so="9"/>'), "application/xml")
    assert len(result.messages) == 1
    assert result.rejected[0].ref == "9"
    assert "Khac" in result.rejected[0].errors[0]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"", "XML"),
        (b"{}", "XML"),
        (b'<QuyetDinh so="1"/>', "namespace"),  # no namespace
        (f'<HoSoTroCap xmlns="{NS}"/>'.encode(), "QuyetDinh"),
        (batch(), "no QuyetDinh"),
    ],
)
async def test_unreadable_bodies_are_bad_requests(
    connector: RegistryConnector, body: bytes, expected: str
) -> None:
    with pytest.raises(BadRequest, match=expected):
        await connector.parse(body, "application/xml")


HOSTILE = {
    "doctype": b"<!DOCTYPE QuyetDinh><QuyetDinh/>",
    "billion_laughs": b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">'
    + b"".join(
        b'<!ENTITY %s "%s">' % (bytes([98 + i]), (b"&" + bytes([97 + i]) + b";") * 10)
        for i in range(9)
    )
    + b']><QuyetDinh so="&j;"/>',
    "external_entity": b'<!DOCTYPE q [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    b'<QuyetDinh xmlns="urn:vn:btxh:registry:1" so="&x;"/>',
    "deep": b"<a>" * 10_000 + b"</a>" * 10_000,
    "50MB": b'<QuyetDinh so="' + b"9" * (50 * 1024 * 1024) + b'"/>',
    "huge_attribute": b'<QuyetDinh xmlns="urn:vn:btxh:registry:1" so="'
    + b"9" * 10_485_000
    + b'"/>',
}


@pytest.mark.parametrize("name", list(HOSTILE))
async def test_hostile_xml_is_a_bad_request_fast(connector: RegistryConnector, name: str) -> None:
    started = time.perf_counter()
    with pytest.raises(BadRequest, match=r"^XML bị từ chối \(XML refused\): "):
        await connector.parse(HOSTILE[name], "application/xml")
    assert time.perf_counter() - started < 1.0


def test_connector_declares_xml_content_types() -> None:
    assert RegistryConnector.content_types == ("application/xml", "text/xml")


# -- classifying answers -------------------------------------------------------------------


def ho_so_request() -> OutboundRequest:
    return OutboundRequest(
        method="POST",
        url="http://reg.test/api/ho-so",
        context={"kind": "ho-so", "maHoSo": "000.00.12.H06-200803-0001", "lanCapNhat": 2},
    )


def answer(xml: str) -> bytes:
    return (
        xml.replace("<Loi ", f'<Loi xmlns="{NS}" ')
        .replace("<BienNhan ", f'<BienNhan xmlns="{NS}" ')
        .replace("<TiepNhan ", f'<TiepNhan xmlns="{NS}" ')
        .encode()
    )


ACCEPTED_PAYLOAD = {"MaHoSo": "000.00.12.H06-200803-0001", "lanCapNhat": 2}


def test_201_is_delivered_with_an_accepted_follow_up(connector: RegistryConnector) -> None:
    body = answer('<BienNhan maHoSo="000.00.12.H06-200803-0001" soBienNhan="BN-7"/>')
    receipt = connector.classify_response(201, body, {}, ho_so_request())
    assert receipt.status == 201
    assert receipt.detail == "biên nhận số BN-7 / receipt BN-7"
    assert receipt.bytes_received == len(body)
    [follow_up] = receipt.follow_ups
    assert follow_up.event == "dossier.accepted"
    assert follow_up.external_id == follow_up.dossier_key == "000.00.12.H06-200803-0001"
    assert follow_up.payload == ACCEPTED_PAYLOAD


def test_409_is_delivered_with_the_identical_follow_up(connector: RegistryConnector) -> None:
    first = connector.classify_response(
        201, answer('<BienNhan maHoSo="x" soBienNhan="1"/>'), {}, ho_so_request()
    )
    again = connector.classify_response(
        409, answer('<Loi ma="da_nhan">x</Loi>'), {}, ho_so_request()
    )
    assert again.status == 409
    assert again.follow_ups[0].payload == first.follow_ups[0].payload
    assert again.follow_ups[0].content_hash == first.follow_ups[0].content_hash


@pytest.mark.parametrize("body", [b"", b"garbage", b"<!DOCTYPE x><x/>", answer('<Loi ma="x"/>')])
def test_garbage_answer_to_201_is_still_delivered(
    connector: RegistryConnector, body: bytes
) -> None:
    receipt = connector.classify_response(201, body, {}, ho_so_request())
    assert receipt.status == 201
    assert "unreadable" in receipt.detail
    assert receipt.follow_ups[0].payload == ACCEPTED_PAYLOAD


def test_400_is_a_permanent_gateway_bug(connector: RegistryConnector) -> None:
    body = answer('<Loi ma="xsd">lanCapNhat: giá trị không hợp lệ</Loi>')
    with pytest.raises(PermanentError) as info:
        connector.classify_response(400, body, {}, ho_so_request())
    assert info.value.status == 400
    assert info.value.reason == (
        "phần mềm quản lý từ chối tài liệu vì không hợp lệ (lỗi của gateway) / "
        "registry refused the document as invalid (gateway bug): lanCapNhat: giá trị không hợp lệ"
    )
    assert info.value.follow_ups == []


def test_422_is_answered_with_a_refused_follow_up(connector: RegistryConnector) -> None:
    body = answer('<Loi ma="tuoi">Đối tượng chưa đủ 60 tuổi</Loi>')
    receipt = connector.classify_response(422, body, {}, ho_so_request())
    assert receipt.status == 422
    assert "Đối tượng chưa đủ 60 tuổi" in receipt.detail
    [refused] = receipt.follow_ups
    assert refused.event == "dossier.refused"
    assert refused.dossier_key == "000.00.12.H06-200803-0001"
    assert refused.payload == {
        "MaHoSo": "000.00.12.H06-200803-0001",
        "lanCapNhat": 2,
        "ma": "tuoi",
        "lyDo": "Đối tượng chưa đủ 60 tuổi",
    }


def test_422_without_a_readable_reason_still_refuses(connector: RegistryConnector) -> None:
    receipt = connector.classify_response(422, b"oops", {}, ho_so_request())
    assert receipt.follow_ups[0].payload["ma"] == ""
    assert "unreadable" in receipt.follow_ups[0].payload["lyDo"]


@pytest.mark.parametrize("status", [500, 502, 503, 408, 429])
def test_server_errors_are_retryable(connector: RegistryConnector, status: int) -> None:
    with pytest.raises(RetryableError) as info:
        connector.classify_response(status, b"", {"Retry-After": "7"}, ho_so_request())
    assert info.value.retry_after == 7.0


@pytest.mark.parametrize("status", [401, 403, 404, 413, 415])
def test_other_client_errors_are_permanent(connector: RegistryConnector, status: int) -> None:
    with pytest.raises(PermanentError):
        connector.classify_response(status, b"", {}, ho_so_request())


def suspension_request() -> OutboundRequest:
    return OutboundRequest(
        method="POST",
        url="http://reg.test/api/de-nghi-tam-dung",
        context={"kind": "de-nghi-tam-dung", "ky": "2020-11", "maXa": "02053", "soDong": 1},
    )


def test_suspension_answers(connector: RegistryConnector) -> None:
    ok = connector.classify_response(
        200, answer('<TiepNhan ky="2020-11" maXa="02053" soDong="1"/>'), {}, suspension_request()
    )
    assert ok.detail == (
        "đã tiếp nhận đề nghị kỳ 2020-11 xã 02053: 1 dòng / "
        "request for 2020-11, commune 02053 received: 1 lines"
    )
    assert ok.follow_ups == []
    again = connector.classify_response(409, b"", {}, suspension_request())
    assert again.status == 409
    for status in (400, 422):
        with pytest.raises(PermanentError) as info:
            connector.classify_response(
                status, answer('<Loi ma="k">lý do</Loi>'), {}, suspension_request()
            )
        assert info.value.status == status
        assert "lý do" in info.value.reason
    with pytest.raises(RetryableError):
        connector.classify_response(503, b"", {}, suspension_request())


def test_unknown_requests_fall_back_to_http_semantics(connector: RegistryConnector) -> None:
    plain = OutboundRequest(method="POST", url="http://x")
    assert connector.classify_response(204, b"", {}, plain).status == 204
    with pytest.raises(PermanentError):
        connector.classify_response(422, b"", {}, plain)


# -- the simulator's own amount rules ------------------------------------------------------


@pytest.mark.parametrize(
    ("month", "level"),
    [
        (date(2020, 8, 1), 270_000),
        (date(2021, 6, 1), 270_000),
        (date(2021, 7, 1), 360_000),
        (date(2024, 6, 1), 360_000),
        (date(2024, 7, 1), 500_000),
    ],
)
def test_standard_level_by_month(month: date, level: int) -> None:
    assert sim_rules.standard_level(month) == level


def person(code: str, born: date, level: str = "") -> sim_rules.Person:
    return sim_rules.Person(
        ma_ho_so="X",
        so_dinh_danh=make_cccd("006", born.year, False, 1),
        ho_ten="A",
        ngay_sinh=born,
        gioi_tinh=None,
        ma_xa="02053",
        loai_doi_tuong=code,
        muc_do_khuyet_tat=level,
        nhan_tien=None,
    )


@pytest.mark.parametrize(
    ("code", "born", "level", "month", "heso"),
    [
        ("5.5a", date(1935, 4, 12), "", date(2020, 8, 1), "2.0"),
        ("5.5a", date(1940, 8, 12), "", date(2020, 8, 1), "1.5"),  # 80 this month
        ("5.5a", date(1940, 8, 12), "", date(2020, 9, 1), "2.0"),  # from the month after
        ("5.1", date(2017, 3, 3), "", date(2021, 3, 1), "2.5"),
        ("5.1", date(2017, 3, 3), "", date(2021, 4, 1), "1.5"),
        ("5.3", date(2010, 1, 1), "", date(2021, 4, 1), "2.0"),
        ("5.6", date(1980, 1, 1), "nang", date(2021, 4, 1), "1.5"),
        ("5.6", date(1980, 1, 1), "dac_biet_nang", date(2021, 4, 1), "2.0"),
        ("5.6", date(2010, 1, 1), "nang", date(2021, 4, 1), "2.0"),
        ("5.6", date(1950, 1, 1), "dac_biet_nang", date(2021, 4, 1), "2.5"),
        ("5.5d", date(1950, 1, 1), "", date(2021, 4, 1), "3.0"),
        ("5.8", date(1990, 1, 1), "", date(2021, 4, 1), "1.5"),
        ("cs", date(1990, 1, 1), "", date(2021, 4, 1), "1.0"),
    ],
)
def test_simulator_coefficients(code: str, born: date, level: str, month: date, heso: str) -> None:
    assert sim_rules.coefficient(person(code, born, level), month) == Decimal(heso)


def test_amounts_round_half_up() -> None:
    assert sim_rules.monthly_amount(270_000, Decimal("2.0")) == 540_000
    assert sim_rules.monthly_amount(333_333, Decimal("1.5")) == 500_000  # 499999.5 -> up


@pytest.mark.parametrize(
    ("code", "born", "received", "ma"),
    [
        ("5.5a", date(1990, 1, 1), date(2020, 8, 3), "tuoi"),
        ("5.5a", date(1960, 8, 31), date(2020, 8, 3), None),  # 60 in this month
        ("5.5b", date(1940, 1, 1), date(2020, 8, 3), "chua_hieu_luc"),
        ("5.5c", date(1945, 1, 1), date(2021, 8, 3), "tuoi"),
        ("5.1", date(2000, 1, 1), date(2021, 8, 3), "tuoi"),
        ("5.6", date(2000, 1, 1), date(2021, 8, 3), "thieu_muc_do"),
        ("5.8", date(2000, 1, 1), date(2021, 8, 3), None),
    ],
)
def test_simulator_refusals(code: str, born: date, received: date, ma: str | None) -> None:
    outcome = sim_rules.refusal(person(code, born), received)
    assert (outcome[0] if outcome else None) == ma
