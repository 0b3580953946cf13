"""The dashboard's one message catalogue and the label layer: every key in both languages
with the same placeholders, every key a template uses exists, Vietnamese formats from CLDR
(Babel), codes shown as names, refusals as refusals, timelines in causal order."""

from __future__ import annotations

import re
import string
from datetime import date
from pathlib import Path

import pytest

from gateway.web.admin import present
from gateway.web.admin.i18n import (
    LANGS,
    MESSAGES,
    format_date,
    format_duration,
    format_money,
    format_month,
    format_number,
    format_time,
)
from gateway.web.admin.labels import event_label, shown_outcome, system_label
from gateway.web.admin.params import OUTCOMES
from plugins.social_assistance.admin_units import load_admin_units
from plugins.social_assistance.labels import bien_dong_label, category_label, commune_label
from plugins.social_assistance.month import Month
from plugins.social_assistance.payment_list import BienDong
from plugins.social_assistance.rules import load_rules

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = [
    *sorted((ROOT / "gateway/web/admin/templates").glob("*.html")),
    *sorted((ROOT / "plugins/social_assistance/templates").glob("*.html")),
]
NBSP = "\xa0"


def fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_every_key_is_in_both_languages_with_the_same_placeholders() -> None:
    assert set(LANGS) == set(MESSAGES) == {"vi", "en"}
    assert set(MESSAGES["vi"]) == set(MESSAGES["en"])
    for key in MESSAGES["vi"]:
        vi, en = MESSAGES["vi"][key], MESSAGES["en"][key]
        assert vi.strip() and en.strip(), key
        assert fields(vi) == fields(en), key


def test_no_calque_and_no_english_left_on_vietnamese_strings() -> None:
    for key, text in MESSAGES["vi"].items():
        assert "thư chết" not in text.lower(), key
    # the English words an engineer would leave behind
    for word in ("Delivered", "dead letter", "retry", "not routed", "Error"):
        found = [
            k
            for k, v in MESSAGES["vi"].items()
            if re.search(rf"\b{word}\b", re.sub(r"\{[a-z_]+\}", "", v), re.IGNORECASE)
        ]
        assert not found, word


def template_keys() -> tuple[set[str], set[str]]:
    """The literal keys used by t("…") and s.… / s["…"] in every template."""
    core: set[str] = set()
    plugin: set[str] = set()
    for path in TEMPLATES:
        text = path.read_text()
        core |= set(re.findall(r"""\bt\(\s*["']([a-z0-9_.]+)["']\s*[,)]""", text))
        if "social_assistance" in str(path):  # there ``s`` is the plugin's strings
            plugin |= set(re.findall(r"\bs\.([a-z_]+)\b", text))
    return core, plugin


def test_every_key_a_template_uses_exists() -> None:
    core, plugin = template_keys()
    assert len(core) > 60 and len(plugin) > 20  # the scan really found the templates' keys
    assert sorted(core - set(MESSAGES["vi"])) == []
    assert sorted(f"sa_{k}" for k in plugin if f"sa_{k}" not in MESSAGES["vi"]) == []


def test_keys_built_in_templates_exist() -> None:
    """Keys a template builds (``t("outcome_" ~ value)``) exist for every value there is."""
    for outcome in (*OUTCOMES, "refused"):
        assert f"outcome_{outcome}" in MESSAGES["vi"]
    for status in ("pending", "in_flight", "delivered", "dead", "not_routed"):
        assert f"status_{status}" in MESSAGES["vi"]
    for state in ("closed", "half_open", "open"):
        assert f"breaker_{state}" in MESSAGES["vi"]
    for role in ("viewer", "operator", "admin"):
        assert f"role_{role}" in MESSAGES["vi"]
    for change in BienDong:
        assert f"biendong_{change.value}" in MESSAGES["vi"]
    for plugin in ("one_stop_shop", "district_registry", "post_office", "social_assistance"):
        assert f"plugin_{plugin}" in MESSAGES["vi"]


def test_vietnamese_formats_come_from_cldr() -> None:
    assert format_money(1_234_567, "vi") == f"1.234.567{NBSP}₫"
    assert format_money(4_500_000, "en") == "₫4,500,000"
    assert format_number(1_234_567, "vi") == "1.234.567"
    assert format_number(None, "vi") == "–"
    assert (format_duration(48.4, "vi"), format_duration(1234, "vi")) == ("48 ms", "1,2 s")
    assert format_duration(1234, "en") == "1.2 s"
    assert format_month("2027-01", "vi") == "Tháng 01/2027"
    assert format_month("2027-01", "en") == "January 2027"
    assert format_date("2020-08-10", "vi") == "10/08/2020"
    assert format_date(date(2020, 8, 10), "en") == "10 Aug 2020"
    # 2026-01-15 03:00 UTC is 10:00 in Hà Nội
    assert format_time(1768446000.0, "vi") == "15/01/2026 10:00:00"


