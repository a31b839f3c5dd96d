"""The planner: given one invoice, its debtor, its history, the policy and a date, the next action or nothing.

Pure: values in, a value out; no clock, no store, no I/O. The rules, in the order they are checked:

1. Only collectable invoices (open, not a credit note, something positive outstanding); nothing after a handoff.
2. Holds pause escalation: a dispute or a manual exclusion until released, a promise to pay (also the platform's
   own promised payment date) until its date plus the grace days, and a payment arrangement while every
   instalment is paid on time.
3. One step at a time, never backwards, never twice: of the steps after the last one taken, the single most
   advanced whose date *and* prerequisites are met (a job that did not run for weeks catches up without a burst).
   A step's date is its schedule date, but never earlier than its normal distance from the step actually taken.
   Prerequisites: steps counted from another step need that step; the notice of default needs at least one
   reminder; the handoff needs the notice of default and its pay-by date (for consumers the 14-day term) passed.
4. At least `min_gap_days` between two mails to the same debtor (the driver passes the debtor's last mail).
5. Costs and interest only where lawful: businesses owe max(EUR 40, scale) and commercial interest from the day
   after the due date; consumers owe costs only once the 14-day letter's term has passed unpaid.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from connector.escalation.calendar import consumer_term_end, presumed_receipt
from connector.escalation.legal import (
    business_compensation,
    collection_costs,
    statutory_interest,
)
from connector.escalation.policy import (
    REMINDER_STEPS,
    STEP_ORDER,
    Channel,
    DebtorOverride,
    Policy,
    StepRule,
)
from connector.models import Debtor, DebtorKind, Event, EventKind, Invoice
from providers.base import Capabilities

MAIL_CHANNELS = frozenset({Channel.PLATFORM_MAIL, Channel.LETTER})
"""Channels that put a message in front of the debtor (and so count for the minimum gap)."""

LEGAL_CONTENT_STEPS = frozenset({"notice_of_default"})
"""Steps whose wording the law prescribes: they need our own text, so a letter where the platform mails its own."""

_INDEX = {name: position for position, name in enumerate(STEP_ORDER)}


@dataclass(frozen=True, slots=True)
class ActionInvoice:
    """One invoice an action is about, with what its text shows."""

    platform_id: str
    number: str
    issue_date: date
    due_date: date
    total: Decimal
    outstanding: Decimal
    days_overdue: int
    payment_url: str | None


@dataclass(frozen=True, slots=True)
class Action:
    """What to do today for one debtor: a step, on one or several invoices (consolidated by the driver)."""

    step: str
    channel: Channel
    connection: str
    debtor_id: str
    debtor_name: str
    debtor_kind: DebtorKind
    invoices: tuple[ActionInvoice, ...]
    due_on: date
    """The day the step fell due (on or before `as_of`)."""
    as_of: date
    outstanding: Decimal
    currency: str
    reason: str
    language: str
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
            "step": self.step,
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


def format_money(amount: Decimal, currency: str) -> str:
    """EUR 1,210.00: how amounts read in reasons and logs."""
    return f"{currency} {amount:,.2f}"


# --- reading the history ------------------------------------------------------------------------------------------


@dataclass(slots=True)
class History:
    """What the planner needs from an invoice's events, read once."""

    taken: dict[str, date] = field(default_factory=dict)
    """Step → the day it was taken (first occurrence)."""
    handed_off: bool = False
    last_mail: date | None = None
    hold: str | None = None
    """Why escalation is paused today, or None."""
    paused: list[tuple[date, date]] = field(default_factory=list)
    """Days (first, last inclusive) escalation was on hold: the schedule resumes where it stood, shifted by them."""

    def paused_days_after(self, day: date) -> int:
        """Days on hold after `day` (overlapping holds count once)."""
        covered: set[date] = set()
        for first, last in self.paused:
            current = max(first, day + timedelta(days=1))
            while current <= last:
                covered.add(current)
                current += timedelta(days=1)
        return len(covered)


def _parse_date(value: Any) -> date | None:
    if isinstance(value, date):
        return value
    if isinstance(value, str) and value:
        return date.fromisoformat(value[:10])
    return None


def _arrangement(event: Event, invoice: Invoice, payments: list[Event], today: date, grace: int) -> tuple[str, date | None]:
    """The hold reason and, when an instalment was missed, the day the arrangement counts as broken."""
    data = event.data
    schedule: list[tuple[date, Decimal]] = []
    down = data.get("down_payment")
    if isinstance(down, dict):
        schedule.append((_parse_date(down.get("due")) or event.on, Decimal(str(down["amount"]))))
    for item in data.get("instalments", ()):
        schedule.append((_parse_date(item["due"]) or event.on, Decimal(str(item["amount"]))))
    schedule.sort(key=lambda row: row[0])
    if "outstanding" in data:
        paid = Decimal(str(data["outstanding"])) - invoice.outstanding
    else:
        paid = sum((Decimal(str(p.data.get("amount", 0))) for p in payments if p.on >= event.on), Decimal(0))
    cumulative = Decimal(0)
    for due, amount in schedule:
        cumulative += amount
        if due + timedelta(days=grace) < today and paid < cumulative:
            return f"payment arrangement broken: instalment of {due} not paid", due + timedelta(days=grace)
    upcoming = next((due for due, _ in schedule if due >= today), None)
    return "payment arrangement kept" + (f", next instalment on {upcoming}" if upcoming else ""), None


