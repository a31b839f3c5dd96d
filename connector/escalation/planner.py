"""The per-invoice planner: given one invoice, its debtor, its history, the policy and a date, the step it is due for.

Pure: values in, a value out; no clock, no store, no I/O. The rules, in the order they are checked:

1. Only collectable invoices (open, not a credit note, something positive outstanding); nothing after a handoff.
2. Holds pause escalation (`history.py`): a dispute or a manual exclusion until released, a promise to pay (also
   the platform's own promised payment date) until its date plus the grace days, and a payment arrangement while
   every instalment is paid on time.
3. One step at a time, never backwards, never twice: of the steps after the last one taken, the single most
   advanced whose date *and* prerequisites are met (a job that did not run for weeks catches up without a burst).
   A step's date is its schedule date, but never earlier than its normal distance from the step actually taken.
   Prerequisites: steps counted from another step need that step; the notice of default needs at least one
   reminder; the handoff needs the notice of default and its pay-by date (for consumers the 14-day term) passed.

What applies across a debtor's invoices (the minimum gap between mails, consolidation, one call per debtor) is in
`debtor.py`; costs and interest in `pricing.py`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from connector.capabilities import Capabilities
from connector.escalation.action import MAIL_CHANNELS, Action, ActionInvoice, format_money
from connector.escalation.history import History, read_history
from connector.escalation.policy import (
    REMINDER_STEPS,
    STEP_ORDER,
    Channel,
    DebtorOverride,
    Policy,
    Step,
    StepRule,
)
from connector.escalation.pricing import cost_base, notice_pay_by, price
from connector.models import Debtor, Event, Invoice

LEGAL_CONTENT_STEPS = frozenset({"notice_of_default"})
"""Steps whose wording the law prescribes: they need our own text, so a letter where the platform mails its own."""

_INDEX = {name: position for position, name in enumerate(STEP_ORDER)}


def _step_date(
    step: str, rule: StepRule, invoice: Invoice, history: History, last: str | None, policy: Policy
) -> date | None:
    """When `step` falls due given what was taken, or None while a step it rests on is missing."""
    steps = policy.steps
    if rule.after == "due":
        when = invoice.due_date + timedelta(days=rule.days)
    elif rule.after in history.taken:
        when = history.taken[rule.after] + timedelta(days=rule.days)
    elif not steps.rule(rule.after).enabled:  # the anchor is switched off: its schedule day stands in for it
        when = invoice.due_date + timedelta(days=steps.offset(step))
    else:
        return None
    if last is not None:
        when = max(when, history.taken[last] + timedelta(days=steps.offset(step) - steps.offset(last)))
    if history.paused:  # a hold pauses the clock: the schedule resumes where it stood, not with a burst
        since = history.taken[last] if last else invoice.due_date - timedelta(days=1)
        when += timedelta(days=history.paused_days_after(since))
    return when


def _prerequisite_missing(
    step: str, invoice: Invoice, debtor: Debtor, history: History, policy: Policy, today: date
) -> bool:
    if step == "pre_due":
        lead = -policy.steps.pre_due.days
        return today >= invoice.due_date or (invoice.due_date - invoice.issue_date).days < lead
    if step == "notice_of_default":
        return not REMINDER_STEPS & history.taken.keys()
    if step == "handoff":
        sent = history.taken.get("notice_of_default")
        return sent is None or today <= notice_pay_by(sent, debtor.kind, policy)
    return False


def _applies(step: str, rule: StepRule, invoice: Invoice, debtor: Debtor, override: DebtorOverride | None) -> bool:
    if not rule.enabled or debtor.kind not in rule.applies_to or invoice.outstanding < rule.min_outstanding:
        return False
    return override is None or override.steps is None or step in override.steps


def _channel(step: str, rule: StepRule, override: DebtorOverride | None, capabilities: Capabilities | None) -> Channel:
    channel = rule.channel
    if override and override.channel and channel in MAIL_CHANNELS:
        channel = override.channel
    if (
        channel is Channel.PLATFORM_MAIL
        and step in LEGAL_CONTENT_STEPS
        and capabilities is not None
        and not capabilities.custom_message
    ):
        # the platform mails its own text, which cannot carry the prescribed wording: it becomes a letter
        channel = Channel.LETTER
    return channel


def _describe_when(step: str, due_on: date, today: date, invoice: Invoice, history: History, policy: Policy) -> str:
    rule = policy.steps.rule(step)
    if rule.after != "due" and rule.after in history.taken:
        anchor, anchor_date = rule.after, history.taken[rule.after]
        return f"{_days((today - anchor_date).days)} after {anchor} on {anchor_date}"
    days = (today - invoice.due_date).days
    if days < 0:
        return f"{_days(-days)} before the due date {invoice.due_date}"
    if days == 0:
        return f"due today ({invoice.due_date})"
    return f"{_days(days)} after the due date {invoice.due_date}"


def _days(count: int) -> str:
    return f"{count} day" if count == 1 else f"{count} days"


@dataclass(slots=True)  # not frozen: made for every planned invoice, and a frozen dataclass is slower to create
class NextStep:
    """The step an invoice is due for today, decided but not yet described or priced (the driver builds actions
    only for the steps that survive its debtor-level rules: most are dropped for the minimum gap)."""

    step: str
    channel: Channel
    due_on: date
    invoice: Invoice
    debtor: Debtor
    override: DebtorOverride | None
    history: History
    last: str | None
    """The most advanced step taken before, if any."""
    policy: Policy
    """With the connection's overrides applied."""
    today: date


