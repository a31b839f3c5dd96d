"""What a bookkeeper asks first, answered from the store: the open book with each invoice's stage and next step
(`dunning invoices`), and one invoice's whole history (`dunning history INVOICE`).

The stage and the step due today come from the same escalation rules `dunning plan` uses, invoice by invoice (the
debtor-level minimum gap is `plan`'s business: here an invoice shows what it is due for on its own).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from connector.capabilities import Capabilities
from connector.escalation.debtor import plan_invoice
from connector.escalation.history import read_history
from connector.escalation.policy import STEP_ORDER, Policy
from connector.models import PLATFORM, Debtor, Event, Invoice
from connector.store import Store


@dataclass(frozen=True)
class BookLine:
    """One open invoice: where it stands and what comes next."""

    invoice: Invoice
    debtor: Debtor
    stage: str | None
    """The most advanced step taken (None: no step yet)."""
    stage_on: date | None
    next_step: str | None
    """The step due today, else the next step of the schedule (None: the schedule is done)."""
    due_today: bool
    hold: str | None
    """Why escalation is paused today (dispute, promise, arrangement, excluded...), or None."""
    days_overdue: int

    def as_json(self) -> dict[str, Any]:
        invoice = self.invoice
        return {
            "connection": invoice.connection,
            "invoice": invoice.platform_id,
            "number": invoice.number,
            "debtor": invoice.debtor_id,
            "debtor_name": self.debtor.name,
            "due_date": invoice.due_date.isoformat(),
            "days_overdue": self.days_overdue,
            "outstanding": str(invoice.outstanding),
            "currency": invoice.currency,
            "stage": self.stage,
            "stage_on": self.stage_on.isoformat() if self.stage_on else None,
            "next_step": self.next_step,
            "next_step_due_today": self.due_today,
            "hold": self.hold,
        }


def open_book(
    store: Store,
    policy: Policy,
    today: date,
    *,
    connection: str | None = None,
    step: str | None = None,
    overdue: bool = False,
    capabilities: Mapping[str, Capabilities] | None = None,
) -> Iterator[BookLine]:
    """The open invoices (of one connection, at one stage, or only those past their due date), streamed."""
    capabilities = capabilities or {}
    for invoice, debtor, events in store.iter_open_invoices(connection):
        days = (today - invoice.due_date).days
        if overdue and days <= 0:
            continue
        line = book_line(invoice, debtor, events, policy, today, capabilities.get(invoice.connection))
        if step is None or line.stage == step:
            yield line


def book_line(invoice: Invoice, debtor: Debtor, events: tuple[Event, ...], policy: Policy, today: date,
              capabilities: Capabilities | None = None) -> BookLine:
    history = read_history(invoice, events, policy.for_connection(invoice.connection), today)
    taken = history.taken
    stage = max(taken, key=STEP_ORDER.index) if taken else None
    action = plan_invoice(invoice, debtor, events, policy, today, capabilities)
    next_step = action.step.value if action is not None else _next_in_schedule(stage, debtor, invoice, policy)
    return BookLine(invoice=invoice, debtor=debtor, stage=stage, stage_on=taken.get(stage) if stage else None,
                    next_step=next_step, due_today=action is not None, hold=history.hold,
                    days_overdue=(today - invoice.due_date).days)


def _next_in_schedule(stage: str | None, debtor: Debtor, invoice: Invoice, policy: Policy) -> str | None:
    if not invoice.is_collectable:  # a credit note or nothing owed: never dunned, so no step comes next
        return None
    steps = policy.for_connection(invoice.connection).steps
    start = STEP_ORDER.index(stage) + 1 if stage else 0
    for name in STEP_ORDER[start:]:
        rule = steps.rule(name)
        if rule.enabled and debtor.kind in rule.applies_to and invoice.outstanding >= rule.min_outstanding:
            return name
    return None


def totals(lines: list[BookLine]) -> dict[str, Decimal]:
    """Outstanding per currency; a credit note counts against the debt (platforms sign it differently)."""
    found: dict[str, Decimal] = {}
    for line in lines:
        invoice = line.invoice
        owed = -abs(invoice.outstanding) if invoice.is_credit_note else invoice.outstanding
        found[invoice.currency] = found.get(invoice.currency, Decimal(0)) + owed
    return found


def event_json(event: Event) -> dict[str, Any]:
    """One history entry for `history --json` (the receipt of a reminder is in `data`)."""
    return {
        "on": event.on.isoformat(),
        "kind": event.kind.value,
        "step": event.step,
        "data": event.data,
        "recorded_at": event.recorded_at.isoformat() if event.recorded_at else None,
    }


def describe_event(event: Event) -> str:
    """A history entry in a few words: the step, the hold, the note's text, the reminder's receipt."""
    data = event.data
    parts: list[str] = []
    if event.step:
        parts.append(event.step)
    for key in ("hold", "until", "text", "reason", "amount", "outstanding", "covers"):
        if data.get(key) not in (None, ""):
            parts.append(f"{key} {data[key]}" if key not in ("text", "hold", "reason") else str(data[key]))
    instalments = data.get("instalments")
    if instalments:
        parts.append("instalments " + ", ".join(f"{row['due']}: {row['amount']}" for row in instalments))
    if data.get("recipients"):
        parts.append("to " + ", ".join(map(str, data["recipients"])))
    for key in ("channel", "detail"):
        if data.get(key):
            parts.append(str(data[key]))
    if data.get("source") == PLATFORM:
        parts.append("as the platform records it")
    if data.get("platform_reference"):
        parts.append(f"platform reference {data['platform_reference']}")
    return "; ".join(parts)