def read_history(invoice: Invoice, events: Sequence[Event], policy: Policy, today: date) -> History:
    """Fold the events up to `today` into what the planner needs (later-dated events are ignored)."""
    history = History()
    if not events and invoice.promised_payment_date is None:
        return history
    ordered = sorted((e for e in events if e.on <= today), key=lambda e: e.on)
    holds: dict[str, tuple[str, date, date | None]] = {}
    """hold name → (reason, since, last day it can hold: a promise's date + grace)."""
    arrangement: Event | None = None
    payments: list[Event] = []

    def close(name: str, last: date) -> None:
        _reason, since, limit = holds.pop(name)
        last = min(last, limit) if limit else last
        if last >= since:
            history.paused.append((since, last))

    for event in ordered:
        kind = event.kind
        if kind in (EventKind.REMINDER_SENT, EventKind.TASK_CREATED) and event.step:
            history.taken.setdefault(event.step, event.on)
            if kind is EventKind.REMINDER_SENT and event.step != "handoff":
                history.last_mail = event.on
        elif kind is EventKind.HANDOFF:
            history.handed_off = True
            history.taken.setdefault("handoff", event.on)
        elif kind is EventKind.HOLD_SET:
            name = str(event.data.get("hold", "dispute"))
            if name in holds:
                close(name, event.on - timedelta(days=1))
            if name == "promise":
                until = _parse_date(event.data.get("until")) or event.on
                holds[name] = (f"promise to pay by {until}", event.on, until + timedelta(days=policy.promise_grace_days))
            elif name == "excluded":
                holds[name] = ("excluded from reminders", event.on, None)
            else:
                holds[name] = (f"{name} since {event.on}", event.on, None)
        elif kind is EventKind.HOLD_RELEASED:
            released = event.data.get("hold")
            for name in [str(released)] if released else list(holds):
                if name in holds:
                    close(name, event.on - timedelta(days=1))
        elif kind is EventKind.ARRANGEMENT_SET:
            arrangement = event
        elif kind is EventKind.ARRANGEMENT_ENDED:
            if arrangement is not None and event.on > arrangement.on:
                history.paused.append((arrangement.on, event.on - timedelta(days=1)))
            arrangement = None
        elif kind is EventKind.PAYMENT_SEEN:
            payments.append(event)

    active: dict[str, str] = {}
    for name, (reason, since, limit) in list(holds.items()):
        if limit is None or today <= limit:
            active[name] = reason
        close(name, today)
    promised = invoice.promised_payment_date
    if promised and today <= promised + timedelta(days=policy.promise_grace_days):
        active.setdefault("promise", f"promise to pay by {promised} (recorded on the platform)")
    if arrangement is not None:
        reason, broken_on = _arrangement(arrangement, invoice, payments, today, policy.arrangement_grace_days)
        history.paused.append((arrangement.on, broken_on or today))
        if broken_on is None:
            active["arrangement"] = reason
    for name in ("excluded", "dispute", "arrangement", "promise"):
        if name in active:
            history.hold = active[name]
            break
    else:
        history.hold = next(iter(active.values()), None)
    return history


# --- deciding -----------------------------------------------------------------------------------------------------


def notice_pay_by(sent: date, kind: DebtorKind, policy: Policy) -> date:
    """The last day to pay after a notice of default sent on `sent` (consumers: the end of the 14-day term)."""
    if kind is DebtorKind.CONSUMER:
        return consumer_term_end(sent, policy)
    return sent + timedelta(days=policy.steps.notice_of_default.pay_by_days)


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
    """The next action for `invoice` on `today`, or None (nothing due, on hold, or nothing to collect).

    `policy` is the base policy (connection overrides are applied here); `last_mail_to_debtor` is the most recent
    mail to this debtor about any invoice, for the minimum gap.
    """
    decided = next_step(
        invoice, debtor, events, policy, today, capabilities, last_mail_to_debtor=last_mail_to_debtor
    )
    return None if decided is None else build_action(decided)


def next_step(
    invoice: Invoice,
    debtor: Debtor,
    events: Sequence[Event],
    policy: Policy,
    today: date,
    capabilities: Capabilities | None = None,
    *,
    last_mail_to_debtor: date | None = None,
) -> NextStep | None:
    """What `plan_invoice` decides, without building the action (same arguments)."""
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
    if channel in MAIL_CHANNELS:
        for last_mail in (history.last_mail, last_mail_to_debtor):
            if last_mail is not None and (today - last_mail).days < policy.min_gap_days:
                return None
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
    line = ActionInvoice(
        platform_id=invoice.platform_id,
        number=invoice.label,
        issue_date=invoice.issue_date,
        due_date=invoice.due_date,
        total=invoice.total,
        outstanding=invoice.outstanding,
        days_overdue=(today - invoice.due_date).days,
        payment_url=invoice.payment_url,
    )
    return Action(
        step=step,
        channel=decided.channel,
        connection=invoice.connection,
        debtor_id=debtor.platform_id,
        debtor_name=debtor.name,
        debtor_kind=debtor.kind,
        invoices=(line,),
        due_on=decided.due_on,
        as_of=today,
        outstanding=invoice.outstanding,
        currency=invoice.currency,
        reason=reason,
        language=language or policy.default_language,
        **_priced(step, today, debtor.kind, invoice.currency, (line,), (), history.taken.get("notice_of_default"), policy),
    )


