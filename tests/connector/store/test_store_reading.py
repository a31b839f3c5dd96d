"""Reading what the planner needs: open invoices with debtor and history, streamed in batches."""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import event

from connector.models import Event, EventKind, Invoice, Payment
from connector.store import StoreError
from connector.store.rows import utc_timestamp
from providers.base import SyncPage

D10 = Decimal("10.50")


def _fill(store, invoice_factory, debtor_factory, count: int) -> None:
    debtors = tuple(debtor_factory(f"D{n}") for n in range(5))
    invoices = tuple(invoice_factory(f"I{n:03d}", debtor_id=f"D{n % 5}") for n in range(count))
    store.write_sync_page("acme", SyncPage(invoices=invoices, debtors=debtors))


def test_open_invoices_come_with_their_debtor_and_history_grouped_per_debtor(store, invoice_factory, debtor_factory):
    _fill(store, invoice_factory, debtor_factory, 12)
    store.write_sync_page("acme", SyncPage(closed_invoice_ids=("I000",)))
    recorded = datetime(2026, 11, 1, 9, 30, 15, 250000, tzinfo=timezone(timedelta(hours=1)))
    store.append_event("acme", "I001", Event(kind=EventKind.NOTE, on=date(2026, 11, 1), data={"text": "called"},
                                             recorded_at=recorded))

    seen = list(store.iter_open_invoices(batch_size=4))

    assert sorted(inv.platform_id for inv, _, _ in seen) == [f"I{n:03d}" for n in range(1, 12)]
    assert all(debtor.platform_id == inv.debtor_id for inv, debtor, _ in seen)
    debtor_order = [inv.debtor_id for inv, _, _ in seen]
    assert debtor_order == sorted(debtor_order)  # one debtor's invoices are consecutive
    history = {inv.platform_id: events for inv, _, events in seen}
    assert [e.data for e in history["I001"]] == [{"text": "called"}]
    assert history["I001"][0].recorded_at == recorded and history["I001"][0].recorded_at.utcoffset() == timedelta(0)
    assert history["I002"] == ()


def test_an_invoice_reads_back_equal_to_the_one_written_every_field_typed(store, invoice_factory, debtor_factory):
    # the read path builds invoices without validating them again: a round trip must still give the same model
    written = invoice_factory(
        "I1", number="2026-0001", total=Decimal("1210.50"), amount_paid=Decimal("210.5"), outstanding=Decimal("1000.00"),
        promised_payment_date=date(2026, 12, 1), payment_url="https://pay.example/I1", reference="PO 7",
        payments=(Payment(on=date(2026, 10, 20), amount=Decimal("200")), Payment(on=date(2026, 11, 2), amount=D10)),
        last_modified=datetime(2026, 9, 1, 14, 0, tzinfo=timezone(timedelta(hours=2))), is_credit_note=True,
    )
    store.write_sync_page("acme", SyncPage(invoices=(written, invoice_factory("I2", number=None)),
                                           debtors=(debtor_factory("D1"),)))

    streamed = {inv.platform_id: inv for inv, _, _ in store.iter_open_invoices()}

    for read in (streamed["I1"], store.invoice("acme", "I1"), *store.find_invoices("2026-0001")):
        assert read == written
        assert read.model_fields_set == Invoice.model_validate(written.model_dump()).model_fields_set
        assert str(read.amount_paid) == "210.5" and read.last_modified.tzinfo is not None
        assert type(read.due_date) is date and type(read.promised_payment_date) is date
        assert type(read.payments[0].on) is date and read.payments[1].amount == D10
    assert streamed["I2"] == invoice_factory("I2", number=None)


def test_open_invoices_are_read_in_batches_not_per_row(store, invoice_factory, debtor_factory):
    _fill(store, invoice_factory, debtor_factory, 25)
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append(statement)

    event.listen(store.engine, "before_cursor_execute", count)
    try:
        assert len(list(store.iter_open_invoices(batch_size=10))) == 25
    finally:
        event.remove(store.engine, "before_cursor_execute", count)

    # 3 batches of (invoices, their debtors, events) and one empty read that ends the stream.
    assert len(statements) == 3 * 3 + 1


def test_open_invoices_of_one_connection_only(store, invoice_factory, debtor_factory):
    store.ensure_connection("other", "moneybird", "A1")
    _fill(store, invoice_factory, debtor_factory, 3)
    store.write_sync_page(
        "other",
        SyncPage(invoices=(invoice_factory("X1", connection="other"),), debtors=(debtor_factory(connection="other"),)),
    )

    assert [inv.platform_id for inv, _, _ in store.iter_open_invoices("other")] == ["X1"]
    assert len(list(store.iter_open_invoices())) == 4


