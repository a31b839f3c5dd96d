"""Dates of the consumer 14-day letter: when a letter counts as received, and when its term has passed.

Courts presume receipt on the second day after sending where a Sunday, Monday or public holiday does not count
(postal delivery in the Netherlands runs Tuesday to Saturday). The policy makes this configurable; the default is
that presumption. Public holidays come from the `holidays` package; 5 May is added every year because the
Algemene termijnenwet (art. 3) lists it as a general holiday, while `holidays` has it only in lustrum years.
Counting more days as non-delivery days only makes the term end later: conservative for the creditor.
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import cache, lru_cache

import holidays

from connector.escalation.policy import Policy, ReceiptPresumption

_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@cache
def _holidays(country: str, year: int) -> frozenset[date]:
    days = set(holidays.country_holidays(country, years=year))
    if country == "NL":
        days.add(date(year, 5, 5))
    return frozenset(days)


def counts_for_delivery(day: date, presumption: ReceiptPresumption) -> bool:
    """Whether a letter can be delivered on `day` under the presumption."""
    if _WEEKDAYS[day.weekday()] in presumption.skip_weekdays:
        return False
    country = presumption.holidays_country
    return not (country and day in _holidays(country, day.year))


@lru_cache(maxsize=1024)  # a run asks it for one day many times (every notice of default it plans)
def presumed_receipt(sent: date, presumption: ReceiptPresumption) -> date:
    """The day a letter sent on `sent` counts as received: the N-th counting day after it."""
    day, counted = sent, 0
    while counted < presumption.days:
        day += timedelta(days=1)
        if counts_for_delivery(day, presumption):
            counted += 1
    return day


def consumer_term_end(sent: date, policy: Policy) -> date:
    """The last day of the 14-day letter's term: 14 days starting the day after presumed receipt (inclusive)."""
    return presumed_receipt(sent, policy.receipt) + timedelta(days=policy.consumer_term_days)
