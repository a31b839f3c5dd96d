"""The Belgian consumer damages cap (book XIX CEL), at its bracket edges."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest

from connector.escalation.legal_be import (
    belgian_consumer_damages_cap,
    belgian_waiting_period_end,
)


@pytest.mark.parametrize(
    ("principal", "cap"),
    [
        ("10", "20.00"), ("150", "20.00"), ("150.01", "30.00"), ("300", "45.00"), ("500", "65.00"),
        ("600", "70.00"), ("10000", "540.00"), ("39500", "2000.00"), ("100000", "2000.00"),
    ],
)
def test_damages_cap_brackets(principal: str, cap: str) -> None:
    assert belgian_consumer_damages_cap(D(principal)) == D(cap)


def test_waiting_period_starts_the_day_after_an_email_or_the_third_working_day_after_a_letter() -> None:
    assert belgian_waiting_period_end(date(2026, 11, 2), by_email=True) == date(2026, 11, 16)
    # posted Friday 2026-11-06: working days Mon 9, Tue 10, Wed 11 -> 14 days from the 11th
    assert belgian_waiting_period_end(date(2026, 11, 6), by_email=False) == date(2026, 11, 24)
