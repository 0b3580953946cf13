"""Citizen identification numbers (CCCD / số định danh cá nhân), 12 digits.

Digits 1-3: province of birth registration; digit 4: century and sex
(1900s: male 0, female 1; 2000s: male 2, female 3; 2100s: 4/5 ...); digits 5-6: the
last two digits of the birth year; digits 7-12: random.
"""

from __future__ import annotations

import re
from datetime import date

_CCCD = re.compile(r"[0-9]{12}")  # ASCII digits only: the XML types and the registry need them
_CENTURIES = {
    0: 1900,
    1: 1900,
    2: 2000,
    3: 2000,
    4: 2100,
    5: 2100,
    6: 2200,
    7: 2200,
    8: 1800,
    9: 1800,
}


class CccdError(ValueError):
    """A CCCD that is not valid; the message is readable by a clerk (Vietnamese first)."""


def cccd_birth_year(cccd: str) -> int:
    return _CENTURIES[int(cccd[3])] + int(cccd[4:6])


def cccd_is_female(cccd: str) -> bool:
    return int(cccd[3]) % 2 == 1


def validate_cccd(cccd: str, *, birth_date: date | None = None, female: bool | None = None) -> str:
    """Return the CCCD if valid, else raise CccdError naming the problem.

    When the birth date or sex is known, the CCCD must agree with it.
    """
    if not _CCCD.fullmatch(cccd):
        raise CccdError("CCCD phải có 12 chữ số (a CCCD has 12 digits)")
    if cccd[:3] == "000":
        raise CccdError("CCCD: mã tỉnh 000 không hợp lệ (province code 000 is not valid)")
    if birth_date is not None and cccd_birth_year(cccd) != birth_date.year:
        raise CccdError(
            f"CCCD không khớp năm sinh {birth_date.year} "
            f"(the CCCD encodes birth year {cccd_birth_year(cccd)})"
        )
    if female is not None and cccd_is_female(cccd) != female:
        raise CccdError("CCCD không khớp giới tính (the CCCD encodes the other sex)")
    return cccd


def make_cccd(province: str, birth_year: int, female: bool, serial: int) -> str:
    """Build a valid CCCD (for simulators and fixtures)."""
    century_digit = {1800: 8, 1900: 0, 2000: 2, 2100: 4, 2200: 6}[birth_year // 100 * 100]
    return (
        f"{province:0>3}{century_digit + int(female)}{birth_year % 100:02d}{serial % 1_000_000:06d}"
    )


def mask_cccd(cccd: str) -> str:
    """``006135001234`` -> ``********1234``."""
    return "*" * max(len(cccd) - 4, 0) + cccd[-4:]
