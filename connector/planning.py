"""The planning driver: streams open invoices from the store through the planner and groups the actions per debtor.

Constant memory: the store yields invoices ordered by debtor, so only one debtor's invoices are held at a time.
Grouping is where the debtor-level rules live: at most one mail per debtor per run while a minimum gap is set (the
most advanced step goes first, the rest wait for the gap), several invoices at the same step in one reminder where
the platform can consolidate, one call task and one agency case per debtor.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from itertools import groupby

from connector import plugins
from connector.escalation.planner import (
    Action,
    NextStep,
    build_action,
    consolidate,
    format_money,
    next_step,
)
from connector.escalation.policy import STEP_ORDER, Channel, Policy
from connector.models import Debtor, Event, EventKind, Invoice
from connector.store import Store
from providers.base import Capabilities
from providers.errors import DunningError

log = logging.getLogger(__name__)

Row = tuple[Invoice, Debtor, Sequence[Event]]

_INDEX = {name: position for position, name in enumerate(STEP_ORDER)}


def plan(
    store: Store,
    policy: Policy,
    as_of: date,
    *,
    connection: str | None = None,
    capabilities: Mapping[str, Capabilities] | None = None,
) -> Iterator[Action]:
    """Every action due on `as_of`, debtor by debtor (`capabilities` per connection name; unknown: none)."""
    widest_gap = max([policy.min_gap_days] + [policy.for_connection(name).min_gap_days for name in policy.connections])
    recent = store.recent_mails(as_of - timedelta(days=widest_gap), connection)
    yield from plan_rows(
        store.iter_open_invoices(connection), policy, as_of, capabilities=capabilities, recent_mails=recent
    )


def plan_rows(
    rows: Iterable[Row],
    policy: Policy,
    as_of: date,
    *,
    capabilities: Mapping[str, Capabilities] | None = None,
    recent_mails: Mapping[tuple[str, str], date] | None = None,
) -> Iterator[Action]:
    """The same over any stream of (invoice, debtor, history) ordered by connection and debtor.

    `recent_mails` adds mails about invoices not in the stream (closed since), per (connection, debtor id).
    """
    capabilities = capabilities or {}
    recent_mails = recent_mails or {}
    for key, group in groupby(rows, key=lambda row: (row[0].connection, row[0].debtor_id)):
        yield from plan_debtor(list(group), policy, as_of, capabilities.get(key[0]), last_mailed=recent_mails.get(key))


def last_mail(rows: Sequence[Row], as_of: date) -> date | None:
    """The most recent mail to the debtor about any of these invoices, on or before `as_of`."""
    sent = [
        event.on
        for _invoice, _debtor, events in rows
        for event in events
        if event.kind is EventKind.REMINDER_SENT and event.step != "handoff" and event.on <= as_of
    ]
    return max(sent, default=None)


def _overdue(due: date, as_of: date) -> str:
    days = (as_of - due).days
    return f"{days} days overdue" if days > 0 else "not yet overdue"


def dossier(rows: Sequence[Row], as_of: date) -> tuple[str, ...]:
    """What the caller needs on the phone: every open invoice of the debtor with its history, and the total."""
    lines: list[str] = []
    totals: dict[str, Decimal] = {}
    for invoice, _debtor, events in rows:
        if not invoice.is_collectable:
            continue
        totals[invoice.currency] = totals.get(invoice.currency, Decimal(0)) + invoice.outstanding
        lines.append(
            f"invoice {invoice.label}: {format_money(invoice.outstanding, invoice.currency)} of "
            f"{format_money(invoice.total, invoice.currency)} outstanding, issued {invoice.issue_date}, "
            f"due {invoice.due_date} ({_overdue(invoice.due_date, as_of)})"
        )
        for event in events:
            if event.on > as_of:
                continue
            detail = event.step or event.data.get("hold") or event.data.get("text") or ""
            if event.kind is EventKind.ARRANGEMENT_SET:
                detail = ", ".join(f"{i['due']}: {i['amount']}" for i in event.data.get("instalments", ()))
            lines.append(f"  {event.on} {event.kind.value.replace('_', ' ')}{': ' + str(detail) if detail else ''}")
    totals_text = ", ".join(format_money(amount, currency) for currency, amount in totals.items())
    return (f"{len([r for r in rows if r[0].is_collectable])} open invoice(s), {totals_text} in total", *lines)


def plan_debtor(
    rows: Sequence[Row],
    policy: Policy,
    as_of: date,
    capabilities: Capabilities | None = None,
    *,
    last_mailed: date | None = None,
) -> list[Action]:
    """The actions for one debtor's open invoices, grouped by the debtor-level rules."""
    previous = max(filter(None, (last_mail(rows, as_of), last_mailed if last_mailed and last_mailed <= as_of else None)),
                   default=None)
    decided = [
        step
        for invoice, debtor, events in rows
        if (step := next_step(invoice, debtor, events, policy, as_of, capabilities, last_mail_to_debtor=previous))
    ]
    if not decided:
        return []
    resolved = policy.for_connection(decided[0].invoice.connection)
    can_merge_mail = resolved.consolidate_reminders and capabilities is not None and capabilities.consolidated_reminders
    grouped: dict[tuple[str, Channel, str], list[NextStep]] = {}
    for step in decided:
        grouped.setdefault((step.step, step.channel, step.invoice.currency), []).append(step)

    # Decide which (groups of) steps survive first, and build and price only those.
    calls_and_cases: list[list[NextStep]] = []
    mails: list[list[NextStep]] = []
    for (_step, channel, _currency), steps in grouped.items():
        steps.sort(key=lambda d: (d.invoice.due_date, -d.invoice.outstanding, d.invoice.label))
        if channel is Channel.PLATFORM_MAIL:
            mails.append(steps if can_merge_mail else steps[:1])
            if not can_merge_mail and resolved.min_gap_days == 0:
                mails += [[step] for step in steps[1:]]
        elif channel is Channel.LETTER:
            # our own letter can always carry several invoices
            mails.append(steps if resolved.consolidate_reminders else steps[:1])
        else:
            calls_and_cases.append(steps)  # one call task, one agency case per debtor
    if resolved.min_gap_days > 0 and len(mails) > 1:
        # one mail per debtor per day: the most advanced step first, the rest wait for the gap
        mails = [max(mails, key=lambda steps: (_INDEX[steps[0].step], sum((d.invoice.outstanding for d in steps),
                                                                            Decimal(0))))]
    result = [consolidate([build_action(step) for step in steps], resolved) for steps in mails + calls_and_cases]
    result = [replace(action, dossier=dossier(rows, as_of)) if action.channel is Channel.CALL_TASK else action
              for action in result]
    return sorted(result, key=lambda a: _INDEX[a.step])


