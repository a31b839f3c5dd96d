"""What a step may lawfully state: collection costs, statutory interest, the pay-by date and presumed receipt.

Businesses owe max(EUR 40, scale) and commercial interest from the day after the due date; consumers owe costs only
once the 14-day letter's term has passed unpaid. What cannot be computed (a due date before the rate table, a
currency the statutory scale does not cover) comes back as warnings on the action, never as a guess.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from connector.escalation.action import ActionInvoice
from connector.escalation.calendar import consumer_term_end, presumed_receipt
from connector.escalation.legal import (
    NETHERLANDS,
    business_compensation,
    stale_rate_warning,
    statutory_interest,
    unconfirmed_rate_warning,
)
from connector.escalation.legal_be import (
    BELGIAN_CONSUMER_NOTE,
    BELGIAN_CREDITOR_NOTE,
    BELGIUM,
    business_compensation_be,
    consumer_costs,
)
from connector.escalation.policy import Policy
from connector.models import DebtorKind, Invoice

PRICED_STEPS = frozenset({"notice_of_default", "handoff"})
"""Only these steps state costs and interest (and a pay-by date)."""


@dataclass(frozen=True, slots=True)
class Priced:
    """The amounts and dates a priced step states (None where the step may not state it)."""

    costs: Decimal | None = None
    costs_if_unpaid: Decimal | None = None
    interest: Decimal | None = None
    pay_by: date | None = None
    presumed_receipt: date | None = None
    warnings: tuple[str, ...] = ()


NOT_PRICED = Priced()


def notice_pay_by(sent: date, kind: DebtorKind, policy: Policy) -> date:
    """The last day to pay after a notice of default sent on `sent` (consumers: the end of the 14-day term)."""
    if kind is DebtorKind.CONSUMER:
        return consumer_term_end(sent, policy)
    return sent + timedelta(days=policy.steps.notice_of_default.pay_by_days)


def principal_on(invoice: Invoice, day: date) -> Decimal:
    """What was owed on `invoice` at the end of `day`: the outstanding amount plus the payments the platform dates
    after it (a payment lowers the principal from the day after it was made)."""
    return invoice.outstanding + sum((p.amount for p in invoice.payments if p.on > day), Decimal(0))


def cost_base(invoice: Invoice, kind: DebtorKind, notice_sent: date | None, policy: Policy) -> Decimal:
    """The principal costs are computed on: a consumer's are fixed when the 14-day term ends (HR 13-06-2014)."""
    if kind is DebtorKind.CONSUMER and notice_sent is not None and invoice.payments:
        return principal_on(invoice, consumer_term_end(notice_sent, policy))
    return invoice.outstanding


def interest_on(invoice: Invoice, today: date, *, commercial: bool, law: str = NETHERLANDS) -> Decimal:
    """Statutory interest on `invoice` from the day after its due date up to `today`, following its payments (the
    commercial rate of the creditor's `law`)."""
    start = invoice.due_date + timedelta(days=1)
    if not invoice.payments:
        return statutory_interest(invoice.outstanding, start, today, commercial=commercial, law=law)
    paid = [(p.on, p.amount) for p in invoice.payments if p.on >= start]
    return statutory_interest(principal_on(invoice, invoice.due_date), start, today, commercial=commercial,
                              payments=paid, law=law)


def price(
    step: str,
    today: date,
    debtor_kind: DebtorKind,
    currency: str,
    invoices: tuple[ActionInvoice, ...],
    notice_sent: date | None,
    policy: Policy,
    *,
    debtor_country: str | None = None,
) -> Priced:
    """The costs, interest and pay-by date `step` may state on `today` for these invoices (EUR only: the statutory
    scale is in euros); a consumer's costs follow the law of the country of the debtor's address (`consumer_costs`)."""
    if step not in PRICED_STEPS:
        return NOT_PRICED
    pay_by = receipt = costs = costs_if_unpaid = interest = None
    told: list[str] = []
    if step == "notice_of_default":
        pay_by = notice_pay_by(today, debtor_kind, policy)
        if debtor_kind is DebtorKind.CONSUMER:
            receipt = presumed_receipt(today, policy.receipt)
    if currency != "EUR":
        return Priced(pay_by=pay_by, presumed_receipt=receipt, warnings=("statutory costs and interest are in EUR only",))
    principals = [i.cost_base for i in invoices]
    if policy.consolidate_principal:
        principals = [sum(principals, Decimal(0))]
    commercial = debtor_kind is DebtorKind.BUSINESS
    if commercial and policy.business_law == BELGIUM:
        costs = business_compensation_be(len(invoices))
        told.append(BELGIAN_CREDITOR_NOTE)
    elif commercial:
        costs = sum((business_compensation(p, vat_rate=policy.collection_vat) for p in principals), Decimal(0))
    else:
        scale = sum((consumer_costs(p, country=debtor_country, vat_rate=policy.collection_vat)
                     for p in principals if p > 0), Decimal(0))
        if debtor_country == BELGIUM:
            told.append(BELGIAN_CONSUMER_NOTE)
        if step == "notice_of_default":
            costs_if_unpaid = scale
        elif notice_sent is not None and today > consumer_term_end(notice_sent, policy):
            costs = scale
    if commercial or step == "handoff":
        interest = Decimal(0)
        law = policy.business_law
        stale = stale_rate_warning(today, commercial=commercial, law=law)
        for line in invoices:
            invoice = line.invoice
            if invoice.due_date >= today:
                continue
            try:
                interest += interest_on(invoice, today, commercial=commercial, law=law)
            except ValueError as exc:  # a due date before the rate table: stated by hand, never guessed
                told.append(f"invoice {line.number}: {exc}")
            else:
                if stale is not None:
                    told.append(stale)
                start = invoice.due_date + timedelta(days=1)
                if (unsure := unconfirmed_rate_warning(start, today, commercial=commercial, law=law)) is not None:
                    told.append(unsure)
    return Priced(costs, costs_if_unpaid, interest, pay_by, receipt, tuple(dict.fromkeys(told)))
