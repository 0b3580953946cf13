"""The simulator's dossier generator: realistic, deterministic, and valid under our own parse."""

from __future__ import annotations

import json
import unicodedata
from datetime import date, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.model import VN_TZ
from plugins.one_stop_shop.generator import CATEGORIES, COMMUNES, DossierGenerator, years_before
from plugins.one_stop_shop.inbound import parse_push
from plugins.one_stop_shop.wire import add_working_days, parse_date, parse_timestamp
from plugins.vn_common.cccd import cccd_birth_year, cccd_is_female

AGES = {code: (lo, hi) for code, _, lo, hi, _ in CATEGORIES}


def wire_body(generator: DossierGenerator, updating: bool, items: list[dict[str, Any]]) -> bytes:
    data = [generator.wire_form(item) for item in items]
    document = {"isUpdating": "True" if updating else "False", "data": data}
    return json.dumps(document, ensure_ascii=False).encode()


def age_on(birth: date, day: date) -> int:
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def check_realistic(item: dict[str, Any]) -> None:
    person = item["ThongTinNguoiNop"]
    received = parse_timestamp(item["NgayTiepNhan"])
    birth = parse_date(person["NgaySinh"])
    assert person["SoDinhDanh"].startswith("006")
    assert cccd_birth_year(person["SoDinhDanh"]) == birth.year
    assert cccd_is_female(person["SoDinhDanh"]) == (person["GioiTinh"] == "2")
    assert (person["MaTinh"], person["MaHuyen"]) == ("06", "064")
    assert person["MaXa"] in COMMUNES
    assert item["MaHoSo"].startswith("000.00.12.H06-" + received.strftime("%y%m%d") + "-")
    assert received.weekday() < 5 and 7 <= received.hour < 17
    if item["MaTTHC"] == "1.001776":
        due = parse_timestamp(item["NgayHenTra"])
        assert due.date() == add_working_days(received, 15).date()
        request = item["DeNghiTroCap"]
        lo, hi = AGES[request["LoaiDoiTuong"]]
        assert lo <= age_on(birth, received.date()) <= hi
        assert (request["LoaiDoiTuong"] == "5.6") == (request["MucDoKhuyetTat"] != "")


def test_a_seeded_batch_of_200_dossiers_all_pass_parse() -> None:
    generator = DossierGenerator(seed=2020)
    created: list[dict[str, Any]] = []
    updates = nfd = 0
    procedures: set[str] = set()
    while len(created) < 200:
        batch = generator.next_batch(200 - len(created))
        raw = wire_body(generator, batch.updating, batch.items)
        result = parse_push(raw)
        assert result.rejected == [], result.rejected
        assert [m.payload["dossier"] for m in result.messages] == batch.items  # NFC again
        assert all(m.payload["isUpdating"] is batch.updating for m in result.messages)
        for item in batch.items:
            wire = generator.wire_form(item)
            nfd += json.dumps(wire, ensure_ascii=False) != json.dumps(item, ensure_ascii=False)
            check_realistic(item)
            procedures.add(item["MaTTHC"])
        if batch.updating:
            updates += len(batch.items)
        else:
            created.extend(batch.items)
    assert len({item["MaHoSo"] for item in created}) == 200
    assert len({item["ThongTinNguoiNop"]["SoDinhDanh"] for item in created}) == 200
    assert procedures == {"1.001776", "1.001731"}
    assert updates > 0
    assert 60 <= nfd <= 160  # about half travel in NFD


def test_same_seed_same_dossiers_other_seed_others() -> None:
    def run(seed: int) -> list[Any]:
        generator = DossierGenerator(seed=seed)
        return [generator.next_batch() for _ in range(30)]

    assert run(7) == run(7)
    assert run(7) != run(8)


def test_updates_change_a_field_of_a_known_dossier() -> None:
    generator = DossierGenerator(seed=1, update_rate=0.5)
    known: dict[str, dict[str, Any]] = {}
    seen_update = False
    for _ in range(60):
        batch = generator.next_batch()
        for item in batch.items:
            if batch.updating:
                seen_update = True
                assert item["MaHoSo"] in known
                assert item != known[item["MaHoSo"]]
            known[item["MaHoSo"]] = item
    assert seen_update


def test_new_in_2021_categories_only_after_decree_20() -> None:
    before = DossierGenerator(seed=3)
    after = DossierGenerator(seed=3, start=datetime(2021, 7, 1, 7, 30, tzinfo=VN_TZ))
    cats_before = {
        i["DeNghiTroCap"]["LoaiDoiTuong"]
        for _ in range(400)
        if "DeNghiTroCap" in (i := before.new_dossier())
    }
    cats_after = {
        i["DeNghiTroCap"]["LoaiDoiTuong"]
        for _ in range(400)
        if "DeNghiTroCap" in (i := after.new_dossier())
    }
    assert "5.5b" not in cats_before
    assert "5.5b" in cats_after


def test_years_before_handles_29_february() -> None:
    assert years_before(date(2024, 2, 29), 1) == date(2023, 2, 28)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(min_value=0, max_value=2**32),
    start=st.dates(min_value=date(2015, 1, 1), max_value=date(2030, 12, 31)),
)
def test_any_seed_and_start_gives_dossiers_that_pass_parse(seed: int, start: date) -> None:
    generator = DossierGenerator(
        seed=seed, start=datetime(start.year, start.month, start.day, 7, 30, tzinfo=VN_TZ)
    )
    for _ in range(12):
        batch = generator.next_batch()
        result = parse_push(wire_body(generator, batch.updating, batch.items))
        assert result.rejected == []
        for message in result.messages:
            text = json.dumps(message.payload, ensure_ascii=False)
            assert unicodedata.is_normalized("NFC", text)
            check_realistic(message.payload["dossier"])
