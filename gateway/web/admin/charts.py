"""Geometry of the overview's 24-hour bar charts, rendered as inline SVG by the template
(no JavaScript, no images to fetch: readable on any office PC)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from gateway.model import VN_TZ
from gateway.web.admin.i18n import translate

LEFT, SLOT, BAR = 34, 20, 14  # LEFT: room for the scale on the left of the bars
WIDTH, HEIGHT = LEFT + 24 * SLOT + 4, 132
TOP, BASE = 14, 108  # plot area: y from TOP (the peak) to BASE (zero)


def _hour(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, VN_TZ).strftime("%H:00")


def day_chart(system: str, hourly: list[dict[str, Any]], lang: str) -> dict[str, Any]:
    """Stacked bars (delivered below, failed above), one per hour, scaled to the busiest hour."""
    peak = max((h["delivered"] + h["failed"] for h in hourly), default=0)
    scale = (BASE - TOP) / peak if peak else 0.0
    bars = []
    for i, h in enumerate(hourly):
        hd, hf = h["delivered"] * scale, h["failed"] * scale
        # a non-empty hour is always visible, however small next to the peak
        hd = max(hd, 1.5) if h["delivered"] else 0.0
        hf = max(hf, 1.5) if h["failed"] else 0.0
        x = LEFT + i * SLOT + (SLOT - BAR) / 2
        bars.append(
            {
                "x": round(x, 1),
                "yd": round(BASE - hd, 1),
                "hd": round(hd, 1),
                "yf": round(BASE - hd - hf, 1),
                "hf": round(hf, 1),
                "title": f"{system} {_hour(h['start'])} — "
                + translate(lang, "chart_totals", delivered=h["delivered"], failed=h["failed"]),
            }
        )
    last = len(hourly) - 1
    ticks = [
        {"x": LEFT + i * SLOT + SLOT / 2, "label": _hour(h["start"]), "end": i == last}
        for i, h in enumerate(hourly)
        if i % 6 == 0 or i == last
    ]
    if ticks and ticks[-1]["end"]:
        ticks[-1]["x"] = WIDTH
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "top": TOP,
        "base": BASE,
        "bar": BAR,
        "bars": bars,
        "ticks": ticks,
        "left": LEFT,
        "empty": translate(lang, "chart_empty") if peak == 0 else "",
        "peak": peak,
        "label_y": BASE + 18,
        "delivered": sum(h["delivered"] for h in hourly),
        "failed": sum(h["failed"] for h in hourly),
    }


# -- generic charts for plugin pages (templates/_charts.html draws them) ---------------------
HBAR_WIDTH, HBAR_ROW, HBAR_BAR, HBAR_LABEL_CHARS = 520, 44, 16, 60


def _cut(text: str, limit: int) -> str:
    """``text`` within ``limit`` characters; a code in brackets at the end is kept whole."""
    if len(text) <= limit:
        return text
    name, sep, code = text.rpartition(" (")
    if sep and code.endswith(")") and len(code) < limit // 2:
        return name[: limit - len(code) - 3].rstrip() + "… (" + code
    return text[: limit - 1].rstrip() + "…"


def hbar_chart(items: list[tuple[str, int, str]]) -> dict[str, Any]:
    """Horizontal bars, one row per ``(label, value, value_text)``: the label above its bar,
    the value at the bar's end; scaled to the largest value (room kept for the value text)."""
    peak = max((v for _, v, _ in items), default=0)
    room = HBAR_WIDTH - 120  # the value text after the longest bar
    rows = []
    for i, (label, value, text) in enumerate(items):
        length = value * room / peak if peak else 0.0
        length = max(length, 2.0) if value else 0.0
        top = i * HBAR_ROW
        rows.append(
            {
                "label": _cut(label, HBAR_LABEL_CHARS),
                "full": label,
                "value_text": text,
                "label_y": top + 14,
                "bar_y": top + 20,
                "length": round(length, 1),
                "value_x": round(length + 6, 1),
                "value_y": top + 20 + HBAR_BAR - 3,
            }
        )
    return {
        "width": HBAR_WIDTH,
        "height": max(len(items) * HBAR_ROW, HBAR_ROW),
        "bar": HBAR_BAR,
        "rows": rows,
        "empty": peak == 0,
    }


COL_WIDTH, COL_HEIGHT, COL_LEFT, COL_TOP, COL_BASE = 960, 190, 8, 24, 160


def column_chart(items: list[tuple[str, str, int, str]], compact: Any = str) -> dict[str, Any]:
    """Vertical bars, one per ``(label, short label, value, value_text)`` (12 months), scaled
    to the peak; the short label is written under the bar, the long one in its tooltip,
    ``compact(value)`` above it."""
    peak = max((v for _, _, v, _ in items), default=0)
    slot = (COL_WIDTH - COL_LEFT * 2) / max(len(items), 1)
    bar = slot * 0.62
    cols = []
    for i, (label, short, value, text) in enumerate(items):
        height = value * (COL_BASE - COL_TOP) / peak if peak else 0.0
        height = max(height, 2.0) if value else 0.0
        x = COL_LEFT + i * slot + (slot - bar) / 2
        cols.append(
            {
                "label": label,
                "short": short,
                "value_text": text,
                "compact": compact(value),
                "x": round(x, 1),
                "y": round(COL_BASE - height, 1),
                "height": round(height, 1),
                "mid": round(x + bar / 2, 1),
            }
        )
    return {
        "width": COL_WIDTH,
        "height": COL_HEIGHT,
        "base": COL_BASE,
        "left": COL_LEFT,
        "bar": round(bar, 1),
        "cols": cols,
        "label_y": COL_BASE + 18,
        "empty": peak == 0,
    }
