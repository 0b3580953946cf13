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
