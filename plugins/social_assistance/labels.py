"""Names a clerk reads instead of codes: categories (Decree 20/2021/NĐ-CP art. 5, with the
code beside), communes (from admin_units.toml, old and new) and line changes (bienDong).

Category and group names are data of ``social_assistance.toml``, written ``"vi (en)"``;
the page shows the half of its language.
"""

from __future__ import annotations

import re

from gateway.api import has, translate
from plugins.social_assistance.admin_units import AdminUnits
from plugins.social_assistance.month import Month
from plugins.social_assistance.rules import Rules

_BILINGUAL = re.compile(r"^(?P<vi>.+?)\s*\((?P<en>[^()]*)\)\s*$")


def half(text: str, lang: str) -> str:
    """The Vietnamese or English half of a ``"vi (en)"`` name (the whole text otherwise)."""
    found = _BILINGUAL.match(text)
    if found is None:
        return text
    return found["en"] if lang == "en" else found["vi"]


def category_label(rules: Rules, code: str, lang: str) -> str:
    """``5.5a`` → "Người cao tuổi thuộc hộ nghèo … (5.5a)"."""
    category = rules.categories.get(code)
    return f"{half(category.name, lang)} ({code})" if category is not None else code


def group_label(rules: Rules, code: str, lang: str) -> str:
    name = rules.groups.get(code)
    return half(name, lang) if name else code


def commune_label(units: AdminUnits, code: str, month: Month, lang: str) -> str:
    """A commune code as its name in ``month`` (an old code after a merger names the old
    commune and the new one it belongs to), with the code beside."""
    unit = units.commune(code, month)
    if unit is not None:
        return f"{unit.name} ({code})"
    old = next((c for c in units.communes if c.code == code), None)
    try:
        new = units.list_commune(code, month)
    except ValueError:
        new = None
    if old is not None and new is not None:
        return f"{old.name} ({translate(lang, 'commune_old')} {code}) → {new.name}"
    if old is not None:
        return f"{old.name} ({code})"
    return code


def bien_dong_label(value: str, lang: str) -> str:
    key = f"biendong_{value}"
    return translate(lang, key) if has(key) else value
