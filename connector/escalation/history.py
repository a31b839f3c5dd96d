"""An invoice's history as the planner reads it: typed event payloads and the fold into what the planner needs.

The store keeps each event's details as a JSON object (`Event.data`); the payload types here are what those objects
mean for escalation, parsed in one place (a hold and its end date, an arrangement's instalments, a payment), so the
planner never digs through untyped dictionaries.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from operator import attrgetter
from typing import Any, Literal

from connector.escalation.policy import Policy
from connector.models import PLATFORM, Event, EventKind, Invoice

HoldKind = Literal["dispute", "promise", "excluded"]


def _date(value: Any) -> date | None:
    if isinstance(value, date):
        return value
    if isinstance(value, str) and value:
        return date.fromisoformat(value[:10])
    return None


@dataclass(frozen=True, slots=True)
class HoldPayload:
    """`hold_set`: escalation pauses (a promise until its date), `hold_released` names the hold it ends (or all)."""

    hold: str | None
    """dispute | promise | excluded (an unknown name from an older version pauses like a dispute)."""
    until: date | None = None
    reason: str | None = None

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> HoldPayload:
        hold = data.get("hold")
        return cls(hold=None if hold is None else str(hold), until=_date(data.get("until")), reason=data.get("reason"))


@dataclass(frozen=True, slots=True)
class Instalment:
    due: date
    amount: Decimal


@dataclass(frozen=True, slots=True)
class ArrangementPayload:
    """`arrangement_set`: a payment schedule; `outstanding` is what was owed when it was agreed (older entries lack
    it: then the payments seen since count)."""

    schedule: tuple[Instalment, ...]
    """The down payment and the instalments, by due date."""
    outstanding: Decimal | None

    @classmethod
    def of(cls, data: Mapping[str, Any], on: date) -> ArrangementPayload:
        schedule: list[Instalment] = []
        down = data.get("down_payment")
        if isinstance(down, dict):
            schedule.append(Instalment(_date(down.get("due")) or on, Decimal(str(down["amount"]))))
        for item in data.get("instalments", ()):
            schedule.append(Instalment(_date(item["due"]) or on, Decimal(str(item["amount"]))))
        schedule.sort(key=lambda row: row.due)
        outstanding = Decimal(str(data["outstanding"])) if "outstanding" in data else None
        return cls(tuple(schedule), outstanding)


@dataclass(frozen=True, slots=True)
class PaymentPayload:
    """`payment_seen`: sync saw the outstanding amount drop by `amount`."""

    amount: Decimal

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> PaymentPayload:
        return cls(Decimal(str(data.get("amount", 0))))


@dataclass(slots=True)
class History:
    """What the planner needs from an invoice's events, read once."""

    taken: dict[str, date] = field(default_factory=dict)
    """Step → the day it was taken (first occurrence): sent, or made a task (a call, a letter to post, a mail the
    platform refused). What the schedule counts from, so a step is not planned twice."""
    sent: dict[str, date] = field(default_factory=dict)
    """Step → the day its mail or letter went out (first occurrence): what the law counts. A task is not sent until
    it is done (`dunning task done`): the handoff needs the notice of default sent, a consumer's costs its term."""
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


_ON = attrgetter("on")
_STEP_KINDS = frozenset({EventKind.REMINDER_SENT, EventKind.TASK_CREATED})

_PLATFORM_PROMISE = "platform promise"
"""The hold the platform's own promised date keeps, apart from a promise recorded by hand (each ends on its own)."""

NO_HISTORY = History()
"""The history of an invoice without events (shared: the planner only reads a history)."""


def _arrangement(
    event: Event, invoice: Invoice, payments: list[Event], today: date, grace: int
) -> tuple[str, date | None]:
    """The hold reason and, when an instalment was missed or the arrangement was kept to its end while part of the
    debt is still owed (it covered only that part), the last day it held."""
    agreed = ArrangementPayload.of(event.data, event.on)
    if agreed.outstanding is not None:
        paid = agreed.outstanding - invoice.outstanding
    else:
        paid = sum((PaymentPayload.of(p.data).amount for p in payments if p.on >= event.on), Decimal(0))
    cumulative = Decimal(0)
    for instalment in agreed.schedule:
        cumulative += instalment.amount
        if instalment.due + timedelta(days=grace) < today and paid < cumulative:
            return (
                f"payment arrangement broken: instalment of {instalment.due} not paid",
                instalment.due + timedelta(days=grace),
            )
    # an instalment is awaited until its grace has passed (as it counts as missed only then), the last one too
    awaited = next((row.due for row in agreed.schedule if row.due + timedelta(days=grace) >= today), None)
    if awaited is None and agreed.schedule and invoice.outstanding > 0:
        # kept to the end, yet something is still owed: the arrangement covered part of the debt, the rest goes on
        return "payment arrangement completed; the rest is claimed", agreed.schedule[-1].due + timedelta(days=grace)
    if awaited is None:
        return "payment arrangement kept", None
    return ("payment arrangement kept, " + (f"next instalment on {awaited}" if awaited >= today
                                            else f"awaiting the instalment of {awaited}")), None


def _where_it_stood(history: History, invoice: Invoice) -> date:
    """Where a platform's promise holds from (it does not say when it was made): the day after the last step taken,
    else the due date."""
    return max(history.taken.values()) + timedelta(days=1) if history.taken else invoice.due_date


