"""Vietnamese personal names: a generator for simulators and a mask for logs and errors.

Names are family name + middle name(s) + given name ("Hoàng Thị Lan"). The generator draws
from names common in the northern mountain provinces (Tày, Nùng, Dao and Kinh families of
Bắc Kạn), always with diacritics, always NFC.
"""

from __future__ import annotations

import random
import unicodedata

FAMILY_NAMES: tuple[str, ...] = (
    "Nguyễn",
    "Hoàng",
    "Lò",
    "Ma",
    "Nông",
    "Triệu",
    "Đàm",
    "Hà",
    "Lường",
    "Bế",
    "Lý",
    "Đặng",
    "Bàn",
    "Dương",
    "Lục",
    "Hứa",
    "La",
    "Phùng",
    "Trần",
    "Lưu",
)

MIDDLE_NAMES_MALE: tuple[str, ...] = ("Văn", "Văn", "Văn", "Đức", "Minh", "Quốc", "Xuân", "Hữu")
MIDDLE_NAMES_FEMALE: tuple[str, ...] = ("Thị", "Thị", "Thị", "Thu", "Ngọc", "Kim", "Hồng", "Thanh")

GIVEN_NAMES_MALE: tuple[str, ...] = (
    "Pha",
    "Tùng",
    "Dũng",
    "Hùng",
    "Thắng",
    "Quý",
    "Sơn",
    "Cường",
    "Vĩnh",
    "Chiến",
    "Hải",
    "Lâm",
    "Tiến",
    "Thành",
    "Đức",
    "Khánh",
    "Phúc",
    "Nguyên",
    "Toàn",
    "Đông",
)
GIVEN_NAMES_FEMALE: tuple[str, ...] = (
    "Lan",
    "Hoa",
    "Mai",
    "Hương",
    "Thảo",
    "Nhung",
    "Huyền",
    "Liên",
    "Thu",
    "Hằng",
    "Xuân",
    "Dung",
    "Mến",
    "Chuyên",
    "Khuyên",
    "Nga",
    "Yến",
    "Ánh",
    "Phượng",
    "Lụa",
)


def make_name(rng: random.Random, *, female: bool) -> str:
    """A full name with diacritics (NFC) whose middle and given names fit the sex."""
    family = rng.choice(FAMILY_NAMES)
    middle = rng.choice(MIDDLE_NAMES_FEMALE if female else MIDDLE_NAMES_MALE)
    given = rng.choice(GIVEN_NAMES_FEMALE if female else GIVEN_NAMES_MALE)
    return f"{family} {middle} {given}"


def mask_name(full_name: str) -> str:
    """Initials only, safe for logs and error messages: ``Hoàng Thị Lan`` -> ``H. T. L.``.

    Works on NFC and NFD input alike (the initial keeps its base letter and any mark that
    belongs to it, so ``Đàm`` gives ``Đ.``).
    """
    words = unicodedata.normalize("NFC", full_name).split()
    return " ".join(f"{word[0].upper()}." for word in words)
