"""config/social_assistance.toml and config/admin_units.toml: loaded, validated, looked up."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from plugins.social_assistance.month import Month
from plugins.social_assistance.rules import (
    DEFAULT_ADMIN_UNITS_PATH,
    DEFAULT_RULES_PATH,
    AdminUnitError,
    RulesError,
    load_admin_units,
    load_rules,
)

RULES_TEXT = DEFAULT_RULES_PATH.read_text(encoding="utf-8")
UNITS_TEXT = DEFAULT_ADMIN_UNITS_PATH.read_text(encoding="utf-8")
OVERRIDE = """
[[provincial_level]]
from = 2022-01-01
amount = 400000
source = "Nghị quyết số 01/2021/NQ-HĐND (test)"
"""


def rules_with(tmp_path: Path, old: str, new: str, *, count: int = 1) -> Path:
    assert old in RULES_TEXT, old
    path = tmp_path / "social_assistance.toml"
    path.write_text(RULES_TEXT.replace(old, new, count), encoding="utf-8")
    return path


def with_override(tmp_path: Path, block: str) -> Path:
    return rules_with(tmp_path, "provincial_level = []\n", block.replace("[[", "[[", 1))


def load_error(path: Path) -> str:
    with pytest.raises(RulesError) as e:
        load_rules(path)
    message = str(e.value)
    assert "\n" not in message and message.startswith(str(path))
    return message


def test_shipped_rules_load_with_the_three_national_levels() -> None:
    rules = load_rules()
    assert [(str(p.start), p.amount) for p in rules.levels] == [
        ("2014-01", 270000),
        ("2021-07", 360000),
        ("2024-07", 500000),
    ]
    assert all("NĐ-CP" in p.source for p in rules.levels)
    assert rules.provincial_levels == ()
    assert set(rules.categories) == {
        "5.1", "5.2", "5.3", "5.4", "5.5a", "5.5b", "5.5c", "5.5d", "5.6", "5.7", "5.8", "cs",
    }  # fmt: skip
    assert rules.cs_codes == {"cs"}


@pytest.mark.parametrize(
    ("month", "level"),
    [
        (Month(2014, 1), 270000),
        (Month(2021, 6), 270000),
        (Month(2021, 7), 360000),
        (Month(2024, 6), 360000),
        (Month(2024, 7), 500000),
        (Month(2030, 1), 500000),
    ],
)
def test_level_changes_in_the_month_the_decree_takes_effect(month: Month, level: int) -> None:
    assert load_rules().level(month) == level


def test_no_level_before_2014_is_a_rules_error() -> None:
    with pytest.raises(RulesError, match="no standard level for 2013-12"):
        load_rules().level(Month(2013, 12))


def test_categories_5_5b_and_5_7_exist_only_from_2021_07() -> None:
    rules = load_rules()
    for code in ("5.5b", "5.7"):
        assert rules.categories[code].available_from == Month(2021, 7)
        assert rules.categories[code].period_at(Month(2021, 6)) is None
    assert rules.categories["5.1"].period_at(Month(2020, 8)).source.startswith("Decree 136")  # type: ignore[union-attr]
    assert rules.categories["5.1"].period_at(Month(2021, 7)).source.startswith("Decree 20")  # type: ignore[union-attr]


def test_deciding_authority_switches_to_the_commune_chairman_on_2025_07_01() -> None:
    rules = load_rules()
    assert rules.authority(date(2025, 6, 30)).code == "chu_tich_ubnd_huyen"
    assert rules.authority(date(2025, 7, 1)).code == "chu_tich_ubnd_xa"


def test_provincial_override_raises_the_level_from_its_date(tmp_path: Path) -> None:
    rules = load_rules(with_override(tmp_path, OVERRIDE))
    assert rules.level(Month(2021, 12)) == 360000
    assert rules.level(Month(2022, 1)) == 400000
    assert rules.level(Month(2024, 6)) == 400000
    assert rules.level(Month(2024, 7)) == 500000  # the national level overtakes it


def test_provincial_override_can_end(tmp_path: Path) -> None:
    block = OVERRIDE.replace("amount = 400000", "until = 2023-01-01\namount = 400000")
    rules = load_rules(with_override(tmp_path, block))
    assert rules.level(Month(2022, 12)) == 400000
    assert rules.level(Month(2023, 1)) == 360000


def test_provincial_override_must_be_higher(tmp_path: Path) -> None:
    message = load_error(with_override(tmp_path, OVERRIDE.replace("400000", "360000")))
    assert "provincial_level[0].amount" in message and "not higher" in message


def test_overlapping_provincial_periods_are_refused(tmp_path: Path) -> None:
    second = OVERRIDE.replace("2022-01-01", "2022-06-01").replace("400000", "420000")
    block = OVERRIDE.replace("amount = 400000", "until = 2023-01-01\namount = 400000") + second
    assert "overlaps" in load_error(with_override(tmp_path, block))


def test_unsorted_levels_are_refused(tmp_path: Path) -> None:
    path = rules_with(
        tmp_path, "from = 2024-07-01\namount = 500000", "from = 2020-07-01\namount = 500000"
    )
    message = load_error(path)
    assert "standard_level[2].from" in message and "unsorted" in message


def test_a_date_inside_a_month_is_refused(tmp_path: Path) -> None:
    path = rules_with(
        tmp_path, "from = 2021-07-01\namount = 360000", "from = 2021-07-15\namount = 360000"
    )
    assert "first day of a month" in load_error(path)


def test_malformed_toml_names_the_file(tmp_path: Path) -> None:
    path = rules_with(tmp_path, "list_build_day = 24", "list_build_day = = 24")
    assert "not valid TOML" in load_error(path)


def test_unknown_key_is_refused(tmp_path: Path) -> None:
    path = rules_with(tmp_path, "list_build_day = 24", "list_build_day = 24\nlist_buid_day = 25")
    assert "calendar.list_buid_day: unknown key" in load_error(path)


def test_unknown_category_in_adds_on_top_of(tmp_path: Path) -> None:
    path = rules_with(tmp_path, '"5.6", "5.8"]', '"5.6", "5.9"]')
    assert "categories.5.4.adds_on_top_of: unknown category '5.9'" in load_error(path)


def test_a_missing_coefficient_is_refused(tmp_path: Path) -> None:
    path = rules_with(
        tmp_path,
        '{ age_below = 4, coefficient = "2.5" }, { coefficient = "1.5" }',
        '{ age_below = 4, coefficient = "2.5" }',
    )
    message = load_error(path)
    assert "categories.5.1.periods[0].bands" in message and "coefficient missing" in message


def test_a_disability_level_without_a_catch_all_band_is_refused(tmp_path: Path) -> None:
    path = rules_with(tmp_path, '  { disability = "nang", coefficient = "1.5" },\n', "")
    assert "coefficient missing for mucDoKhuyetTat=nang" in load_error(path)


def test_a_float_coefficient_is_refused(tmp_path: Path) -> None:
    path = rules_with(
        tmp_path, 'bands = [{ coefficient = "1.5" }]', "bands = [{ coefficient = 1.5 }]"
    )
    assert "must be str, not float" in load_error(path)


def test_unknown_group_is_refused(tmp_path: Path) -> None:
    path = rules_with(tmp_path, 'group = "nhiem_hiv"', 'group = "hiv"')
    assert "unknown group 'hiv'" in load_error(path)


def test_missing_file() -> None:
    with pytest.raises(RulesError, match="file not found"):
        load_rules("/nonexistent/social_assistance.toml")


# ---------------------------------------------------------------------------------------
# Administrative units
# ---------------------------------------------------------------------------------------


def test_chodon_communes_before_the_merger() -> None:
    units = load_admin_units()
    july_2020 = Month(2020, 7)
    codes = [c.code for c in units.communes_in(july_2020)]
    assert len(codes) == 20 and "02053" in codes and "02041" in codes
    assert units.list_commune("02053", july_2020).name == "Ngọc Phái"
    assert units.list_commune("02020", july_2020).name == "Bằng Lũng"
    assert units.list_commune("02053", july_2020).province == "06"


@pytest.mark.parametrize(
    ("old", "new", "name"),
    [
        ("02053", "02020", "Chợ Đồn"),
        ("02020", "02020", "Chợ Đồn"),
        ("02035", "02044", "Yên Thịnh"),
        ("02077", "02083", "Yên Phong"),
        ("02062", "02071", "Nghĩa Tá"),
        ("02029", "02026", "Nam Cường"),
        ("02032", "02038", "Quảng Bạch"),
        ("02059", "02014", "Bạch Thông"),
        ("02041", "01933", "Đồng Phúc"),
    ],
)
def test_old_codes_map_to_new_communes_from_2025_07(old: str, new: str, name: str) -> None:
    unit = load_admin_units().list_commune(old, Month(2025, 7))
    assert (unit.code, unit.name, unit.province) == (new, name, "19")


def test_bang_phuc_is_refused_while_dong_phucs_code_is_marked_unconfirmed(tmp_path: Path) -> None:
    path = tmp_path / "admin_units.toml"
    path.write_text(
        UNITS_TEXT.replace(
            'code = "01933"\nname = "Đồng Phúc"', 'name = "Đồng Phúc"\ncode_confirmed = false'
        ),
        encoding="utf-8",
    )
    units = load_admin_units(path)
    assert units.list_commune("02041", Month(2025, 6)).name == "Bằng Phúc"
    with pytest.raises(AdminUnitError, match=r"Đồng Phúc.*chưa được xác nhận.*not confirmed"):
        units.list_commune("02041", Month(2025, 7))
    found, problems = units.select_lists(["02041", "02053"], Month(2025, 7))
    assert list(found) == ["02020"]
    assert [(p.code, p.name) for p in problems] == [("02041", "Đồng Phúc")]
    assert "not confirmed" in problems[0].reason


CHO_DON_OLD = [f"020{n}" for n in (20, 23, 26, 29, 32, 35, 38, 41, 44, 47, 50, 53, 59, 62, 65)]
CHO_DON_OLD += ["02068", "02071", "02077", "02080", "02083"]


def test_the_20_old_codes_select_every_new_commune_from_2025_07() -> None:
    units = load_admin_units()
    found, problems = units.select_lists(CHO_DON_OLD, Month(2025, 7))
    assert problems == []
    assert sorted(found) == ["01933", "02014", "02020", "02026", "02038", "02044", "02071", "02083"]
    assert found["02014"].name == "Bạch Thông" and found["01933"].name == "Đồng Phúc"
    # ... and themselves before the merger
    before, problems = units.select_lists(CHO_DON_OLD, Month(2025, 6))
    assert problems == [] and sorted(before) == sorted(CHO_DON_OLD)
    assert before["02020"].name == "Bằng Lũng"


def test_new_codes_select_their_old_communes_before_the_merger() -> None:
    units = load_admin_units()
    found, problems = units.select_lists(["02014", "01933", "02020"], Month(2025, 6))
    assert problems == []
    # 02020 was Bằng Lũng's own code then; 02014 and 01933 existed only after
    assert sorted(found) == ["02020", "02041", "02059"]
    after, _ = units.select_lists(["02014", "01933", "02020"], Month(2025, 7))
    assert sorted(after) == ["01933", "02014", "02020"]


def test_a_code_the_file_does_not_know_is_a_problem_not_a_silent_skip() -> None:
    found, problems = load_admin_units().select_lists(["02099", "02053"], Month(2025, 8))
    assert list(found) == ["02020"]
    [problem] = problems
    assert (problem.code, problem.name) == ("02099", "")
    assert "unknown commune code" in problem.reason


def test_unknown_commune_code() -> None:
    with pytest.raises(AdminUnitError, match="99999"):
        load_admin_units().list_commune("99999", Month(2020, 8))


def test_admin_units_refuse_a_merger_of_an_unknown_code(tmp_path: Path) -> None:
    path = tmp_path / "admin_units.toml"
    path.write_text(
        UNITS_TEXT.replace('merged_from = ["02032", "02038"]', 'merged_from = ["02032", "02099"]'),
        encoding="utf-8",
    )
    with pytest.raises(RulesError, match=r"commune\[25\]\.merged_from: 02099 is not a commune"):
        load_admin_units(path)


def test_admin_units_refuse_a_code_used_twice_at_once(tmp_path: Path) -> None:
    path = tmp_path / "admin_units.toml"
    path.write_text(UNITS_TEXT.replace('code = "02023"', 'code = "02026"'), encoding="utf-8")
    with pytest.raises(RulesError, match="02026 is also used by"):
        load_admin_units(path)
