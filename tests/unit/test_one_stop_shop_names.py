"""Vietnamese names: the generator and the mask used in logs and errors."""

from __future__ import annotations

import random
import unicodedata

import pytest

from plugins.vn_common.names import (
    FAMILY_NAMES,
    GIVEN_NAMES_FEMALE,
    GIVEN_NAMES_MALE,
    MIDDLE_NAMES_FEMALE,
    MIDDLE_NAMES_MALE,
    make_name,
    mask_name,
)


@pytest.mark.parametrize(
    ("name", "masked"),
    [
        ("Hoàng Thị Lan", "H. T. L."),
        ("Lò Văn Pha", "L. V. P."),
        ("Đàm Thị Ánh", "Đ. T. Á."),
        ("  nông   văn  dũng ", "N. V. D."),
        ("Triệu", "T."),
        ("", ""),
    ],
)
def test_mask_name_keeps_only_initials(name: str, masked: str) -> None:
    assert mask_name(name) == masked


def test_mask_name_of_nfd_input_is_nfc() -> None:
    masked = mask_name(unicodedata.normalize("NFD", "Đàm Ánh Ước"))
    assert masked == "Đ. Á. Ư."
    assert unicodedata.is_normalized("NFC", masked)


def test_make_name_is_deterministic_nfc_and_fits_the_sex() -> None:
    first = [make_name(random.Random(5), female=i % 2 == 0) for i in range(50)]
    again = [make_name(random.Random(5), female=i % 2 == 0) for i in range(50)]
    assert first == again
    rng = random.Random(11)
    for _ in range(200):
        female = rng.random() < 0.5
        family, middle, given = make_name(rng, female=female).split(" ")
        assert family in FAMILY_NAMES
        assert middle in (MIDDLE_NAMES_FEMALE if female else MIDDLE_NAMES_MALE)
        assert given in (GIVEN_NAMES_FEMALE if female else GIVEN_NAMES_MALE)
        assert unicodedata.is_normalized("NFC", family + middle + given)


def test_name_lists_carry_diacritics_and_the_regions_families() -> None:
    for family in ("Nguyễn", "Hoàng", "Lò", "Ma", "Nông", "Triệu", "Đàm", "Hà", "Lường", "Bế"):
        assert family in FAMILY_NAMES
    assert any(unicodedata.normalize("NFD", n) != n for n in GIVEN_NAMES_FEMALE)
