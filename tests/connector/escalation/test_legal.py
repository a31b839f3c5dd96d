"""Statutory collection costs and interest, exact to the cent."""

from __future__ import annotations

import warnings
from datetime import date
from decimal import Decimal as D

import pytest

from connector.escalation import legal
from connector.escalation.legal import (
    business_compensation,
    collection_costs,
    rate_table,
    stale_rate_warning,
    unconfirmed_rate_warning,
    statutory_interest,
)


@pytest.mark.parametrize(
    ("principal", "costs"),
    [
        # the worked values of the Besluit (domain.md)
        ("100", "40.00"),
        ("266.67", "40.00"),
        ("1000", "150.00"),
        ("2500", "375.00"),
        ("5000", "625.00"),
        ("10000", "875.00"),
        ("200000", "2775.00"),
        ("1000000", "6775.00"),
        # bracket edges: the EUR 40 minimum, just past each boundary, and the cap
        ("0.01", "40.00"),
        ("266.66", "40.00"),
        ("267.00", "40.05"),
        ("2500.01", "375.00"),
        ("2510", "376.00"),
        ("5010", "625.50"),
        ("10100", "876.00"),
        ("200200", "2776.00"),
        ("999999.99", "6775.00"),
        ("800000", "5775.00"),
        ("1200000", "6775.00"),
    ],
)
def test_collection_costs_follow_the_statutory_scale(principal: str, costs: str) -> None:
    assert collection_costs(D(principal)) == D(costs)


def test_vat_is_added_on_top_of_the_capped_amount() -> None:
    assert collection_costs(D(1000), vat_rate=D("0.21")) == D("181.50")
    assert collection_costs(D(100), vat_rate=D("0.21")) == D("48.40")
    assert collection_costs(D(5000000), vat_rate=D("0.21")) == D("8197.75")


def test_collection_costs_refuse_nonsense() -> None:
    with pytest.raises(ValueError, match="positive principal"):
        collection_costs(D(0))
    with pytest.raises(ValueError, match="fraction"):
        collection_costs(D(100), vat_rate=D(21))


def test_business_compensation_is_forty_as_a_floor_never_on_top() -> None:
    assert business_compensation(D(100)) == D("40.00")
    assert business_compensation(D(1000)) == D("150.00")
    assert business_compensation(D(100), contractual=D(25)) == D("40.00")
    assert business_compensation(D(100), contractual=D("95.50")) == D("95.50")


def test_interest_for_one_day_is_the_yearly_rate_over_365() -> None:
    # 10,000 at 10.15 % for one day: 2.7808... -> 2.78
    assert statutory_interest(D(10000), date(2026, 3, 2), date(2026, 3, 2), commercial=True) == D("2.78")


def test_interest_uses_each_rate_period_across_a_rate_change() -> None:
    # 2025: 181 days at 11.15 % then 184 days at 10.15 % (commercial)
    expected = D(1000) * (D("11.15") * 181 + D("10.15") * 184) / 100 / 365
    assert statutory_interest(D(1000), date(2025, 1, 1), date(2025, 12, 31), commercial=True) == legal.cents(expected)


def test_interest_is_capitalised_at_each_anniversary_across_a_year_boundary() -> None:
    # consumer: 2024 (366 days, a leap year, still / 365) at 7 %, then 2025 at 6 % on principal + 2024's interest
    first = D(1000) * D(7) / 100 * 366 / 365
    second = (D(1000) + first) * D(6) / 100 * 365 / 365
    result = statutory_interest(D(1000), date(2024, 1, 1), date(2025, 12, 31), commercial=False)
    assert result == legal.cents(first + second) == D("134.40")
    uncapitalised = legal.cents(first + D(1000) * D(6) / 100)
    assert result != uncapitalised


def test_an_anniversary_on_29_february_falls_on_28_february() -> None:
    assert legal._anniversary(date(2024, 2, 29), 1) == date(2025, 2, 28)
    assert legal._anniversary(date(2024, 2, 29), 4) == date(2028, 2, 29)
    # year one: 2024-02-29 .. 2025-02-27 (307 days at 7 %, 58 at 6 %); on 2025-02-28 it joins the principal
    year_one = D(1000) * (D(7) * 307 + D(6) * 58) / 100 / 365
    assert statutory_interest(D(1000), date(2024, 2, 29), date(2025, 2, 27), commercial=False) == legal.cents(year_one)
    day_after = (D(1000) + year_one) * D(6) / 100 / 365
    through = statutory_interest(D(1000), date(2024, 2, 29), date(2025, 2, 28), commercial=False)
    assert through == legal.cents(year_one + day_after)


def test_interest_before_the_table_is_an_error_not_a_guess() -> None:
    with pytest.raises(ValueError, match="no statutory interest rate known before 2015-01-01"):
        statutory_interest(D(1000), date(2014, 12, 1), date(2015, 2, 1), commercial=True)


