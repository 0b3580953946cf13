"""Constants and small helpers of the DVCQG sync protocol (FORMATS.md §1).

Timestamps on the wire are ``yyyyMMddHHmmss`` and dates ``yyyyMMdd``, Asia/Ho_Chi_Minh time.
The protocol answers ``error_code`` as a number at ``/auth`` and as a string elsewhere, so
codes are always compared as strings (:func:`code_of`).
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Any, Final

from gateway.model import VN_TZ

#: the procedure this profile is built for (monthly allowance: grant, adjust, stop)
PROCEDURE_MONTHLY_ALLOWANCE: Final = "1.001776"
#: funeral support: accepted with the basic fields, routed only where a route names it
PROCEDURE_FUNERAL_SUPPORT: Final = "1.001731"

SERVICE_PROGRESS: Final = "CapNhatTienDoHoSoMC"
SERVICE_SYNC: Final = "DongBoHoSoMC"
SERVICE_LOOKUP: Final = "TraCuuHoSo"

CODE_OK: Final = "00"
CODE_SESSION_EXPIRED: Final = "401"
#: Adapter codes that mean "the one-stop-shop is in temporary trouble, try later".
#: The protocol publishes no list; ``-1`` is the "system error" provincial adapters answer
#: when their own database or upstream is down, and 5xx / 429 written as codes mirror HTTP.
#: Every other code is a refusal of the data itself and is permanent.
RETRYABLE_CODES: Final = frozenset({"-1", "429", "500", "502", "503", "504"})

#: TrangThaiHoSo / TrangThai codes (FORMATS.md §1.1)
STATUS_RECEIVED: Final = "2"
STATUS_PROCESSING: Final = "4"
STATUS_SUPPLEMENT_REQUESTED: Final = "5"
STATUS_PROCESSED: Final = "9"
STATUS_RESULT_RETURNED: Final = "10"
STATUS_CODES: Final = frozenset(str(n) for n in range(1, 11))
RESULT_STATUSES: Final = frozenset({STATUS_PROCESSED, STATUS_RESULT_RETURNED})

#: benefit categories of DeNghiTroCap.LoaiDoiTuong (DOMAIN.md §2)
CATEGORY_CODES: Final = (
    "5.1",
    "5.2",
    "5.3",
    "5.4",
    "5.5a",
    "5.5b",
    "5.5c",
    "5.5d",
    "5.6",
    "5.7",
    "5.8",
    "cs",
)
DISABILITY_LEVELS: Final = ("", "nang", "dac_biet_nang")
PAYMENT_PLACES: Final = ("tai_diem", "tai_nha")
SEX_CODES: Final = {"1": "male", "2": "female"}

TIMESTAMP_FORMAT: Final = "%Y%m%d%H%M%S"
DATE_FORMAT: Final = "%Y%m%d"
_TIMESTAMP = re.compile(r"[0-9]{14}")
_DATE = re.compile(r"[0-9]{8}")


def code_of(value: Any) -> str:
    """An ``error_code`` (number or string) as a string; ``""`` when absent."""
    if value is None:
        return ""
    if isinstance(value, bool):  # bool is an int; never a valid code
        return str(value)
    return str(value).strip()


def parse_timestamp(value: str) -> datetime:
    """``yyyyMMddHHmmss`` -> an aware datetime in Asia/Ho_Chi_Minh; ValueError if not.

    Fourteen digits leave ``strptime`` one reading (every field two digits), so the fields
    are cut out directly: the same result or the same ValueError, at a tenth of the cost."""
    if not _TIMESTAMP.fullmatch(value):
        raise ValueError(value)
    return datetime(
        int(value[:4]),
        int(value[4:6]),
        int(value[6:8]),
        int(value[8:10]),
        int(value[10:12]),
        int(value[12:14]),
        tzinfo=VN_TZ,
    )


def parse_date(value: str) -> date:
    """``yyyyMMdd`` -> a date; ValueError if not."""
    if not _DATE.fullmatch(value):
        raise ValueError(value)
    return date(int(value[:4]), int(value[4:6]), int(value[6:8]))


def format_timestamp(moment: datetime) -> str:
    """An aware datetime as ``yyyyMMddHHmmss`` in Asia/Ho_Chi_Minh."""
    return moment.astimezone(VN_TZ).strftime(TIMESTAMP_FORMAT)


def format_date(day: date) -> str:
    return day.strftime(DATE_FORMAT)


def add_working_days(start: datetime, days: int) -> datetime:
    """``start`` moved forward by ``days`` working days (Monday to Friday).

    Public holidays are not counted out: the one-stop-shop computes its own appointment
    dates, this is only for dates the gateway has to propose itself.
    """
    moment = start
    left = days
    while left > 0:
        moment += timedelta(days=1)
        if moment.weekday() < 5:
            left -= 1
    return moment