# --- what the bookkeeper records from the command line (`dunning hold / arrange / note`) ----------------------------


class UsageError(DunningError):
    """A command-line request that cannot be carried out as given (nothing was written)."""


def connection_capabilities(connections: Iterable[tuple[str, str]]) -> dict[str, Capabilities]:
    """Capabilities per connection name from its provider plugin, given (connection name, provider name) pairs.

    A provider that cannot be loaded gets the most conservative capabilities (no consolidation, no own text, so the
    notice of default becomes a letter) and a warning, instead of a guess.
    """
    found: dict[str, Capabilities] = {}
    for name, provider in connections:
        try:
            found[name] = plugins.provider_class(provider).capabilities
        except DunningError as exc:
            log.warning("%s: %s; planning with the most conservative capabilities", name, exc)
            found[name] = Capabilities(native_reminder=False, custom_message=False, consolidated_reminders=False)
    return found


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
    return store.append_event(invoice.connection, invoice.platform_id, Event(kind=EventKind.HOLD_SET, on=on, data=data))


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
    event = Event(kind=EventKind.ARRANGEMENT_SET, on=on, data=data)
    return store.append_event(invoice.connection, invoice.platform_id, event)


def end_arrangement(store: Store, invoice: Invoice, on: date) -> Event:
    event = Event(kind=EventKind.ARRANGEMENT_ENDED, on=on, data={"source": "cli"})
    return store.append_event(invoice.connection, invoice.platform_id, event)


def record_note(store: Store, invoice: Invoice, text: str, on: date) -> Event:
    """A call note in the invoice's history (the debtor's dossier shows it)."""
    if not text.strip():
        raise UsageError(f"invoice {invoice.label}: the note is empty")
    event = Event(kind=EventKind.NOTE, on=on, data={"text": text.strip(), "source": "cli"})
    return store.append_event(invoice.connection, invoice.platform_id, event)
