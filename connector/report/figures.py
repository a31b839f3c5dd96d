"""The report's figures, computed from the store in one pass over its invoices (values in, values out).

Everything here is per connection and currency: amounts in different currencies are never added up. Each figure
says what it counts, so the page can state it:

- aging: open, collectable invoices by days past their due date on the report date, and open credit notes not yet
  settled as negative amounts (what the platform owes the debtor is no debt; the platforms sign credit notes
  differently, so the sign is set here as in `dunning invoices`);
- DSO (days sales outstanding): receivables on a day / credit sales of the `DSO_DAYS` days up to it × `DSO_DAYS`;
  sales are the invoices the store has seen (an invoice paid before any sync saw it is missing, so early in the
  store's life DSO reads high), net of credit notes; the trend gives the figure at each month end since the store's
  first sync. `dunning demo` prints the same figure (`days_sales_outstanding`);
- effect of reminders: of the reminders sent at each step, the share whose invoice was paid (closed, or its
  outstanding amount reached zero) within 7, 14 and 30 days; a reminder counts for a window once the window has
  passed;
- claimable today: what a handoff on the report date could state (the escalation package's pricing of the handoff
  step): statutory or commercial interest and the collection costs, EUR only (the statutory scale is in euros);
  invoices on hold, under an arrangement or already handed off are left out.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from connector.capabilities import Capabilities
from connector.escalation.action import ActionInvoice
from connector.escalation.debtor import plan_debtor
from connector.escalation.history import read_history
from connector.escalation.policy import STEP_ORDER, Policy
from connector.escalation.pricing import cost_base, price
from connector.models import Debtor, Event, EventKind, Invoice
from connector.store.reads import InvoiceRecord

ZERO = Decimal(0)
BUCKETS = ("not_due", "d1_30", "d31_60", "d61_90", "d90_plus")
"""Aging buckets by days past due: not yet due (0 or less), 1–30, 31–60, 61–90, more than 90."""
EFFECT_WINDOWS = (7, 14, 30)
DSO_DAYS = 90
TOP_DEBTORS = 10
TREND_POINTS = 24
"""Month ends shown in the DSO trend at most (the most recent ones)."""


def bucket(days_overdue: int) -> str:
    if days_overdue <= 0:
        return "not_due"
    if days_overdue <= 30:
        return "d1_30"
    if days_overdue <= 60:
        return "d31_60"
    if days_overdue <= 90:
        return "d61_90"
    return "d90_plus"


def credit(invoice: Invoice) -> Decimal:
    """What an open credit note takes off the receivables (negative), however its platform signs it."""
    return -abs(invoice.outstanding)


@dataclass
class Aging:
    amounts: dict[str, Decimal] = field(default_factory=lambda: dict.fromkeys(BUCKETS, ZERO))
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(BUCKETS, 0))
    """Open items: invoices and credit notes."""
    credit_notes: int = 0
    credited: Decimal = ZERO
    """The open credit notes among them and their (negative) sum."""

    @property
    def total(self) -> Decimal:
        return sum(self.amounts.values(), ZERO)

    @property
    def count(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True)
class TopDebtor:
    name: str
    platform_id: str
    outstanding: Decimal
    """Net of the debtor's open credit notes."""
    invoices: int
    oldest_days_overdue: int
    current_step: str | None
    """The most advanced step taken on any of the debtor's open invoices (None: no reminder yet)."""
    due_today: str | None
    """The step the planner has for the debtor on the report date (None: nothing due)."""


@dataclass(frozen=True)
class DsoPoint:
    on: date
    receivables: Decimal
    sales: Decimal

    @property
    def dso(self) -> Decimal | None:
        """Days, to one decimal; None when there were no sales in the period."""
        if self.sales <= 0:
            return None
        return (self.receivables / self.sales * DSO_DAYS).quantize(Decimal("0.1"))


@dataclass
class StepEffect:
    step: str
    sent: int = 0
    eligible: dict[int, int] = field(default_factory=lambda: dict.fromkeys(EFFECT_WINDOWS, 0))
    paid: dict[int, int] = field(default_factory=lambda: dict.fromkeys(EFFECT_WINDOWS, 0))

    def share(self, window: int) -> Decimal | None:
        """The share paid within `window` days, 0–1; None when no reminder's window has passed yet."""
        if not self.eligible[window]:
            return None
        return Decimal(self.paid[window]) / Decimal(self.eligible[window])


