"""What the planner hands on: one action per debtor and step, carrying everything a reminder needs.

Delivery renders and sends an action without reading the store again: it has the debtor, the full invoices, the
amounts, costs, interest and pay-by date the text states, and the template to render it with. `as_json()` is the
`dunning plan --json` object (cli.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import lru_cache
from typing import Any

from connector.escalation.policy import Channel, Step
from connector.models import Debtor, DebtorKind, Invoice

MAIL_CHANNELS = frozenset({Channel.PLATFORM_MAIL, Channel.LETTER})
"""Channels that put a message in front of the debtor (and so count for the minimum gap)."""


def format_money(amount: Decimal, currency: str) -> str:
    """EUR 1,210.00: how amounts read in reasons and logs."""
    text = str(amount)
    if text[-3:-2] == "." and text[0] != "-":  # whole cents, as `str` gives them: grouped by hand (a fifth of the cost)
        if len(text) <= 6:
            return f"{currency} {text}"
        if len(text) <= 9:
            return f"{currency} {text[:-6]},{text[-6:]}"
    return f"{currency} {amount:,.2f}"


iso_day = lru_cache(maxsize=4096)(date.isoformat)
"""A day as ISO text, as `f"{day}"` gives it at a quarter of the cost (a plan formats the same few hundred days for
tens of thousands of dossier lines)."""


@dataclass(slots=True)  # not frozen: one is made per planned invoice, and a frozen dataclass is slower to create
class ActionInvoice:
    """One invoice an action is about, with what its text shows."""

    invoice: Invoice
    """The invoice as synced (everything delivery needs to name it on the platform)."""
    days_overdue: int
    cost_base: Decimal
    """The principal collection costs are computed on: what is outstanding, except that a consumer's costs are
    fixed on what was unpaid when the 14-day term ended (later part payments do not lower them)."""

    @property
    def platform_id(self) -> str:
        return self.invoice.platform_id

    @property
    def number(self) -> str:
        """The invoice number (the platform id where it has none)."""
        return self.invoice.label

    @property
    def issue_date(self) -> date:
        return self.invoice.issue_date

    @property
    def due_date(self) -> date:
        return self.invoice.due_date

    @property
    def total(self) -> Decimal:
        return self.invoice.total

    @property
    def outstanding(self) -> Decimal:
        return self.invoice.outstanding

    @property
    def payment_url(self) -> str | None:
        return self.invoice.payment_url


@dataclass(slots=True)  # not frozen: a plan makes hundreds of thousands, and a frozen one is ~8x slower to create
class Action:
    """What to do today for one debtor: a step, on one or several invoices (consolidated by the debtor rules).

    Nothing changes an action once planned (delivery and the outbox read it as it is)."""

    step: Step
    channel: Channel
    debtor: Debtor
    invoices: tuple[ActionInvoice, ...]
    due_on: date
    """The day the step fell due (on or before `as_of`)."""
    as_of: date
    outstanding: Decimal
    currency: str
    reason: str
    language: str
    template: str
    """The text template's name (`templates/<template>.<language>.j2`), from the connection's policy."""
    costs: Decimal | None = None
    """Collection costs owed now (businesses from the day after the due date; consumers after the 14-day term)."""
    costs_if_unpaid: Decimal | None = None
    """For the consumer 14-day letter: the exact amount it must state, charged only if the term passes unpaid."""
    interest: Decimal | None = None
    """Statutory (commercial) interest up to `as_of`, where the step claims it."""
    pay_by: date | None = None
    """For the notice of default: the last day to pay (consumers: the end of the 14-day term)."""
    presumed_receipt: date | None = None
    """For the consumer 14-day letter sent today: the day it counts as received."""
    warnings: tuple[str, ...] = ()
    dossier: tuple[str, ...] = ()
    """For a call task: the debtor's open invoices, totals, agreements and history, one line each."""

    @property
    def connection(self) -> str:
        return self.debtor.connection

    @property
    def debtor_id(self) -> str:
        return self.debtor.platform_id

    @property
    def debtor_name(self) -> str:
        return self.debtor.name

    @property
    def debtor_kind(self) -> DebtorKind:
        return self.debtor.kind

    @property
    def invoice_ids(self) -> tuple[str, ...]:
        return tuple(i.platform_id for i in self.invoices)

    @property
    def invoice_numbers(self) -> tuple[str, ...]:
        return tuple(i.number for i in self.invoices)

    @property
    def is_mail(self) -> bool:
        return self.channel in MAIL_CHANNELS

    def as_json(self) -> dict[str, Any]:
        """The `dunning plan --json` object (see cli.md)."""

        def money(value: Decimal | None) -> str | None:
            return None if value is None else str(value)

        return {
            "connection": self.connection,
            "debtor": self.debtor_id,
            "debtor_name": self.debtor_name,
            "debtor_kind": self.debtor_kind.value,
            "invoices": list(self.invoice_ids),
            "invoice_numbers": list(self.invoice_numbers),
            "step": self.step.value,
            "channel": self.channel.value,
            "due_on": self.due_on.isoformat(),
            "outstanding": money(self.outstanding),
            "currency": self.currency,
            "reason": self.reason,
            "language": self.language,
            "costs": money(self.costs),
            "costs_if_unpaid": money(self.costs_if_unpaid),
            "interest": money(self.interest),
            "pay_by": self.pay_by.isoformat() if self.pay_by else None,
            "presumed_receipt": self.presumed_receipt.isoformat() if self.presumed_receipt else None,
            "warnings": list(self.warnings),
            **({"dossier": list(self.dossier)} if self.dossier else {}),
        }