def test_codes_are_shown_as_names() -> None:
    plugins = {"registry": "district_registry", "src": "http_json", "odd": "unknown_plugin"}
    assert system_label("registry", plugins, "vi") == "Phần mềm quản lý đối tượng BTXH"
    assert system_label("registry", plugins, "en") == "Social-assistance registry"
    assert system_label("src", plugins, "vi", with_code=True) == "Hệ thống HTTP/JSON (src)"
    assert system_label("odd", plugins, "vi") == "odd"  # unknown: the code, never a blank
    assert event_label("dossier.refused", "vi") == "Hồ sơ bị từ chối"
    assert event_label("plugin.own_event", "vi") == "plugin.own_event"
    assert bien_dong_label("tam_dung", "vi") == "Tạm dừng"
    rules = load_rules(ROOT / "config/social_assistance.toml")
    assert category_label(rules, "5.5a", "vi") == (
        "Người cao tuổi thuộc hộ nghèo không có người phụng dưỡng (5.5a)"
    )
    assert category_label(rules, "5.5a", "en").endswith("no one obliged to support (5.5a)")
    units = load_admin_units(ROOT / "config/admin_units.toml")
    assert commune_label(units, "02053", Month.parse("2020-09"), "vi") == "Ngọc Phái (02053)"
    # after the 2025-07 merger the old code names the old commune and the new one
    after = commune_label(units, "02053", Month.parse("2025-09"), "vi")
    assert after.startswith("Ngọc Phái (mã cũ 02053) → ") and after != "02053"


@pytest.mark.parametrize(
    ("outcome", "status", "shown"),
    [
        ("delivered", 200, "delivered"),
        ("delivered", 409, "refused"),
        ("delivered", 422, "refused"),  # the registry's refusal on the merits
        ("delivered", None, "delivered"),
        ("dead", 422, "dead"),
        ("retry_scheduled", 503, "retry_scheduled"),
    ],
)
def test_a_refusal_is_shown_as_a_refusal(outcome: str, status: int | None, shown: str) -> None:
    assert shown_outcome(outcome, status) == shown


def test_the_timeline_puts_an_answer_after_the_send_that_caused_it() -> None:
    attempt = {
        "at": 100.5,
        "destination": "registry",
        "attempt": 1,
        "outcome": "delivered",
        "http_status": 422,
        "duration_ms": 12.0,
        "error_message": "refused by the registry (R01): age",
        "delivery_id": 7,
        "actor": None,
    }
    message = {"source": "motcua", "event": "dossier.received", "revision": 1, "ref": "r"}
    timeline = {
        "messages": [
            {**message, "received_at": 100.0, "parent_delivery_id": None},
            # stored in the attempt's transaction, stamped a little before the attempt
            {
                **message,
                "event": "dossier.refused",
                "source": "registry",
                "received_at": 100.4,
                "parent_delivery_id": 7,
            },
        ],
        "attempts": [attempt],
    }
    kinds = [(e["kind"], e.get("event")) for e in present.timeline_events(timeline)]
    assert kinds == [
        ("received", "dossier.received"),
        ("attempt", None),
        ("received", "dossier.refused"),
    ]


CONNECTORS = [
    ROOT / "gateway/connector.py",
    ROOT / "plugins/district_registry/connector.py",
    ROOT / "plugins/one_stop_shop/connector.py",
    ROOT / "plugins/post_office/connector.py",
    ROOT / "plugins/social_assistance/connector.py",
]


def test_the_connectors_texts_come_from_the_catalogue() -> None:
    """No error or receipt text written inline: each is ``both("key", …)``, so it exists in
    both languages (checked above) and a clerk reads the same words everywhere."""
    inline = re.compile(
        r"""\w*(?:Error|Receipt)\(\s*f?["']|detail\s*=\s*f?["']|reason\s*=\s*f?["']"""
    )
    for path in CONNECTORS:
        text = path.read_text()
        # a prefix naming the adapter call before a catalogued reason is not a new text
        text = text.replace('reason = f"{where}: {exc.reason}"', "")
        found = [m.group(0) for m in inline.finditer(text)]
        # left: a programming error (RuntimeError) and a configuration error (ValueError, at
        # start-up, on the command line): never in the delivery log
        found = [f for f in found if not f.startswith(("RuntimeError", "ValueError"))]
        assert found == [], (path.name, found)
        assert "both(" in text, path.name
    keys = set()
    for path in CONNECTORS:
        keys |= set(re.findall(r"""both\(\s*["']([a-z_]+)["']""", path.read_text()))
    assert len(keys) > 30 and sorted(keys - set(MESSAGES["vi"])) == []


def test_both_languages_in_one_stored_text() -> None:
    from gateway.texts import both

    text = both("ans_registry_refused", "tuổi chưa đủ 80", code="tuoi")
    assert text == (
        "bị phần mềm quản lý từ chối (mã tuoi) / refused by the registry (code tuoi): "
        "tuổi chưa đủ 80"
    )


def test_a_json_answer_is_shown_without_escapes() -> None:
    from gateway.connector import answer_snippet

    body = b'{"error": "ch\\u01b0a \\u0111\\u01b0\\u1ee3c ph\\u00e9p"}'
    assert answer_snippet(body) == '{"error": "chưa được phép"}'
    assert answer_snippet("không phải JSON".encode()) == "không phải JSON"
    assert answer_snippet(b"") == ""


def test_a_long_chart_label_keeps_its_code() -> None:
    from gateway.web.admin.charts import hbar_chart

    name = "Người cao tuổi thuộc hộ nghèo không có người phụng dưỡng, sống một mình (5.5a)"
    [row] = hbar_chart([(name, 1_620_000, "1.620.000 ₫")])["rows"]
    assert row["label"].endswith("… (5.5a)") and len(row["label"]) <= 60
    assert row["full"] == name
