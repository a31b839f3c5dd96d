"""A small book with everything the report shows: invoices of every age in two currencies, reminders followed by
payments, a hold, an arrangement, a task and a handed-off case."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from connector.models import Event, EventKind
from connector.store import Store
from providers.base import SyncPage
from tests.conftest import make_debtor, make_invoice

AS_OF = date(2026, 12, 4)
BIGGEST = "Bakkerij De Gouden Korst B.V."


def seed(store: Store, clock) -> None:
    """Two connections; `clock` is the store's clock (moved to make the history)."""
    clock.now = datetime(2026, 6, 1, 7, 0, tzinfo=UTC)
    store.ensure_connection("acme", "fake", "T1")
    store.ensure_connection("beta", "fake", "T2")
    debtors = (
        make_debtor("D1", name=BIGGEST),
        make_debtor("D2", name="Jansen Schoonmaak"),
        make_debtor("D3", name="Consument K. de Vries", kind="consumer", coc_number=None),
    )
    def inv(pid, debtor, issued, due, total, outstanding=None, **extra):
        return make_invoice(pid, debtor_id=debtor, issue_date=issued, due_date=due, total=Decimal(total),
                            outstanding=Decimal(outstanding or total), **extra)
    first = (
        inv("I1", "D1", date(2026, 5, 1), date(2026, 5, 31), "12100.00"),          # 187 days overdue
        inv("I2", "D1", date(2026, 10, 1), date(2026, 10, 31), "2420.00"),         # 34 days
        inv("I3", "D2", date(2026, 11, 1), date(2026, 11, 20), "605.00"),          # 14 days
        inv("I4", "D2", date(2026, 11, 20), date(2026, 12, 20), "1210.00"),        # not due
        inv("I5", "D3", date(2026, 9, 1), date(2026, 9, 15), "300.00"),            # 80 days
        inv("I6", "D2", date(2026, 5, 15), date(2026, 6, 15), "500.00"),           # paid after a reminder
        inv("I7", "D1", date(2026, 8, 1), date(2026, 8, 20), "999.00"),            # on hold (dispute)
        inv("I8", "D2", date(2026, 7, 1), date(2026, 7, 20), "800.00"),            # arrangement
    )
    store.write_sync_page("acme", SyncPage(debtors=debtors, invoices=first))
    store.write_sync_page("beta", SyncPage(
        debtors=(make_debtor("B1", connection="beta", name="Smith Ltd"),),
        invoices=(make_invoice("X1", connection="beta", debtor_id="B1", currency="GBP", issue_date=date(2026, 10, 1),
                               due_date=date(2026, 10, 31), total=Decimal("750.00"), outstanding=Decimal("750.00")),),
    ))
    store.append_event("acme", "I1", Event(kind=EventKind.REMINDER_SENT, on=date(2026, 6, 3), step="reminder_1"))
    store.append_event("acme", "I1", Event(kind=EventKind.REMINDER_SENT, on=date(2026, 6, 17), step="reminder_2"))
    store.append_event("acme", "I6", Event(kind=EventKind.REMINDER_SENT, on=date(2026, 6, 20), step="reminder_1"))
    store.append_event("acme", "I7", Event(kind=EventKind.HOLD_SET, on=date(2026, 9, 1), data={"hold": "dispute",
                                                                                               "reason": "wrong rate"}))
    store.append_event("acme", "I8", Event(kind=EventKind.ARRANGEMENT_SET, on=date(2026, 11, 1), data={
        "instalments": [{"due": "2026-12-15", "amount": "400.00"}, {"due": "2027-01-15", "amount": "400.00"}],
        "outstanding": "800.00"}))
    # I6 is paid on 25 June: five days after its reminder
    clock.now = datetime(2026, 6, 25, 7, 0, tzinfo=UTC)
    store.write_sync_page("acme", SyncPage(invoices=(
        make_invoice("I6", debtor_id="D2", issue_date=date(2026, 5, 15), due_date=date(2026, 6, 15),
                     total=Decimal("500.00"), outstanding=Decimal("0.00"), amount_paid=Decimal("500.00"),
                     status="paid", is_open=False),)))
    clock.now = datetime.combine(AS_OF, datetime.min.time(), UTC) + timedelta(hours=7)
    queued, _new = store.outbox_queue("acme", "reminder", "task-1", {
        "debtor": "D2", "invoices": ["I3"], "invoice_numbers": ["2026-I3"], "step": "call"})
    case = store.handoff_cases_open([("acme", "D3")])[("acme", "D3")]
    store.handoff_record(
        [(case.id, "exported", {"debtor_name": "Consument K. de Vries", "currency": "EUR", "invoices": ["I5"],
                                "totals": {"principal": "300.00", "interest": "6.12", "costs": "48.40",
                                           "total": "354.52"}})],
        [("acme", "I5", Event(kind=EventKind.HANDOFF, on=AS_OF, step="handoff"))],
    )
    store.outbox_complete(queued.id, "task", receipt={"kind": "call", "reason": "ring about 2026-I3",
                                                      "on": AS_OF.isoformat()})
