"""The dossier's law, pure: interest follows the money day by day, rounded once."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from connector.escalation.legal import statutory_interest
from connector.handoff.dossier import interest_following_payments


def test_a_part_payment_lowers_the_principal_from_the_day_after_its_payment_date() -> None:
    # domain.md: 1,000 overdue, 400 paid on day 20 -> interest on 1,000 for days 1-20 and on 600 after.
    # 2026 commercial rate 10.15 %: 1,000 x 20/365 = 5.56164 + 600 x 40/365 = 6.67397 -> 12.2356 -> 12.24
    start, paid_on, end = date(2026, 1, 2), date(2026, 1, 21), date(2026, 3, 2)
    found = interest_following_payments(Decimal("600.00"), [(paid_on, Decimal("400.00"))], start, end, commercial=True)
    assert found == Decimal("12.24")  # rounded once: rounding each part first would give 10.01 + 2.22 = 12.23
    assert found < statutory_interest(Decimal("1000.00"), start, end, commercial=True)  # 16.68 without the payment


def test_payments_before_default_and_after_the_end_do_not_count() -> None:
    start, end = date(2026, 1, 2), date(2026, 3, 2)
    plain = interest_following_payments(Decimal("600.00"), [], start, end, commercial=False)
    assert plain == statutory_interest(Decimal("600.00"), start, end, commercial=False)
    assert interest_following_payments(Decimal("600.00"), [(date(2025, 12, 20), Decimal("400.00"))], start, end,
                                       commercial=False) == plain
    assert interest_following_payments(Decimal("600.00"), [], end, start, commercial=False) == 0
