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
from decimal import Decimal
from functools import cache, lru_cache

from connector.capabilities import Capabilities
from connector.escalation.action import MAIL_CHANNELS, Action, ActionInvoice, format_money
from connector.escalation.history import NO_HISTORY, History, read_history
from connector.escalation.policy import (
    REMINDER_STEPS,
    STEP_ORDER,
    Channel,
    DebtorOverride,
    Policy,
    Step,
    StepRule,
)
from connector.escalation.pricing import PRICED_STEPS, cost_base, notice_pay_by, price
from connector.models import Debtor, DebtorKind, Event, Invoice

LEGAL_CONTENT_STEPS = frozenset({"notice_of_default"})
"""Steps whose wording the law prescribes: they need our own text, so a letter where the platform mails its own."""

_INDEX = {name: position for position, name in enumerate(STEP_ORDER)}
_STEPS = {step.value: step for step in Step}
_CHANNEL_WORDS = {channel: channel.value.replace("_", " ") for channel in Channel}
_ZERO = Decimal(0)


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
        # taken, not only sent: a reminder the platform refused is a task the user sees; the notice then comes as
        # the next task (a letter to post, say) rather than escalation stopping silently. The handoff needs it sent.
        return not REMINDER_STEPS & history.taken.keys()
    if step == "handoff":
        sent = history.sent.get("notice_of_default")  # a letter not yet posted, a refused mail: not sent
        return sent is None or today <= notice_pay_by(sent, debtor.kind, policy)
    return False


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


@lru_cache(maxsize=8192)
def _when(step: str, last: str | None, anchor: str, anchor_date: date, today: date) -> str:
    """What the reason says about when `step` fell due, and the steps skipped since `last` (cached: a run asks the
    same few dates for many invoices)."""
    return f"{_since(anchor, anchor_date, today)}{_catching_up(last, step)}"


def _since(anchor: str, anchor_date: date, today: date) -> str:
    """E.g. "3 days after reminder_1 on 2026-03-03"."""
    days = (today - anchor_date).days
    if anchor != "due":
        return f"{_days(days)} after {anchor} on {anchor_date}"
    if days < 0:
        return f"{_days(-days)} before the due date {anchor_date}"
    if days == 0:
        return f"due today ({anchor_date})"
    return f"{_days(days)} after the due date {anchor_date}"


def _days(count: int) -> str:
    return f"{count} day" if count == 1 else f"{count} days"


Due = tuple[str, StepRule, date]
"""A step due today: its name, its rule and the day it fell due."""


@dataclass(slots=True)  # not frozen: made for every planned invoice, and a frozen dataclass is slower to create
class NextStep:
    """The step an invoice is due for today, decided but not yet described or priced (the driver builds actions
    only for the steps that survive its debtor-level rules: most are dropped for the minimum gap)."""

    step: str
    rule: StepRule
    """The step's rule in `policy`."""
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
    earlier_due: tuple[Due, ...] = ()
    """The steps after `last` and before `step` that are due today as well, the most advanced first (where the
    debtor rules look for a mail the minimum gap held back)."""


def decide(
    invoice: Invoice,
    debtor: Debtor,
    events: Sequence[Event],
    schedule: Schedule,
    override: DebtorOverride | None,
    capabilities: Capabilities | None,
) -> NextStep | None:
    """The step `invoice` is due for on the schedule's day, or None (nothing due, on hold, or nothing to collect).

    `schedule` is the connection's policy (its overrides applied) on the day and `override` the debtor's, both
    looked up once per debtor. The minimum gap between mails to the debtor is not checked here: it is a
    debtor-level rule (`debtor.py`).
    """
    if not (invoice.is_open and not invoice.is_credit_note and invoice.outstanding > _ZERO and invoice.total > _ZERO):
        return None
    policy, today = schedule.policy, schedule.today
    if override is not None and override.excluded:
        return None
    history = read_history(invoice, events, policy, today) if events or invoice.promised_payment_date else NO_HISTORY
    if history.handed_off or history.hold is not None:
        return None

    taken = history.taken
    last = max(taken, key=_INDEX.__getitem__) if taken else None
    only = None if override is None else override.steps
    due = schedule.due(invoice, debtor, history, last, only)
    if not due:
        return None
    step, rule, due_on = due[0]
    channel = _channel(step, rule, override, capabilities)
    return NextStep(step, rule, channel, due_on, invoice, debtor, override, history, last, policy, today, due[1:])