def next_step(
    invoice: Invoice,
    debtor: Debtor,
    events: Sequence[Event],
    policy: Policy,
    today: date,
    capabilities: Capabilities | None = None,
) -> NextStep | None:
    """The step `invoice` is due for on `today`, or None (nothing due, on hold, or nothing to collect).

    `policy` is the base policy (connection overrides are applied here). The minimum gap between mails to the
    debtor is not checked here: it is a debtor-level rule (`debtor.py`).
    """
    if not invoice.is_collectable or invoice.total <= 0:
        return None
    policy = policy.for_connection(invoice.connection)
    override = policy.for_debtor(debtor.connection, debtor.platform_id)
    if override is not None and override.excluded:
        return None
    history = read_history(invoice, events, policy, today)
    if history.handed_off or history.hold is not None:
        return None

    last = max(history.taken, key=_INDEX.__getitem__) if history.taken else None
    start = _INDEX[last] + 1 if last is not None else 0
    chosen: tuple[str, StepRule, date] | None = None
    steps = policy.steps
    # Days since what `_step_date` counts from at the least (holds only delay it), for a cheap first check
    # that the schedule cannot have reached a step yet: the due date, and the normal distance from the last step.
    overdue = (today - invoice.due_date).days
    since_last = (today - history.taken[last]).days + steps.offset(last) if last is not None else 0
    # the most advanced step first: the first one whose date and prerequisites are met is the one (no burst)
    for step, _position, rule in reversed(steps.ordered()[start:]):
        if (rule.days > overdue and rule.after == "due") or (last is not None and steps.offset(step) > since_last):
            continue
        if not _applies(step, rule, invoice, debtor, override):
            continue
        when = _step_date(step, rule, invoice, history, last, policy)
        if when is None or when > today or _prerequisite_missing(step, invoice, debtor, history, policy, today):
            continue
        if step == "handoff":
            when = max(when, notice_pay_by(history.taken["notice_of_default"], debtor.kind, policy) + timedelta(1))
        chosen = (step, rule, when)
        break
    if chosen is None:
        return None
    step, rule, due_on = chosen

    channel = _channel(step, rule, override, capabilities)
    return NextStep(step, channel, due_on, invoice, debtor, override, history, last, policy, today)


def build_action(decided: NextStep) -> Action:
    """The action for a decided step: its reason, the invoice line, and the costs and interest it may state."""
    step, invoice, debtor, override, policy, today = (
        decided.step, decided.invoice, decided.debtor, decided.override, decided.policy, decided.today
    )
    last, history = decided.last, decided.history
    language = (override.language if override and override.language else None) or debtor.language
    reason = f"{step}: {_describe_when(step, decided.due_on, today, invoice, history, policy)}"
    skipped = [s for s in STEP_ORDER[(_INDEX[last] + 1 if last else 0) : _INDEX[step]] if s != "pre_due"]
    if skipped:
        reason += f" (catching up; not sent: {', '.join(skipped)})"
    reason += f", {format_money(invoice.outstanding, invoice.currency)} outstanding"
    notice_sent = history.taken.get("notice_of_default")
    line = ActionInvoice(invoice, (today - invoice.due_date).days, cost_base(invoice, debtor.kind, notice_sent, policy))
    priced = price(step, today, debtor.kind, invoice.currency, (line,), notice_sent, policy)
    return Action(
        step=Step(step),
        channel=decided.channel,
        debtor=debtor,
        invoices=(line,),
        due_on=decided.due_on,
        as_of=today,
        outstanding=invoice.outstanding,
        currency=invoice.currency,
        reason=reason,
        language=language or policy.default_language,
        template=policy.steps.rule(step).template,
        costs=priced.costs,
        costs_if_unpaid=priced.costs_if_unpaid,
        interest=priced.interest,
        pay_by=priced.pay_by,
        presumed_receipt=priced.presumed_receipt,
        warnings=priced.warnings,
    )
