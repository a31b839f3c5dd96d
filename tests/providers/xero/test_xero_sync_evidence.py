"""Xero through the shared sync machine and the store: every change seen, nothing closed without evidence, garbage
kept out by name, an interrupted first sync kept."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from connector.store import Store
from connector.sync import failed, sync_connection
from providers.xero.simulator import XeroSimulator

INVOICES = "/api.xro/2.0/Invoices"
NAME = "acme-xero"


@pytest.fixture
def store(tmp_path: Path, sim: XeroSimulator) -> Any:
    with Store.open(f"sqlite:///{tmp_path / 'store.sqlite'}") as opened:
        opened.ensure_connection(NAME, "xero", sim.org.tenant_id)
        yield opened


def test_a_full_sync_stores_a_due_date_changed_without_an_updated_date(sim, xero, store) -> None:
    invoice = sim.org.open_invoices()[3]
    sim.org.pay(invoice.invoice_id, "10.00")  # part-paid
    sync_connection(store, xero, NAME)
    moved = invoice.due + timedelta(days=30)
    sim.org.invoices[invoice.invoice_id].due = moved  # Xero keeps UpdatedDateUTC for this edit

    summary = sync_connection(store, xero, NAME, full=True)

    assert summary.ok and summary.changed == 1
    assert store.invoice(NAME, invoice.invoice_id).due_date == moved


def test_an_empty_answer_closes_nothing_and_says_so_after_asking_a_sample(sim, connect_xero, tokens, store,
                                                                        tampered) -> None:
    first = connect_xero(sim, tokens)
    sync_connection(store, first, NAME)
    open_ids = {i.invoice_id for i in sim.org.open_invoices()}
    transport = tampered(sim.transport())
    transport.rewrite(INVOICES, lambda body: body | {"Invoices": []})  # the listing and the by-id checks
    odd = connect_xero(sim, tokens, transport=transport)
    calls = sim.call_count(INVOICES)

    summary = sync_connection(store, odd, NAME, full=True)

    assert summary.closed == 0
    assert set(store.sync_state(NAME).open_invoices) == open_ids
    assert len(summary.anomalies) == 1 and f"left out {len(open_ids)} of {len(open_ids)}" in summary.anomalies[0]
    assert "none was closed" in summary.anomalies[0]
    assert sim.call_count(INVOICES) - calls == 2  # the listing, and one sample of 50 asked by id: not all 120
    assert failed([summary])  # exit 1


def test_an_invoice_the_platform_does_not_return_is_named_and_kept_open(sim, connect_xero, tokens, store,
                                                                        tampered) -> None:
    sync_connection(store, connect_xero(sim, tokens), NAME)
    lost = sim.org.open_invoices()[1].invoice_id
    transport = tampered(sim.transport())
    transport.rewrite(INVOICES, lambda body: body | {"Invoices": [r for r in body.get("Invoices", [])
                                                                  if r.get("InvoiceID") != lost]})

    summary = sync_connection(store, connect_xero(sim, tokens, transport=transport), NAME, full=True)

    assert summary.closed == 0 and store.invoice(NAME, lost).is_open
    assert len(summary.anomalies) == 1 and lost in summary.anomalies[0] and "kept open" in summary.anomalies[0]
    assert failed([summary])


def test_an_invoice_returned_paid_when_asked_by_id_is_closed(sim, connect_xero, tokens, store, tampered) -> None:
    sync_connection(store, connect_xero(sim, tokens), NAME)
    paid = sim.org.open_invoices()[0]
    sim.org.pay(paid.invoice_id)

    summary = sync_connection(store, connect_xero(sim, tokens), NAME, full=True)

    assert summary.closed == 1 and not summary.anomalies
    assert not store.invoice(NAME, paid.invoice_id).is_open


@pytest.mark.parametrize(("change", "named"), [
    ({"AmountDue": -50.0}, "negative"),
    ({"AmountDue": 10.005}, "finer than a cent"),
    ({"InvoiceNumber": ""}, "no invoice number"),
    ({"InvoiceNumber": "INV-\x07-1"}, "control characters"),
    ({"Reference": "x" * 200_000}, "characters"),
], ids=["negative-due", "sub-cent", "no-number", "control-characters", "huge-field"])
def test_garbage_is_named_keeps_the_last_good_version_and_closes_nothing(
    sim, connect_xero, tokens, store, tampered, change: dict[str, Any], named: str,
) -> None:
    sync_connection(store, connect_xero(sim, tokens), NAME)
    victim = sim.org.open_invoices()[2]
    good = store.invoice(NAME, victim.invoice_id)
    transport = tampered(sim.transport())

    def spoil(body: dict[str, Any]) -> dict[str, Any]:
        return body | {"Invoices": [r | change if r.get("InvoiceID") == victim.invoice_id else r
                                    for r in body.get("Invoices", [])]}

    transport.rewrite(INVOICES, spoil)

    summary = sync_connection(store, connect_xero(sim, tokens, transport=transport), NAME, full=True)

    assert summary.closed == 0
    problems = [p for p in summary.problems if victim.number in p or victim.invoice_id in p]
    assert len(problems) == 1 and named in problems[0]
    kept = store.invoice(NAME, victim.invoice_id)
    assert kept.is_open and (kept.number, kept.outstanding, kept.reference) == (good.number, good.outstanding,
                                                                                good.reference)


def test_an_interrupted_first_sync_keeps_its_pages_and_the_next_one_carries_on(
    sim, connect_xero, tokens, store, tampered, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr("providers.xero.client.PAGE_SIZE", 25)
    transport = tampered(sim.transport())
    transport.interrupt(INVOICES, page=3)  # Ctrl-C while the third page is read (pages 2 and 3 go out together)
    with caplog.at_level(logging.ERROR), pytest.raises(KeyboardInterrupt):
        sync_connection(store, connect_xero(sim, tokens, transport=transport), NAME)

    kept = set(store.sync_state(NAME).open_invoices)
    assert len(kept) == 50  # two pages of 25
    assert "interrupted" in caplog.text and "50 invoices" in caplog.text and "kept" in caplog.text

    calls_before = sim.call_count(INVOICES)
    summary = sync_connection(store, connect_xero(sim, tokens), NAME)

    assert summary.ok
    assert set(store.sync_state(NAME).open_invoices) == {i.invoice_id for i in sim.org.open_invoices()}
    assert sim.call_count(INVOICES) - calls_before < len(sim.org.open_invoices()) / 25  # not started over
    assert summary.fetched < len(sim.org.open_invoices())


def test_a_contact_with_a_huge_field_is_named_and_its_last_good_version_kept(sim, connect_xero, tokens, store,
                                                                          tampered) -> None:
    sync_connection(store, connect_xero(sim, tokens), NAME)
    invoice = sim.org.open_invoices()[4]
    good = store.debtor(NAME, invoice.contact_id)
    transport = tampered(sim.transport())
    transport.rewrite("/api.xro/2.0/Contacts", lambda body: body | {"Contacts": [
        c | {"Name": "n" * 200_000} if c.get("ContactID") == invoice.contact_id else c
        for c in body.get("Contacts", [])]})

    summary = sync_connection(store, connect_xero(sim, tokens, transport=transport), NAME, full=True)

    assert summary.closed == 0
    assert any(invoice.contact_id in p and "200,000 characters" in p for p in summary.problems), summary.problems
    assert store.debtor(NAME, invoice.contact_id).name == good.name
    assert store.invoice(NAME, invoice.invoice_id).is_open
