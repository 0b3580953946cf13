"""Personal data masking (DESIGN.md §6): CCCD numbers and names never reach a log line,
an error message or an export in full."""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterator

import pytest
import structlog

from gateway.log import configure_logging, get_logger, mask_id, mask_name, mask_payload, mask_text

CCCD = "006135001234"
NAME = "Hoàng Thị Lan"


def nfd(text: str) -> str:
    return unicodedata.normalize("NFD", text)


# -- mask_text ----------------------------------------------------------------------------------


def test_twelve_digit_run_is_masked() -> None:
    assert mask_text(f"CCCD {CCCD} không hợp lệ") == "CCCD ********1234 không hợp lệ"


def test_every_twelve_digit_run_is_masked() -> None:
    text = f"{CCCD},006080004321;x006135009999y"
    assert mask_text(text) == "********1234,********4321;x********9999y"


@pytest.mark.parametrize("digits", ["1061350012", "0061350012345", "20200803081500"])
def test_ten_thirteen_and_fourteen_digit_runs_are_left_alone(digits: str) -> None:
    # a timestamp yyyyMMddHHmmss, epoch seconds and 13-digit codes are not CCCDs
    assert mask_text(f"ref {digits} end") == f"ref {digits} end"


def test_an_eleven_digit_run_from_0_is_masked_like_a_phone_number() -> None:
    # issue 14 (12): phone numbers are personal data; an 11-digit run starting with 0 has
    # the shape of one (and of a CCCD with a digit missing): masked either way
    assert mask_text("ref 00613500123 end") == "ref ********123 end"


def test_text_without_digits_is_unchanged() -> None:
    assert mask_text(NAME) == NAME


def test_mask_id_keeps_the_last_four() -> None:
    assert mask_id(CCCD) == "********1234"
    assert mask_id("123") == "123"


# -- mask_name ----------------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["NFC", "NFD"])
def test_mask_name_gives_initials(form: str) -> None:
    assert mask_name(unicodedata.normalize(form, NAME)) == "H. T. L."


@pytest.mark.parametrize("form", ["NFC", "NFD"])
def test_mask_name_keeps_a_whole_accented_initial(form: str) -> None:
    # in NFD "Ánh" starts with "A" + a combining accent: the initial must be "Á", never a bare
    # combining mark or a split letter
    masked = mask_name(unicodedata.normalize(form, "Đặng Ánh Ơn"))
    assert masked == "Đ. Á. Ơ."
    assert unicodedata.is_normalized("NFC", masked)


def test_mask_name_collapses_spaces() -> None:
    assert mask_name("  Lò   Văn  Pha ") == "L. V. P."
    assert mask_name("") == ""


# -- mask_payload -------------------------------------------------------------------------------


def test_mask_payload_masks_names_and_ids_recursively() -> None:
    payload = {
        "MaHoSo": "000.00.12.H06-200803-0001",
        "ChuHoSo": NAME,
        "ThongTinNguoiNop": {"SoDinhDanh": CCCD, "TenNguoiNop": nfd(NAME), "MaXa": "02053"},
        "DanhSach": [
            {"hoTen": "Lò Văn Pha", "soDinhDanh": "006080004321", "soTienThang": 405000},
            [{"hoTen": "Đặng Ánh"}],
        ],
        "TrichYeu": f"đề nghị của công dân {CCCD}",
        "SoTien": 540000,
        "CoHieuLuc": True,
    }
    masked = mask_payload(payload)
    assert masked["MaHoSo"] == payload["MaHoSo"]
    assert masked["ChuHoSo"] == "H. T. L."
    assert masked["ThongTinNguoiNop"] == {
        "SoDinhDanh": "********1234",
        "TenNguoiNop": "H. T. L.",
        "MaXa": "02053",
    }
    assert masked["DanhSach"][0] == {
        "hoTen": "L. V. P.",
        "soDinhDanh": "********4321",
        "soTienThang": 405000,
    }
    assert masked["DanhSach"][1] == [{"hoTen": "Đ. Á."}]
    assert masked["TrichYeu"] == "đề nghị của công dân ********1234"
    assert masked["SoTien"] == 540000 and masked["CoHieuLuc"] is True
    dumped = json.dumps(masked, ensure_ascii=False)
    assert CCCD not in dumped and "006080004321" not in dumped
    assert "Hoàng" not in dumped and "Lò Văn Pha" not in dumped


def test_mask_payload_does_not_modify_its_input() -> None:
    payload = {"ChuHoSo": NAME, "items": [{"SoDinhDanh": CCCD}]}
    mask_payload(payload)
    assert payload == {"ChuHoSo": NAME, "items": [{"SoDinhDanh": CCCD}]}


def test_mask_payload_of_plain_values() -> None:
    assert mask_payload(f"x {CCCD}") == "x ********1234"
    assert mask_payload([CCCD, 1, None]) == ["********1234", 1, None]
    assert mask_payload(None) is None


# -- log lines ------------------------------------------------------------------------------------


@pytest.fixture
def json_logging() -> Iterator[None]:
    """Restore structlog's configuration after a test that configures it.

    Each test calls ``configure_logging`` itself: pytest swaps ``sys.stderr`` between the
    setup and call phases, and the logger must write to the stream ``capsys`` reads."""
    saved = structlog.get_config()
    try:
        yield
    finally:
        structlog.configure(**saved)


