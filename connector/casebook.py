"""What the bookkeeper records from the command line (`dunning hold / arrange / note`) in an invoice's history.

(Planning itself is `connector.plan`, over the pure rules of `connector.escalation`.)
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date
from decimal import Decimal, InvalidOperation

from connector.delivery.confirmations import queue_confirmation
from connector.models import Event, EventKind, Invoice
from connector.store import Store
from providers.errors import DunningError

log = logging.getLogger(__name__)


class UsageError(DunningError):
    """A command-line request that cannot be carried out as given (nothing was written)."""


def find_invoice(store: Store, reference: str, connection: str | None = None) -> Invoice:
    """The one invoice a bookkeeper means by its number (or platform id)."""
    matches = store.find_invoices(reference, connection)
    where = f" in connection {connection}" if connection else ""
    if not matches:
        raise UsageError(f"invoice {reference}: not in the store{where}; run `dunning sync` first or check the number")
    if len(matches) > 1:
        names = ", ".join(sorted({m.connection for m in matches}))
        raise UsageError(f"invoice {reference}: found in several connections ({names}); add --connection NAME")
    return matches[0]


def record_hold(
    store: Store, invoice: Invoice, hold: str, on: date, *, until: date | None = None, reason: str | None = None
) -> Event:
    """A dispute, promise to pay (until a date) or exclusion: escalation pauses from `on`."""
    if hold not in ("dispute", "promise", "excluded"):
        raise UsageError(f"unknown hold {hold!r}; use dispute, promise or excluded")
    if hold == "promise" and until is None:
        raise UsageError(f"invoice {invoice.label}: a promise needs the promised date")
    data: dict[str, object] = {"hold": hold, "source": "cli"}
    if until is not None:
        data["until"] = until.isoformat()
    if reason:
        data["reason"] = reason
    event = store.append_event(invoice.connection, invoice.platform_id, Event(kind=EventKind.HOLD_SET, on=on, data=data))
    if hold == "promise":  # confirmed in writing by the next `dunning send`
        queue_confirmation(store, invoice, "promise", data, on=on)
    return event


def release_hold(store: Store, invoice: Invoice, on: date, *, reason: str | None = None) -> Event:
    """End every hold on the invoice: escalation resumes where it stood."""
    data: dict[str, object] = {"source": "cli"} | ({"reason": reason} if reason else {})
    event = Event(kind=EventKind.HOLD_RELEASED, on=on, data=data)
    return store.append_event(invoice.connection, invoice.platform_id, event)


def parse_instalment(text: str) -> dict[str, str]:
    """`YYYY-MM-DD:AMOUNT` → {"due": ..., "amount": ...} (amount as exact decimal text)."""
    due, sep, amount = text.partition(":")
    try:
        value = Decimal(amount.strip().replace(",", "."))
        if not sep or not value.is_finite() or value <= 0:
            raise ValueError
        return {"due": date.fromisoformat(due.strip()).isoformat(), "amount": str(value)}
    except (ValueError, InvalidOperation):
        raise UsageError(f"{text!r} is not an instalment; use YYYY-MM-DD:AMOUNT, e.g. 2026-12-01:250.00") from None


def record_arrangement(
    store: Store,
    invoice: Invoice,
    instalments: Sequence[str],
    on: date,
    *,
    down_payment: str | None = None,
) -> Event:
    """A payment arrangement: escalation pauses while every instalment is paid on time."""
    if not instalments and not down_payment:
        raise UsageError(f"invoice {invoice.label}: give at least one --instalment YYYY-MM-DD:AMOUNT")
    schedule = sorted((parse_instalment(text) for text in instalments), key=lambda row: row["due"])
    data: dict[str, object] = {"instalments": schedule, "outstanding": str(invoice.outstanding), "source": "cli"}
    total = sum((Decimal(row["amount"]) for row in schedule), Decimal(0))
    if down_payment:
        data["down_payment"] = parse_instalment(down_payment)
        total += Decimal(data["down_payment"]["amount"])  # type: ignore[index]
    if total != invoice.outstanding:
        log.warning("invoice %s: the arrangement covers %s of %s outstanding", invoice.label, total, invoice.outstanding)
    event = store.append_event(invoice.connection, invoice.platform_id, Event(kind=EventKind.ARRANGEMENT_SET, on=on,
                                                                              data=data))
    queue_confirmation(store, invoice, "arrangement", data, on=on)  # in writing, with the sanction, to sign
    return event


def end_arrangement(store: Store, invoice: Invoice, on: date) -> Event:
    event = Event(kind=EventKind.ARRANGEMENT_ENDED, on=on, data={"source": "cli"})
    return store.append_event(invoice.connection, invoice.platform_id, event)


def record_note(store: Store, invoice: Invoice, text: str, on: date) -> Event:
    """A call note in the invoice's history (the debtor's dossier shows it)."""
    if not text.strip():
        raise UsageError(f"invoice {invoice.label}: the note is empty")
    event = Event(kind=EventKind.NOTE, on=on, data={"text": text.strip(), "source": "cli"})
    return store.append_event(invoice.connection, invoice.platform_id, event)
