"""Rendering progress steps and results for the adapter (FORMATS.md §1.2); options; hooks."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pluggy
import pytest

import plugins.one_stop_shop as one_stop_shop
from gateway import PROJECT_NAME, hookspecs
from gateway.config import SystemConfig, config_from_dict
from gateway.model import VN_TZ, Message, PermanentError, now_vn
from plugins.one_stop_shop import OneStopShopConnector, OneStopShopOptions
from plugins.one_stop_shop import results as res
from plugins.one_stop_shop.wire import add_working_days, parse_timestamp

MA = "000.00.12.H06-200803-0001"
DECISION = {
    "so": "215/QĐ-UBND",
    "ngayKy": "2020-08-20",
    "loai": "huong",
    "maHoSo": MA,
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


def make_connector(**options: Any) -> OneStopShopConnector:
    settings: dict[str, Any] = {
        "username": "gateway",
        "password": "secret",
        "madonvi": "000.00.12.H06",
        **options,
    }
    system = SystemConfig(
        name="motcua", plugin="one_stop_shop", base_url="http://127.0.0.1:9/adapter/", **settings
    )
    return OneStopShopConnector(system)


def body_of(request_body: bytes) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(request_body)
    return decoded


def assert_recent(stamp: str) -> None:
    moment = parse_timestamp(stamp)
    assert abs(moment - now_vn()) < timedelta(minutes=1)


async def test_accepted_renders_progress_step_4() -> None:
    connector = make_connector()
    message = Message("dossier.accepted", MA, {"MaHoSo": MA, "lanCapNhat": 1})

    request = await connector.render(message)

    assert (request.method, request.url) == ("POST", "http://127.0.0.1:9/adapter/integration")
    call = body_of(request.body)
    assert call["madonvi"] == "000.00.12.H06"
    assert call["service"] == "CapNhatTienDoHoSoMC"
    assert "session" not in call  # added at send time, never stored
    [step] = call["data"]
    assert step["MaHoSo"] == MA
    assert step["TrangThai"] == "4"
    assert step["NoiDungXuLy"] == "Phòng LĐTBXH đã tiếp nhận hồ sơ"
    assert step["NguoiXuLy"] and step["ChucDanh"] and step["PhongBanXuLy"]
    assert_recent(step["ThoiDiemXuLy"])
    assert step["NgayBatDau"] == step["ThoiDiemXuLy"]
    due = add_working_days(parse_timestamp(step["NgayBatDau"]), 15)
    assert step["NgayKetThucTheoQuyDinh"] == due.strftime("%Y%m%d%H%M%S")
    assert request.context == {
        "service": "CapNhatTienDoHoSoMC",
        "kind": "progress",
        "MaHoSo": MA,
        "TrangThai": "4",
    }


async def test_accepted_uses_the_appointment_date_when_the_message_has_it() -> None:
    message = Message(
        "dossier.accepted", MA, {"MaHoSo": MA, "lanCapNhat": 2, "NgayHenTra": "20200824170000"}
    )
    request = await make_connector().render(message)
    assert body_of(request.body)["data"][0]["NgayKetThucTheoQuyDinh"] == "20200824170000"


async def test_officer_fields_come_from_the_options() -> None:
    connector = make_connector(nguoi_xu_ly="Triệu Thị Mai", chuc_danh="Trưởng phòng")
    request = await connector.render(Message("dossier.accepted", MA, {"MaHoSo": MA}))
    step = body_of(request.body)["data"][0]
    assert (step["NguoiXuLy"], step["ChucDanh"]) == ("Triệu Thị Mai", "Trưởng phòng")


async def test_refused_renders_supplement_requested_with_the_reason() -> None:
    payload = {"MaHoSo": MA, "lanCapNhat": 1, "ma": "tuoi", "lyDo": "Chưa đủ 80 tuổi"}
    request = await make_connector().render(Message("dossier.refused", MA, payload))
    step = body_of(request.body)["data"][0]
    assert step["TrangThai"] == "5"
    assert step["NoiDungXuLy"] == "Chưa đủ 80 tuổi"


async def test_refused_without_a_reason_names_the_code() -> None:
    payload = {"MaHoSo": MA, "lanCapNhat": 1, "ma": "xsd", "lyDo": ""}
    request = await make_connector().render(Message("dossier.refused", MA, payload))
    assert body_of(request.body)["data"][0]["NoiDungXuLy"] == "Hồ sơ cần bổ sung (mã xsd)"


async def test_decision_renders_the_result_patch() -> None:
    connector = make_connector(result_url="https://btxh.example/qd/{so}")
    request = await connector.render(Message("decision.issued", "215/QĐ-UBND", DECISION))

    call = body_of(request.body)
    assert call["service"] == "DongBoHoSoMC"
    assert call["isUpdating"] == "True"
    [patch] = call["data"]
    assert patch["MaHoSo"] == MA
    assert patch["TrangThaiHoSo"] == "10"
    assert patch["NgayKetThucXuLy"] == "20200820170000"  # signed that day, end of work
    assert_recent(patch["NgayTra"])
    assert patch["DanhSachGiayToKetQua"] == [
        {
            "TenGiayTo": "Quyết định 215/QĐ-UBND",
            "MaThanhPhanHoSo": "KQ",
            "GiayToId": "215/QĐ-UBND",
            "DuongDanTepTinKetQua": "https://btxh.example/qd/215%2FQ%C4%90-UBND",
        }
    ]
    assert request.context["kind"] == "result"
    assert request.context["GiayToId"] == "215/QĐ-UBND"


async def test_decision_with_status_9_leaves_ngay_tra_empty() -> None:
    request = await make_connector(result_status="9").render(
        Message("decision.issued", "215/QĐ-UBND", DECISION)
    )
    patch = body_of(request.body)["data"][0]
    assert (patch["TrangThaiHoSo"], patch["NgayTra"]) == ("9", "")


async def test_decision_signed_today_never_ends_in_the_future() -> None:
    today = {**DECISION, "ngayKy": now_vn().date().isoformat()}
    request = await make_connector().render(Message("decision.issued", "1", today))
    ended = parse_timestamp(body_of(request.body)["data"][0]["NgayKetThucXuLy"])
    assert ended <= now_vn()


@pytest.mark.parametrize(
    ("event", "payload", "reason"),
    [
        ("decision.issued", {**DECISION, "so": ""}, "no so"),
        ("decision.issued", {k: v for k, v in DECISION.items() if k != "maHoSo"}, "no maHoSo"),
        ("dossier.accepted", {"lanCapNhat": 1}, "no MaHoSo"),
        ("dossier.accepted", ["not", "an", "object"], "payload must be a JSON object"),
        ("payment.list", {}, "cannot send event 'payment.list'"),
    ],
)
async def test_messages_that_cannot_be_rendered_are_permanent(
    event: str, payload: Any, reason: str
) -> None:
    with pytest.raises(PermanentError, match=reason):
        await make_connector().render(Message(event, MA, payload))


async def test_missing_madonvi_is_a_permanent_config_error() -> None:
    connector = make_connector(madonvi="")
    with pytest.raises(PermanentError, match=r"systems\.motcua\.madonvi is not set"):
        await connector.render(Message("dossier.accepted", MA, {"MaHoSo": MA}))


def test_options_defaults_and_secret() -> None:
    connector = make_connector()
    options = connector.options
    assert isinstance(options, OneStopShopOptions)
    assert (options.poll, options.poll_path) == (False, "/ho-so")
    assert options.password is not None
    assert options.password.get_secret_value() == "secret"
    assert "secret" not in repr(options)


def test_unknown_option_is_refused_naming_the_key() -> None:
    with pytest.raises(ValueError, match=r"systems\.motcua\.usrname: unknown key"):
        make_connector(usrname="gateway")


def test_options_come_from_the_config_file_shape() -> None:
    config = config_from_dict(
        {
            "systems": {
                "motcua": {
                    "plugin": "one_stop_shop",
                    "base_url": "https://motcua.example.gov.vn/adapter",
                    "username": "gateway",
                    "password": "p",
                    "madonvi": "000.00.12.H06",
                    "poll": True,
                }
            }
        }
    )
    connector = OneStopShopConnector(config.systems["motcua"])
    assert connector.options.poll is True
    assert connector.name == "motcua"


# -- results helpers -----------------------------------------------------------------------


def dossier(**fields: Any) -> dict[str, Any]:
    return {
        "MaHoSo": MA,
        "TrangThaiHoSo": "4",
        "ChuHoSo": "Hoàng Thị Lan",
        "ThongTinNguoiNop": {"SoDinhDanh": "006135001234"},
        **fields,
    }


def test_has_result_needs_a_result_status_and_the_decision_number() -> None:
    doc = {"GiayToId": "215/QĐ-UBND"}
    assert res.has_result(dossier(TrangThaiHoSo="10", DanhSachGiayToKetQua=[doc]), "215/QĐ-UBND")
    assert res.has_result(dossier(TrangThaiHoSo="9", DanhSachGiayToKetQua=[doc]), "215/QĐ-UBND")
    assert not res.has_result(dossier(TrangThaiHoSo="4", DanhSachGiayToKetQua=[doc]), "215/QĐ-UBND")
    assert not res.has_result(dossier(TrangThaiHoSo="10", DanhSachGiayToKetQua=[doc]), "216/QĐ")
    assert not res.has_result(dossier(TrangThaiHoSo="10", DanhSachGiayToKetQua="x"), "215/QĐ-UBND")


def test_merge_keeps_the_dossier_and_earlier_results() -> None:
    now = datetime(2020, 9, 1, 9, 0, tzinfo=VN_TZ)
    options = OneStopShopOptions()
    earlier = {"TenGiayTo": "Quyết định 100/QĐ", "GiayToId": "100/QĐ"}
    patch = res.result_patch(DECISION, options, now)

    merged = res.merge_result(dossier(DanhSachGiayToKetQua=[earlier]), patch)

    assert merged["ChuHoSo"] == "Hoàng Thị Lan"
    assert merged["TrangThaiHoSo"] == "10"
    assert merged["NgayTra"] == "20200901090000"
    assert [d["GiayToId"] for d in merged["DanhSachGiayToKetQua"]] == ["100/QĐ", "215/QĐ-UBND"]
    again = res.merge_result(merged, patch)
    assert [d["GiayToId"] for d in again["DanhSachGiayToKetQua"]] == ["100/QĐ", "215/QĐ-UBND"]


def test_decision_about_someone_else_is_refused_with_masked_ids() -> None:
    other = {**DECISION, "soDinhDanh": "006080004321", "hoTen": "Lò Văn Pha"}
    holder = dossier(
        ThongTinNguoiNop={"SoDinhDanh": "006135001234", "TenNguoiNop": "Hoàng Thị Lan"}
    )
    with pytest.raises(PermanentError) as info:
        res.check_same_person(holder, other)
    reason = str(info.value)
    assert "********4321 L. V. P." in reason and "********1234 H. T. L." in reason
    assert "006080004321" not in reason and "006135001234" not in reason
    assert "Lò Văn Pha" not in reason and "Hoàng Thị Lan" not in reason
    res.check_same_person(dossier(), DECISION)  # the same person passes


# -- plugin registration -------------------------------------------------------------------


def test_hooks_register_the_connector_and_the_simulator() -> None:
    pm = pluggy.PluginManager(PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    pm.register(one_stop_shop)
    try:
        connectors: dict[str, Any] = {}
        simulators: dict[str, Any] = {}
        pm.hook.gateway_register_connectors(register=connectors.__setitem__)
        pm.hook.gateway_register_simulators(register=simulators.__setitem__)
        pm.check_pending()
    finally:
        pm.unregister(one_stop_shop)
    assert connectors == {"one_stop_shop": OneStopShopConnector}
    assert simulators == {"one_stop_shop": one_stop_shop.create_one_stop_shop_simulator}
