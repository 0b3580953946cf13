"""The connector contract suite (gateway.testing.contract) run for every bundled connector,
each against its own simulator (http_json against the recording sink), with samples taken
from FORMATS.md as the plugins' own tests use them."""

from __future__ import annotations

import copy
import json
from typing import Any

import aiohttp

from gateway import hookimpl
from gateway.model import Message, OutboundRequest, Receipt
from gateway.testing.contract import (
    ConnectorContract,
    ContractSamples,
    InboundSample,
    sink_simulator,
)
from plugins.http_json import HttpJsonConnector

DOSSIER: dict[str, Any] = {
    "MaHoSo": "000.00.12.H06-200803-0001",
    "MaTTHC": "1.001776",
    "TenTTHC": "Thực hiện, điều chỉnh, thôi hưởng trợ cấp xã hội hàng tháng",
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
            "DuongDanTaiTepTin": "https://motcua.example/f1",
        }
    ],
}
MA_HO_SO = DOSSIER["MaHoSo"]

QUYET_DINH = """\
<QuyetDinh xmlns="urn:vn:btxh:registry:1" so="215/QĐ-UBND" ngayKy="2020-08-20"
           loai="huong" maHoSo="000.00.12.H06-200803-0001" soDinhDanh="006135001234"
           hoTen="Hoàng Thị Lan" ngaySinh="1935-04-12" maXa="02053" loaiDoiTuong="5.5a" heSo="2.0"
           mucChuan="270000" soTienThang="540000" tuThang="2020-08" nhanTien="tai_nha"/>
"""

KET_QUA_CHI_TRA = """\
<KetQuaChiTra xmlns="urn:vn:btxh:chitra:1" ky="2020-09" maXa="02053">
  <Dong soDinhDanh="006135001234" trangThai="da_chi" soTien="1080000" ngayChi="2020-09-05"
        nhanTien="tai_nha"/>
  <Dong soDinhDanh="006080004321" trangThai="chua_chi" soTien="0" lyDo="vắng nhà"/>
</KetQuaChiTra>
"""

PAYMENT_LINES: list[dict[str, Any]] = [
    {
        "soDinhDanh": "006135001234",
        "hoTen": "Hoàng Thị Lan",
        "loaiDoiTuong": "5.5a",
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
]


class TestHttpJsonContract(ConnectorContract):
    connector_name = "http_json"
    simulator = sink_simulator
    samples = ContractSamples(
        inbound=[
            InboundSample(json.dumps({"id": "a-1", "key": "k1", "n": 1}).encode()),
            InboundSample(json.dumps({"data": [{"id": 1}, {"id": 2}]}).encode(), messages=2),
        ],
        outbound=[Message("message.received", "a-1", {"id": "a-1", "tên": "Hoàng Thị Lan"})],
        system={"path": "/receive"},
    )


class TestDistrictRegistryContract(ConnectorContract):
    connector_name = "district_registry"
    samples = ContractSamples(
        inbound=[InboundSample(QUYET_DINH.encode(), "application/xml", messages=1)],
        outbound=[
            Message(
                "dossier.received",
                MA_HO_SO,
                {"isUpdating": False, "dossier": copy.deepcopy(DOSSIER)},
            )
        ],
        simulator_extra={"refuse_rate": 0.0, "appraisal_delay": 60.0},
        # 409: the registry already has this revision; 422: refused on its merits, routed
        # back to the desk as a follow-up (both are the registry's answer, not a failure)
        delivered_statuses=frozenset({409, 422}),
    )


class TestPostOfficeContract(ConnectorContract):
    connector_name = "post_office"
    samples = ContractSamples(
        inbound=[InboundSample(KET_QUA_CHI_TRA.encode(), "application/xml")],
        outbound=[
            Message(
                "payment.list",
                "2020-09:02053:1",
                {
                    "ky": "2020-09",
                    "maXa": "02053",
                    "lanGui": 1,
                    "lapLuc": "2020-08-24T10:00:00+07:00",
                    "lines": copy.deepcopy(PAYMENT_LINES),
                },
            )
        ],
        simulator_extra={"payout_delay": 600.0},
        delivered_statuses=frozenset({409}),  # this lanGui was already received
    )


async def _load_dossier(session: aiohttp.ClientSession, url: str) -> None:
    async with session.post(f"{url}/_sim/dossiers", json={"data": [DOSSIER]}) as resp:
        assert resp.status == 200, await resp.text()


class TestOneStopShopContract(ConnectorContract):
    connector_name = "one_stop_shop"
    samples = ContractSamples(
        inbound=[
            InboundSample(
                json.dumps({"isUpdating": "False", "data": [DOSSIER]}, ensure_ascii=False).encode()
            )
        ],
        outbound=[Message("dossier.accepted", MA_HO_SO, {"MaHoSo": MA_HO_SO, "lanCapNhat": 1})],
        system={"username": "gateway", "password": "secret", "madonvi": "000.00.12.H06"},
        simulator_extra={"rate": 0},
        prepare=_load_dossier,
    )


# -- the suite has teeth: a connector that loses the key fails it ---------------------------


class _KeyLosingConnector(HttpJsonConnector):
    async def send(self, session: aiohttp.ClientSession, request: OutboundRequest) -> Receipt:
        request.headers.pop("Idempotency-Key", None)
        return await super().send(session, request)


class _KeyLosingPlugin:
    @hookimpl
    def gateway_register_connectors(self, register: Any) -> None:
        register("key_losing", _KeyLosingConnector)


class _KeyLosingContract(ConnectorContract):  # not collected: used by the test below
    connector_name = "key_losing"
    simulator = sink_simulator
    samples = TestHttpJsonContract.samples
    extra_plugins = (("key_losing", _KeyLosingPlugin()),)


async def test_a_connector_that_drops_the_idempotency_key_fails_the_contract() -> None:
    runner = _KeyLosingContract.contract_runner()
    assert runner is _KeyLosingContract.contract_runner()  # one per class
    delivered = await runner.run("outbound_samples_delivered")
    assert delivered.status == "fail"
    assert "never saw Idempotency-Key 'contract-delivered-0'" in delivered.reason
    resend = await runner.run("idempotency_key_unchanged_across_resends")
    assert resend.status == "fail" and "expected 'contract-resend-0'" in resend.reason
    assert (await runner.run("classify_http_503")).status == "pass"
    assert (await runner.run("no_such_check")).status == "fail"
