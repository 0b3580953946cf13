"""The one date/time grammar of the admin API, the dashboard's filters and the CLI."""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.model import VN_TZ, parse_when


def test_a_date_is_midnight_in_vietnam() -> None:
    assert parse_when("2020-08-03") == datetime(2020, 8, 3, tzinfo=VN_TZ).timestamp()


@pytest.mark.parametrize(
    "text",
    [
        "2020-08-03T08:15",
        "2020-08-03 08:15",
        "2020-08-03T08:15:00",
        "2020-08-03T08:15:00+07:00",
        "2020-08-03T01:15:00Z",
        "2020-08-03t01:15:00z",
        "2020-08-02T20:15:00-05:00",
    ],
)
def test_the_same_instant_in_every_accepted_form(text: str) -> None:
    assert parse_when(text) == datetime(2020, 8, 3, 8, 15, tzinfo=VN_TZ).timestamp()


def test_fractions_beyond_microseconds_are_truncated() -> None:
    assert parse_when("2020-08-03T01:15:00.123456789Z") % 1 == pytest.approx(0.123456)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "yesterday",
        "20200803",  # ISO basic format: one grammar only
        "2020-8-3",
        "2024-13-01",
        "2020-02-30",
        "2024-01-01T12:99:00Z",
        "2024-01-01T24:00",
        "2024-01-01T08:15+24:00",
        "2024-01-01T08:15:00+0700",
        "٢٠٢٠-٠٨-٠٣",  # digits of other scripts
    ],
)
def test_anything_else_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        parse_when(text)


@given(st.datetimes(timezones=st.timezones()))
def test_rfc3339_round_trips_to_the_same_instant_at_the_ends_of_the_calendar(
    dt: datetime,
) -> None:
    """Years 0001 and 9999 with any offset: no OverflowError (that was a 500)."""
    offset = dt.utcoffset()
    assert offset is not None
    seconds = int(offset.total_seconds())
    sign, seconds = ("+" if seconds >= 0 else "-"), abs(seconds) // 60 * 60
    text = dt.replace(tzinfo=None, second=0, microsecond=0).isoformat() + (
        f"{sign}{seconds // 3600:02d}:{seconds % 3600 // 60:02d}"
    )
    naive = dt.replace(tzinfo=None, second=0, microsecond=0)
    expected = (naive - datetime(1970, 1, 1)).total_seconds() - (
        seconds if sign == "+" else -seconds
    )
    assert parse_when(text) == expected
