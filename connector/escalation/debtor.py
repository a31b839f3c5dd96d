"""The rules across one debtor's invoices: the minimum gap between mails, consolidation, one call per debtor.

The planner decides per invoice which step is due; here those steps become the debtor's actions for the day (domain.md,
"Rules across invoices, holds and payments"): every mail due to the debtor today goes out today — one covering
several invoices at the same step where the platform can consolidate, otherwise one per invoice — and the minimum
gap counts between mail *days*, never pushing an invoice's first reminder back (it makes its day a mail day); one call
task and one agency case per debtor. Pure, like the planner: rows in, actions out.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import date, timedelta
from decimal import Decimal

from connector.capabilities import Capabilities
from connector.escalation.action import MAIL_CHANNELS, Action, format_money, iso_day
from connector.escalation.planner import NextStep, build_action, decide, instead, schedule_for
from connector.escalation.policy import STEP_ORDER, Channel, Policy
from connector.models import Debtor, Event, EventKind, Invoice

Row = tuple[Invoice, Debtor, Sequence[Event]]

_INDEX = {name: position for position, name in enumerate(STEP_ORDER)}
_FIRST_REMINDERS = frozenset({"pre_due", "reminder_1"})
_EVENT_WORDS = {kind: kind.value.replace("_", " ") for kind in EventKind}
_ZERO = Decimal(0)


def plan_rows(
    rows: Iterable[Row],
    policy: Policy,
    as_of: date,
    *,
    capabilities: Mapping[str, Capabilities] | None = None,
    recent_mails: Mapping[tuple[str, str], date] | None = None,
) -> Iterator[Action]:
    """Every action due on `as_of` over a stream of (invoice, debtor, history) ordered by connection and debtor.

    Constant memory: only one debtor's invoices are held at a time. `capabilities` per connection name (unknown:
    none); `recent_mails` adds mails about invoices not in the stream (closed since), per (connection, debtor id).
    """
    capabilities = capabilities or {}
    recent_mails = recent_mails or {}
    group: list[Row] = []
    connection = debtor_id = ""  # no invoice has an empty id: the first row starts the first group
    for row in rows:  # grouped by hand: cheaper than `itertools.groupby` with a key function
        invoice = row[0]
        if invoice.debtor_id != debtor_id or invoice.connection != connection:
            if group:
                yield from plan_debtor(group, policy, as_of, capabilities.get(connection),
                                       last_mailed=recent_mails.get((connection, debtor_id)))
            group = [row]
            connection, debtor_id = invoice.connection, invoice.debtor_id
        else:
            group.append(row)
    if group:
        yield from plan_debtor(group, policy, as_of, capabilities.get(connection),
                               last_mailed=recent_mails.get((connection, debtor_id)))


def plan_invoice(
    invoice: Invoice,
    debtor: Debtor,
    events: Sequence[Event],
    policy: Policy,
    today: date,
    capabilities: Capabilities | None = None,
    *,
    last_mail_to_debtor: date | None = None,
) -> Action | None:
    """The next action for `invoice` alone on `today`, or None; `last_mail_to_debtor` is the most recent mail to
    this debtor about any invoice, for the minimum gap."""
    found = plan_debtor([(invoice, debtor, events)], policy, today, capabilities, last_mailed=last_mail_to_debtor)
    return found[0] if found else None


def _mail_days(rows: Sequence[Row], last_mailed: date | None) -> list[date]:
    """Every day the debtor was mailed about any of these invoices (or `last_mailed`, about others), in order."""
    days = {event.on for _invoice, _debtor, events in rows for event in events
            if event.kind is EventKind.REMINDER_SENT and event.step != "handoff"}
    if last_mailed:
        days.add(last_mailed)
    return sorted(days)


def is_mail_day(previous: date | None, today: date, policy: Policy) -> bool:
    """Whether the debtor may be mailed today: the minimum gap counts between mail *days*, so a day the debtor was
    already mailed on stays open for the other mails due that day."""
    return previous is None or previous == today or (today - previous).days >= policy.min_gap_days


def _first_reminder(decided: NextStep) -> bool:
    """An invoice's first reminder, before or after its due date: the minimum gap never pushes it back (domain.md:
    the gap counts between mail days, "never by pushing a newer invoice's first reminder back"; a late notice
    before the due date would push the first reminder after it too), so it makes today a mail day for the debtor's
    other mails due as well."""
    return decided.step in _FIRST_REMINDERS


def _not_overtaking(
    decided: NextStep, capabilities: Capabilities | None, mail_days: Sequence[date], mailing: bool
) -> NextStep | None:
    """The step to take instead of `decided` when it would skip a mail the minimum gap has held back (None: wait).

    The planner takes the most advanced step due, so that a job that did not run for weeks catches up without a
    burst. A mail that could not go out on any day since it fell due (each day either within the gap after a mail
    to the debtor, or on hold) is no such case, and the next step (a call, or a later mail) falling due meanwhile
    must not skip it. That mail goes out today if the debtor is mailed today; otherwise the invoice waits for it,
    and the later steps then count from the day it went out.
    """
    for earlier in reversed(decided.earlier_due):
        if earlier[0] == "pre_due" or _could_have_gone_out(decided, earlier[2], mail_days):
            continue  # the job did not run on a day it could go: catching up may skip it
        held = instead(decided, earlier, capabilities)
        if held.channel in MAIL_CHANNELS:
            return held if mailing else None
    return decided


def _could_have_gone_out(decided: NextStep, due_on: date, mail_days: Sequence[date]) -> bool:
    """Whether a mail due on `due_on` was due on an earlier day the debtor could be mailed and the invoice was not
    held."""
    policy, paused, today = decided.policy, decided.history.paused, decided.today
    if not paused:  # the first day it could go, at once: `due_on`, else the next mail day or the gap's end
        before = bisect_right(mail_days, due_on)
        previous = mail_days[before - 1] if before else None
        if previous is None or is_mail_day(previous, due_on, policy):
            return due_on < today
        first = previous + timedelta(days=policy.min_gap_days)
        if before < len(mail_days):
            first = min(first, mail_days[before])
        return first < today
    day = due_on
    while day < today:
        if not any(first <= day <= last for first, last in paused):
            before = bisect_right(mail_days, day)
            if is_mail_day(mail_days[before - 1] if before else None, day, policy):
                return True
        day += timedelta(days=1)
    return False


def dossier(rows: Sequence[Row], as_of: date) -> tuple[str, ...]:
    """What the caller needs on the phone: every open invoice of the debtor with its history, and the total."""
    lines: list[str] = []
    totals: dict[str, Decimal] = {}
    count = 0
    for invoice, _debtor, events in rows:
        if invoice.is_credit_note and invoice.is_open and invoice.outstanding:
            lines.append(f"credit note {invoice.label}: {format_money(abs(invoice.outstanding), invoice.currency)} "
                         f"open, not allocated to an invoice (issued {invoice.issue_date})")
            continue
        if not invoice.is_collectable:
            continue
        count += 1
        currency, outstanding, total, due = invoice.currency, invoice.outstanding, invoice.total, invoice.due_date
        totals[currency] = totals.get(currency, _ZERO) + outstanding
        owed = format_money(outstanding, currency)
        overdue = (as_of - due).days
        lines.append(
            f"invoice {invoice.label}: {owed} of {owed if total == outstanding else format_money(total, currency)} "
            f"outstanding, issued {iso_day(invoice.issue_date)}, due {iso_day(due)} "
            f"({f'{overdue} days overdue' if overdue > 0 else 'not yet overdue'})"
        )
        for event in events:
            if event.on > as_of:
                continue
            detail = event.step or event.data.get("hold") or event.data.get("text") or ""
            if event.kind is EventKind.ARRANGEMENT_SET:
                detail = ", ".join(f"{i['due']}: {i['amount']}" for i in event.data.get("instalments", ()))
            lines.append(f"  {iso_day(event.on)} {_EVENT_WORDS[event.kind]}{': ' + str(detail) if detail else ''}")
    totals_text = ", ".join(format_money(amount, currency) for currency, amount in totals.items())
    return (f"{count} open invoice(s), {totals_text} in total", *lines)


def plan_debtor(
    rows: Sequence[Row],
    policy: Policy,
    as_of: date,
    capabilities: Capabilities | None = None,
    *,
    last_mailed: date | None = None,
) -> list[Action]:
    """The actions for one debtor's open invoices, grouped by the debtor-level rules."""
    if not rows:
        return []
    who = rows[0][1]
    resolved = policy.for_connection(who.connection)
    override = resolved.for_debtor(who.connection, who.platform_id)
    schedule = schedule_for(resolved, as_of)
    due = [step for invoice, debtor, events in rows
           if (step := decide(invoice, debtor, events, schedule, override, capabilities))]
    if not due:
        return []
    mail_days = _mail_days(rows, last_mailed)
    mailed_before = bisect_right(mail_days, as_of)
    previous = mail_days[mailed_before - 1] if mailed_before else None  # the most recent mail on or before as_of
    mailing = is_mail_day(previous, as_of, resolved) or any(_first_reminder(d) for d in due)
    decided = [kept for step in due if (kept := _not_overtaking(step, capabilities, mail_days, mailing)) is not None]
    if not mailing:
        decided = [step for step in decided if step.channel not in MAIL_CHANNELS]
    can_merge_mail = resolved.consolidate_reminders and capabilities is not None and capabilities.consolidated_reminders
    grouped: dict[tuple[str, Channel, str], list[NextStep]] = {}
    for step in decided:
        grouped.setdefault((step.step, step.channel, step.invoice.currency), []).append(step)

    # Decide which (groups of) steps survive first, and build and price only those. Every mail due today goes out
    # today: one covering several invoices where the platform (or our own letter) can, else one per invoice.
    calls_and_cases: list[list[NextStep]] = []
    mails: list[list[NextStep]] = []
    for (_step, channel, _currency), steps in grouped.items():
        if len(steps) > 1:
            steps.sort(key=lambda d: (d.invoice.due_date, -d.invoice.outstanding, d.invoice.label))
        merge = can_merge_mail if channel is Channel.PLATFORM_MAIL else resolved.consolidate_reminders
        if channel in MAIL_CHANNELS:
            mails += [steps] if merge else [[step] for step in steps]
        else:
            calls_and_cases.append(steps)  # one call task, one agency case per debtor
    result = [build_action(steps) for steps in mails]
    result += [build_action(steps, dossier=dossier(rows, as_of) if steps[0].channel is Channel.CALL_TASK else ())
               for steps in calls_and_cases]
    if credit := open_credit(rows):
        for action in result:
            action.warnings += credit
    return sorted(result, key=lambda a: _INDEX[a.step]) if len(result) > 1 else result


def open_credit(rows: Sequence[Row]) -> tuple[str, ...]:
    """What to tell on every action for a debtor with credit notes still open on the platform (not allocated to an
    invoice): the amounts claimed ignore them, so they may be higher than what the debtor owes on balance. The
    platform allocates credit, not this tool: the user settles it there (the next sync lowers the invoices)."""
    credit: dict[str, list[Invoice]] = {}
    for invoice, _debtor, _events in rows:
        if invoice.is_credit_note and invoice.is_open and invoice.outstanding:
            credit.setdefault(invoice.currency, []).append(invoice)
    return tuple(
        f"the debtor has open credit of {format_money(sum((abs(n.outstanding) for n in notes), Decimal(0)), currency)}"
        f" ({', '.join(n.label for n in notes)}) not allocated to an invoice: the amounts claimed do not deduct it; "
        "allocate it on the platform first"
        for currency, notes in credit.items()
    )
