"""The case book: what the bookkeeper records from the command line (`dunning hold / arrange / note`) in an invoice's
history. Every request is checked whole before anything is written, and refused in one line naming the invoice.

(Planning itself is `connector.plan`, over the pure rules of `connector.escalation`.)
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal, InvalidOperation

from connector.delivery.confirmations import queue_confirmation
from connector.models import Event, EventKind, Invoice
from connector.store import Store
from providers.errors import UsageError

CENT = Decimal("0.01")


def find_invoice(store: Store, reference: str, connection: str | None = None) -> Invoice:
    """The one invoice a bookkeeper means by its number (or platform id)."""
    reference = checked_text(reference, "the invoice number")
    matches = store.find_invoices(reference, connection)
    where = f" in connection {connection}" if connection else ""
    if not matches:
        raise UsageError(f"invoice {reference}: not in the store{where}; run `dunning sync` first or check the number")
    if len(matches) > 1:
        names = ", ".join(sorted({m.connection for m in matches}))
        raise UsageError(f"invoice {reference}: found in several connections ({names}); add --connection NAME")
    return matches[0]


def checked_text(text: str, what: str) -> str:
    """`text` as given on the command line, refused when it is not valid UTF-8 (a terminal or script in another
    encoding): the store and the platform notes take UTF-8 only, and a garbled note in a dossier helps nobody."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise UsageError(f"{what} is not valid UTF-8 text; set the terminal or script to UTF-8 and try again") from None
    return text


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
        data["reason"] = checked_text(reason, f"invoice {invoice.label}: the reason")
    event = store.append_event(invoice.connection, invoice.platform_id, Event(kind=EventKind.HOLD_SET, on=on, data=data))
    if hold == "promise":  # confirmed in writing by the next `dunning send` (connector.delivery)
        queue_confirmation(store, invoice, "promise", data, on=on)
    return event


def release_hold(store: Store, invoice: Invoice, on: date, *, reason: str | None = None) -> Event:
    """End every hold on the invoice: escalation resumes where it stood."""
    data: dict[str, object] = {"source": "cli"}
    if reason:
        data["reason"] = checked_text(reason, f"invoice {invoice.label}: the reason")
    event = Event(kind=EventKind.HOLD_RELEASED, on=on, data=data)
    return store.append_event(invoice.connection, invoice.platform_id, event)


def parse_instalment(text: str) -> dict[str, str]:
    """`YYYY-MM-DD:AMOUNT` → {"due": ..., "amount": ...}: a positive amount in whole cents, as exact decimal text."""
    due, sep, amount = text.partition(":")
    try:
        value = Decimal(amount.strip().replace(",", "."))
        day = date.fromisoformat(due.strip())
        if not sep or not value.is_finite():
            raise ValueError
    except (ValueError, InvalidOperation):
        raise UsageError(f"{text!r} is not an instalment; use YYYY-MM-DD:AMOUNT, e.g. 2026-12-01:250.00") from None
    if value <= 0:
        raise UsageError(f"{text!r}: an instalment must be a positive amount")
    if value != value.quantize(CENT):
        raise UsageError(f"{text!r}: an instalment is an amount in whole cents (at most two decimals)")
    return {"due": day.isoformat(), "amount": str(value.quantize(CENT))}


def record_arrangement(
    store: Store,
    invoice: Invoice,
    instalments: Sequence[str],
    on: date,
    *,
    down_payment: str | None = None,
    partial: bool = False,
) -> Event:
    """A payment arrangement: escalation of what it covers pauses while every instalment is paid on time.

    The instalments (and down payment) must add up to what is outstanding; `partial` records one that covers less,
    and the rest of the debt goes on being chased.
    """
    if not instalments and not down_payment:
        raise UsageError(f"invoice {invoice.label}: give at least one --instalment YYYY-MM-DD:AMOUNT")
    schedule = sorted((parse_instalment(text) for text in instalments), key=lambda row: row["due"])
    payments = schedule + ([parse_instalment(down_payment)] if down_payment else [])
    for row in payments:
        if date.fromisoformat(row["due"]) < on:
            raise UsageError(f"invoice {invoice.label}: the instalment of {row['amount']} on {row['due']} lies in "
                             f"the past (today is {on}); give the dates still to come")
    days = [row["due"] for row in schedule]
    twice = sorted({day for day in days if days.count(day) > 1})
    if twice:
        raise UsageError(f"invoice {invoice.label}: more than one instalment on {', '.join(twice)}; give one "
                         "instalment per date with the whole amount due that day")
    total = sum((Decimal(row["amount"]) for row in payments), Decimal(0))
    outstanding = invoice.outstanding
    if total > outstanding:
        raise UsageError(f"invoice {invoice.label}: the instalments add up to {total}, more than the {outstanding} "
                         "outstanding; lower them")
    if total < outstanding and not partial:
        raise UsageError(f"invoice {invoice.label}: the instalments add up to {total}, not the {outstanding} "
                         f"outstanding; add the missing {outstanding - total}, or pass --partial to arrange only "
                         "this part (the rest goes on being chased)")
    data: dict[str, object] = {"instalments": schedule, "outstanding": str(outstanding), "covers": str(total),
                               "partial": total < outstanding, "source": "cli"}
    if down_payment:
        data["down_payment"] = payments[-1]
    event = store.append_event(invoice.connection, invoice.platform_id,
                               Event(kind=EventKind.ARRANGEMENT_SET, on=on, data=data))
    queue_confirmation(store, invoice, "arrangement", data, on=on)  # in writing, with the sanction, to sign
    return event


def end_arrangement(store: Store, invoice: Invoice, on: date) -> Event:
    event = Event(kind=EventKind.ARRANGEMENT_ENDED, on=on, data={"source": "cli"})
    return store.append_event(invoice.connection, invoice.platform_id, event)


def record_note(store: Store, invoice: Invoice, text: str, on: date) -> Event:
    """A call note in the invoice's history (the debtor's dossier shows it)."""
    text = checked_text(text, f"invoice {invoice.label}: the note")
    if not text.strip():
        raise UsageError(f"invoice {invoice.label}: the note is empty")
    event = Event(kind=EventKind.NOTE, on=on, data={"text": text.strip(), "source": "cli"})
    return store.append_event(invoice.connection, invoice.platform_id, event)


__all__ = ["UsageError", "checked_text", "end_arrangement", "find_invoice", "parse_instalment", "record_arrangement",
           "record_hold", "record_note", "release_hold"]