@dataclass(frozen=True)
class HeldInvoice:
    debtor: str
    invoice: str
    outstanding: Decimal
    reason: str
    arrangement: bool


@dataclass
class Claimable:
    interest: Decimal = ZERO
    costs: Decimal = ZERO
    debtors: int = 0
    warnings: list[str] = field(default_factory=list)

    @property
    def total(self) -> Decimal:
        return self.interest + self.costs


@dataclass
class Section:
    """Everything the report shows for one connection in one currency."""

    connection: str
    currency: str
    aging: Aging = field(default_factory=Aging)
    top_debtors: list[TopDebtor] = field(default_factory=list)
    dso: DsoPoint | None = None
    dso_trend: list[DsoPoint] = field(default_factory=list)
    effects: list[StepEffect] = field(default_factory=list)
    held: list[HeldInvoice] = field(default_factory=list)
    claimable: Claimable | None = None
    """None outside EUR."""


@dataclass
class _Book:
    """One connection and currency while the pass collects it."""

    open_rows: dict[str, list[tuple[Invoice, Sequence[Event]]]] = field(default_factory=dict)
    """Debtor id → its open collectable invoices with their histories."""
    credits: dict[str, list[Invoice]] = field(default_factory=dict)
    """Debtor id → its open credit notes not yet settled."""
    all_invoices: list[tuple[Invoice, Sequence[Event], date, date | None]] = field(default_factory=list)
    """(invoice, events, first seen, closed on) for the DSO history."""
    effects: dict[str, StepEffect] = field(default_factory=dict)
    set_aside: set[str] = field(default_factory=set)
    """Open invoices on hold, under an arrangement or handed off (platform ids): nothing is claimed on them today."""


def collect(
    records: Iterable[InvoiceRecord],
    debtors: Mapping[tuple[str, str], Debtor],
    policy: Policy,
    as_of: date,
    *,
    capabilities: Mapping[str, Capabilities] | None = None,
) -> list[Section]:
    """The sections of the report, sorted by connection and currency."""
    books: dict[tuple[str, str], _Book] = {}
    for record in records:
        invoice = record.invoice
        if invoice.issue_date > as_of:
            continue
        book = books.setdefault((invoice.connection, invoice.currency), _Book())
        closed_on = record.closed_on
        book.all_invoices.append((invoice, record.events, record.first_seen_on, closed_on))
        _count_effects(book.effects, invoice, record.events, closed_on, as_of)
        if closed_on is not None and closed_on <= as_of:
            continue
        invoice = _as_on(invoice, record.events, as_of)
        if invoice.is_collectable:
            book.open_rows.setdefault(invoice.debtor_id, []).append((invoice, record.events))
        elif invoice.is_credit_note and invoice.is_open and invoice.outstanding:
            book.credits.setdefault(invoice.debtor_id, []).append(invoice)
    sections = []
    for (connection, currency), book in sorted(books.items()):
        section = Section(connection, currency)
        _aging_and_holds(section, book, debtors, policy, as_of)
        capable = (capabilities or {}).get(connection)
        section.top_debtors = _top_debtors(book, connection, debtors, policy, as_of, capable)
        section.dso_trend = _dso_trend(book, as_of)
        section.dso = section.dso_trend[-1] if section.dso_trend else None
        section.effects = [book.effects[step] for step in STEP_ORDER if step in book.effects]
        if currency == "EUR":
            section.claimable = _claimable(book, connection, currency, debtors, policy, as_of)
        sections.append(section)
    return sections


def _as_on(invoice: Invoice, events: Sequence[Event], day: date) -> Invoice:
    """The invoice as it stood at the end of `day`: payments seen later are still owed, and one closed later was
    open (a report as of a past date); unchanged when nothing happened since."""
    if not events and invoice.is_open:
        return invoice
    later = sum((Decimal(str(e.data.get("amount", 0))) for e in events
                 if e.kind is EventKind.PAYMENT_SEEN and e.on > day), ZERO)
    if not later and invoice.is_open:
        return invoice
    owed = invoice.outstanding + later
    return invoice.model_copy(update={"outstanding": owed, "amount_paid": invoice.total - owed, "is_open": True})


