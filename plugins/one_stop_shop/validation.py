"""Validation of one pushed dossier (an item of DongBoHoSoMC ``data``, FORMATS.md §1.1).

Every error names the field and reads Vietnamese first, English in parentheses. Errors never
quote a value: a wrong field may hold a CCCD or a name, and these messages go to logs, the
inbound answer and the dashboard.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from typing import Any
from urllib.parse import urlsplit

from plugins.one_stop_shop.wire import (
    CATEGORY_CODES,
    DISABILITY_LEVELS,
    PAYMENT_PLACES,
    PROCEDURE_MONTHLY_ALLOWANCE,
    SEX_CODES,
    STATUS_CODES,
    parse_date,
    parse_timestamp,
)
from plugins.vn_common.cccd import CccdError, validate_cccd

REQUIRED = "bắt buộc (required)"
NOT_TEXT = "phải là chuỗi ký tự (must be a string)"
NOT_OBJECT = "phải là đối tượng JSON (must be a JSON object)"
NOT_LIST = "phải là danh sách (must be a list)"
BAD_TIMESTAMP = "phải có dạng yyyyMMddHHmmss (must be yyyyMMddHHmmss)"
BAD_DATE = "phải có dạng yyyyMMdd (must be yyyyMMdd)"
BAD_STATUS = "phải là mã trạng thái từ 1 đến 10 (must be a status code 1 to 10)"
BAD_SEX = "phải là 1 (nam) hoặc 2 (nữ) (must be 1 male or 2 female)"
BAD_CATEGORY = "nhóm đối tượng không hợp lệ (unknown category; expected one of {})".format(
    " ".join(CATEGORY_CODES)
)
BAD_DISABILITY = 'phải là "", nang hoặc dac_biet_nang (must be "", nang or dac_biet_nang)'
DISABILITY_REQUIRED = "bắt buộc với nhóm 5.6 (required for category 5.6)"
BAD_PAYMENT_PLACE = "phải là tai_diem hoặc tai_nha (must be tai_diem or tai_nha)"
FUTURE_DATE = "không được sau ngày tiếp nhận (must not be after NgayTiepNhan)"


#: the longest text the registry's profile takes (plugins/district_registry/schemas):
#: refusing longer text here answers the desk at once instead of dead-lettering later
MAX_LENGTH = {
    "MaHoSo": 64,
    "MaTTHC": 64,
    "ChuHoSo": 200,
    "TenNguoiNop": 200,
    "TenTepDinhKem": 500,
}
#: characters XML 1.0 cannot carry (the registry's documents are XML)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
DEFAULT_MAX_LENGTH = 2000


BAD_LINK = "phải là đường dẫn http(s) hợp lệ (must be a valid http or https link to the file)"
HAS_SPACE = "không được chứa khoảng trắng (must not contain spaces or line breaks)"
#: what XML Schema's \s matches: the registry's MaHoSo pattern \S+ refuses these
_XML_SPACE = re.compile(r"[ \t\r\n]")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


#: a link every check below accepts (most links look like this): lower-case http(s), a plain
#: host, an optional port and a path of unreserved characters; no query, escape or fragment
_PLAIN_LINK = re.compile(r"https?://[A-Za-z0-9.-]+(?::[0-9]{1,5})?(?:/[A-Za-z0-9._~/-]*)?")


def link_problem(value: str) -> str | None:
    """Why a document link cannot go into the registry's ``duongDan`` (``xs:anyURI``), or
    None: it must be an absolute http(s) URL with a host, with well-formed %-escapes, at most
    one ``#`` and brackets only around an IPv6 host (what libxml2's anyURI check refuses)."""
    if _PLAIN_LINK.fullmatch(value):
        return None
    if _CONTROL.search(value):
        return BAD_LINK
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:
        return BAD_LINK
    if parts.scheme.lower() not in ("http", "https") or not host:
        return BAD_LINK
    after_host = value[value.find(parts.netloc) + len(parts.netloc) :]
    if _BAD_ESCAPE.search(value) or value.count("#") > 1 or "[" in after_host or "]" in after_host:
        return BAD_LINK
    return None


def _code(value: Any) -> str | None:
    """A code field as a string: the protocol sends strings, some senders send numbers."""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


class _Checker:
    """Collects errors for one item; ``prefix`` is the enclosing object's name."""

    def __init__(
        self, obj: Mapping[str, Any], errors: list[str], prefix: str = "", plain: bool = False
    ) -> None:
        self.obj = obj
        self.errors = errors
        self.prefix = prefix
        #: every string is known to be free of control characters (see ``validate_dossier``)
        self.plain = plain

    def fail(self, key: str, problem: str) -> None:
        self.errors.append(f"{self.prefix}{key}: {problem}")

    def text(self, key: str, *, required: bool) -> str | None:
        value = self.obj.get(key)
        if value is None or value == "":
            if required:
                self.fail(key, REQUIRED)
            return None
        if not isinstance(value, str):
            self.fail(key, NOT_TEXT)
            return None
        if required and not value.strip():
            self.fail(key, REQUIRED)
            return None
        if not self.plain and _CONTROL.search(value):
            self.fail(key, "chứa ký tự điều khiển (holds a control character)")
            return None
        limit = MAX_LENGTH.get(key, DEFAULT_MAX_LENGTH)
        if len(value) > limit:
            self.fail(key, f"dài quá {limit} ký tự (longer than {limit} characters)")
            return None
        return value

    def link(self, key: str, *, required: bool) -> str | None:
        value = self.text(key, required=required)
        if value is not None and (problem := link_problem(value)) is not None:
            self.fail(key, problem)
            return None
        return value

    def code(self, key: str, allowed: Any, problem: str, *, required: bool = True) -> str | None:
        value = self.obj.get(key)
        if value is None:
            if required:
                self.fail(key, REQUIRED)
            return None
        code = _code(value)
        if code is None or code not in allowed:
            self.fail(key, problem)
            return None
        return code

    def timestamp(self, key: str, *, required: bool) -> None:
        value = self.text(key, required=required)
        if value is None:
            return
        try:
            parse_timestamp(value)
        except ValueError:
            self.fail(key, BAD_TIMESTAMP)

    def cccd(self, key: str, *, birth_date: date | None = None, female: bool | None = None) -> None:
        value = self.text(key, required=True)
        if value is None:
            return
        try:
            validate_cccd(value, birth_date=birth_date, female=female)
        except CccdError as exc:
            self.fail(key, str(exc))

    def child(self, key: str, *, required: bool) -> _Checker | None:
        value = self.obj.get(key)
        if value is None:
            if required:
                self.fail(key, REQUIRED)
            return None
        if not isinstance(value, Mapping):
            self.fail(key, NOT_OBJECT)
            return None
        return _Checker(value, self.errors, f"{self.prefix}{key}.", self.plain)