def instead(decided: NextStep, earlier: Due, capabilities: Capabilities | None) -> NextStep:
    """The same invoice at one of its `earlier_due` steps instead (a mail the minimum gap held back)."""
    step, rule, due_on = earlier
    return NextStep(
        step, rule, _channel(step, rule, decided.override, capabilities), due_on, decided.invoice, decided.debtor,
        decided.override, decided.history, decided.last, decided.policy, decided.today,
    )


def _due(
    invoice: Invoice,
    debtor: Debtor,
    history: History,
    last: str | None,
    policy: Policy,
    today: date,
    only: frozenset[str] | None,
) -> tuple[Due, ...]:
    """Every step due today for an invoice not on hold, the most advanced first: the first is the one to take, the
    others are what it skips."""
    taken = history.taken
    steps = policy.steps
    kind, outstanding = debtor.kind, invoice.outstanding
    # Days since what `_step_date` counts from at the least (holds only delay it), for a cheap first check
    # that the schedule cannot have reached a step yet: the due date, and the normal distance from the last step.
    overdue = (today - invoice.due_date).days
    since_last = (today - taken[last]).days + steps.offset(last) if last is not None else overdue
    # the most advanced step first: the first one whose date and prerequisites are met is the one (no burst)
    due: list[Due] = []
    for step, rule, offset in steps.descending_from(_INDEX[last] + 1 if last is not None else 0):
        if offset > since_last or (rule.after == "due" and rule.days > overdue):
            continue
        if not rule.enabled or kind not in rule.applies_to or outstanding < rule.min_outstanding or (
            only is not None and step not in only
        ):
            continue
        when = _step_date(step, rule, invoice, history, last, policy)
        if when is None or when > today or _prerequisite_missing(step, invoice, debtor, history, policy, today):
            continue
        if step == "handoff":
            when = max(when, notice_pay_by(history.sent["notice_of_default"], debtor.kind, policy) + timedelta(1))
        due.append((step, rule, when))
    return tuple(due)


class Schedule:
    """The steps due on one day under one policy (`_due`), memoised: for an invoice not on hold they depend only on
    its dates, the debtor's kind, the steps taken and the days on hold, and on the amount only where a step has a
    minimum (most invoices of a run share a few hundred due dates and histories). Bounded: constant memory whatever
    the number of invoices. One per policy and day (`schedule_for`), looked up once per debtor."""

    __slots__ = ("policy", "today", "_by_amount", "_known")

    def __init__(self, policy: Policy, today: date) -> None:
        self.policy, self.today = policy, today
        self._by_amount = any(rule.min_outstanding for _step, rule, _offset in policy.steps.descending_from(0))
        self._known: dict[tuple[object, ...], tuple[Due, ...]] = {}

    def due(
        self, invoice: Invoice, debtor: Debtor, history: History, last: str | None, only: frozenset[str] | None
    ) -> tuple[Due, ...]:
        key = (invoice.due_date, invoice.issue_date, debtor.kind is DebtorKind.CONSUMER, only,
               invoice.outstanding if self._by_amount else None,
               None if history is NO_HISTORY
               else (tuple(history.taken.items()), tuple(history.sent.items()), tuple(history.paused)))
        found = self._known.get(key)
        if found is None:
            found = _due(invoice, debtor, history, last, self.policy, self.today, only)
            if len(self._known) >= _MEMO_SIZE:
                self._known.clear()
            self._known[key] = found
        return found


_MEMO_SIZE = 8192
_SCHEDULES: dict[tuple[int, date], Schedule] = {}
"""By (policy id, day); each keeps its policy, so an entry is only used for that very policy (ids are reused)."""