def read_history(invoice: Invoice, events: Sequence[Event], policy: Policy, today: date) -> History:
    """Fold the events up to `today` into what the planner needs (later-dated events are ignored)."""
    if not events and invoice.promised_payment_date is None:
        return NO_HISTORY
    history = History()
    ordered = sorted(events, key=_ON) if len(events) > 1 else events
    holds: dict[str, tuple[str, date, date | None]] = {}
    """hold name → (reason, since, last day it can hold: a promise's date + grace)."""
    arrangement: Event | None = None
    payments: list[Event] = []
    platform_until: date | None = None
    """The date of the last platform promise sync recorded, if any."""

    def close(name: str, last: date) -> None:
        _reason, since, limit = holds.pop(name)
        last = min(last, limit) if limit else last
        if last >= since:
            history.paused.append((since, last))

    for event in ordered:
        if event.on > today:
            break  # later-dated events are ignored (ordered by date)
        kind = event.kind
        if kind in _STEP_KINDS and event.step:
            history.taken.setdefault(event.step, event.on)
            if kind is EventKind.REMINDER_SENT:
                history.sent.setdefault(event.step, event.on)
                if event.step != "handoff":
                    history.last_mail = event.on
        elif kind is EventKind.HANDOFF:
            history.handed_off = True
            history.taken.setdefault("handoff", event.on)
        elif kind is EventKind.HOLD_SET:
            hold = HoldPayload.of(event.data)
            name = hold.hold or "dispute"
            if name == "promise" and event.data.get("source") == PLATFORM:
                # the platform's promise (recorded by sync the day it was seen): it holds from where escalation
                # stood, as the invoice field did, but not over days an earlier platform promise left unheld
                until = hold.until or event.on
                since = _where_it_stood(history, invoice)
                since = min(since, event.on)
                if _PLATFORM_PROMISE in holds:
                    _reason, _since, limit = holds[_PLATFORM_PROMISE]
                    ended = min(event.on - timedelta(days=1), limit) if limit else event.on - timedelta(days=1)
                    close(_PLATFORM_PROMISE, ended)
                    since = max(since, ended + timedelta(days=1))
                holds[_PLATFORM_PROMISE] = (f"promise to pay by {until} (recorded on the platform)", since,
                                            until + timedelta(days=policy.promise_grace_days))
                platform_until = until
                continue
            if name in holds:
                close(name, event.on - timedelta(days=1))
            if name == "promise":
                until = hold.until or event.on
                holds[name] = (f"promise to pay by {until}", event.on, until + timedelta(days=policy.promise_grace_days))
            elif name == "excluded":
                holds[name] = ("excluded from reminders", event.on, None)
            else:
                holds[name] = (f"{name} since {event.on}", event.on, None)
        elif kind is EventKind.HOLD_RELEASED:
            released = HoldPayload.of(event.data).hold
            if event.data.get("source") == PLATFORM:  # the platform cleared its promised date
                released = _PLATFORM_PROMISE
            for name in [released] if released else list(holds):
                if name in holds:
                    close(name, event.on - timedelta(days=1))
        elif kind is EventKind.ARRANGEMENT_SET:
            if arrangement is not None:  # a new arrangement replaces the earlier one: the time it held still counts
                _reason, ended = _arrangement(arrangement, invoice, payments, event.on, policy.arrangement_grace_days)
                last = min(ended, event.on - timedelta(days=1)) if ended else event.on - timedelta(days=1)
                if last >= arrangement.on:
                    history.paused.append((arrangement.on, last))
            arrangement = event
        elif kind is EventKind.ARRANGEMENT_ENDED:
            if arrangement is not None and event.on > arrangement.on:
                history.paused.append((arrangement.on, event.on - timedelta(days=1)))
            arrangement = None
        elif kind is EventKind.PAYMENT_SEEN:
            payments.append(event)

    promised = invoice.promised_payment_date
    if promised is not None and promised == platform_until:
        promised = None  # recorded as a hold by sync (above): the field says nothing more
    if not holds and arrangement is None and not promised:
        return history  # only steps taken (most histories): nothing pauses or holds it
    active: dict[str, str] = {}
    for name, (reason, _since, limit) in list(holds.items()):
        if limit is None or today <= limit:
            active[name] = reason
        close(name, today)
    if promised:
        # the platform's promise is a hold like `hold --promise`, from where escalation stood (the platform does not
        # say when it was made): it pauses the clock, and a lapsed one resumes at the step it stood at
        limit = promised + timedelta(days=policy.promise_grace_days)
        if today <= limit:
            active.setdefault("promise", f"promise to pay by {promised} (recorded on the platform)")
        since = _where_it_stood(history, invoice)
        if min(today, limit) >= since:
            history.paused.append((since, min(today, limit)))
    if arrangement is not None:
        reason, broken_on = _arrangement(arrangement, invoice, payments, today, policy.arrangement_grace_days)
        history.paused.append((arrangement.on, broken_on or today))
        if broken_on is None:
            active["arrangement"] = reason
    for name in ("excluded", "dispute", "arrangement", "promise", _PLATFORM_PROMISE):
        if name in active:
            history.hold = active[name]
            break
    else:
        history.hold = next(iter(active.values()), None)
    return history