def _aging_and_holds(
    section: Section, book: _Book, debtors: Mapping[tuple[str, str], Debtor], policy: Policy, as_of: date
) -> None:
    resolved = policy.for_connection(section.connection)
    aging = section.aging
    for notes in book.credits.values():
        for note in notes:
            key = bucket((as_of - note.due_date).days)
            aging.amounts[key] += credit(note)
            aging.counts[key] += 1
            aging.credit_notes += 1
            aging.credited += credit(note)
    for debtor_id, rows in book.open_rows.items():
        debtor = debtors.get((section.connection, debtor_id))
        for invoice, events in rows:
            key = bucket((as_of - invoice.due_date).days)
            aging.amounts[key] += invoice.outstanding
            aging.counts[key] += 1
            if not events and invoice.promised_payment_date is None:
                continue
            history = read_history(invoice, events, resolved, as_of)
            if history.hold is not None or history.handed_off:
                book.set_aside.add(invoice.platform_id)
            if history.hold is not None:
                section.held.append(HeldInvoice(
                    debtor.name if debtor else debtor_id, invoice.label, invoice.outstanding, history.hold,
                    arrangement="arrangement" in history.hold,
                ))
    section.held.sort(key=lambda row: (row.debtor, row.invoice))


def _rows(
    book: _Book, connection: str, debtor_id: str, debtors: Mapping[tuple[str, str], Debtor]
) -> tuple[Debtor | None, list[tuple[Invoice, Debtor, Sequence[Event]]]]:
    """The debtor and its open rows as the planner takes them (no rows for a debtor never synced)."""
    debtor = debtors.get((connection, debtor_id))
    if debtor is None:
        return None, []
    return debtor, [(invoice, debtor, events) for invoice, events in book.open_rows[debtor_id]]


def _top_debtors(
    book: _Book,
    connection: str,
    debtors: Mapping[tuple[str, str], Debtor],
    policy: Policy,
    as_of: date,
    capabilities: Capabilities | None,
) -> list[TopDebtor]:
    owed = sorted(
        ((sum((i.outstanding for i, _e in rows), ZERO) + sum(map(credit, book.credits.get(debtor_id, ())), ZERO),
          debtor_id) for debtor_id, rows in book.open_rows.items()),
        key=lambda item: (-item[0], item[1]),
    )[:TOP_DEBTORS]
    resolved = policy.for_connection(connection)
    found = []
    for outstanding, debtor_id in owed:
        debtor, rows = _rows(book, connection, debtor_id, debtors)
        taken: set[str] = set()
        for invoice, _debtor, events in rows:
            taken.update(read_history(invoice, events, resolved, as_of).taken)
        current = max(taken, key=STEP_ORDER.index) if taken else None
        actions = plan_debtor(rows, policy, as_of, capabilities) if rows else []
        due = max((a.step.value for a in actions), key=STEP_ORDER.index) if actions else None
        found.append(TopDebtor(
            name=debtor.name if debtor else debtor_id,
            platform_id=debtor_id,
            outstanding=outstanding,
            invoices=len(book.open_rows[debtor_id]),
            oldest_days_overdue=max((as_of - i.due_date).days for i, _e in book.open_rows[debtor_id]),
            current_step=current,
            due_today=due,
        ))
    return found


def _paid_on(invoice: Invoice, events: Sequence[Event], closed_on: date | None) -> date | None:
    """The day the invoice was seen paid (closed, or nothing left outstanding), if it was."""
    for event in events:
        if event.kind is EventKind.CLOSED or (
            event.kind is EventKind.PAYMENT_SEEN and Decimal(str(event.data.get("outstanding", "1"))) <= 0
        ):
            return event.on
    return closed_on if closed_on is not None and not invoice.is_open else None


def _count_effects(
    effects: dict[str, StepEffect], invoice: Invoice, events: Sequence[Event], closed_on: date | None, as_of: date
) -> None:
    sent = [e for e in events if e.kind is EventKind.REMINDER_SENT and e.step and e.on <= as_of]
    if not sent:
        return
    paid = _paid_on(invoice, events, closed_on)
    for event in sent:
        step = str(event.step)
        effect = effects.get(step)
        if effect is None:
            effect = effects[step] = StepEffect(step)
        effect.sent += 1
        for window in EFFECT_WINDOWS:
            if event.on + timedelta(days=window) > as_of:
                continue
            effect.eligible[window] += 1
            if paid is not None and event.on <= paid <= event.on + timedelta(days=window):
                effect.paid[window] += 1


