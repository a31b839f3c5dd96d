"""Schema migrations (Alembic): a new store and a store of every released schema version end up exactly as
schema.py says, keeping their data; a newer store is refused; a failing revision leaves the store as it was."""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, select, text

from connector.models import EventKind, Payment
from connector.store import Store, StoreError, migrations, schema
from connector.store.engine import create_store_engine
from connector.store.migrations import current_revision, head, migrate
from connector.store.rows import debtor_values, invoice_values
from providers.base import SyncPage
from tests.connector.store import released_schema

NOW = datetime(2026, 11, 2, 7, 0, tzinfo=UTC)


def _differences(url: str) -> list[object]:
    """What the database's tables lack or have beyond schema.py (empty when they match)."""
    engine = create_store_engine(url)
    try:
        with engine.connect() as conn:
            return compare_metadata(MigrationContext.configure(conn), schema.metadata)
    finally:
        engine.dispose()


def _revision(url: str) -> str | None:
    engine = create_store_engine(url)
    try:
        with engine.connect() as conn:
            return current_revision(conn)
    finally:
        engine.dispose()


def test_the_revisions_form_one_chain():
    """Two engineers chaining on the same head would leave two heads: every store would stop at a fork."""
    scripts = ScriptDirectory(str(migrations.SCRIPTS))
    assert scripts.get_heads() == [head()]
    assert [r.revision for r in scripts.walk_revisions()][-1] == "0001"


def test_a_new_store_gets_the_head_exactly_as_schema_py_says_and_reopening_changes_nothing(store_url):
    Store.open(store_url).close()
    Store.open(store_url).close()

    assert _revision(store_url) == head()
    assert _differences(store_url) == []


@pytest.mark.parametrize("version", sorted(migrations.LEGACY_REVISIONS))
def test_a_store_of_every_released_version_upgrades_in_place_keeping_its_data(
    store_url, version, invoice_factory, debtor_factory
):
    invoice, debtor = invoice_factory("I1"), debtor_factory("D1")
    engine = create_store_engine(store_url)
    with engine.begin() as conn:
        released_schema.build(conn, version)
        conn.execute(released_schema.connections_v1.insert().values(
            name="acme", provider="xero", tenant="T1", sync_cursor="c1", needs_reauth=False, created_at=NOW))
        conn.execute(released_schema.debtors.insert().values(
            connection="acme", platform_id="D1", updated_at=NOW, **debtor_values(debtor)))
        old_invoice = {k: v for k, v in invoice_values(invoice).items() if k in released_schema.invoices.c}
        invoice_id = conn.execute(released_schema.invoices.insert().values(
            connection="acme", platform_id="I1", first_seen_at=NOW, updated_at=NOW, **old_invoice,
        )).inserted_primary_key[0]
        conn.execute(released_schema.events.insert().values(
            invoice_id=invoice_id, kind="note", on_date=date(2026, 11, 1), data={"text": "rang"}, recorded_at=NOW))
        if version >= 2:
            conn.execute(released_schema.outbox.insert().values(
                idempotency_key="key-1", connection="acme", kind="note", payload={"text": "x"}, status="pending",
                attempts=0, created_at=NOW, updated_at=NOW))
    engine.dispose()

    paid = invoice_factory("I2", amount_paid=Decimal("200.00"), outstanding=Decimal("1010.00"),
                           payments=(Payment(on=date(2026, 10, 20), amount=Decimal("200.00")),))
    with Store.open(store_url) as store:
        assert store.invoice("acme", "I1") == invoice
        assert store.debtor("acme", "D1") == debtor
        assert store.sync_state("acme").cursor == "c1"
        assert [(e.kind, e.data) for e in store.events("acme", "I1")] == [(EventKind.NOTE, {"text": "rang"})]
        assert [e.idempotency_key for e in store.outbox_pending("acme")] == (["key-1"] if version >= 2 else [])
        store.mark_synced("acme", full=True, platform_warnings=["automatic reminders are on"])  # columns of 0003, 0004
        store.write_sync_page("acme", SyncPage(invoices=(paid,)))  # the column of 0006
        assert store.invoice("acme", "I2") == paid
        assert store.connection_status()["acme"].platform_warnings == ("automatic reminders are on",)

    assert _revision(store_url) == head()
    assert _differences(store_url) == []


def test_a_release_from_before_alembic_refuses_an_upgraded_store_instead_of_recreating_its_tables(store_url):
    """Those releases refused any schema_version above the number of migrations they knew (4)."""
    Store.open(store_url).close()
    engine = create_store_engine(store_url)
    with engine.connect() as conn:
        assert conn.execute(select(schema.schema_version.c.version)).scalar_one() > len(released_schema.RELEASED)
    engine.dispose()


def test_a_store_from_a_newer_release_is_refused(store_url):
    Store.open(store_url).close()
    engine = create_store_engine(store_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()

    with pytest.raises(StoreError, match="schema revision 9999, newer than this Dunning Connector knows"):
        Store.open(store_url)


def test_a_pre_alembic_store_with_an_unknown_version_is_refused(store_url):
    engine = create_store_engine(store_url)
    with engine.begin() as conn:
        released_schema.build(conn, 4)
        conn.execute(released_schema.schema_version.update().values(version=7))
    engine.dispose()

    with pytest.raises(StoreError, match="schema version 7, newer than this Dunning Connector knows"):
        Store.open(store_url)


def test_a_failing_revision_leaves_the_older_schema_untouched(store_url, tmp_path, monkeypatch):
    engine = create_store_engine(store_url)
    with engine.begin() as conn:
        migrate(conn, "0001")
    engine.dispose()
    scripts = tmp_path / "migrations"
    shutil.copytree(migrations.SCRIPTS, scripts, ignore=shutil.ignore_patterns("__pycache__"))
    (scripts / "versions" / "9000_broken.py").write_text(
        f"from alembic import op\nimport sqlalchemy as sa\nrevision = '9000'\ndown_revision = {head()!r}\n"
        "def upgrade():\n    op.create_table('half_done', sa.Column('id', sa.Integer))\n"
        "    raise RuntimeError('migration bug')\n",
        encoding="utf-8",
    )
    monkeypatch.setattr(migrations, "SCRIPTS", scripts)

    with pytest.raises(RuntimeError, match="migration bug"):
        Store.open(store_url)

    engine = create_store_engine(store_url)
    tables = set(inspect(engine).get_table_names())
    engine.dispose()
    assert "outbox" not in tables and "half_done" not in tables
    assert _revision(store_url) == "0001"