@pytest.mark.usefixtures("json_logging")
def test_log_line_carries_neither_the_name_nor_the_full_number(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("json")
    get_logger("gateway.test").info(
        "dossier_received",
        hoTen=NAME,
        soDinhDanh=CCCD,
        ChuHoSo=nfd(NAME),
        note=f"CCCD {CCCD} trong ghi chú",
        payload={"SoDinhDanh": CCCD, "TenNguoiNop": NAME},
    )
    err = capsys.readouterr().err
    line = err.strip()
    assert "\n" not in line
    record = json.loads(line)
    assert record["event"] == "dossier_received"
    assert record["hoTen"] == "H. T. L." and record["ChuHoSo"] == "H. T. L."
    assert record["soDinhDanh"] == "********1234"
    assert record["note"] == "CCCD ********1234 trong ghi chú"
    assert record["payload"] == {"SoDinhDanh": "********1234", "TenNguoiNop": "H. T. L."}
    for secret in (CCCD, NAME, nfd(NAME), "Hoàng", nfd("Hoàng")):
        assert secret not in err


@pytest.mark.usefixtures("json_logging")
def test_cccd_in_the_event_text_is_masked(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("json")
    get_logger().warning(f"lookup failed for {CCCD}")
    err = capsys.readouterr().err
    assert CCCD not in err and "********1234" in err


@pytest.mark.usefixtures("json_logging")
def test_cccd_in_an_exception_traceback_is_masked(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("json")
    try:
        raise ValueError(f"bad id {CCCD}")
    except ValueError:
        get_logger().error("failed", exc_info=True)
    err = capsys.readouterr().err
    assert "ValueError" in err
    assert CCCD not in err


def test_mask_text_masks_name_and_id_fields_echoed_in_error_bodies() -> None:
    from gateway.log import mask_text

    json_body = (
        'HTTP 422: {"error": "refused", "ChuHoSo": "Hoàng Thị Lan", "soDinhDanh": "006135001234"}'
    )
    xml_body = '<DoiTuong soDinhDanh="006135001234" hoTen="Lò Văn Pha"/>'
    cut = 'HTTP 503: {"hoTen": "Hoàng Th'  # a snippet truncated inside a value
    masked = mask_text(json_body) + mask_text(xml_body) + mask_text(cut)
    for secret in ("Hoàng Thị Lan", "Lò Văn Pha", "006135001234", "Hoàng Th"):
        assert secret not in masked
    assert '"ChuHoSo": "H. T. L."' in masked and 'hoTen="L. V. P."' in masked
    assert '"error": "refused"' in masked  # other fields untouched


# -- issue 14 (12): more personal data, more ways of writing it ---------------------------------


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("CCCD 006 135 001 234.", "CCCD ********1234."),
        ("CCCD 0061.3500.1234", "CCCD ********1234"),
        ("CCCD 006-135-001234", "CCCD ********1234"),
        ("CMND cũ 123456789, hết hạn", "CMND cũ *****6789, hết hạn"),
        ("gọi 0912 345 678 hoặc +84 912345678", "gọi *******678 hoặc ********678"),
        ("thư lan.hoang@example.vn nhé", "thư l***@example.vn nhé"),
        (
            "<DoiTuong hoTen='Hoàng Thị Lan' soDinhDanh='006135001234' ngaySinh='1935-04-12'/>",
            "<DoiTuong hoTen='H. T. L.' soDinhDanh='********1234' ngaySinh='1935-**-**'/>",
        ),
        (
            '<ns:DiaChi maXa="02053">Thôn Bản Cuôn</ns:DiaChi><hoTen>Lò Văn Pha</hoTen>',
            '<ns:DiaChi maXa="02053">***</ns:DiaChi><hoTen>L. V. P.</hoTen>',
        ),
        (
            '{"Email": "a.b@x.vn", "SoDienThoai": "0912345678"}',
            '{"Email": "a***@x.vn", "SoDienThoai": "*******678"}',
        ),
    ],
)
def test_every_kind_and_writing_of_personal_data_is_masked(text: str, masked: str) -> None:
    assert mask_text(text) == masked


@pytest.mark.parametrize(
    "text",
    [
        'soTien="108000000"',
        '"tongSoTien": 123456789',
        "2020-08-03T08:15:00+07:00",
        "000.00.12.H06-200803-0001",
        "02053:********1234-dpjkamboncpeflgb",
        "at 1765072000.123",
    ],
)
def test_amounts_times_and_dossier_keys_are_not_personal_data(text: str) -> None:
    assert mask_text(text) == text


def test_payload_fields_of_every_kind_are_masked() -> None:
    masked = mask_payload(
        {
            "ThongTinNguoiNop": {
                "NgaySinh": "19350412",
                "DiaChiChiTiet": "Thôn Bản Cuôn",
                "SoDienThoai": "0912345678",
                "Email": "lan@example.vn",
                "SoDinhDanh": "123456789",
            },
            "DeNghiTroCap": {"DiaChiNhanTien": "tai_nha"},
        }
    )
    assert masked == {
        "ThongTinNguoiNop": {
            "NgaySinh": "1935****",
            "DiaChiChiTiet": "***",
            "SoDienThoai": "*******678",
            "Email": "l***@example.vn",
            "SoDinhDanh": "*****6789",
        },
        "DeNghiTroCap": {"DiaChiNhanTien": "tai_nha"},  # where to pay, not an address
    }


def test_masking_a_long_hostile_line_takes_linear_time() -> None:
    import time

    for text in ("a" * 100_000 + '"', "x='" * 30_000, "soTien" * 20_000, "0 " * 50_000):
        started = time.perf_counter()
        mask_text(text)
        assert time.perf_counter() - started < 2.0, text[:20]