def _month_ends(first: date, last: date) -> list[date]:
    ends = []
    year, month = first.year, first.month
    while True:
        following = date(year + month // 12, month % 12 + 1, 1)
        end = following - timedelta(days=1)
        if end >= last:
            break
        ends.append(end)
        year, month = following.year, following.month
    return [*ends[-(TREND_POINTS - 1):], last]


def days_sales_outstanding(records: Iterable[InvoiceRecord], as_of: date) -> dict[tuple[str, str], DsoPoint]:
    """The report's DSO on `as_of` per connection and currency (what `dunning demo` prints beside the report)."""
    books: dict[tuple[str, str], _Book] = {}
    for record in records:
        invoice = record.invoice
        if invoice.issue_date <= as_of:
            books.setdefault((invoice.connection, invoice.currency), _Book()).all_invoices.append(
                (invoice, record.events, record.first_seen_on, record.closed_on))
    return {key: _dso_trend(book, as_of)[-1] for key, book in sorted(books.items())}


def _dso_trend(book: _Book, as_of: date) -> list[DsoPoint]:
    """DSO at each month end since the store first saw an invoice of this book, and on the report date.

    Each invoice counts on a run of consecutive days (sales: from its issue date for `DSO_DAYS` days; receivables:
    from its issue date until it closed), so it is added once where its run starts and taken off where it ends;
    only an invoice with payments seen owes a different amount on different days and is counted day by day. A
    credit note counts negative in both (net sales; what is owed back is no receivable).
    """
    if not book.all_invoices:
        return []
    start = min(first for _i, _e, first, _c in book.all_invoices)
    days = _month_ends(min(start, as_of), as_of)
    count = len(days)
    sales = [ZERO] * (count + 1)
    owed = [ZERO] * (count + 1)
    varying = [ZERO] * count
    for invoice, events, _first, closed_on in book.all_invoices:
        first = bisect_left(days, invoice.issue_date)
        if first == count:
            continue
        after_sales = bisect_left(days, invoice.issue_date + timedelta(days=DSO_DAYS))
        sold = -abs(invoice.total) if invoice.is_credit_note else invoice.total
        sales[first] += sold
        sales[after_sales] -= sold
        after_open = count if closed_on is None else bisect_left(days, closed_on)
        if first >= after_open:
            continue
        payments = [(e.on, Decimal(str(e.data.get("amount", 0)))) for e in events if e.kind is EventKind.PAYMENT_SEEN]
        if not payments:
            open_amount = credit(invoice) if invoice.is_credit_note else max(invoice.outstanding, ZERO)
            owed[first] += open_amount
            owed[after_open] -= open_amount
            continue
        for index in range(first, after_open):
            then = invoice.outstanding + sum((amount for on, amount in payments if on > days[index]), ZERO)
            varying[index] += -abs(then) if invoice.is_credit_note else max(then, ZERO)
    points = []
    running_sales = running_owed = ZERO
    for index, day in enumerate(days):
        running_sales += sales[index]
        running_owed += owed[index]
        points.append(DsoPoint(day, running_owed + varying[index], running_sales))
    return points


def _claimable(
    book: _Book, connection: str, currency: str, debtors: Mapping[tuple[str, str], Debtor], policy: Policy, as_of: date
) -> Claimable:
    resolved = policy.for_connection(connection)
    found = Claimable()
    for debtor_id, rows in book.open_rows.items():
        debtor = debtors.get((connection, debtor_id))
        overdue = [(i, e) for i, e in rows if i.due_date < as_of and i.platform_id not in book.set_aside]
        if debtor is None or not overdue:
            continue
        notice: date | None = None
        lines: list[tuple[Invoice, date | None]] = []
        for invoice, events in overdue:
            sent = read_history(invoice, events, resolved, as_of).sent.get("notice_of_default") if events else None
            notice = sent or notice
            lines.append((invoice, sent))
        invoices = tuple(
            ActionInvoice(invoice, (as_of - invoice.due_date).days, cost_base(invoice, debtor.kind, sent, resolved))
            for invoice, sent in lines
        )
        priced = price("handoff", as_of, debtor.kind, currency, invoices, notice, resolved,
                       debtor_country=debtor.address.country)
        if priced.interest:
            found.interest += priced.interest
        if priced.costs:
            found.costs += priced.costs
        if priced.interest or priced.costs:
            found.debtors += 1
        found.warnings.extend(w for w in priced.warnings if w not in found.warnings)
    return found

