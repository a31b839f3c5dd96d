"""Belgian consumer debts (book XIX Code of Economic Law, law of 4 May 2023): the cap on damages.

Kept apart from the Dutch rules in `legal.py`. The schedule stays the Dutch one, which already keeps the Belgian
rules on time (reminders are free, and a consumer owes costs only once the 14-day letter's term, which starts after
the presumed receipt, has passed: after the Belgian waiting period); what differs is the amount, so a consumer
whose address is in Belgium is charged at most `belgian_consumer_damages_cap` instead of the Dutch scale, which is
higher for every principal (`consumer_costs`). In force 1 September 2023 (from 1 December 2023 also for contracts
concluded before).
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from connector.escalation.legal import BELGIUM, cents, collection_costs

IN_FORCE = date(2023, 9, 1)
WAITING_DAYS = 14
"""No damages before 14 calendar days after the (free) first reminder."""
REMINDER_FEE_MAX = Decimal("7.50")
"""Further reminders: at most EUR 7.50 each plus postage; the first reminder is free."""


def belgian_consumer_damages_cap(principal: Decimal) -> Decimal:
    """The most a creditor may claim as damages from a Belgian consumer on an unpaid `principal`.

    EUR 20 for debts up to EUR 150; EUR 30 + 10 % of the part between 150.01 and 500; EUR 65 + 5 % of the part
    above 500, at most EUR 2,000.
    """
    if principal <= 0:
        raise ValueError(f"damages need a positive principal, got {principal}")
    if principal <= 150:
        return Decimal("20.00")
    if principal <= 500:
        return cents(Decimal(30) + (principal - 150) * Decimal("0.10"))
    return cents(min(Decimal(65) + (principal - 500) * Decimal("0.05"), Decimal(2000)))


def belgian_waiting_period_end(sent: date, *, by_email: bool) -> date:
    """The last day of the 14-day waiting period after the first reminder.

    It starts the day after an e-mail is sent, or the third working day after a letter is posted (Saturdays,
    Sundays counted as non-working; Belgian public holidays are not yet taken into account here).
    """
    if by_email:
        start = sent + timedelta(days=1)
    else:
        start, working = sent, 0
        while working < 3:
            start += timedelta(days=1)
            if start.weekday() < 5:
                working += 1
    return start + timedelta(days=WAITING_DAYS - 1)


BELGIAN_CONSUMER_NOTE = (
    "the debtor is a consumer in Belgium: the damages are at most the cap of book XIX of the Code of Economic Law "
    "(law of 4 May 2023), not the Dutch scale"
)


def consumer_costs(principal: Decimal, *, country: str | None, vat_rate: Decimal) -> Decimal:
    """The collection costs a consumer owes on `principal`: the Belgian cap for a consumer in Belgium (a lump sum,
    no VAT on top), else the Dutch scale of art. 6:96 BW (with VAT where the policy adds it)."""
    if country == BELGIUM:
        return belgian_consumer_damages_cap(principal)
    return collection_costs(principal, vat_rate=vat_rate)


BUSINESS_COMPENSATION = Decimal("40.00")
"""Law of 2 August 2002 on late payment, art. 6: a fixed EUR 40 per invoice paid late, owed without a reminder."""

BELGIAN_CREDITOR_NOTE = (
    "under Belgian law (2 August 2002, art. 6) a business owes a fixed EUR 40 per invoice; further collection costs "
    "only where they are shown and reasonable, so none are added here; the interest is the Belgian late-payment rate "
    "(art. 5: ECB + 8 points, rounded up to a half point), not capitalised"
)


def business_compensation_be(invoices: int) -> Decimal:
    """What business debtors owe a Belgian creditor for collection on `invoices` late invoices: EUR 40 each."""
    return BUSINESS_COMPENSATION * invoices
