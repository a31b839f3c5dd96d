"""Exact through the shared sync machine and the store: a first sync stored page by page and resumable, nothing
closed on an odd answer, closing only on evidence."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from connector.store import Store
from connector.sync import failed, sync_connection
from providers.base import ConnectionSettings, Token
from providers.exact import ExactProvider
from providers.exact.simulator import ExactSimulator
from providers.simkit import VirtualClock
from providers.tokens import MemoryTokenStore

DIVISION = 123456
NAME = "bakkerij"
TERMS = "*/sync/Cashflow/PaymentTerms"
BULK = "*/bulk/Cashflow/Receivables"


def connect(sim: ExactSimulator, transport: httpx.BaseTransport | None = None) -> ExactProvider:
    if "app" not in sim.oauth.clients:
        sim.oauth.register_client("app", "s3cret", ["https://localhost:8765/callback"])
    tokens = MemoryTokenStore({NAME: Token.from_response(sim.oauth.grant_tokens("app"), now=sim.clock.now())})
    settings = ConnectionSettings(name=NAME, provider="exact", tenant=str(DIVISION), client_id="app",
                                  client_secret=SecretStr("s3cret"), api_url="https://start.exactonline.nl")
    return ExactProvider.connect(settings, tokens=tokens, transport=transport or sim.transport(),
                                 clock=sim.clock.time, sleep=sim.clock.sleep)


def expected_open(sim: ExactSimulator) -> set[str]:
    return {t.TransactionEntryID for t in sim.divisions[DIVISION].terms.values()
            if t.Status != 50 and t.TransactionType in (20, 21) and t.LineType == 20}


@pytest.fixture
def store(tmp_path: Path) -> Any:
    with Store.open(f"sqlite:///{tmp_path / 'store.sqlite'}") as opened:
        opened.ensure_connection(NAME, "exact", str(DIVISION))
        yield opened


def test_an_interrupted_first_sync_keeps_its_pages_and_the_next_one_carries_on(
    store, tampered, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr("providers.exact.simulator.BULK_PAGE", 20)  # the feed in pages of 20 terms
    sim = ExactSimulator.seeded(clock=VirtualClock(), division=DIVISION)
    supplier = sim.add_account(DIVISION, "Leverancier Zonder Facturen B.V.")  # no invoice: no debtor
    transport = tampered(sim.transport())
    transport.interrupt(TERMS, on_call=3)  # Ctrl-C while the third page of the feed is read
    provider = connect(sim, transport)
    with caplog.at_level(logging.ERROR), pytest.raises(KeyboardInterrupt):
        sync_connection(store, provider, NAME)
    kept = store.sync_state(NAME)
    assert kept.open_invoices and kept.cursor is not None and "interrupted" in caplog.text

    pages_before = sim.call_count(TERMS)
    summary = sync_connection(store, connect(sim), NAME)

    assert summary.ok
    assert set(store.sync_state(NAME).open_invoices) == expected_open(sim)
    assert sim.call_count(TERMS) - pages_before < 4  # carried on from the stored position, not from the start
    assert all(store.debtor(NAME, store.invoice(NAME, i).debtor_id) for i in expected_open(sim))
    # the debtors of the invoices stored before the interruption, not every account of the division
    assert store.debtor(NAME, supplier.ID) is None and not store.sync_state(NAME).debtors_missing


def test_an_empty_open_set_closes_nothing_and_names_what_it_kept_open(sim, store, tampered) -> None:
    sync_connection(store, connect(sim), NAME)
    before = set(store.sync_state(NAME).open_invoices)
    transport = tampered(sim.transport())
    transport.rewrite(BULK, lambda body: {"d": {"results": []}})  # the open set, and the read by number, empty
    odd = connect(sim, transport)

    summary = sync_connection(store, odd, NAME, full=True)

    assert summary.closed == 0 and set(store.sync_state(NAME).open_invoices) == before
    assert summary.anomalies and failed([summary])


def test_a_paid_invoice_is_closed_by_a_full_sync_on_evidence(sim, store) -> None:
    sync_connection(store, connect(sim), NAME)
    paid = sorted(expected_open(sim))[0]
    sim.pay(DIVISION, paid)

    summary = sync_connection(store, connect(sim), NAME, full=True)

    assert summary.closed == 1 and not summary.anomalies
    assert not store.invoice(NAME, paid).is_open
    assert set(store.sync_state(NAME).open_invoices) == expected_open(sim)