def test_interest_past_the_half_year_the_table_is_sure_of_is_told_as_a_value() -> None:
    sure = rate_table().sure_until
    assert stale_rate_warning(sure) is None  # nothing to tell up to the last sure day
    told = stale_rate_warning(date(sure.year + 1, 1, 1))
    assert told is not None and f"sure only up to {sure}" in told
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the calculation itself never warns through the process-wide machinery
        statutory_interest(D(1000), date(2026, 1, 1), date(sure.year + 1, 1, 1), commercial=True)


def test_interest_over_a_rate_the_table_marks_unconfirmed_is_told_with_that_rate() -> None:
    # domain.md: facts marked (verify) are confirmed before the code relies on them; until then the amount says so
    table = rate_table()
    unsure = next(row for row in table.commercial if not row.confirmed)
    before = [row for row in table.commercial if row.start < unsure.start][-1]
    assert before.confirmed
    assert unconfirmed_rate_warning(before.start, unsure.start, commercial=True) is not None  # its first day counts
    day_before = date.fromordinal(unsure.start.toordinal() - 1)
    assert unconfirmed_rate_warning(before.start, day_before, commercial=True) is None
    told = unconfirmed_rate_warning(day_before, unsure.start, commercial=True)
    assert told is not None and f"{unsure.rate} % from {unsure.start}" in told and "nl_statutory_interest.toml" in told
    # each kind of interest by its own rows
    consumer_unsure = {row.start for row in table.consumer if not row.confirmed}
    assert (unconfirmed_rate_warning(unsure.start, unsure.start, commercial=False) is None) == (
        not any(start <= unsure.start for start in consumer_unsure))


def test_rate_table_rows_carry_a_source_and_cover_2020_to_today() -> None:
    table = rate_table()
    for rows in (table.commercial, table.consumer):
        assert rows[0].start <= date(2020, 1, 1)
        assert all(row.source for row in rows)
    assert table.sure_until >= date(2026, 11, 23)
    rates = {row.start: row.rate for row in table.commercial}
    assert rates[date(2023, 1, 1)] == D("10.50") and rates[date(2025, 7, 1)] == D("10.15")


def test_empty_period_is_zero() -> None:
    assert statutory_interest(D(1000), date(2026, 3, 2), date(2026, 3, 1), commercial=True) == D("0.00")


# --- a creditor under Belgian law (domain.md, Belgium: law of 2 August 2002) --------------------------------------


def test_belgian_commercial_interest_uses_the_belgian_half_year_rates_of_the_domain_reference() -> None:
    rates = {row.start: row.rate for row in rate_table("BE").commercial}
    assert [rates[date(2024, 1, 1)], rates[date(2024, 7, 1)], rates[date(2025, 1, 1)], rates[date(2025, 7, 1)]] == [
        D("12.50"), D("12.50"), D("11.50"), D("10.50")]
    assert all(row.source for row in rate_table("BE").commercial)
    # June 2025 at 11.5 %, July at 10.5 %: 1,000 x (0.115 x 30 + 0.105 x 31) / 365 = 18.3699
    assert statutory_interest(D(1000), date(2025, 6, 1), date(2025, 7, 31), commercial=True, law="BE") == D("18.37")
    assert statutory_interest(D(1000), date(2025, 6, 1), date(2025, 7, 31), commercial=True) == D("17.78")  # NL: 11.15 % and 10.15 %


def test_belgian_interest_is_not_capitalised_yearly() -> None:
    # two years from 1 January 2024: 1,000 x (0.125 x 366 + 0.115 x 181 + 0.105 x 184) / 365 = 235.3014, simple;
    # the Dutch rule would add 2024's interest to the principal for 2025
    simple = statutory_interest(D(1000), date(2024, 1, 1), date(2025, 12, 31), commercial=True, law="BE")
    assert simple == D("235.30")
    year_one = statutory_interest(D(1000), date(2024, 1, 1), date(2024, 12, 31), commercial=True, law="BE")
    assert year_one == D("125.34")


def test_belgian_law_changes_the_commercial_rate_only_and_its_warnings_name_its_own_table() -> None:
    args = (D(1000), date(2025, 6, 1), date(2025, 7, 31))
    assert statutory_interest(*args, commercial=False, law="BE") == statutory_interest(*args, commercial=False)
    told = unconfirmed_rate_warning(date(2026, 6, 1), date(2026, 7, 31), commercial=True, law="BE")
    assert told is not None and "Belgian late-payment" in told and "be_late_payment_interest.toml" in told
    stale = stale_rate_warning(date(2027, 1, 1), commercial=True, law="BE")
    assert stale is not None and "be_late_payment_interest.toml" in stale