def schedule_for(policy: Policy, today: date) -> Schedule:
    """The memoised schedule of `policy` on `today` (a run asks it once per debtor; a few are kept: the days of a
    run go by one at a time)."""
    found = _SCHEDULES.get((id(policy), today))
    if found is None or found.policy is not policy:
        if len(_SCHEDULES) >= 8:
            _SCHEDULES.clear()
        found = _SCHEDULES[(id(policy), today)] = Schedule(policy, today)
    return found


@cache
def _catching_up(last: str | None, step: str) -> str:
    """What the reason says about the steps between the last one taken and `step` that were not sent."""
    skipped = [s for s in STEP_ORDER[(_INDEX[last] + 1 if last else 0) : _INDEX[step]] if s != "pre_due"]
    return f" (catching up; not sent: {', '.join(skipped)})" if skipped else ""


def _described(decided: NextStep) -> tuple[ActionInvoice, str, date | None]:
    """The invoice line of a decided step, its reason (after "step: ") and when its notice of default went out."""
    step, invoice, today, taken = decided.step, decided.invoice, decided.today, decided.history.taken
    anchor = decided.rule.after
    when = (_when(step, decided.last, anchor, taken[anchor], today) if anchor != "due" and anchor in taken
            else _when(step, decided.last, "due", invoice.due_date, today))
    tail = f"{when}, {format_money(invoice.outstanding, invoice.currency)} outstanding"
    notice_sent = decided.history.sent.get("notice_of_default")
    base = (cost_base(invoice, decided.debtor.kind, notice_sent, decided.policy) if invoice.payments
            else invoice.outstanding)
    return ActionInvoice(invoice, (today - invoice.due_date).days, base), tail, notice_sent


def build_action(decided: Sequence[NextStep], *, dossier: tuple[str, ...] = ()) -> Action:
    """The action for one or several decided steps of one debtor at the same step, channel and currency (one
    letter or mail covering them): the reason, the invoice lines, and the costs and interest it may state.

    Priced once for all its invoices (`price`): lawfulness is inherited, a cost field is filled only where it is for
    every single invoice (a consumer's costs once the term of the latest notice has passed, so none while any
    invoice had no notice); with `consolidate_principal` the invoices are one principal for the collection costs
    (a practice, not law).
    """
    first = decided[0]
    step, debtor, override, policy, invoice = first.step, first.debtor, first.override, first.policy, first.invoice
    language = (override.language if override and override.language else None) or debtor.language
    currency = invoice.currency
    if len(decided) == 1:  # one invoice: no lists to build and fold
        line, tail, notice = _described(first)
        lines: tuple[ActionInvoice, ...] = (line,)
        outstanding, due_on, reason = invoice.outstanding, first.due_on, f"{step}: {tail}"
    else:
        lines, tails, notices = zip(*[_described(d) for d in decided])
        notice = None if None in notices else max(notices)  # type: ignore[type-var]
        outstanding = sum([d.invoice.outstanding for d in decided], Decimal(0))
        due_on = min([d.due_on for d in decided])
        reason = (
            f"{step}: {len(lines)} invoices in one {_CHANNEL_WORDS[first.channel]}, "
            f"{format_money(outstanding, currency)} outstanding; "
            + "; ".join([f"{d.invoice.label}: {tail}" for d, tail in zip(decided, tails)])
        )
    template = first.rule.template
    if step not in PRICED_STEPS:  # most actions: nothing to price
        return Action(_STEPS[step], first.channel, debtor, lines, due_on, first.today, outstanding, currency, reason,
                      language or policy.default_language, template, dossier=dossier)
    priced = price(step, first.today, debtor.kind, currency, lines, notice, policy,
                   debtor_country=debtor.address.country)
    return Action(
        _STEPS[step], first.channel, debtor, lines, due_on, first.today, outstanding, currency, reason,
        language or policy.default_language, template, priced.costs, priced.costs_if_unpaid,
        priced.interest, priced.pay_by, priced.presumed_receipt, priced.warnings, dossier,
    )
