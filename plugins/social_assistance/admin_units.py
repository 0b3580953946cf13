"""Administrative units (GSO codes) and the 2025-07-01 merger, from ``config/admin_units.toml``.

Old codes stay in history with their end date; new communes name the old codes merged into
them. :meth:`AdminUnits.list_commune` answers "which commune's payment list holds a person
the registry files under this code, for this month".
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from types import MappingProxyType

from plugins.social_assistance._toml import RulesError, Table, read_toml
from plugins.social_assistance.month import Month

DEFAULT_ADMIN_UNITS_PATH = Path(__file__).resolve().parents[2] / "config" / "admin_units.toml"
_COMMUNE_CODE = re.compile(r"^\d{5}$")


class AdminUnitError(ValueError):
    """A commune code that cannot be placed on a payment list; the message is readable."""


@dataclass(frozen=True, slots=True)
class Unit:
    """A province or district."""

    code: str
    name: str
    start: date | None
    until: date | None
    parent: str | None = None


@dataclass(frozen=True, slots=True)
class Commune:
    """A commune-level unit valid from ``start`` until ``until`` (exclusive; None = open).

    ``code`` is None, and ``code_confirmed`` False, for a new commune whose GSO code is not
    known yet: no list is built for it.
    """

    code: str | None
    name: str
    province: str
    district: str | None
    start: date | None
    until: date | None
    merged_from: tuple[str, ...]
    code_confirmed: bool
    note: str

    def valid_in(self, month: Month) -> bool:
        day = month.first_day
        return (self.start is None or self.start <= day) and (
            self.until is None or day < self.until
        )

    @property
    def label(self) -> str:
        return f"{self.name} ({self.code or 'chưa có mã'})"


@dataclass(frozen=True)
class AdminUnits:
    path: str
    provinces: tuple[Unit, ...]
    districts: tuple[Unit, ...]
    communes: tuple[Commune, ...]
    _by_code: Mapping[str, tuple[Commune, ...]]
    _merged_into: Mapping[str, tuple[Commune, ...]]

    def commune(self, code: str, month: Month) -> Commune | None:
        """The unit that has ``code`` in ``month`` (None when none has)."""
        return next((c for c in self._by_code.get(code, ()) if c.valid_in(month)), None)

    def list_commune(self, code: str, month: Month) -> Commune:
        """The commune whose list for ``month`` holds people the registry files under ``code``.

        A code valid in ``month`` is its own list (a code both old and new, like 02020 after
        2025-07, is the new commune's); an old code maps to the commune it merged into.
        """
        unit = self.commune(code, month)
        if unit is None:
            unit = next((c for c in self._merged_into.get(code, ()) if c.valid_in(month)), None)
        if unit is None:
            raise AdminUnitError(_unknown(self.path, code, month))
        if not unit.code_confirmed or unit.code is None:
            raise AdminUnitError(_unconfirmed(self.path, code, unit))
        return unit

    def is_merged_list(self, commune: Commune, month: Month) -> bool:
        """Whether lines of ``commune``'s list for ``month`` carry the old code (maXaCu)."""
        return bool(commune.merged_from) and commune.valid_in(month)

    def province_of(self, commune: Commune) -> str:
        return commune.province

    def communes_in(self, month: Month) -> list[Commune]:
        """Communes with a list of their own in ``month`` (confirmed codes only)."""
        return [c for c in self.communes if c.valid_in(month) and c.code_confirmed]

    def name_of(self, code: str) -> str:
        """The latest name any unit had under ``code`` ("" when the file does not know it)."""
        units = self._by_code.get(code, ())
        if not units:
            return ""
        return max(units, key=lambda c: c.start or date.min).name

    def old_codes_of(self, code: str) -> tuple[str, ...]:
        """The old codes merged into the (new) commune that has ``code`` at any time."""
        return tuple(old for c in self._by_code.get(code, ()) for old in c.merged_from)

    def select_lists(
        self, configured: Iterable[str], month: Month
    ) -> tuple[dict[str, Commune], list[Unplaceable]]:
        """Which lists of ``month`` a deployment configured with ``configured`` codes builds.

        From 2025-07 a code selects the new commune that has it, or the new commune an old
        code merged into (a code both old and new, like 02020, is the new commune's). Before a
        merger a code selects the unit that had it then; a code that exists only after it
        (02014, 01933) selects the old communes merged into it. Returns the list communes by
        code, and the configured codes no list can be built for (unknown in ``month``, or
        merged into a commune whose code is not confirmed), each with the reason.
        """
        found: dict[str, Commune] = {}
        problems: list[Unplaceable] = []
        for code in dict.fromkeys(configured):
            unit = self.commune(code, month)
            if unit is None:
                unit = next((c for c in self._merged_into.get(code, ()) if c.valid_in(month)), None)
            if unit is not None:
                if unit.code_confirmed and unit.code is not None:
                    found[unit.code] = unit
                else:
                    problems.append(
                        Unplaceable(code, unit.name, _unconfirmed(self.path, code, unit))
                    )
                continue
            later = [
                old_unit
                for c in self._by_code.get(code, ())
                if c.start is not None and month.first_day < c.start
                for old in c.merged_from
                if (old_unit := self.commune(old, month)) is not None
            ]
            if later:
                for old_unit in later:
                    found[old_unit.code or ""] = old_unit
                continue
            problems.append(Unplaceable(code, self.name_of(code), _unknown(self.path, code, month)))
        return found, problems


@dataclass(frozen=True, slots=True)
class Unplaceable:
    """A configured code no list can be built for in a month, and why (readable)."""

    code: str
    name: str
    reason: str


def _unknown(path: str, code: str, month: Month) -> str:
    return (
        f"mã xã {code} không có trong {path} cho kỳ {month} (unknown commune code for this month)"
    )


def _unconfirmed(path: str, code: str, unit: Commune) -> str:
    return (
        f"xã {code} thuộc xã mới {unit.name} từ {unit.start}, nhưng mã xã mới chưa được "
        f"xác nhận trong {path}: không lập danh sách chi trả (the new commune's "
        "GSO code is not confirmed; no payment list is built until it is)"
    )


def load_admin_units(path: Path | str = DEFAULT_ADMIN_UNITS_PATH) -> AdminUnits:
    """Read and validate the admin-units file; :class:`RulesError` on the first problem."""
    root = Table(read_toml(path), path, "")
    if root.get("schema", int) != 1:
        raise root.error("schema", "only schema 1 is understood")
    provinces = tuple(_unit(t, None) for t in root.tables("province"))
    province_codes = {p.code for p in provinces}
    for i, p in enumerate(provinces):
        if p.parent is not None and p.parent not in province_codes:
            raise RulesError(path, f"province[{i}].merged_into", f"unknown province {p.parent!r}")
    districts = tuple(_unit(t, province_codes) for t in root.tables("district"))
    district_province = {d.code: d.parent or "" for d in districts}
    entries = root.tables("commune")
    communes = tuple(_commune(t, province_codes, district_province) for t in entries)
    root.finish()
    _check_overlaps(entries, communes)
    merged_into = _check_mergers(entries, communes)
    by_code: dict[str, tuple[Commune, ...]] = {}
    for c in communes:
        if c.code is not None:
            by_code[c.code] = (*by_code.get(c.code, ()), c)
    return AdminUnits(
        str(path),
        provinces,
        districts,
        communes,
        MappingProxyType(by_code),
        MappingProxyType(merged_into),
    )


def _unit(t: Table, parents: set[str] | None) -> Unit:
    code = t.get("code", str)
    parent_key = "merged_into" if parents is None else "province"
    parent = t.get(parent_key, str, required=parents is not None)
    if parents is not None and parent not in parents:
        raise t.error("province", f"unknown province {parent!r}")
    unit = Unit(
        code,
        t.get("name", str),
        t.month_start("from", required=False),
        t.month_start("until", required=False),
        parent,
    )
    t.finish()
    return unit


def _commune(t: Table, provinces: set[str], district_province: Mapping[str, str]) -> Commune:
    confirmed = t.get("code_confirmed", bool, True)
    code = t.get("code", str, required=confirmed)
    if code is not None and not _COMMUNE_CODE.match(code):
        raise t.error("code", f"{code!r} is not a 5-digit GSO commune code")
    district = t.get("district", str, required=False)
    if district is not None and district not in district_province:
        raise t.error("district", f"unknown district {district!r}")
    province = t.get(
        "province", str, district_province.get(district or "", None) or None, required=False
    )
    if province not in provinces:
        raise t.error("province", f"unknown or missing province {province!r}")
    t.get("kind", str, required=False)  # documentation only (thi_tran = town)
    commune = Commune(
        code=code,
        name=t.get("name", str),
        province=province,
        district=district,
        start=t.month_start("from", required=False),
        until=t.month_start("until", required=False),
        merged_from=t.str_list("merged_from"),
        code_confirmed=confirmed,
        note=t.get("note", str, ""),
    )
    t.finish()
    return commune


def _check_overlaps(entries: list[Table], communes: tuple[Commune, ...]) -> None:
    """Two units must not hold the same code at the same time."""
    seen: dict[str, list[Commune]] = {}
    for i, a in enumerate(communes):
        if a.code is None:
            continue
        for b in seen.get(a.code, []):
            if (a.start or date.min) < (b.until or date.max) and (b.start or date.min) < (
                a.until or date.max
            ):
                raise entries[i].error(
                    "code", f"{a.code} is also used by {b.name} in an overlapping period"
                )
        seen.setdefault(a.code, []).append(a)


def _check_mergers(
    entries: list[Table], communes: tuple[Commune, ...]
) -> dict[str, tuple[Commune, ...]]:
    """Every merged old code is a known commune that ends the day the new one starts."""
    ending: dict[tuple[str, date], Commune] = {
        (c.code, c.until): c for c in communes if c.code and c.until
    }
    merged_into: dict[str, tuple[Commune, ...]] = {}
    for i, new in enumerate(communes):
        for old_code in new.merged_from:
            if new.start is None or (old_code, new.start) not in ending:
                raise entries[i].error(
                    "merged_from", f"{old_code} is not a commune that ends on {new.start}"
                )
            if old_code in merged_into:
                raise entries[i].error(
                    "merged_from",
                    f"{old_code} is already merged into {merged_into[old_code][0].name}",
                )
            merged_into[old_code] = (new,)
    return merged_into