def test_the_store_can_be_written_while_open_invoices_stream(store, invoice_factory, debtor_factory):
    _fill(store, invoice_factory, debtor_factory, 6)
    for invoice, _, _ in store.iter_open_invoices(batch_size=2):
        store.append_event("acme", invoice.platform_id, Event(kind=EventKind.REMINDER_SENT, on=date(2026, 11, 2)))

    assert all(len(events) == 1 for _, _, events in store.iter_open_invoices())


def test_an_open_invoice_without_a_synced_debtor_is_named_in_a_warning(store, invoice_factory, caplog):
    store.write_sync_page("acme", SyncPage(invoices=(invoice_factory("I1", debtor_id="missing"),)))

    with caplog.at_level(logging.WARNING):
        assert list(store.iter_open_invoices()) == []
    assert "invoice 2026-I1 is open but its debtor missing was never synced" in caplog.text


def test_history_is_append_only_and_kept_in_order(store, invoice_factory, clock):
    store.write_sync_page("acme", SyncPage(invoices=(invoice_factory("I1"),)))
    first = store.append_event(
        "acme", "I1", Event(kind=EventKind.HOLD_SET, on=date(2026, 11, 2), data={"hold": "dispute"})
    )
    second = store.append_event("acme", "I1", Event(kind=EventKind.HOLD_RELEASED, on=date(2026, 10, 30)))

    assert first.recorded_at == clock.now
    assert store.events("acme", "I1") == (first, second)
    with pytest.raises(StoreError, match="acme: invoice id nope is not in the store"):
        store.append_event("acme", "nope", Event(kind=EventKind.NOTE, on=date(2026, 11, 2)))


def test_a_payment_the_platform_dated_is_stored_even_when_nothing_else_changed(store, invoice_factory, debtor_factory):
    first = invoice_factory("I1")
    store.write_sync_page("acme", SyncPage(invoices=(first,), debtors=(debtor_factory("D1"),)))
    dated = first.model_copy(update={"payments": (Payment(on=date(2026, 10, 20), amount=Decimal("0")),)})

    assert store.write_sync_page("acme", SyncPage(invoices=(dated,))).changed == 1
    assert store.invoice("acme", "I1") == dated
    assert store.write_sync_page("acme", SyncPage(invoices=(dated,))).changed == 0


def test_every_invoice_open_or_closed_reads_back_with_its_history_and_the_stores_dates(
    store, invoice_factory, debtor_factory, clock
):
    first_seen = clock.now
    store.write_sync_page("acme", SyncPage(invoices=tuple(invoice_factory(f"I{n}") for n in range(5)),
                                           debtors=(debtor_factory("D1"), debtor_factory("D2"))))
    clock.now += timedelta(days=3)
    store.write_sync_page("acme", SyncPage(closed_invoice_ids=("I2",)))
    note = store.append_event("acme", "I4", Event(kind=EventKind.NOTE, on=date(2026, 11, 3)))

    records = {r.invoice.platform_id: r for r in store.iter_invoice_records("acme", batch_size=2)}

    assert sorted(records) == ["I0", "I1", "I2", "I3", "I4"]
    assert records["I0"].invoice == invoice_factory("I0") and records["I0"].first_seen_on == first_seen.date()
    assert records["I2"].closed_on == clock.now.date() and not records["I2"].invoice.is_open
    assert records["I0"].closed_on is None
    assert [e.kind for e in records["I2"].events] == [EventKind.CLOSED] and records["I4"].events == (note,)
    assert list(store.iter_invoice_records("other")) == []
    assert store.debtors("acme") == {("acme", "D1"): debtor_factory("D1"), ("acme", "D2"): debtor_factory("D2")}


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        ("2026-11-23 06:00:00", datetime(2026, 11, 23, 6, tzinfo=timezone.utc)),  # as SQLite keeps a UTC time
        ("2026-11-23 06:00:00.123456", datetime(2026, 11, 23, 6, 0, 0, 123456, tzinfo=timezone.utc)),
        ("2026-11-23T07:00:00+01:00", datetime(2026, 11, 23, 6, tzinfo=timezone.utc)),
        ("2026-11-23T01:00:00-05:00", datetime(2026, 11, 23, 6, tzinfo=timezone.utc)),
        ("2026-11-23T06:00:00Z", datetime(2026, 11, 23, 6, tzinfo=timezone.utc)),
    ],
)
def test_a_stored_timestamp_reads_back_as_the_same_utc_instant(stored, expected):
    """Naive text is UTC (the store writes it so); text with an offset is converted, never taken as UTC."""
    read = utc_timestamp(stored)
    assert read == expected and read.utcoffset() == timedelta(0)


def test_streaming_the_open_book_collects_less_often_and_restores_the_collector_after(
    store, invoice_factory, debtor_factory
):
    import gc

    _fill(store, invoice_factory, debtor_factory, 2)
    before = gc.get_threshold()
    stream = store.iter_open_invoices()
    next(stream)
    assert gc.get_threshold()[0] >= 10_000 > before[0]
    stream.close()
    assert gc.get_threshold() == before
