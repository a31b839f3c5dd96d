"""The one `/Date(…)/` reader Xero's and Exact's mappings share."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from providers.dates import is_ms_date, parse_ms_date
from providers.exact import odata
from providers.xero import mapping


def test_milliseconds_and_the_offset_written() -> None:
    assert parse_ms_date("/Date(1518685950940+0100)/") == (
        datetime(2018, 2, 15, 9, 12, 30, 940000, tzinfo=UTC), timedelta(hours=1))
    assert parse_ms_date("/Date(-86400000)/") == (datetime(1969, 12, 31, tzinfo=UTC), timedelta(0))
    assert parse_ms_date(" /Date(0-0230)/ ")[1] == -timedelta(hours=2, minutes=30)


@pytest.mark.parametrize("value", ["/Date()/", "Date(1)", "/Date(1+01)/", "2026-01-01", None, 5])
def test_anything_else_is_refused(value: object) -> None:
    assert not is_ms_date(value)
    with pytest.raises(ValueError, match="is not a /Date"):
        parse_ms_date(value)


def test_both_platforms_read_through_it() -> None:
    assert mapping.parse_ms_date is parse_ms_date
    assert odata.parse_date("/Date(1767225600000)/") == date(2026, 1, 1)
    assert mapping.read_timestamp({"UpdatedDateUTC": "/Date(1767225600000+0000)/"}, "UpdatedDateUTC") == \
        datetime(2026, 1, 1, tzinfo=UTC)