def price(action: Action, notice_sent: date | None, policy: Policy) -> Action:
    """Attach the costs, interest and pay-by date the step may lawfully state (EUR only: the statutory scale is
    in euros)."""
    fields = _priced(
        action.step, action.as_of, action.debtor_kind, action.currency, action.invoices, action.warnings, notice_sent,
        policy,
    )
    return replace(action, **fields) if fields else action


def _priced(
    step: str,
    today: date,
    debtor_kind: DebtorKind,
    currency: str,
    invoices: tuple[ActionInvoice, ...],
    warnings_so_far: tuple[str, ...],
    notice_sent: date | None,
    policy: Policy,
) -> dict[str, Any]:
    """The `Action` fields `price` sets (none for most steps), so an action can be made with them at once."""
    fields: dict[str, Any] = {}
    if step not in ("notice_of_default", "handoff"):
        return fields
    if step == "notice_of_default":
        fields["pay_by"] = notice_pay_by(today, debtor_kind, policy)
        if debtor_kind is DebtorKind.CONSUMER:
            fields["presumed_receipt"] = presumed_receipt(today, policy.receipt)
    if currency != "EUR":
        fields["warnings"] = (*warnings_so_far, "statutory costs and interest are in EUR only")
        return fields
    principals = [i.outstanding for i in invoices]
    if policy.consolidate_principal:
        principals = [sum(principals, Decimal(0))]
    commercial = debtor_kind is DebtorKind.BUSINESS
    if commercial:
        fields["costs"] = sum((business_compensation(p, vat_rate=policy.collection_vat) for p in principals), Decimal(0))
    else:
        costs = sum((collection_costs(p, vat_rate=policy.collection_vat) for p in principals), Decimal(0))
        lawful = notice_sent is not None and today > consumer_term_end(notice_sent, policy)
        if step == "notice_of_default":
            fields["costs_if_unpaid"] = costs
        elif lawful:
            fields["costs"] = costs
    if commercial or step == "handoff":
        found: list[str] = []
        interest = Decimal(0)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for line in invoices:
                if line.due_date >= today:
                    continue
                seen = len(caught)
                try:
                    interest += statutory_interest(
                        line.outstanding, line.due_date + timedelta(days=1), today, commercial=commercial
                    )
                except ValueError as exc:  # a due date before the rate table: stated by hand, never guessed
                    found.append(f"invoice {line.number}: {exc}")
                found += [str(w.message) for w in caught[seen:]]
        fields["interest"] = interest
        fields["warnings"] = (*warnings_so_far, *dict.fromkeys(found))
    return fields


def consolidate(actions: Sequence[Action], policy: Policy) -> Action:
    """One action for several invoices of one debtor at the same step, channel and currency (one letter/mail).

    Lawfulness is inherited: a cost field is filled only where every single-invoice action had it. With
    `consolidate_principal` the invoices are one principal for the collection costs (a practice, not law).
    """
    first = actions[0]
    if len(actions) == 1:
        return first
    if len({(a.debtor_id, a.step, a.channel, a.currency) for a in actions}) != 1:
        raise ValueError("only actions of one debtor, step, channel and currency can be consolidated")
    lines = tuple(line for a in actions for line in a.invoices)
    outstanding = sum((a.outstanding for a in actions), Decimal(0))

    def combined(name: str) -> Decimal | None:
        values = [getattr(a, name) for a in actions]
        if any(v is None for v in values):
            return None
        if first.currency != "EUR" or not policy.consolidate_principal:
            return sum(values, Decimal(0))
        if first.debtor_kind is DebtorKind.BUSINESS:
            return business_compensation(outstanding, vat_rate=policy.collection_vat)
        return collection_costs(outstanding, vat_rate=policy.collection_vat)

    interests = [a.interest for a in actions]
    return replace(
        first,
        invoices=lines,
        due_on=min(a.due_on for a in actions),
        outstanding=outstanding,
        reason=f"{first.step}: {len(lines)} invoices in one {first.channel.value.replace('_', ' ')}, "
        f"{format_money(outstanding, first.currency)} outstanding; " + "; ".join(
            f"{a.invoice_numbers[0]}: {a.reason.split(': ', 1)[1]}" for a in actions
        ),
        costs=combined("costs"),
        costs_if_unpaid=combined("costs_if_unpaid"),
        interest=None if any(i is None for i in interests) else sum(interests, Decimal(0)),  # type: ignore[arg-type]
        warnings=tuple(dict.fromkeys(w for a in actions for w in a.warnings)),
    )
