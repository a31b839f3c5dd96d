"""An invoice deleted on Moneybird: the synchronization POST leaves it out, so it is read directly, and only
Moneybird's own 404 `record not found` closes it."""

from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import Any

import httpx
import pytest

from connector.models import EventKind
from connector.store import Store
from connector.sync import failed, sync_connection
from providers.base import ConnectionSettings
from providers.moneybird import MoneybirdProvider

NAME = "acme-moneybird"
SYNC = "/api/v2/*/sales_invoices/synchronization.json"
READ = "/api/v2/*/sales_invoices/*.json"


class Failing(httpx.BaseTransport):
    """Passes requests to `inner`, but answers a direct invoice read with `status` and `body`."""

    def __init__(self, inner: httpx.BaseTransport, status: int, body: Any) -> None:
        self.inner, self.status, self.body = inner, status, body
        self.reads = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.method == "GET" and fnmatch.fnmatchcase(path, READ) and not fnmatch.fnmatchcase(path, SYNC):
            self.reads += 1
            return httpx.Response(self.status, json=self.body, request=request)
        return self.inner.handle_request(request)


@pytest.fixture
def through(sim: Any, tokens: Any) -> Any:
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


def test_an_invoice_deleted_on_the_platform_is_closed_in_one_sync(sim, connect, store, simulator_open_ids) -> None:
    sync_connection(store, connect(), NAME)
    deleted = sorted(simulator_open_ids())[0]
    sim.delete_invoice(deleted)

    summary = sync_connection(store, connect(), NAME)

    assert summary.ok and not summary.anomalies and not failed([summary])
    assert summary.closed == 1 and deleted not in store.sync_state(NAME).open_invoices
    closing = [e for e in store.events(NAME, deleted) if e.kind is EventKind.CLOSED]
    assert len(closing) == 1 and "deleted on the platform" in closing[0].data["detail"]
    assert set(store.sync_state(NAME).open_invoices) == simulator_open_ids()
    assert not sync_connection(store, connect(), NAME).anomalies  # and it does not come back


@pytest.mark.parametrize(("status", "body"), [
    (503, {"error": "Service Unavailable"}),
    (404, {"error": "Not Found"}),  # a 404 that is not Moneybird's `record not found` proves nothing
], ids=["outage", "other-404"])
def test_a_missing_invoice_whose_direct_read_fails_stays_open_and_named(sim, connect, through, store,
                                                                         simulator_open_ids, status, body) -> None:
    sync_connection(store, connect(), NAME)
    missing = sorted(simulator_open_ids())[0]
    sim.delete_invoice(missing)
    transport = Failing(sim.transport(), status, body)

    summary = sync_connection(store, through(transport), NAME)

    assert transport.reads >= 1
    assert summary.closed == 0 and missing in store.sync_state(NAME).open_invoices
    assert len(summary.anomalies) == 1 and missing in summary.anomalies[0]
    assert failed([summary])
    assert not [e for e in store.events(NAME, missing) if e.kind is EventKind.CLOSED]


def test_direct_reads_are_bounded_per_sync(sim, connect, store, simulator_open_ids) -> None:
    sync_connection(store, connect(), NAME)
    gone = sorted(simulator_open_ids())[:25]
    for invoice_id in gone:
        sim.delete_invoice(invoice_id)
    reads = sim.call_count(READ, "GET") - sim.call_count(SYNC, "GET")

    summary = sync_connection(store, connect(), NAME)

    assert sim.call_count(READ, "GET") - sim.call_count(SYNC, "GET") - reads == 20
    assert summary.closed == 20 and len(summary.anomalies) == 5
    assert sync_connection(store, connect(), NAME).closed == 5  # the rest on the next sync


def test_an_unchanged_resync_reads_nothing_directly(sim, connect, store) -> None:
    sync_connection(store, connect(), NAME)
    before = sim.call_count()

    summary = sync_connection(store, connect(), NAME)

    assert summary.ok and sim.call_count() - before == 2
