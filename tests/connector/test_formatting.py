"""Human output in the user's language: amounts and days inside the rules' sentences follow it too (cli.md)."""

from __future__ import annotations

from connector.escalation.action import format_money
from connector.formatting import formats_for
from decimal import Decimal


def test_a_reason_shows_its_amounts_and_days_as_the_language_writes_them() -> None:
    reason = (f"notice_of_default: 3 days after reminder_1 on 2026-03-03, {format_money(Decimal('1234.56'), 'EUR')} "
              f"outstanding; credit {format_money(Decimal('-12.34'), 'EUR')}; {format_money(Decimal('1000000'), 'GBP')}")
    assert formats_for("nl").text(reason) == (
        "notice_of_default: 3 days after reminder_1 on 3 maart 2026, € 1.234,56 outstanding; credit € -12,34; "
        "£ 1.000.000,00")
    assert formats_for("en").text(reason) == (
        "notice_of_default: 3 days after reminder_1 on 3 March 2026, €1,234.56 outstanding; credit -€12.34; "
        "£1,000,000.00")


def test_numbers_and_references_that_only_look_like_days_or_amounts_stay_as_written() -> None:
    text = "invoice 2026-0007, INV-2026-09-01 and 2026-09-01-A, reference 2026-13-45, 12.50 without a currency"
    assert formats_for("nl").text(text) == text


def test_the_neutral_amount_groups_thousands_exactly_as_format_does() -> None:
    # format_money groups whole cents by hand (the planner writes hundreds of thousands of them): the same text
    for text in ("0.00", "12.34", "-12.34", "999.99", "1000.00", "1234.56", "-1234.56", "123456.78", "999999.99",
                 "1000000.00", "1234567.89", "12.5", "1E+3", "7"):
        amount = Decimal(text)
        assert format_money(amount, "EUR") == f"EUR {amount:,.2f}", text
