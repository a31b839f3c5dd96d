"""The database connection: SQLite in WAL mode with foreign keys on; referential integrity on both databases."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import func, inspect, select
from sqlalchemy.exc import IntegrityError

from connector.store import Store, StoreError, schema
from providers.base import SyncPage


def test_sqlite_is_in_wal_mode_with_foreign_keys_on(tmp_path):
    with Store.open(f"sqlite:///{tmp_path / 'store.sqlite'}") as store, store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_an_open_read_never_blocks_a_sync_page(store, invoice_factory):
    """WAL: the planner or `dunning status` reading in another process does not make the sync wait or fail."""
    with store.engine.connect() as reader, reader.begin():
        assert reader.execute(select(func.count()).select_from(schema.invoices)).scalar_one() == 0
        store.write_sync_page("acme", SyncPage(invoices=(invoice_factory("I1"),), cursor="c1"))
    assert store.invoice("acme", "I1") is not None


def test_history_of_an_invoice_that_does_not_exist_is_refused_by_the_database(store):
    row = {"invoice_id": 999, "kind": "note", "on_date": date(2026, 11, 2), "data": {},
           "recorded_at": datetime(2026, 11, 2, tzinfo=UTC)}
    with pytest.raises(IntegrityError), store.engine.begin() as conn:
        conn.execute(schema.events.insert().values(**row))


def test_an_unreachable_database_is_a_store_error_without_the_password():
    with pytest.raises(StoreError) as raised:
        Store.open("postgresql+psycopg://dunning:hunter2-secret@127.0.0.1:1/dunning")
    message = str(raised.value)
    assert message.startswith("store.url: cannot open the store postgresql+psycopg://dunning:***@127.0.0.1:1/dunning: ")
    assert "hunter2" not in message and "\n" not in message


def test_a_new_store_has_every_table_the_product_needs(store):
    tables = set(inspect(store.engine).get_table_names())
    assert {"schema_version", "connections", "debtors", "invoices", "events", "outbox", "handoff_cases"} <= tables
    columns = {column["name"] for column in inspect(store.engine).get_columns("connections")}
    assert {"sync_cursor", "last_sync_at", "last_full_sync_at", "needs_reauth"} <= columns
