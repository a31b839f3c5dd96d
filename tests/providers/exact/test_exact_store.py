"""Exact through the real sync driver and store (SQLite and PostgreSQL): counts, closing, resuming after a fault."""

from __future__ import annotations

from decimal import Decimal

from connector.models import EventKind
from connector.store import Store
from connector.sync import sync_connection
from providers.exact.simulator import ExactSimulator

from .conftest import DIVISION, connect


def test_sync_into_the_store_then_pay_then_resume_after_an_outage(store_url: str, sim: ExactSimulator) -> None:
    provider = connect(sim)
    with Store.open(store_url) as store:
        store.ensure_connection("bakkerij", "exact", str(DIVISION))
        first = sync_connection(store, provider, "bakkerij")
        assert first.ok and first.fetched == first.changed == 41 and first.api_calls == 3

        unchanged = sync_connection(store, provider, "bakkerij")
        assert unchanged.ok and (unchanged.fetched, unchanged.changed, unchanged.api_calls) == (0, 0, 2)

        state = store.sync_state("bakkerij")
        paid, partly = sorted(state.open_invoices)[:2]
        sim.pay(DIVISION, paid)
        sim.pay(DIVISION, partly, Decimal("5.00"))
        sim.faults.server_error("*/bulk/Cashflow/Receivables", status=503, times=10)  # outlasts the retries
        failed = sync_connection(store, provider, "bakkerij")
        assert not failed.ok and "maintenance" in failed.error
        assert store.sync_state("bakkerij").cursor == state.cursor  # nothing half-written

        sim.faults.clear()
        resumed = sync_connection(store, provider, "bakkerij")
        assert resumed.ok and (resumed.fetched, resumed.closed) == (1, 1)
        assert not store.invoice("bakkerij", paid).is_open
        kinds = {event.kind for event in store.events("bakkerij", partly)}
        assert EventKind.PAYMENT_SEEN in kinds
        assert store.invoice("bakkerij", partly).debtor_id in store.sync_state("bakkerij").debtors
