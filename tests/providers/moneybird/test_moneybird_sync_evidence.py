"""Moneybird through the shared sync machine and the store: content compared on a full sync, nothing closed on an
odd answer, an interrupted first sync kept."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from connector.store import Store
from connector.sync import failed, sync_connection
from providers.base import ConnectionSettings
from providers.moneybird import MoneybirdProvider

NAME = "acme-moneybird"
SYNC = "/api/v2/*/sales_invoices/synchronization.json"


@pytest.fixture
def through(sim: Any, tokens: Any) -> Any:
    """An adapter talking to the simulator through `transport`."""
    def build(transport: httpx.BaseTransport) -> MoneybirdProvider:
        settings = ConnectionSettings(name=NAME, provider="moneybird", tenant=sim.administration_id,
                                      client_id="dunning-app", client_secret="s3cret-app-value")
        return MoneybirdProvider.connect(settings, tokens=tokens, transport=transport, clock=sim.clock.time,
                                         sleep=sim.clock.sleep)
    return build


@pytest.fixture
def store(tmp_path: Path, sim: Any) -> Any:
    with Store.open(f"sqlite:///{tmp_path / 'store.sqlite'}") as opened:
        opened.ensure_connection(NAME, "moneybird", sim.administration_id)
        yield opened


def test_a_full_sync_stores_a_change_the_version_does_not_show(sim, connect, store, simulator_open_ids) -> None:
    sync_connection(store, connect(), NAME)
    invoice_id = sorted(simulator_open_ids())[0]
    record = sim.administration.invoices[invoice_id]
    record.due_date = record.due_date + timedelta(days=21)  # same version

    summary = sync_connection(store, connect(), NAME, full=True)

    assert summary.ok and summary.changed == 1
    assert store.invoice(NAME, invoice_id).due_date == record.due_date


def test_an_empty_listing_closes_nothing_and_says_so(sim, connect, through, store, tampered, simulator_open_ids) -> None:
    sync_connection(store, connect(), NAME)
    transport = tampered(sim.transport())
    transport.rewrite(SYNC, lambda body: [])  # the id/version listing comes back empty

    summary = sync_connection(store, through(transport), NAME, full=True)

    # a sample asked for by id came back open: the listing is wrong, nothing closes, and the run says so (exit 1)
    assert summary.closed == 0 and set(store.sync_state(NAME).open_invoices) == simulator_open_ids()
    assert len(summary.anomalies) == 1 and "listing looks incomplete" in summary.anomalies[0]
    assert failed([summary])


def test_an_interrupted_first_sync_keeps_its_pages(sim, connect, through, store, tampered, simulator_open_ids,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    transport = tampered(sim.transport())
    transport.interrupt(SYNC, method="POST", on_call=2)
    with caplog.at_level(logging.ERROR), pytest.raises(KeyboardInterrupt):
        sync_connection(store, through(transport), NAME)
    kept = set(store.sync_state(NAME).open_invoices)
    assert len(kept) == 100 and "interrupted" in caplog.text and "100 invoices" in caplog.text

    posts = sim.call_count(SYNC, "POST")
    summary = sync_connection(store, connect(), NAME)

    assert summary.ok and summary.fetched == len(simulator_open_ids()) - 100
    assert set(store.sync_state(NAME).open_invoices) == simulator_open_ids()
    assert sim.call_count(SYNC, "POST") - posts == -(-summary.fetched // 100)
