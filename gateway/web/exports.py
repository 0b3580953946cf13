"""The delivery log as CSV: one set of columns and one row format for every export
(``gateway deliveries export`` and the dashboard / admin API download).

Times are Asia/Ho_Chi_Minh, personal data in error messages is masked, and a cell that a
spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@`` first) is prefixed with ``'``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from gateway.log import mask_text
from gateway.model import VN_TZ

LOG_COLUMNS = [
    "id",
    "at",
    "delivery_id",
    "dossier_key",
    "source",
    "destination",
    "route",
    "attempt",
    "outcome",
    "http_status",
    "duration_ms",
    "bytes_sent",
    "bytes_received",
    "error_class",
    "error_message",
    "next_attempt_at",
    "node",
    "actor",
]

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def export_time(epoch: float | None) -> str:
    """``2020-08-03 08:15:00+0700`` (empty for no time)."""
    if epoch is None:
        return ""
    return datetime.fromtimestamp(epoch, VN_TZ).strftime("%Y-%m-%d %H:%M:%S%z")


def _cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def log_csv_row(row: dict[str, Any]) -> dict[str, Any]:
    """One delivery-log row as exported: the :data:`LOG_COLUMNS`, times formatted, masked."""
    out = {col: row.get(col) for col in LOG_COLUMNS}
    out["at"] = export_time(row.get("at"))
    out["next_attempt_at"] = export_time(row.get("next_attempt_at"))
    for key in ("error_message", "dossier_key"):  # a key stored before pseudonyms, too
        if out.get(key):
            out[key] = mask_text(str(out[key]))
    return {k: _cell(v) for k, v in out.items()}


def csv_writer(handle: Any) -> csv.DictWriter[str]:
    """A writer of :func:`log_csv_row` rows (call ``writeheader()`` first)."""
    return csv.DictWriter(handle, fieldnames=LOG_COLUMNS, extrasaction="ignore")


def csv_chunk(rows: Iterable[dict[str, Any]], *, header: bool = False) -> str:
    """Rows of the delivery log as CSV text (with the header line when asked)."""
    buf = io.StringIO()
    writer = csv_writer(buf)
    if header:
        writer.writeheader()
    for row in rows:
        writer.writerow(log_csv_row(row))
    return buf.getvalue()
