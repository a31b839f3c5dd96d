"""Writing sync pages: upsert, close, reopen, the history sync derives, and all-or-nothing pages."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import event, func, select

from connector.models import EventKind
from connector.store import Store, StoreError, schema
from providers.base import SyncPage


def _count(store: Store, table: object) -> int:
    with store.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def test_invoices_and_debtors_round_trip_exactly(store, invoice_factory, debtor_factory):
    debtor = debtor_factory("D1", language="nl", phone="+31 20 123 4567", vat_number="NL123456789B01")
    big = invoice_factory("I1", total=Decimal("9999999999999999.99"), outstanding=Decimal("9999999999999999.99"))
    odd = invoice_factory(
        "I2", total=Decimal("100.10"), amount_paid=Decimal("0.105"), outstanding=Decimal("99.995"),
        promised_payment_date=date(2026, 12, 1), payment_url="https://pay.example/I2", reference="PO 7",
    )
    store.write_sync_page("acme", SyncPage(invoices=(big, odd), debtors=(debtor,)))

    assert store.invoice("acme", "I1") == big
    assert store.invoice("acme", "I2") == odd
    assert str(store.invoice("acme", "I2").total) == "100.10"  # the exact text, not just an equal value
    assert str(store.invoice("acme", "I2").amount_paid) == "0.105"
    assert store.debtor("acme", "D1") == debtor


def test_upsert_updates_the_one_row_and_counts_only_real_changes(store, invoice_factory):
    first = store.write_sync_page("acme", SyncPage(invoices=(invoice_factory("I1"), invoice_factory("I2"))))
    again = store.write_sync_page("acme", SyncPage(invoices=(invoice_factory("I1"), invoice_factory("I2"))))
    edited = store.write_sync_page("acme", SyncPage(invoices=(invoice_factory("I1", status="overdue", version="2"),)))

    assert (first.changed, again.changed, edited.changed) == (2, 0, 1)
    assert _count(store, schema.invoices) == 2
    assert store.invoice("acme", "I1").status == "overdue"


def test_a_drop_in_outstanding_is_recorded_as_payment_seen(store, invoice_factory, clock):
    store.write_sync_page("acme", SyncPage(invoices=(invoice_factory("I1"),)))
    paid_part = invoice_factory("I1", amount_paid=Decimal("210.00"), outstanding=Decimal("1000.00"), version="2")
    store.write_sync_page("acme", SyncPage(invoices=(paid_part,)))

    (seen,) = store.events("acme", "I1")
    assert seen.kind is EventKind.PAYMENT_SEEN
    assert seen.on == clock.now.date()
    assert seen.data == {"amount": "210.00", "outstanding": "1000.00", "currency": "EUR"}
    assert seen.recorded_at == clock.now


def test_closed_ids_mark_invoices_closed_but_never_delete_them(store, invoice_factory, clock):
    store.write_sync_page("acme", SyncPage(invoices=(invoice_factory("I1"), invoice_factory("I2"))))
    written = store.write_sync_page("acme", SyncPage(closed_invoice_ids=("I1", "I1", "unknown")))

    assert written.closed == 1
    assert store.invoice("acme", "I1").is_open is False
    assert [e.kind for e in store.events("acme", "I1")] == [EventKind.CLOSED]
    assert set(store.sync_state("acme").open_invoices) == {"I2"}
    assert _count(store, schema.invoices) == 2
    assert store.write_sync_page("acme", SyncPage(closed_invoice_ids=("I1",))).closed == 0  # closing is once


def test_an_invoice_delivered_as_paid_gets_payment_and_closed_events(store, invoice_factory):
    store.write_sync_page("acme", SyncPage(invoices=(invoice_factory("I1"),)))
    paid = invoice_factory(
        "I1", amount_paid=Decimal("1210.00"), outstanding=Decimal("0.00"), status="paid", is_open=False, version="2"
    )
    written = store.write_sync_page("acme", SyncPage(invoices=(paid,)))

    assert written.closed == 1
    assert [e.kind for e in store.events("acme", "I1")] == [EventKind.PAYMENT_SEEN, EventKind.CLOSED]


def test_a_closed_invoice_that_comes_back_open_is_reopened(store, invoice_factory):
    store.write_sync_page("acme", SyncPage(invoices=(invoice_factory("I1"),)))
    store.write_sync_page("acme", SyncPage(closed_invoice_ids=("I1",)))
    store.write_sync_page("acme", SyncPage(invoices=(invoice_factory("I1", status="open", version="3"),)))

    assert store.invoice("acme", "I1").is_open is True
    assert [e.kind for e in store.events("acme", "I1")] == [EventKind.CLOSED, EventKind.REOPENED]
    assert "I1" in store.sync_state("acme").open_invoices


def test_sync_state_carries_cursor_and_versions_and_full_drops_the_cursor(store, invoice_factory, debtor_factory):
    store.write_sync_page("acme", SyncPage(invoices=(invoice_factory("I1", version="7"),), cursor="page-1"))
    store.write_sync_page("acme", SyncPage(debtors=(debtor_factory("D1", version="3"),), cursor=None))

    state = store.sync_state("acme")
    assert state.cursor == "page-1"  # a page without cursor keeps the previous one
    assert dict(state.open_invoices) == {"I1": "7"}
    assert dict(state.debtors) == {"D1": "3"}
    full = store.sync_state("acme", full=True)
    assert full.cursor is None and full.full is True and dict(full.open_invoices) == {"I1": "7"}


def test_sync_state_names_the_debtors_stored_open_invoices_lack(store, invoice_factory, debtor_factory):
    # an interrupted first sync stored invoices before their debtors: the next sync must complete those
    store.write_sync_page("acme", SyncPage(invoices=(invoice_factory("I1", debtor_id="D1"),
                                                     invoice_factory("I2", debtor_id="D2"))))
    assert store.sync_state("acme").debtors_missing == {"D1", "D2"}
    store.write_sync_page("acme", SyncPage(debtors=(debtor_factory("D1"),)))
    assert store.sync_state("acme").debtors_missing == {"D2"}


def test_a_page_for_another_connection_or_an_unknown_one_is_refused(store, invoice_factory):
    with pytest.raises(StoreError, match="page holds invoice I1 of connection other"):
        store.write_sync_page("acme", SyncPage(invoices=(invoice_factory("I1", connection="other"),)))
    with pytest.raises(StoreError, match="ghost: unknown connection"):
        store.write_sync_page("ghost", SyncPage(invoices=(invoice_factory("I1", connection="ghost"),)))


def _snapshot(store: Store) -> dict[str, object]:
    with store.engine.connect() as conn:
        return {
            table.name: sorted(map(tuple, conn.execute(select(table)).all()), key=repr)
            for table in (schema.connections, schema.debtors, schema.invoices, schema.events)
        }


def test_a_page_interrupted_in_python_leaves_the_store_unchanged(store, invoice_factory, debtor_factory, monkeypatch):
    store.write_sync_page("acme", SyncPage(invoices=(invoice_factory("I1"),), debtors=(debtor_factory(),), cursor="c1"))
    before = _snapshot(store)

    import connector.store.sync_pages as store_module

    real = store_module.invoice_values
    calls = {"n": 0}

    def crash_on_third(invoice):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("power cut")
        return real(invoice)

    monkeypatch.setattr(store_module, "invoice_values", crash_on_third)
    page = SyncPage(
        invoices=(
            invoice_factory("I1", outstanding=Decimal("10.00"), version="2"),  # would add payment_seen
            invoice_factory("I2"),
            invoice_factory("I3"),
        ),
        debtors=(debtor_factory("D1", name="Renamed B.V."), debtor_factory("D2")),
        closed_invoice_ids=("I1",),
        cursor="c2",
    )
    with pytest.raises(RuntimeError, match="power cut"):
        store.write_sync_page("acme", page)

    assert calls["n"] == 3
    assert _snapshot(store) == before


def test_a_page_interrupted_by_the_database_leaves_the_store_unchanged(store, invoice_factory, debtor_factory):
    store.write_sync_page("acme", SyncPage(invoices=(invoice_factory("I1"),), debtors=(debtor_factory(),), cursor="c1"))
    before = _snapshot(store)
    inserts = {"n": 0}

    def fail_third_invoice_insert(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("INSERT INTO INVOICES"):
            inserts["n"] += 1
            if inserts["n"] == 3:
                raise RuntimeError("disk full")

    event.listen(store.engine, "before_cursor_execute", fail_third_invoice_insert)
    page = SyncPage(
        invoices=tuple(invoice_factory(f"N{n}") for n in range(5)) + (invoice_factory("I1", status="late"),),
        debtors=(debtor_factory("D9"),),
        cursor="c2",
    )
    try:
        with pytest.raises(RuntimeError, match="disk full"):
            store.write_sync_page("acme", page)
    finally:
        event.remove(store.engine, "before_cursor_execute", fail_third_invoice_insert)

    assert inserts["n"] == 3
    assert _snapshot(store) == before
    assert store.sync_state("acme").cursor == "c1"


def test_the_platforms_promised_date_is_kept_as_a_hold_set_moved_and_cleared_the_day_sync_sees_it(
    store, invoice_factory, debtor_factory, clock
):
    from datetime import timedelta

    store.write_sync_page("acme", SyncPage(debtors=(debtor_factory(),),
                                           invoices=(invoice_factory(promised_payment_date=date(2026, 11, 20)),)))
    clock.now += timedelta(days=1)
    store.write_sync_page("acme", SyncPage(invoices=(invoice_factory(promised_payment_date=date(2026, 11, 20),
                                                                     amount_paid=Decimal("10.00"),
                                                                     outstanding=Decimal("1200.00")),)))
    clock.now += timedelta(days=1)
    store.write_sync_page("acme", SyncPage(invoices=(invoice_factory(promised_payment_date=date(2026, 11, 27)),)))
    clock.now += timedelta(days=1)
    store.write_sync_page("acme", SyncPage(invoices=(invoice_factory(promised_payment_date=None),)))

    holds = [(e.kind, e.on, e.data) for e in store.events("acme", "I1")
             if e.kind in (EventKind.HOLD_SET, EventKind.HOLD_RELEASED)]
    assert holds == [  # nothing for the sync that changed only the amount
        (EventKind.HOLD_SET, date(2026, 11, 2), {"hold": "promise", "until": "2026-11-20", "source": "platform"}),
        (EventKind.HOLD_SET, date(2026, 11, 4), {"hold": "promise", "until": "2026-11-27", "source": "platform"}),
        (EventKind.HOLD_RELEASED, date(2026, 11, 5), {"hold": "promise", "source": "platform"}),
    ]
