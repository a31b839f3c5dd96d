"""Schema versions: a fresh store, an older one migrated forward, a newer one refused, a failed step undone."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import inspect

from connector.models import Event, EventKind, Payment
from connector.store import Store, StoreError, schema
from connector.store.engine import create_store_engine
from connector.store.migrations import MIGRATIONS, current_version, migrate
from providers.base import SyncPage


def _version(url: str) -> int:
    engine = create_store_engine(url)
    try:
        with engine.connect() as conn:
            return current_version(conn)
    finally:
        engine.dispose()


def test_a_new_store_gets_the_latest_schema_and_reopening_changes_nothing(store_url):
    Store.open(store_url).close()
    Store.open(store_url).close()

    assert _version(store_url) == len(MIGRATIONS)


def test_a_version_1_store_migrates_forward_keeping_its_data(store_url, invoice_factory):
    engine = create_store_engine(store_url)
    with engine.begin() as conn:
        assert migrate(conn, MIGRATIONS[:1]) == 1
    assert "outbox" not in inspect(engine).get_table_names()
    old = Store(engine)
    old.ensure_connection("acme", "xero", "T1")
    old.write_sync_page("acme", SyncPage(invoices=(invoice_factory("I1"),), cursor="c1"))
    old.append_event("acme", "I1", Event(kind=EventKind.NOTE, on=date(2026, 11, 1)))
    engine.dispose()

    with Store.open(store_url) as store:
        assert _version(store_url) == len(MIGRATIONS)
        assert store.invoice("acme", "I1") == invoice_factory("I1")
        assert store.sync_state("acme").cursor == "c1"
        assert [e.kind for e in store.events("acme", "I1")] == [EventKind.NOTE]
        assert store.outbox_add("acme", "note", "key-00000001", {"text": "x"}).status == "pending"
        store.mark_synced("acme", full=True, platform_warnings=["automatic reminders are on"])  # columns of v3, v4
        status = store.connection_status()["acme"]
        assert status.last_full_sync_at is not None and status.platform_warnings == ("automatic reminders are on",)


def test_a_store_from_a_newer_release_is_refused(store_url):
    engine = create_store_engine(store_url)
    with engine.begin() as conn:
        migrate(conn)
        conn.execute(schema.schema_version.update().values(version=len(MIGRATIONS) + 1))
    engine.dispose()

    with pytest.raises(StoreError, match="newer than this Dunning Connector knows"):
        Store.open(store_url)


def test_a_failing_migration_leaves_the_older_schema_untouched(store_url):
    engine = create_store_engine(store_url)
    with engine.begin() as conn:
        migrate(conn, MIGRATIONS[:1])

    def broken(conn):
        schema.outbox.create(conn)
        raise RuntimeError("migration bug")

    with pytest.raises(RuntimeError, match="migration bug"):
        with engine.begin() as conn:
            migrate(conn, (MIGRATIONS[0], broken))

    assert "outbox" not in inspect(engine).get_table_names()
    engine.dispose()
    assert _version(store_url) == 1


def test_a_version_4_store_gets_the_invoice_payments_column(store_url, invoice_factory):
    engine = create_store_engine(store_url)
    with engine.begin() as conn:
        assert migrate(conn, MIGRATIONS[:4]) == 4
        conn.exec_driver_sql("ALTER TABLE invoices DROP COLUMN payments")  # as version 4 of the last release had it
    assert "payments" not in {c["name"] for c in inspect(engine).get_columns("invoices")}
    engine.dispose()

    paid = invoice_factory("I1", outstanding=Decimal("1010.00"), amount_paid=Decimal("200.00"),
                           payments=(Payment(on=date(2026, 10, 20), amount=Decimal("200.00")),))
    with Store.open(store_url) as store:
        store.ensure_connection("acme", "xero", "T1")
        store.write_sync_page("acme", SyncPage(invoices=(paid,)))
        assert store.invoice("acme", "I1") == paid