def validate_dossier(item: Mapping[str, Any], *, plain: bool = False) -> list[str]:
    """Readable errors of one pushed dossier (already NFC); an empty list when it is good.

    The basic fields are checked for every procedure; ``ThongTinNguoiNop`` and
    ``DeNghiTroCap`` are required for 1.001776 and checked for any procedure that sends them.
    ``plain``: the caller knows that no string holds a control character (the push's text
    had no escape, no U+FFFE/U+FFFF, and a JSON parser refuses raw control characters), so
    the per-field scan is skipped.
    """
    errors: list[str] = []
    top = _Checker(item, errors, plain=plain)
    dossier_id = top.text("MaHoSo", required=True)
    if dossier_id is not None and _XML_SPACE.search(dossier_id):
        top.fail("MaHoSo", HAS_SPACE)  # the registry's maHoSo is \S+
    procedure = top.text("MaTTHC", required=True)
    top.timestamp("NgayTiepNhan", required=True)
    top.timestamp("NgayHenTra", required=False)
    top.code("TrangThaiHoSo", STATUS_CODES, BAD_STATUS)
    for key in ("TenTTHC", "SoBienNhan", "ChuHoSo", "TrichYeuHoSo", "DonViXuLy"):
        top.text(key, required=False)
    applicant_type = _code(item.get("LoaiDoiTuong", "1"))
    if applicant_type in ("1", "") and item.get("MaDoiTuong"):
        top.cccd("MaDoiTuong")  # a citizen applicant is identified by their CCCD
    documents = item.get("TaiLieuNop")
    if documents is not None and not isinstance(documents, list):
        top.fail("TaiLieuNop", NOT_LIST)
    elif documents is not None:
        for i, doc in enumerate(documents):
            if not isinstance(doc, Mapping):
                top.fail(f"TaiLieuNop[{i}]", NOT_OBJECT)
            elif str(doc.get("IsDeleted", "")).strip().lower() != "true":
                # what the registry's TaiLieu needs: a file name and a link
                entry = _Checker(doc, top.errors, f"{top.prefix}TaiLieuNop[{i}].", plain)
                entry.text("TenTepDinhKem", required=True)
                entry.link("DuongDanTaiTepTin", required=True)

    required = procedure == PROCEDURE_MONTHLY_ALLOWANCE
    person = top.child("ThongTinNguoiNop", required=required)
    if person is not None:
        _check_person(person, _received_on(item))
    request = top.child("DeNghiTroCap", required=required)
    if request is not None:
        _check_request(request)
    return errors


def _received_on(item: Mapping[str, Any]) -> date | None:
    value = item.get("NgayTiepNhan")
    try:
        return parse_timestamp(value).date() if isinstance(value, str) else None
    except ValueError:
        return None


def _check_person(person: _Checker, received_on: date | None) -> None:
    person.text("TenNguoiNop", required=True)
    birth_date: date | None = None
    birth_text = person.text("NgaySinh", required=True)
    if birth_text is not None:
        try:
            birth_date = parse_date(birth_text)
        except ValueError:
            person.fail("NgaySinh", BAD_DATE)
        else:
            if received_on is not None and birth_date > received_on:
                person.fail("NgaySinh", FUTURE_DATE)
    sex = person.code("GioiTinh", SEX_CODES, BAD_SEX)
    female = None if sex is None else sex == "2"
    person.cccd("SoDinhDanh", birth_date=birth_date, female=female)
    for key, digits in (("MaTinh", 2), ("MaHuyen", 3), ("MaXa", 5)):
        value = person.text(key, required=True)
        if value is not None and not (len(value) == digits and value.isascii() and value.isdigit()):
            person.fail(key, f"phải có {digits} chữ số (must be {digits} digits)")
    person.text("DiaChiChiTiet", required=False)


def _check_request(request: _Checker) -> None:
    category = request.code("LoaiDoiTuong", CATEGORY_CODES, BAD_CATEGORY)
    if category == "5.6" and request.obj.get("MucDoKhuyetTat") in (None, ""):
        request.fail("MucDoKhuyetTat", DISABILITY_REQUIRED)
    else:
        request.code("MucDoKhuyetTat", DISABILITY_LEVELS, BAD_DISABILITY, required=False)
    request.code("DiaChiNhanTien", PAYMENT_PLACES, BAD_PAYMENT_PLACE)
