"""The planning driver: streams open invoices from the store through the planner and groups the actions per debtor.

Constant memory: the store yields invoices ordered by debtor, so only one debtor's invoices are held at a time.
Grouping is where the debtor-level rules live: at most one mail per debtor per run while a minimum gap is set (the
most advanced step goes first, the rest wait for the gap), several invoices at the same step in one reminder where
the platform can consolidate, one call task and one agency case per debtor.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import date, timedelta
from itertools import groupby

from connector.escalation.planner import Action, consolidate, plan_invoice
from connector.escalation.policy import STEP_ORDER, Channel, Policy
from connector.models import Debtor, Event, EventKind, Invoice
from connector.store import Store
from providers.base import Capabilities

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
    single = [
        action
        for invoice, debtor, events in rows
        if (action := plan_invoice(invoice, debtor, events, policy, as_of, capabilities, last_mail_to_debtor=previous))
    ]
    if not single:
        return []
    resolved = policy.for_connection(single[0].connection)
    can_merge_mail = resolved.consolidate_reminders and capabilities is not None and capabilities.consolidated_reminders
    grouped: dict[tuple[str, Channel, str], list[Action]] = {}
    for action in single:
        grouped.setdefault((action.step, action.channel, action.currency), []).append(action)

    result: list[Action] = []
    mails: list[Action] = []
    for (_step, channel, _currency), actions in grouped.items():
        actions.sort(key=lambda a: (a.invoices[0].due_date, -a.outstanding, a.invoices[0].number))
        if channel is Channel.PLATFORM_MAIL:
            mails.append(consolidate(actions, resolved) if can_merge_mail else actions[0])
            if not can_merge_mail and resolved.min_gap_days == 0:
                mails += actions[1:]
        elif channel is Channel.LETTER:
            # our own letter can always carry several invoices
            mails.append(consolidate(actions, resolved) if resolved.consolidate_reminders else actions[0])
        else:
            result.append(consolidate(actions, resolved))  # one call task / one agency case per debtor
    if resolved.min_gap_days > 0 and len(mails) > 1:
        # one mail per debtor per day: the most advanced step first, the rest wait for the gap
        mails = [max(mails, key=lambda a: (_INDEX[a.step], a.outstanding))]
    return sorted(mails + result, key=lambda a: _INDEX[a.step])
