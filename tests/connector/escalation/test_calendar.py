"""When the consumer 14-day letter counts as received and when its term ends."""

from __future__ import annotations

from datetime import date

import pytest

from connector.escalation.calendar import consumer_term_end, presumed_receipt
from connector.escalation.policy import Policy


@pytest.mark.parametrize(
    ("sent", "received", "term_end", "why"),
    [
        (date(2026, 11, 17), date(2026, 11, 19), date(2026, 12, 3), "Tuesday: Wed, Thu"),
        (date(2026, 11, 19), date(2026, 11, 21), date(2026, 12, 5), "Thursday: Fri, Sat"),
        (date(2026, 11, 20), date(2026, 11, 24), date(2026, 12, 8), "Friday: Sat, then Sunday and Monday skipped"),
        (date(2026, 11, 21), date(2026, 11, 25), date(2026, 12, 9), "Saturday: Sun, Mon skipped"),
        (date(2026, 12, 23), date(2026, 12, 29), date(2027, 1, 12), "Christmas days, Sunday and Monday skipped"),
        (date(2026, 4, 2), date(2026, 4, 7), date(2026, 4, 21), "Good Friday and Easter Monday skipped"),
        (date(2026, 5, 1), date(2026, 5, 6), date(2026, 5, 20), "5 May counts as a holiday every year"),
    ],
)
def test_receipt_presumption_skips_sundays_mondays_and_holidays(
    sent: date, received: date, term_end: date, why: str
) -> None:
    policy = Policy()
    assert presumed_receipt(sent, policy.receipt) == received, why
    assert consumer_term_end(sent, policy) == term_end, why


def test_receipt_presumption_is_configurable() -> None:
    policy = Policy.model_validate({"receipt": {"days": 1, "skip_weekdays": ["sunday"], "holidays_country": None}})
    assert presumed_receipt(date(2026, 11, 21), policy.receipt) == date(2026, 11, 23)  # Saturday -> Monday
